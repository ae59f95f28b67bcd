"""An executor that sends each stage to the executor its template names (local or condor),
so one agent can serve a hybrid template: short stages local, heavy ones on Condor."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from owl.executor import Adopted, Executor, Job
from owl.model import Outcome


class RoutingExecutor:
    """Routes jobs by stage to one of several executors.

    Parameters
    ----------
    executors
        Executor by name (``"local"``, ``"condor"``).
    by_stage
        Executor name of every stage served.
    """

    name = "routing"

    def __init__(self, executors: Mapping[str, Executor], by_stage: Mapping[str, str]) -> None:
        missing = sorted(set(by_stage.values()) - set(executors))
        if missing:
            raise ValueError(f"no executor for {missing}")
        self.executors = dict(executors)
        self.by_stage = dict(by_stage)
        self.name = "+".join(sorted(self.executors))

    def _for(self, stage: str) -> Executor:
        return self.executors[self.by_stage[stage]]

    def submit(self, jobs: Sequence[Job]) -> None:
        groups: dict[str, list[Job]] = {}
        for job in jobs:
            groups.setdefault(self.by_stage[job.spec.stage], []).append(job)
        for name, group in groups.items():
            self.executors[name].submit(group)

    def poll(self, timeout: float) -> list[Outcome]:
        out: list[Outcome] = []
        for ex in self.executors.values():
            out += ex.poll(0.0)
        return out

    def cancel(self, dataset: str, stage: str, token: int) -> None:
        self._for(stage).cancel(dataset, stage, token)

    def pause(self, dataset: str, stage: str, token: int) -> None:
        self._for(stage).pause(dataset, stage, token)

    def resume(self, dataset: str, stage: str, token: int) -> None:
        self._for(stage).resume(dataset, stage, token)

    def adopt(self, board: str, agent_id: str,
              held: Collection[tuple[str, str, int]] = ()) -> Sequence[Adopted]:
        found: list[Adopted] = []
        for ex in self.executors.values():
            found += ex.adopt(board, agent_id, held)
        return found

    def outlives_agent(self, stage: str) -> bool:
        return self._for(stage).outlives_agent(stage)

    def active(self) -> int:
        return sum(ex.active() for ex in self.executors.values())

    def worker_pids(self) -> list[int]:
        """Worker processes of the executors that have them (local)."""
        out: list[int] = []
        for ex in self.executors.values():
            pids = getattr(ex, "worker_pids", None)
            if callable(pids):
                out += pids()
        return out

    def withdraw_unstarted(self) -> list[tuple[str, str, int]]:
        """Jobs withdrawn before they started, from the executors that queue them (local)."""
        out: list[tuple[str, str, int]] = []
        for ex in self.executors.values():
            withdraw = getattr(ex, "withdraw_unstarted", None)
            if callable(withdraw):
                out += withdraw()
        return out

    def job_states(self) -> dict[str, int]:
        """Pool jobs by state, from the executors that run pool jobs (condor)."""
        out: dict[str, int] = {}
        for ex in self.executors.values():
            states = getattr(ex, "job_states", None)
            if callable(states):
                for state, n in states().items():
                    out[state] = out.get(state, 0) + n
        return out

    def waitables(self) -> list[Any]:
        return [w for ex in self.executors.values() for w in ex.waitables()]

    def due(self) -> float | None:
        times = [t for ex in self.executors.values() if (t := ex.due()) is not None]
        return min(times) if times else None

    def close(self) -> None:
        for ex in self.executors.values():
            ex.close()
