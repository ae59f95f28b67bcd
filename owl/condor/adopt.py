"""What an agent finds on the schedd after a restart: its queued jobs, and the finished
jobs of items it still holds (see :meth:`owl.condor.executor.CondorExecutor.adopt`)."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from owl.condor import attrs
from owl.condor.schedd import ScheddClient
from owl.condor.tracker import TrackedJob


@dataclass(frozen=True)
class AdoptedJob:
    """A job found on the schedd by :meth:`CondorExecutor.adopt`.

    ``state`` is the job's condor state (idle, running, held, …) for a queued job, or
    completed/removed for one that finished while no agent watched; the outcome of a
    finished one comes from the next :meth:`~CondorExecutor.poll`.
    """

    dataset: str
    stage: str
    token: int
    attempt: int
    job_id: str  # "cluster.proc"
    state: str


def adopted_job(job: TrackedJob, state: str) -> AdoptedJob:
    return AdoptedJob(job.dataset, job.stage, job.token, job.attempt, job.name, state)


def finished_jobs(schedd: ScheddClient, constraint: str,
                  items: Collection[tuple[str, str, int]], window: float) -> list[dict[str, Any]]:
    """History ads of the newest job of each of ``items`` (none when it is empty)."""
    if not items:
        return []
    tokens = ", ".join(str(t) for t in sorted({t for _, _, t in items}))
    cutoff = int(time.time() - window)
    found: dict[tuple[str, str, int], dict[str, Any]] = {}
    for ad in schedd.history(
        f"{constraint} && member({attrs.TOKEN}, {{{tokens}}})",
        attrs.STATUS_PROJECTION,
        -1,
        f"EnteredCurrentStatus < {cutoff}",
    ):
        key = (str(ad[attrs.DATASET]), str(ad[attrs.STAGE]), int(ad[attrs.TOKEN]))
        if key in items and key not in found:  # newest first: the first is the latest
            found[key] = ad
        if len(found) == len(items):
            break
    return list(found.values())
