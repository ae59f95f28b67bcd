"""Bookkeeping of the jobs an executor watches: events and schedd ads in, endings out.

Pure: no I/O. The executor feeds it the events of its event logs and, from time to time,
the schedd's view (queue, then history for the jobs that left the queue); it answers with
:class:`Ending` values. A job ends exactly once: after its ending it is forgotten, so a
late or repeated event, or a reconciliation that races the log, changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owl.condor import attrs
from owl.condor.events import EventKind, JobEvent
from owl.condor.failure import classify_exit, classify_hold, is_operator_hold
from owl.model import FailureClass

JobId = tuple[int, int]


@dataclass
class TrackedJob:
    """One submitted (or adopted) job and what is known of it."""

    cluster: int
    proc: int
    dataset: str
    stage: str
    token: int
    attempt: int
    base: Path  # spool files of the item, without suffix
    state: str = "idle"  # idle | running | held (by an operator) | evicted
    hold_reason: str = ""
    cancelled: bool = False

    @property
    def job_id(self) -> JobId:
        """``(cluster, proc)``."""
        return (self.cluster, self.proc)

    @property
    def name(self) -> str:
        """``"cluster.proc"`` as condor tools write it."""
        return f"{self.cluster}.{self.proc}"


@dataclass(frozen=True)
class Ending:
    """How a job ended, before its result file is read.

    ``failure`` is None for exit status 0. ``remove`` asks the executor to take the job
    out of the queue (it is held there). ``vanished`` says the job left the queue with no
    trace in the schedd's history: its result file, if any, is the best witness left.
    """

    job: TrackedJob
    failure: FailureClass | None
    reason: str = ""
    exit_code: int | None = None
    signal: int | None = None
    remove: bool = False
    vanished: bool = False


class Tracker:
    """The jobs being watched, by job id and by work item."""

    def __init__(self) -> None:
        self._jobs: dict[JobId, TrackedJob] = {}
        self._by_item: dict[tuple[str, str], list[TrackedJob]] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, job: TrackedJob) -> None:
        """Start watching ``job``."""
        self._jobs[job.job_id] = job
        self._by_item.setdefault((job.dataset, job.stage), []).append(job)

    def get(self, job_id: JobId) -> TrackedJob | None:
        """The watched job with this id, if any."""
        return self._jobs.get(job_id)

    def find(self, dataset: str, stage: str, token: int | None = None) -> list[TrackedJob]:
        """Watched jobs of one work item (of one token, when given)."""
        jobs = self._by_item.get((dataset, stage), [])
        return [j for j in jobs if token is None or j.token == token]

    def ids(self) -> list[JobId]:
        """Ids of every watched job."""
        return list(self._jobs)

    def queue_covers_slots(self) -> bool:
        """Whether the watched jobs waiting in the queue for a slot (idle, or evicted and
        requeued) are at least as many as the running ones, and at least one, as far as
        the events read so far tell: each slot that comes free finds one to run."""
        waiting = running = 0
        for job in self._jobs.values():
            if not job.cancelled:
                waiting += job.state in ("idle", "evicted")
                running += job.state == "running"
        return waiting >= max(1, running)

    def cancel(self, job: TrackedJob) -> None:
        """Mark ``job`` cancelled: its ending will be swallowed, never reported."""
        job.cancelled = True

    def apply(self, event: JobEvent) -> Ending | None:
        """Update from one event; the job's ending when the event ends it."""
        job = self._jobs.get(event.job_id)
        if job is None:
            return None
        kind = event.kind
        if kind is EventKind.EXECUTE:
            job.state = "running"
        elif kind is EventKind.RELEASED:
            job.state, job.hold_reason = "idle", ""
        elif kind is EventKind.EVICTED:
            job.state = "evicted"  # HTCondor requeues it; it runs again unless removed
        elif kind is EventKind.HELD:
            code, subcode = event.hold_code or 0, event.hold_subcode or 0
            return self._held(job, code, subcode, event.reason)
        elif kind is EventKind.TERMINATED:
            return self._end(
                Ending(
                    job,
                    classify_exit(event.exit_code, event.signal),
                    exit_code=event.exit_code,
                    signal=event.signal,
                )
            )
        elif kind is EventKind.ABORTED:
            return self._end(Ending(job, FailureClass.REMOVED, reason=_removed(event.reason)))
        return None

    def check_queue(self, ads: Iterable[Mapping[str, Any]]) -> tuple[list[Ending], list[JobId]]:
        """Reconcile with the queue: endings the log missed, and ids no longer queued."""
        endings: list[Ending] = []
        seen: set[JobId] = set()
        for ad in ads:
            job = self._jobs.get((int(ad["ClusterId"]), int(ad["ProcId"])))
            if job is None:
                continue
            seen.add(job.job_id)
            status = ad.get("JobStatus")
            if status == attrs.HELD:
                ending = self._held(
                    job,
                    int(ad.get("HoldReasonCode") or 0),
                    int(ad.get("HoldReasonSubCode") or 0),
                    str(ad.get("HoldReason") or ""),
                )
            elif status in (attrs.REMOVED, attrs.COMPLETED):
                ending = self._from_finished_ad(job, ad)
            else:
                if status == attrs.RUNNING:
                    job.state = "running"
                ending = None
            if ending is not None:
                endings.append(ending)
        return endings, [i for i in self._jobs if i not in seen]

    def check_history(
        self, missing: Iterable[JobId], ads: Iterable[Mapping[str, Any]]
    ) -> list[Ending]:
        """Endings of jobs that left the queue, from their history ads.

        A job in ``missing`` without a history ad has vanished: it ends as EVICTED when
        it was last seen evicted (it was not restarted), REMOVED otherwise.
        """
        by_id = {(int(ad["ClusterId"]), int(ad["ProcId"])): ad for ad in ads}
        endings: list[Ending] = []
        for job_id in missing:
            job = self._jobs.get(job_id)
            if job is None:
                continue
            ad = by_id.get(job_id)
            if ad is not None:
                ending = self._from_finished_ad(job, ad)
            elif job.state == "evicted":
                ending = self._end(
                    Ending(
                        job,
                        FailureClass.EVICTED,
                        reason="job was evicted and left the queue without running again",
                        vanished=True,
                    )
                )
            else:
                ending = self._end(
                    Ending(
                        job,
                        FailureClass.REMOVED,
                        reason="job left the condor queue and is not in the schedd history",
                        vanished=True,
                    )
                )
            if ending is not None:
                endings.append(ending)
        return endings

    def _held(self, job: TrackedJob, code: int, subcode: int, reason: str) -> Ending | None:
        if is_operator_hold(code):
            job.state, job.hold_reason = "held", reason
            return None
        text = f"held by condor (code {code}, subcode {subcode}): {reason}"
        return self._end(Ending(job, classify_hold(code, subcode, reason), text, remove=True))

    def _from_finished_ad(self, job: TrackedJob, ad: Mapping[str, Any]) -> Ending | None:
        if ad.get("JobStatus") == attrs.COMPLETED:
            if ad.get("ExitBySignal"):
                signal = int(ad.get("ExitSignal") or -1)
                return self._end(Ending(job, FailureClass.CRASH, signal=signal))
            code = int(ad.get("ExitCode") or 0)
            return self._end(Ending(job, classify_exit(code, None), exit_code=code))
        reason = _removed(str(ad.get("RemoveReason") or ""))
        return self._end(Ending(job, FailureClass.REMOVED, reason=reason))

    def _end(self, ending: Ending) -> Ending | None:
        job = ending.job
        self._jobs.pop(job.job_id, None)
        siblings = self._by_item.get((job.dataset, job.stage), [])
        if job in siblings:
            siblings.remove(job)
        if not siblings:
            self._by_item.pop((job.dataset, job.stage), None)
        return None if ending.job.cancelled else ending


def _removed(reason: str) -> str:
    return f"job removed from condor: {reason}" if reason else "job removed from condor"
