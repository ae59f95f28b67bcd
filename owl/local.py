"""The local executor: tasks run in child worker processes on this machine.

Each worker is a separate Python interpreter (spawned, not forked, so it inherits no Redis
connections or threads) that runs one task at a time and is reused for the next. A task
never runs in the agent's interpreter, so a GIL-holding numba loop cannot starve the agent's
lease renewals. A worker that overruns its task's timeout, crashes, or whose item was fenced
is killed and replaced, together with everything its task started: each worker leads its
own process group and dies with its agent (`owl.proc`).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from owl.capture import keep_files
from owl.executor import Adopted, Job
from owl.model import FailureClass, Outcome, Provenance, TaskSpec
from owl.proc import signal_group


def _worker_main(conn: Connection, log_json: bool, parent: int, received: Any,
                 capture_dir: str) -> None:
    """Worker loop: receive a task spec (JSON), count it in shared memory (`received`),
    run it with its output going to the worker's capture files in `capture_dir`, send the
    result (JSON).

    The worker leads its own session, so the agent's signals reach everything the task
    started (`owl.proc`); what a finished task leaves running is killed before the next.
    """
    from owl.attempt import run_attempt
    from owl.capture import Capture
    from owl.logs import configure
    from owl.proc import become_group_leader, check_parent, kill_own_group, kill_strays

    become_group_leader(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when work stops
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    configure(json_lines=log_json)
    capture = Capture(Path(capture_dir))
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            kill_own_group()  # the agent closed the pipe: nothing of ours may outlive it
            return
        received.value += 1  # from here on a death of this worker is the task's crash
        check_parent(parent)
        result = run_attempt(TaskSpec.from_json(json.loads(raw)), capture)
        kill_strays()
        conn.send_bytes(json.dumps(result).encode())


def _remove_stale(root: Path) -> None:
    """Remove the capture directories (``HOST-PID-wN``) that agents of this host left when
    they were killed (their pid is gone); other hosts' (a shared OWL_WORK) are left alone."""
    host = socket.gethostname()
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for d in entries:
        name_host, _, rest = d.name.rpartition("-w")[0].rpartition("-")
        if name_host != host or not rest.isdigit():
            continue
        try:
            os.kill(int(rest), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            continue


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    capture: Path  # its capture files (owl.capture), removed with the worker
    received: Any  # shared counter: specs the worker has read off its pipe
    sent: int = 0  # specs written to its pipe
    job: Job | None = None
    resent: bool = False  # the job was sent again after a worker died before reading it
    started: float = 0.0
    paused_at: float | None = None  # the task is stopped (SIGSTOP) while its item is held


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
    """

    name = "local"

    def __init__(self, concurrency: int, *, log_json: bool = False,
                 capture_root: Path | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._ctx = multiprocessing.get_context("spawn")
        self._log_json = log_json
        self._own_root = capture_root is None
        self._root = (Path(tempfile.mkdtemp(prefix="owl-capture-")) if capture_root is None
                      else capture_root)
        self._spawned = 0
        self._prefix = f"{socket.gethostname()}-{os.getpid()}"
        if not self._own_root:
            _remove_stale(self._root)
        self._workers = [self._spawn() for _ in range(concurrency)]
        self._done: list[Outcome] = []

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        received = self._ctx.RawValue("Q", 0)
        self._spawned += 1
        capture = self._root / f"{self._prefix}-w{self._spawned}"
        proc = self._ctx.Process(target=_worker_main,
                                 args=(child, self._log_json, os.getpid(), received,
                                       str(capture)),
                                 name="owl-worker", daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent, capture, received)

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        worker.conn.close()
        shutil.rmtree(worker.capture, ignore_errors=True)
        fresh = self._spawn()
        worker.process, worker.conn, worker.capture, worker.received, worker.sent = (
            fresh.process, fresh.conn, fresh.capture, fresh.received, 0)
        worker.job, worker.started, worker.paused_at = None, 0.0, None

    def _send(self, worker: _Worker, job: Job, resent: bool = False) -> None:
        raw = json.dumps(job.spec.to_json()).encode()
        try:
            worker.conn.send_bytes(raw)
        except OSError:  # an idle worker died (killed from outside): use a fresh one
            self._replace(worker)
            worker.conn.send_bytes(raw)
        worker.sent += 1
        worker.job, worker.resent = job, resent
        worker.started = time.monotonic()

    @staticmethod
    def _kill(worker: _Worker) -> None:
        """Kill the worker and everything its task started (its process group, which
        outlives a worker that crashed while its task's children run on)."""
        if worker.process.pid is not None:
            signal_group(worker.process.pid, signal.SIGKILL)
        worker.process.join(5)

    # -- Executor protocol -----------------------------------------------------------------

    def free(self) -> int:
        return sum(1 for w in self._workers if w.job is None)

    def active(self) -> int:
        return len(self._workers) - self.free()

    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes (for their CPU/memory in metrics)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def submit(self, jobs: Sequence[Job]) -> None:
        idle = [w for w in self._workers if w.job is None]
        if len(jobs) > len(idle):
            raise RuntimeError(f"{len(jobs)} jobs submitted but only {len(idle)} workers free")
        for worker, job in zip(idle, jobs, strict=False):
            self._send(worker, job)

    def waitables(self) -> list[Any]:
        """What the agent may wait on: result pipes and process sentinels of busy workers."""
        out: list[Any] = []
        for w in self._workers:
            if w.job is not None:
                out += [w.conn, w.process.sentinel]
        return out

    def due(self) -> float | None:
        """No timer: the agent waits on :meth:`waitables`."""
        return None

    def poll(self, timeout: float) -> list[Outcome]:
        busy = [w for w in self._workers if w.job is not None]
        if not busy:
            done, self._done = self._done, []
            return done
        running = [w.started + w.job.spec.timeout for w in busy
                   if w.job is not None and w.paused_at is None]
        deadline = min(running) if running else time.monotonic() + timeout
        wait_for = 0.0 if self._done else max(0.0, min(timeout, deadline - time.monotonic()))
        ready = set(wait([o for w in busy for o in (w.conn, w.process.sentinel)], wait_for))
        now = time.monotonic()
        for worker in busy:
            if worker.conn in ready:
                self._receive(worker)
            elif worker.process.sentinel in ready:
                self._crashed(worker, now)
            elif (now > deadline and worker.paused_at is None and worker.job is not None
                  and now - worker.started > worker.job.spec.timeout):
                self._timed_out(worker, now)
        done, self._done = self._done, []
        return done

    def _receive(self, worker: _Worker) -> None:
        job = worker.job
        assert job is not None
        spec = job.spec
        try:
            result = json.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            self._crashed(worker, time.monotonic())
            return
        worker.job = None
        self._done.append(Outcome(
            dataset=spec.dataset, stage=spec.stage, token=spec.token,
            ok=bool(result["ok"]), outputs=result.get("outputs") or {},
            error=result.get("error", ""), traceback=result.get("traceback", ""),
            log_tail=result.get("log_tail", ""),
            failure=None if result["ok"] else FailureClass(result.get("failure") or "error"),
            seconds=float(result["seconds"]),
            provenance=(Provenance.from_json(result["provenance"])
                        if result.get("provenance") else None)))

    def _crashed(self, worker: _Worker, now: float) -> None:
        job = worker.job
        assert job is not None
        if worker.received.value < worker.sent and not worker.resent:
            # the worker died before it read the spec (killed from outside just after the
            # send): the task never ran, so it is no crash of the task; a fresh worker
            # runs it, once
            self._replace(worker)
            self._send(worker, job, resent=True)
            return
        worker.process.join(1)
        code = worker.process.exitcode
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exited with status {code}")
        self._fail(worker, FailureClass.CRASH,
                   f"worker process {how} while running the task", now)

    def _timed_out(self, worker: _Worker, now: float) -> None:
        assert worker.job is not None
        self._fail(worker, FailureClass.TIMEOUT,
                   f"timed out after {worker.job.spec.timeout:g} s (the stage's timeout)", now)

    def _fail(self, worker: _Worker, failure: FailureClass, error: str, now: float) -> None:
        job = worker.job
        assert job is not None
        spec = job.spec
        elapsed = now - worker.started
        self._kill(worker)  # then what the task printed goes to its attempt's log directory
        with contextlib.suppress(OSError):
            keep_files(worker.capture, spec.output_dir, spec.attempt)
        self._replace(worker)
        self._done.append(Outcome(dataset=spec.dataset, stage=spec.stage, token=spec.token,
                                  ok=False, error=error, failure=failure, seconds=elapsed))

    def _find(self, dataset: str, stage: str, token: int) -> _Worker | None:
        for worker in self._workers:
            job = worker.job
            if job is not None and (job.spec.dataset, job.spec.stage, job.spec.token) == (
                    dataset, stage, token):
                return worker
        return None

    def cancel(self, dataset: str, stage: str, token: int) -> None:
        worker = self._find(dataset, stage, token)
        if worker is not None:
            self._replace(worker)

    def adopt(self, board: str, agent_id: str,
              held: Collection[tuple[str, str, int]] = ()) -> Sequence[Adopted]:
        """Local children die with their agent: there is never anything to adopt."""
        return []

    def outlives_agent(self, stage: str) -> bool:
        """Children are killed with their agent."""
        return False

    def pause(self, dataset: str, stage: str, token: int) -> None:
        """Stop the task and what it started (SIGSTOP to its process group); its timeout
        does not run while paused."""
        worker = self._find(dataset, stage, token)
        if worker is not None and worker.paused_at is None and worker.process.pid:
            signal_group(worker.process.pid, signal.SIGSTOP)
            worker.paused_at = time.monotonic()

    def resume(self, dataset: str, stage: str, token: int) -> None:
        worker = self._find(dataset, stage, token)
        if worker is not None and worker.paused_at is not None and worker.process.pid:
            signal_group(worker.process.pid, signal.SIGCONT)
            worker.started += time.monotonic() - worker.paused_at
            worker.paused_at = None

    def close(self) -> None:
        """Stop every worker: idle ones exit when their pipe closes, busy ones (and what
        their tasks started) are killed."""
        for worker in self._workers:
            worker.conn.close()
            if worker.job is not None:
                self._kill(worker)
        for worker in self._workers:
            worker.process.join(2)
            if worker.process.exitcode is None:
                self._kill(worker)
            shutil.rmtree(worker.capture, ignore_errors=True)
        if self._own_root:
            shutil.rmtree(self._root, ignore_errors=True)
