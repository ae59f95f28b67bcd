"""The agent's side of a local worker (`owl.local`): what it knows of each worker process and
of each spec in its pipe, and how a result becomes an outcome."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeAlias

from owl.executor import Job
from owl.local_worker import spec_body
from owl.model import FailureClass, Outcome, Provenance

#: Bytes of specs left unread in a worker's pipe at most (a Linux pipe holds 64 KiB): the
#: agent never blocks writing to a busy worker; a bigger spec waits for an idle one.
PIPE_BUDGET = 32 * 1024


@dataclass
class Slot:
    job: Job
    seq: int  # its number on the worker's pipe
    body: bytes  # its spec as sent (after the 8-byte sequence number)
    resent: bool = False  # sent again after a worker died before reading it
    dropped: bool = False  # withdrawn (cancelled, held, moved): its reply is no outcome


@dataclass
class Worker:
    process: BaseProcess
    conn: Connection
    capture: Path  # its capture files (owl.capture), removed with the worker
    received: Any  # shared counter: specs the worker has read off its pipe
    gate: Any  # lock over `received` and `skips`
    skips: Any  # ring of withdrawn sequence numbers + 1 (owl.local_worker)
    sent: int = 0  # specs written to its pipe
    slots: deque[Slot] = field(default_factory=deque)  # in pipe order; the first runs
    started: float = 0.0  # when the first slot's task started
    paused_at: float | None = None  # the task is stopped (SIGSTOP) while its item is held

    def unread(self) -> int:
        """Bytes of the specs still in the pipe (not read by the worker)."""
        read = self.received.value
        return sum(8 + len(s.body) for s in self.slots if s.seq >= read)

    def running(self) -> Slot | None:
        """The slot whose task runs now (read by the worker), if any."""
        head = self.slots[0] if self.slots else None
        return head if head is not None and self.received.value > head.seq else None


#: A job taken and not yet in a pipe: the job, whether it is sent again after a worker died
#: before reading it, and its spec encoded once (`owl.local_worker.spec_body`).
Waiting: TypeAlias = tuple[Job, bool, bytes]


def waiting(job: Job) -> Waiting:
    return job, False, spec_body(job.spec.to_json())


def key_of(job: Job) -> tuple[str, str, int]:
    return job.spec.dataset, job.spec.stage, job.spec.token


def outcome(job: Job, result: dict[str, Any]) -> Outcome:
    spec = job.spec
    return Outcome(
        dataset=spec.dataset, stage=spec.stage, token=spec.token,
        ok=bool(result["ok"]), outputs=result.get("outputs") or {},
        error=result.get("error", ""), traceback=result.get("traceback", ""),
        log_tail=result.get("log_tail", ""),
        failure=None if result["ok"] else FailureClass(result.get("failure") or "error"),
        seconds=float(result["seconds"]),
        provenance=(Provenance.from_json(result["provenance"])
                    if result.get("provenance") else None))


def failed(job: Job, failure: FailureClass, error: str, seconds: float) -> Outcome:
    spec = job.spec
    return Outcome(dataset=spec.dataset, stage=spec.stage, token=spec.token, ok=False,
                   error=error, failure=failure, seconds=seconds)
