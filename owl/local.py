"""The local executor: tasks run in child worker processes on this machine.

Each worker is a separate Python interpreter (spawned, not forked, so it inherits no Redis
connections or threads) that runs one task at a time and is reused for the next. A task
never runs in the agent's interpreter, so a GIL-holding numba loop cannot starve the agent's
lease renewals. A worker that overruns its task's timeout, crashes, or whose item was fenced
is killed and replaced, together with everything its task started: each worker leads its
own process group and dies with its agent (`owl.proc`).

**Prefetch.** With ``prefetch`` > 0 the executor takes that many jobs beyond its workers
and queues them in the workers' pipes (at most ``1 + ceil(prefetch / concurrency)`` per
worker), so a worker starts its next task as soon as it sends a result, without waiting for
the agent to read it, report it and claim again. A queued job is the agent's like a running
one: its item is leased and renewed; its timeout starts when it starts. A queued job that
is cancelled (fenced) or held is withdrawn (the worker skips it, `owl.local_worker`); a held
one waits here until it is released. A worker that dies with jobs queued behind its task
loses only that task (a crash); the queued ones go to a fresh worker. A hold on a running
task moves the jobs queued behind it to other workers.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Collection, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from owl.capture import keep_files
from owl.executor import Adopted, Job
from owl.local_slots import PIPE_BUDGET, Slot, Waiting, Worker, failed, key_of, outcome, waiting
from owl.local_worker import pack, remove_stale, worker_main
from owl.model import FailureClass, Outcome
from owl.proc import signal_group


class LocalExecutor:
    """Runs jobs in ``concurrency`` reusable child processes.

    Parameters
    ----------
    concurrency
        Number of worker processes, i.e. tasks running at once.
    log_json
        Workers log JSON lines instead of the console format.
    capture_root
        Where the workers keep their capture files (`owl.capture`): best on the filesystem
        of the output directories, so that an attempt's files are renamed, not copied. By
        default a temporary directory, removed on close.
    prefetch
        Jobs taken beyond ``concurrency``, queued in the workers' pipes (see above).
    """

    name = "local"

    def __init__(self, concurrency: int, *, log_json: bool = False,
                 capture_root: Path | None = None, prefetch: int = 0) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if prefetch < 0:
            raise ValueError(f"prefetch must be 0 or more, got {prefetch}")
        self._ctx = multiprocessing.get_context("spawn")
        self._log_json = log_json
        self._capacity = concurrency + prefetch
        self._depth = 1 + math.ceil(prefetch / concurrency)
        self._own_root = capture_root is None
        self._root = (Path(tempfile.mkdtemp(prefix="owl-capture-")) if capture_root is None
                      else capture_root)
        self._spawned = 0
        self._prefix = f"{socket.gethostname()}-{os.getpid()}"
        if not self._own_root:
            remove_stale(self._root)
        self._workers = [self._spawn() for _ in range(concurrency)]
        self._done: list[Outcome] = []
        # taken, not yet in a pipe: (job, resent, its spec as sent)
        self._pending: deque[Waiting] = deque()
        self._parked: dict[tuple[str, str, int], Job] = {}  # held before they started

    def _spawn(self) -> Worker:
        parent, child = self._ctx.Pipe()
        received = self._ctx.RawValue("Q", 0)
        gate = self._ctx.Lock()
        skips = self._ctx.RawArray("Q", self._depth + 1)
        self._spawned += 1
        capture = self._root / f"{self._prefix}-w{self._spawned}"
        proc = self._ctx.Process(target=worker_main,
                                 args=(child, self._log_json, os.getpid(), received, gate,
                                       skips, str(capture)),
                                 name="owl-worker", daemon=True)
        proc.start()
        child.close()
        return Worker(proc, parent, capture, received, gate, skips)

    def _replace(self, worker: Worker) -> list[Waiting]:
        """Kill the worker, start a fresh one in its place; the jobs that were queued behind
        its task (never read), to be sent again."""
        first = worker.running()
        again = [(s.job, s.resent, s.body) for s in worker.slots
                 if not s.dropped and s is not first]
        self._kill(worker)
        worker.conn.close()
        shutil.rmtree(worker.capture, ignore_errors=True)
        fresh = self._spawn()
        worker.process, worker.conn, worker.capture = fresh.process, fresh.conn, fresh.capture
        worker.received, worker.gate, worker.skips = fresh.received, fresh.gate, fresh.skips
        worker.sent, worker.slots, worker.started, worker.paused_at = 0, deque(), 0.0, None
        return again

    def _requeue(self, jobs: list[Waiting]) -> None:
        self._pending.extendleft(reversed(jobs))  # first in line, in their order

    def _send(self, worker: Worker, job: Job, resent: bool, body: bytes) -> None:
        seq = worker.sent
        try:
            worker.conn.send_bytes(pack(seq, body))
        except OSError:  # the worker died (killed from outside): a fresh one takes it
            self._died(worker, time.monotonic())
            seq = worker.sent
            worker.conn.send_bytes(pack(seq, body))
        worker.sent += 1
        if not worker.slots:
            worker.started = time.monotonic()
        worker.slots.append(Slot(job, seq, body, resent))

    def _place(self) -> None:
        """Send the jobs waiting here to the workers with room, the least busy first. A
        busy worker takes a job only while its pipe keeps within PIPE_BUDGET unread."""
        while self._pending:
            free = [w for w in self._workers
                    if w.paused_at is None and len(w.slots) < self._depth]
            if not free:
                return
            job, resent, body = self._pending[0]
            room = [w for w in free
                    if not w.slots or w.unread() + 8 + len(body) <= PIPE_BUDGET]
            if not room:
                return
            self._pending.popleft()
            self._send(min(room, key=lambda w: len(w.slots)), job, resent, body)

    def _withdraw(self, worker: Worker, slot: Slot) -> bool:
        """Withdraw a slot the worker has not read yet (it will skip it); False when the
        worker read it meanwhile (its task runs)."""
        with worker.gate:
            if worker.received.value > slot.seq:
                return False
            worker.skips[slot.seq % len(worker.skips)] = slot.seq + 1
        slot.dropped = True
        return True

    @staticmethod
    def _kill(worker: Worker) -> None:
        """Kill the worker and everything its task started (its process group, which
        outlives a worker that crashed while its task's children run on)."""
        if worker.process.pid is not None:
            signal_group(worker.process.pid, signal.SIGKILL)
        worker.process.join(5)

    # -- Executor protocol -----------------------------------------------------------------

    def free(self) -> int:
        return self._capacity - self.active()

    def active(self) -> int:
        """Jobs taken and not finished: running, queued in a pipe, waiting here or held."""
        queued = sum(1 for w in self._workers for s in w.slots if not s.dropped)
        return queued + len(self._pending) + len(self._parked)

    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes (for their CPU/memory in metrics)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def submit(self, jobs: Sequence[Job]) -> None:
        if len(jobs) > self.free():
            raise RuntimeError(f"{len(jobs)} jobs submitted but only {self.free()} "
                               "places free")
        self._pending.extend(waiting(job) for job in jobs)
        self._place()

    def waitables(self) -> list[Any]:
        """What the agent may wait on: result pipes and process sentinels of busy workers."""
        out: list[Any] = []
        for w in self._workers:
            if w.slots:
                out += [w.conn, w.process.sentinel]
        return out

    def due(self) -> float | None:
        """No timer: the agent waits on :meth:`waitables`."""
        return None

    def poll(self, timeout: float) -> list[Outcome]:
        busy = [w for w in self._workers if w.slots]
        if busy:
            self._wait(busy, timeout)
        self._place()
        done, self._done = self._done, []
        return done

    def _wait(self, busy: list[Worker], timeout: float) -> None:
        running = [w.started + w.slots[0].job.spec.timeout for w in busy
                   if w.paused_at is None]
        deadline = min(running) if running else time.monotonic() + timeout
        wait_for = 0.0 if self._done else max(0.0, min(timeout, deadline - time.monotonic()))
        ready = set(wait([o for w in busy for o in (w.conn, w.process.sentinel)], wait_for))
        now = time.monotonic()
        for worker in busy:
            if worker.conn in ready:
                self._receive(worker)
            elif worker.process.sentinel in ready:
                self._died(worker, now)
            elif (now > deadline and worker.paused_at is None and worker.slots
                  and now - worker.started > worker.slots[0].job.spec.timeout):
                self._fail(worker, FailureClass.TIMEOUT,
                           f"timed out after {worker.slots[0].job.spec.timeout:g} s "
                           "(the stage's timeout)", now)

    def _receive(self, worker: Worker) -> None:
        while worker.slots:
            try:
                raw = worker.conn.recv_bytes()
            except (EOFError, OSError):
                self._died(worker, time.monotonic())
                return
            slot = worker.slots.popleft()
            if worker.slots:
                worker.started = time.monotonic()  # the next one starts now
            if not slot.dropped:
                self._done.append(outcome(slot.job, json.loads(raw)))
            if not worker.conn.poll():
                return

    def _died(self, worker: Worker, now: float) -> None:
        """The worker process is gone: its running task crashed; a job it never read (a
        worker killed from outside just after the send) is sent again, once."""
        head = worker.slots[0] if worker.slots else None
        if head is None or worker.running() is None:
            again = self._replace(worker)
            if head is not None and not head.dropped:
                if head.resent:
                    self._done.append(failed(head.job, FailureClass.CRASH,
                                              "worker process died twice before reading "
                                              "the task", 0.0))
                    again = again[1:]
                else:
                    again[0] = (head.job, True, head.body)
            self._requeue(again)
            return
        worker.process.join(1)
        code = worker.process.exitcode
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exited with status {code}")
        self._fail(worker, FailureClass.CRASH,
                   f"worker process {how} while running the task", now)

    def _fail(self, worker: Worker, failure: FailureClass, error: str, now: float) -> None:
        slot = worker.slots[0]
        spec = slot.job.spec
        elapsed = now - worker.started
        self._kill(worker)  # then what the task printed goes to its attempt's log directory
        with contextlib.suppress(OSError):
            keep_files(worker.capture, spec.output_dir, spec.attempt)
        self._requeue(self._replace(worker))
        if not slot.dropped:
            self._done.append(failed(slot.job, failure, error, elapsed))

    def _find(self, key: tuple[str, str, int]) -> tuple[Worker | None, Slot | None]:
        for worker in self._workers:
            for slot in worker.slots:
                if not slot.dropped and key_of(slot.job) == key:
                    return worker, slot
        return None, None

    def _unpend(self, key: tuple[str, str, int]) -> Job | None:
        for entry in self._pending:
            if key_of(entry[0]) == key:
                self._pending.remove(entry)
                return entry[0]
        return None

    def cancel(self, dataset: str, stage: str, token: int) -> None:
        key = (dataset, stage, token)
        self._parked.pop(key, None)
        if self._unpend(key) is not None:
            return
        worker, slot = self._find(key)
        if worker is None or slot is None or self._withdraw(worker, slot):
            return
        self._requeue(self._replace(worker))  # it runs: kill it, keep what queued behind
        self._place()

    def withdraw_unstarted(self) -> list[tuple[str, str, int]]:
        """Withdraw the jobs that have not started and are not held (waiting here or unread
        in a pipe), and say which: a stopping agent gives them back at once instead of
        starting them in its grace period."""
        keys = [key_of(entry[0]) for entry in self._pending]
        self._pending.clear()
        for worker in self._workers:
            keys += [key_of(s.job) for s in self._withdraw_queued(worker)]
        return keys

    def _withdraw_queued(self, worker: Worker) -> list[Slot]:
        """Withdraw the worker's slots that have not started; the slots withdrawn."""
        first = worker.running()
        return [s for s in list(worker.slots)
                if not s.dropped and s is not first and self._withdraw(worker, s)]

    def adopt(self, board: str, agent_id: str,
              held: Collection[tuple[str, str, int]] = ()) -> Sequence[Adopted]:
        """Local children die with their agent: there is never anything to adopt."""
        return []

    def outlives_agent(self, stage: str) -> bool:
        """Children are killed with their agent."""
        return False

    def pause(self, dataset: str, stage: str, token: int) -> None:
        """Stop the task and what it started (SIGSTOP to its process group); its timeout
        does not run while paused. A job that has not started waits here instead."""
        key = (dataset, stage, token)
        job = self._unpend(key)
        if job is not None:
            self._parked[key] = job
            return
        worker, slot = self._find(key)
        if worker is None or slot is None:
            return
        if self._withdraw(worker, slot):
            self._parked[key] = slot.job
            return
        if worker.paused_at is None and worker.process.pid:
            signal_group(worker.process.pid, signal.SIGSTOP)
            worker.paused_at = time.monotonic()
            self._requeue([(s.job, s.resent, s.body) for s in self._withdraw_queued(worker)])
            self._place()

    def resume(self, dataset: str, stage: str, token: int) -> None:
        key = (dataset, stage, token)
        job = self._parked.pop(key, None)
        if job is not None:
            self._pending.append(waiting(job))
            self._place()
            return
        worker, _ = self._find(key)
        if worker is not None and worker.paused_at is not None and worker.process.pid:
            signal_group(worker.process.pid, signal.SIGCONT)
            worker.started += time.monotonic() - worker.paused_at
            worker.paused_at = None
            self._place()

    def close(self) -> None:
        """Stop every worker: idle ones exit when their pipe closes, busy ones (and what
        their tasks started) are killed."""
        for worker in self._workers:
            worker.conn.close()
            if worker.slots:
                self._kill(worker)
        for worker in self._workers:
            worker.process.join(2)
            if worker.process.exitcode is None:
                self._kill(worker)
            shutil.rmtree(worker.capture, ignore_errors=True)
        if self._own_root:
            shutil.rmtree(self._root, ignore_errors=True)
