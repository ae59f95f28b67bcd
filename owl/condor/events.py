"""Job events read from an HTCondor job event log, as typed values, resumable.

Parsing is HTCondor's own (``htcondor2.JobEventLog``); this module only picks the events
owl acts on and remembers how far it has read. The bindings expose the reading position
through the pickle protocol of ``JobEventLog`` (``__getstate__`` returns
``(state, offset)`` and ``__setstate__`` reopens the file at an offset); the offset is
a byte offset (``WaitForUserLog::getOffset``). :class:`EventFollower` keeps it in a small
JSON file instead of a pickle, together with the file's inode, so a log that was replaced
is read from its start again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import htcondor2

from owl.condor.spool import write_json_atomic


class EventKind(StrEnum):
    """The job events owl acts on."""

    SUBMIT = "submit"
    EXECUTE = "execute"
    TERMINATED = "terminated"
    HELD = "held"
    RELEASED = "released"
    EVICTED = "evicted"
    ABORTED = "aborted"


_KINDS: dict[int, EventKind] = {
    int(htcondor2.JobEventType.SUBMIT): EventKind.SUBMIT,
    int(htcondor2.JobEventType.EXECUTE): EventKind.EXECUTE,
    int(htcondor2.JobEventType.JOB_TERMINATED): EventKind.TERMINATED,
    int(htcondor2.JobEventType.JOB_HELD): EventKind.HELD,
    int(htcondor2.JobEventType.JOB_RELEASED): EventKind.RELEASED,
    int(htcondor2.JobEventType.JOB_EVICTED): EventKind.EVICTED,
    int(htcondor2.JobEventType.JOB_ABORTED): EventKind.ABORTED,
}


@dataclass(frozen=True)
class JobEvent:
    """One event of one job.

    ``exit_code`` or ``signal`` is set for ``terminated``; ``hold_code``,
    ``hold_subcode`` and ``reason`` for ``held``; ``reason`` for ``released`` and
    ``aborted``; ``requeued`` tells an eviction of a job that exited and was requeued.
    """

    kind: EventKind
    cluster: int
    proc: int
    timestamp: int
    exit_code: int | None = None
    signal: int | None = None
    hold_code: int | None = None
    hold_subcode: int | None = None
    reason: str = ""
    requeued: bool = False

    @property
    def job_id(self) -> tuple[int, int]:
        """``(cluster, proc)``."""
        return (self.cluster, self.proc)


def translate(event: Any) -> JobEvent | None:
    """Turn an ``htcondor2.JobEvent`` into a :class:`JobEvent` (None: not one owl uses)."""
    kind = _KINDS.get(int(event.type))
    if kind is None:
        return None
    common: dict[str, Any] = {
        "kind": kind,
        "cluster": int(event.cluster),
        "proc": int(event.proc),
        "timestamp": int(event.timestamp),
    }
    if kind is EventKind.TERMINATED:
        if event.get("TerminatedNormally", False):
            return JobEvent(**common, exit_code=int(event.get("ReturnValue", -1)))
        return JobEvent(**common, signal=int(event.get("TerminatedBySignal", -1)))
    if kind is EventKind.HELD:
        return JobEvent(
            **common,
            hold_code=int(event.get("HoldReasonCode", 0)),
            hold_subcode=int(event.get("HoldReasonSubCode", 0)),
            reason=str(event.get("HoldReason", "")),
        )
    if kind is EventKind.EVICTED:
        return JobEvent(**common, requeued=bool(event.get("TerminatedAndRequeued", False)))
    if kind in (EventKind.RELEASED, EventKind.ABORTED):
        return JobEvent(**common, reason=str(event.get("Reason", "")))
    return JobEvent(**common)


class EventFollower:
    """Reads new events from one job event log, resuming where the last reader stopped.

    Parameters
    ----------
    log : Path
        The job event log (it may not exist yet: HTCondor creates it on first submit).
    state : Path
        JSON file holding the committed reading position.

    Notes
    -----
    :meth:`read` advances an in-memory position; :meth:`commit` persists it. Committing
    only after the events have been acted on makes delivery at-least-once: an agent that
    dies in between reads those events again.
    """

    def __init__(self, log: Path, state: Path) -> None:
        self.log = log
        self.state = state
        self._reader: Any = None  # htcondor2.JobEventLog once the log exists
        self._offset = 0
        self._inode = 0

    def read(self) -> list[JobEvent]:
        """Every complete event appended since the last read; never blocks."""
        if self._reader is None and not self._open():
            return []
        events = []
        for raw in self._reader.events(stop_after=0):
            event = translate(raw)
            if event is not None:
                events.append(event)
        self._offset = int(self._reader.__getstate__()[1])
        return events

    def commit(self) -> None:
        """Persist the position reached by :meth:`read`."""
        if self._reader is not None:
            write_json_atomic(
                self.state, {"log": str(self.log), "inode": self._inode, "offset": self._offset}
            )

    def close(self) -> None:
        """Close the log file (the committed position stays)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _open(self) -> bool:
        try:
            st = os.stat(self.log)
        except FileNotFoundError:
            return False
        reader = htcondor2.JobEventLog(str(self.log))
        offset = self._saved_offset(st)
        if offset:
            state, _ = reader.__getstate__()
            reader.__setstate__((state, offset))
        self._reader, self._offset, self._inode = reader, offset, st.st_ino
        return True

    def _saved_offset(self, st: os.stat_result) -> int:
        try:
            saved = json.loads(self.state.read_text(encoding="utf-8"))
            inode, offset = int(saved["inode"]), int(saved["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0
        if inode != st.st_ino or not 0 <= offset <= st.st_size:
            return 0  # a different or truncated log: read it from its start
        return offset
