"""The agent: claims items of the stages it serves, runs them, reports back.

Level-triggered: a pub/sub notification only wakes the agent early; every ``rescan``
seconds it claims, reaps expired leases and renews its own whatever it was told, so a lost
notification delays work and never loses it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

import structlog

from owl.agent_ends import adopt, shutdown
from owl.board import Board
from owl.condor.failure import escalate_memory
from owl.config import Settings
from owl.control.agentctl import DRAIN, SERVE, AgentControl
from owl.errors import ConfigError, OwlError
from owl.executor import Executor, Job
from owl.faults import explain, passing, refuses_writes
from owl.liveness import identity
from owl.model import Claim, FailureClass, Outcome, Provenance, State, TaskSpec
from owl.queries import nothing_left
from owl.reapers import my_shards
from owl.template import Stage, Template, template_hash
from owl.trust import Trust
from owl.wakeup import Wakeup
from owl.workerstat import WorkerMeter

log = structlog.get_logger("owl.agent")

#: Exit status of a burst agent some of whose items went dead.
DEAD_EXIT = 3


@dataclass
class AgentStats:
    claimed: int = 0
    done: int = 0
    failed: int = 0
    fenced: int = 0
    dead: int = 0  # items this agent ran that went dead
    started: float = field(default_factory=time.time)


def new_agent_id() -> str:
    """A unique agent id: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Agent:
    """Serves some stages of one template with a bounded number of concurrent items.

    Parameters
    ----------
    board
        The blackboard.
    template
        The template as loaded from its file; datasets pinned to another version are run
        with the version stored on the board.
    stages
        Stages served (default: all).
    executor
        Runs the tasks (local child processes, or condor).
    concurrency
        Items run at once.
    prefetch
        Items held beyond ``concurrency``, queued in the executor until a worker is free
        (local executor, `owl.local`); leased and renewed like running ones.
    settings
        Lease length, rescan interval, work directory.
    burst
        Exit once nothing this agent serves is ready, running or waiting to retry.
    """

    def __init__(self, board: Board, template: Template, *, executor: Executor,
                 concurrency: int, settings: Settings, stages: Sequence[str] = (),
                 prefetch: int = 0, burst: bool = False, agent_id: str | None = None,
                 grace: float = 30.0,
                 on_unreachable: Callable[[], object] | None = None) -> None:
        unknown = [s for s in stages if s not in template.stage_names]
        if unknown:
            raise ValueError(f"template {template.name!r} has no stage(s) {unknown}; "
                             f"its stages are {list(template.stage_names)}")
        self.board = board
        self.template = template
        self.stages = tuple(stages) or template.stage_names
        self.executor = executor
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.slots = concurrency + prefetch  # items held at once
        self.settings = settings
        self.burst = burst
        self.grace = grace
        self.on_unreachable = on_unreachable  # e.g. restart the embedded server
        self._work = str(settings.work_dir)  # resolved once, not per task
        self._next: dict[str, float] = {}  # when to renew, rescan and heartbeat next
        self._claim_now = True
        self._pending: list[Outcome] = []  # outcomes not yet reported (board unreachable)
        self.id = agent_id or new_agent_id()
        self.running: dict[tuple[str, str, int], Claim] = {}
        self.paused: set[tuple[str, str, int]] = set()
        self._meter = WorkerMeter()
        self.stats = AgentStats()
        self._stopping = False
        self._templates: dict[str, Template] = {template.version: template}
        self.trust = Trust.of(template)
        self._hashes: dict[str, str] = {}
        self.control = AgentControl(board, self.id, template)
        self._log = log.bind(agent=self.id, template=template.name)
        self._identity = identity()  # host, pid, boot id, start time: see owl.liveness
        self._reap_after = 0.0  # no reaping until then (after an outage: a lease later)
        self._fault_logged = -1e9

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        if self._stopping:
            self._log.warning("agent.stop_now")
            self.grace = 0.0
        self._stopping = True

    def hangup(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """SIGHUP (the controlling terminal went away): stop as on SIGTERM, saying so. Run
        an agent that must outlive its shell under nohup, systemd or a batch system."""
        self._log.warning("agent.hangup", detail="terminal closed; stopping, items given back")
        self.request_stop()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.hangup)

    def run(self) -> int:
        """Serve until stopped (or, in burst mode, until there is nothing left). Returns 0.

        A board that stops answering (Redis restarting) pauses the loop, it does not end it:
        running tasks go on, and their outcomes are reported once the board is back.
        """
        wake = Wakeup(self.board, self.template.name)
        now = time.monotonic()
        self._next = {"renew": now + self.settings.lease / 3, "scan": now, "beat": now}
        self._claim_now = True
        self._log.info("agent.started", stages=list(self.stages),
                       concurrency=self.concurrency, executor=self.executor.name)
        started = False
        try:
            while not self._stopping:
                try:
                    if not started:  # an outage at start is waited out like any other
                        self.control.start()
                        adopt(self)
                        self._renew()  # before the first reap: adopted leases may have run out
                        started = True
                    if self._step(wake):
                        break
                    if self._fault_logged > 0:
                        self._log.info("board.back", detail="resuming")
                        self._fault_logged = -1e9
                except Exception as exc:
                    if not passing(exc):
                        raise
                    self._board_fault(exc)
            shutdown(self)
        finally:
            self._close(wake)
        try:
            self.control.finished()
        except Exception as exc:
            if not passing(exc):
                raise
            self._log.warning("agent.drain_left", error=explain(exc))
        return DEAD_EXIT if self.burst and self.stats.dead else 0

    def _board_fault(self, exc: BaseException) -> None:
        """The board is unreachable or refuses writes: wait, restart the embedded server if
        it is gone, and on return renew before reaping anything, so that an outage longer
        than the lease does not expire the live items of agents that are still here."""
        now = time.monotonic()
        if now - self._fault_logged > 30.0:  # once per outage, then every 30 s
            event = "board.refusing_writes" if refuses_writes(exc) else "board.unreachable"
            self._log.error(event, error=explain(exc), detail="waiting; tasks run on")
            self._fault_logged = now
        time.sleep(1.0)
        if not refuses_writes(exc):
            self._recover()
        self._next["renew"] = 0.0
        self._reap_after = time.monotonic() + self.settings.lease

    def _recover(self) -> None:
        if self.on_unreachable is None:
            return
        try:
            self.on_unreachable()
        except Exception as exc:  # restarting may fail again: the next turn retries it
            if not (isinstance(exc, OwlError) or passing(exc)):
                raise
            self._log.error("board.restart_failed", error=str(exc))

    def _close(self, wake: Wakeup) -> None:
        """Release everything; a board still unreachable here must not mask the error (if
        any) that ended the loop: the agent's record then expires by itself."""
        wake.close()
        self.executor.close()
        try:
            self.board.redis.zrem(self.board.keys.agents, self.id)
            self.board.redis.delete(self.board.keys.agent(self.id))
        except Exception as exc:
            if not passing(exc):
                raise
            self._log.warning("agent.record_left", error=explain(exc),
                              detail="it expires with its heartbeat")
        self._log.info("agent.stopped", done=self.stats.done, failed=self.stats.failed,
                       fenced=self.stats.fenced, dead=self.stats.dead)

    def _step(self, wake: Wakeup) -> bool:
        """One turn of the loop; True when a burst agent has nothing left to do."""
        now = time.monotonic()
        nxt = self._next
        if now >= nxt["renew"]:  # renew before reaping: never reap our own live items
            self._renew()
            nxt["renew"] = now + self.settings.lease / 3
        if now >= nxt["scan"]:
            if now >= self._reap_after:
                self._reap()
            self._claim_now = self.control.scan() == SERVE
            nxt["scan"] = now + self.settings.rescan
        if self.control.mode == DRAIN and not self.running:
            return True
        if self._claim_now and self.control.mode == SERVE and len(self.running) < self.slots:
            got = self._claim()
            self._claim_now = got > 0 and len(self.running) < self.slots
            if got == 0 and self.burst and not self.running and nothing_left(
                    self.board, self.template.name, self.stages):
                return True
        if now >= nxt["beat"]:
            self._heartbeat()
            nxt["beat"] = now + self._beat_interval()
        # no waiting only when there is a claim to make: a full agent that spun here would
        # burn a core and never read its wake-ups (a hold would wait for the next renew)
        room = self.control.mode == SERVE and len(self.running) < self.slots
        timeout = 0.0 if self._claim_now and room else max(0.0, min(nxt.values()) - now)
        due = self.executor.due()  # condor: end of the submit window, next event-log look
        if due is not None:
            timeout = min(timeout, max(0.0, due - now))
        if timeout > 0:
            ready = wait([*self.executor.waitables(), wake.fileno()], timeout)
            if wake.fileno() in ready:
                woke = wake.drain()
                if woke:
                    self._claim_now = True
                    self.board.claimer.view.nudge()
                if b"r" in woke:
                    self._log.debug("agent.woken", detail="a hold or release: renewing now")
                    nxt["renew"] = 0.0
                if b"c" in woke:  # a control change (pause, drain, limit): read it now
                    self.board.claimer.view.invalidate()
                    nxt["scan"] = 0.0
        self._pending += self.executor.poll(0.0)
        if self._pending:
            self._flush()
            self._claim_now = True
        return False

    def _flush(self) -> None:
        """Report the outcomes not yet on the board; on a passing fault they stay pending
        and are reported again later (a repeat is only fenced)."""
        outcomes, self._pending = self._pending, []
        try:
            self._report(outcomes)
        except Exception:
            self._pending = outcomes
            raise

    # -- the steps of the loop ------------------------------------------------------------

    def _claim(self) -> int:
        claims = self.board.claim(self.id, self.template.name, self.stages, self.settings.lease,
                                  self.slots - len(self.running))
        self._start(claims)
        return len(claims)

    def _start(self, claims: Sequence[Claim]) -> None:
        jobs = []
        for c in self._refuse_untrusted(claims):
            self.running[(c.dataset, c.stage, c.token)] = c
            self.stats.claimed += 1
            stage = self._template(c.version).stage(c.stage)
            resources = stage.resources
            if c.memory_mb is not None:
                resources = replace(resources, memory_mb=c.memory_mb)
            jobs.append(Job(spec=self._spec(c, stage), resources=resources,
                            extra=tuple(sorted(stage.condor.items()))))
            self._log.debug("item.claimed", dataset=c.dataset, stage=c.stage, token=c.token,
                            attempt=c.attempt)
        if jobs:
            self.executor.submit(jobs)

    def _refuse_untrusted(self, claims: Sequence[Claim]) -> list[Claim]:
        """Claims of versions whose content is not this agent's file are given back and
        held with the reason (owl.trust): nothing from the board alone ever runs here."""
        ok = []
        for c in claims:
            if self.trust.runnable(self.board, c.version):
                ok.append(c)
                continue
            why = self.trust.untrusted_reason(c.version)
            self.board.giveback(c, self.id)
            self.board.hold([(c.dataset, c.stage)], self.id, reason=why)
            self._log.warning("item.refused", dataset=c.dataset, stage=c.stage,
                              version=c.version, detail=why)
        return ok

    def _spec(self, claim: Claim, stage: Stage) -> TaskSpec:
        # a plain string join: four pathlib joins per item cost more than the rest of it
        out = os.path.join(self._work, claim.template, claim.dataset, f"g{claim.generation}",
                           f"{claim.stage}.t{claim.token}")
        return TaskSpec(dataset=claim.dataset, stage=claim.stage, template=claim.template,
                        token=claim.token, attempt=claim.attempt, task=stage.task,
                        argv=stage.argv, input_path=claim.path, inputs=claim.inputs,
                        output_dir=out, params=stage.params, timeout=stage.timeout,
                        refs=claim.refs, template_hash=self._hash(claim.version),
                        executor=self.executor.name, reuse=stage.reuse, last=claim.last,
                        known=claim.known)

    def _hash(self, version: str) -> str:
        if version not in self._hashes:
            self._hashes[version] = template_hash(self._template(version))
        return self._hashes[version]

    def _template(self, version: str) -> Template:
        """The template to run items of ``version`` with: always this agent's own file
        (another version only gets here when its content is the same: owl.trust)."""
        if version not in self._templates:
            if not self.trust.runnable(self.board, version):
                raise ConfigError(self.trust.untrusted_reason(version))
            self._templates[version] = self.template
        return self._templates[version]

    def _report(self, outcomes: Sequence[Outcome]) -> None:
        ok: list[tuple[Claim, dict[str, Any]]] = []
        records: list[Provenance | None] = []
        for o in outcomes:
            self.paused.discard((o.dataset, o.stage, o.token))
            claim = self.running.get((o.dataset, o.stage, o.token))
            if claim is None:
                continue  # cancelled after it was fenced
            if o.ok:
                ok.append((claim, o.outputs))
                records.append(o.provenance)
                continue
            stage = self._template(claim.version).stage(claim.stage)
            failure = o.failure or FailureClass.ERROR
            memory, final = None, failure is FailureClass.PERMANENT
            if failure is FailureClass.MEMORY:
                memory = escalate_memory(claim.memory_mb or stage.resources.memory_mb,
                                         stage.retry)
                final = memory is None
            res = self.board.fail(claim, failure, o.error, o.traceback,
                                  stage.retry.delay(claim.attempt), self.id,
                                  memory_mb=memory, final=final, log_tail=o.log_tail)
            del self.running[(o.dataset, o.stage, o.token)]
            if not res.ok:
                self._fenced(claim, res.state)
                continue
            self.stats.failed += 1
            self.stats.dead += res.state == State.DEAD
            self._log.warning("item.failed", dataset=claim.dataset, stage=claim.stage,
                              token=claim.token, attempt=claim.attempt, failure=str(failure),
                              error=o.error, next=res.state)
        if ok:
            # a paused or draining agent takes nothing new, not even behind a completion
            serving = not self._stopping and self.control.mode == SERVE
            free = self.slots - len(self.running) + len(ok) if serving else 0
            results, more = self.board.complete_many(
                ok, self.id, provenance=records,
                then_claim=(self.template.name, self.stages, self.settings.lease, free))
            for (claim, _), res in zip(ok, results, strict=True):
                del self.running[(claim.dataset, claim.stage, claim.token)]
                if res.ok:
                    self.stats.done += 1
                    self._log.debug("item.done", dataset=claim.dataset, stage=claim.stage,
                                    token=claim.token, attempt=claim.attempt,
                                    successors=res.promoted)
                else:
                    self._fenced(claim, res.state)
            self._start(more)

    def _fenced(self, claim: Claim, state: str) -> None:
        self.stats.fenced += 1
        self._log.warning("item.fenced", dataset=claim.dataset, stage=claim.stage,
                          token=claim.token, attempt=claim.attempt, now=state,
                          detail="the item is no longer ours; our output is discarded")

    def _renew(self) -> None:
        if not self.running:
            return
        answers = self.board.renew(list(self.running.values()), self.settings.lease)
        for key, claim in list(self.running.items()):
            answer = answers.get((claim.dataset, claim.stage, claim.token), 0)
            if answer == 0:
                self.executor.cancel(claim.dataset, claim.stage, claim.token)
                self.paused.discard(key)
                del self.running[key]
                self.board.release_permits([claim])
                self._fenced(claim, "lost")
            elif answer == 2 and key not in self.paused:
                self.executor.pause(claim.dataset, claim.stage, claim.token)
                self.paused.add(key)
                self._log.info("item.paused", dataset=claim.dataset, stage=claim.stage,
                               token=claim.token, detail="held by an operator")
            elif answer == 1 and key in self.paused:
                self.executor.resume(claim.dataset, claim.stage, claim.token)
                self.paused.discard(key)
                self._log.info("item.resumed", dataset=claim.dataset, stage=claim.stage,
                               token=claim.token)

    def _reap(self) -> None:
        """Reap this agent's share of the shards (see owl.reapers): an agent counts as live
        while its heartbeat is younger than three heartbeat intervals."""
        since = int((time.time() - 3 * self._beat_interval()) * 1000)
        live = self.board.redis.zrangebyscore(self.board.keys.agents, since, "+inf")
        mine = my_shards(self.id, live, self.board.shards)
        settle = self.settings.lease + 2.0  # the owners' time to reconnect and renew
        for dataset, stage, state in self.board.reap(self.id, shards=mine, settle=settle):
            self._log.warning("item.lease_expired", dataset=dataset, stage=stage, next=state)

    def _beat_interval(self) -> float:
        return min(5.0, self.settings.lease / 2)

    def _heartbeat(self) -> None:
        record = {
            "id": self.id, **self._identity,
            "template": self.template.name, "stages": list(self.stages),
            "executor": self.executor.name, "concurrency": self.concurrency,
            "prefetch": self.prefetch,
            "mode": self.control.mode,
            "started": self.stats.started, "heartbeat": time.time(),
            "claimed": self.stats.claimed, "done": self.stats.done,
            "failed": self.stats.failed, "fenced": self.stats.fenced,
            "jobs": self.executor.active(),
            "items": [{"dataset": c.dataset, "stage": c.stage, "token": c.token,
                       "paused": key in self.paused}
                      for key, c in self.running.items()],
        }
        pids = getattr(self.executor, "worker_pids", None)
        if callable(pids):  # local workers: their CPU and memory for `owl watch`
            cpu, rss = self._meter.read(pids())
            record.update(cpu_percent=round(cpu, 1), rss_mb=round(rss, 1))
        ttl = max(10, int(self.settings.lease * 2))
        pipe = self.board.redis.pipeline(transaction=False)
        pipe.set(self.board.keys.agent(self.id), json.dumps(record), ex=ttl)
        pipe.zadd(self.board.keys.agents, {self.id: int(time.time() * 1000)})
        pipe.zremrangebyscore(self.board.keys.agents, "-inf", int((time.time() - ttl) * 1000))
        pipe.execute()
