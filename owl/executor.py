"""The executor interface: how an agent hands claimed items to something that runs them.

Two implementations: ``owl.local`` (child processes, the embedded default) and
``owl.condor`` (HTCondor jobs). The agent owns the board; executors never touch Redis.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from owl.model import Outcome, TaskSpec


@dataclass(frozen=True)
class Resources:
    """What one task asks of the machine that runs it."""

    cpus: int = 1
    memory_mb: int = 1024
    disk_mb: int = 1024


@dataclass(frozen=True)
class Job:
    """One claimed item to run: the task spec plus how to run it."""

    spec: TaskSpec
    resources: Resources
    extra: tuple[tuple[str, str], ...] = ()  # executor-specific settings (condor submit attrs)


class Adopted(Protocol):
    """A job an executor found still alive (or finished) after its agent restarted."""

    @property
    def dataset(self) -> str: ...

    @property
    def stage(self) -> str: ...

    @property
    def token(self) -> int: ...


class Executor(Protocol):
    """Runs jobs and reports outcomes; never touches the board.

    ``submit`` may batch (condor submits one transaction per call). ``poll`` returns the
    outcomes that finished since the last call, waiting at most ``timeout`` seconds for the
    first one. ``cancel`` stops a job whose token was fenced; its outcome is never reported.
    ``waitables`` lists objects the agent may pass to ``multiprocessing.connection.wait``
    (anything with ``fileno()``) that become readable when an outcome may be ready; an
    executor with none (condor) returns ``[]`` and is polled on the agent's timer; ``due``
    says by when (``time.monotonic``) it wants ``poll`` called next, or None.
    """

    name: str

    def submit(self, jobs: Sequence[Job]) -> None: ...

    def poll(self, timeout: float) -> list[Outcome]: ...

    def cancel(self, dataset: str, stage: str, token: int) -> None: ...

    def pause(self, dataset: str, stage: str, token: int) -> None: ...

    def resume(self, dataset: str, stage: str, token: int) -> None: ...

    def adopt(self, board: str, agent_id: str,
              held: Collection[tuple[str, str, int]] = ()) -> Sequence[Adopted]: ...

    def outlives_agent(self, stage: str) -> bool: ...

    def active(self) -> int: ...

    def waitables(self) -> list[Any]: ...

    def due(self) -> float | None: ...

    def close(self) -> None: ...
