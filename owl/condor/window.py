"""The submit window: jobs wait a moment for others, so that one transaction takes them all.

An agent submits as items become ready, one completion after another: one to four jobs a
time. Jobs that arrive within ``window`` seconds of the first waiting one go to the schedd
together (one cluster per stage), which is what a schedd handles best. The executor uses
the window only while at least as many of its jobs are idle in the queue as run: each slot
that comes free then has a job to run, so waiting costs nothing; otherwise a job waiting
here could leave a slot with nothing of ours to run (it goes back to the negotiator,
seconds), so it is sent at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from owl.executor import Job

Key = tuple[str, str, int]  # dataset, stage, token


def key_of(job: Job) -> Key:
    return (job.spec.dataset, job.spec.stage, job.spec.token)


class SubmitWindow:
    """Jobs waiting to be submitted.

    Parameters
    ----------
    window : float
        Seconds the first waiting job waits for more; 0: none wait.
    limit : int
        So many waiting jobs are sent at once, whatever the window.
    clock : callable
        The monotonic clock.
    """

    def __init__(self, window: float, limit: int, clock: Callable[[], float]) -> None:
        self.window, self.limit, self._clock = window, limit, clock
        self._jobs: dict[Key, Job] = {}
        self.due: float | None = None  # when the waiting jobs must go

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, key: object) -> bool:
        return key in self._jobs

    def add(self, jobs: Sequence[Job]) -> bool:
        """Let ``jobs`` wait; True when the waiting jobs must be sent now."""
        for job in jobs:
            self._jobs[key_of(job)] = job
        if self._jobs and self.due is None:
            self.due = self._clock() + self.window
        return bool(self._jobs) and (self.window <= 0 or len(self._jobs) >= self.limit)

    def expired(self) -> bool:
        return self.due is not None and self._clock() >= self.due

    def drop(self, key: Key) -> bool:
        """Forget a waiting job (its attempt was fenced); False when it was not waiting."""
        return self._jobs.pop(key, None) is not None

    def take(self) -> list[Job]:
        """Every waiting job, in arrival order; the window closes."""
        jobs, self._jobs, self.due = list(self._jobs.values()), {}, None
        return jobs
