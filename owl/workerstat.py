"""CPU and memory of an agent's worker processes, for its heartbeat (``owl watch``).

psutil measures CPU between two readings of the same process object, so the meter keeps
the objects from one heartbeat to the next; a worker's own children (argv tasks, a task's
subprocesses) count as the worker's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class WorkerMeter:
    """Total CPU (percent of one core, since the previous reading) and resident memory (MB)
    of a set of worker processes."""

    def __init__(self) -> None:
        self._procs: dict[int, Any] = {}

    def read(self, pids: Sequence[int]) -> tuple[float, float]:
        """(cpu_percent, rss_mb) summed over `pids` and their children; processes that are
        gone are skipped."""
        import psutil

        cpu = rss = 0.0
        alive: dict[int, Any] = {}
        for pid in pids:
            try:
                proc = self._procs.get(pid) or psutil.Process(pid)
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss + sum(c.memory_info().rss
                                                    for c in proc.children(recursive=True))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            alive[pid] = proc
        self._procs = alive
        return cpu, rss / 1e6
