"""``owl agent --metrics-port N``: the board's metrics plus the agent's own process.

The agent's process adds what only it can see: the CPU and memory of its worker processes
(psutil, children of the agent) and, for a condor executor, its pool jobs by state. The
exporter runs prometheus_client's HTTP server in a thread; the agent loop is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import psutil
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from owl.board import Board
from owl.web.metrics import BoardCollector, EventMetrics
from owl.web.tail import EventTail


class ProcessCollector(Collector):
    """Worker processes of this process (CPU %, resident memory) and pool jobs by state.

    Parameters
    ----------
    agent_id
        Label of every series.
    job_states
        Returns pool jobs by state (``idle``, ``running``, ``held``...), or None when the
        executor runs no pool jobs.
    """

    def __init__(self, agent_id: str, worker_pids: Callable[[], Sequence[int]] | None = None,
                 job_states: Callable[[], Mapping[str, int]] | None = None) -> None:
        self.agent_id = agent_id
        self.worker_pids = worker_pids
        self.job_states = job_states
        self._workers: dict[int, psutil.Process] = {}

    def _pids(self) -> list[int]:
        if self.worker_pids is not None:
            return list(self.worker_pids())
        return [p.pid for p in psutil.Process(os.getpid()).children()]

    def collect(self) -> Iterator[Any]:
        cpu = GaugeMetricFamily("owl_worker_cpu_percent", "CPU use of each worker process "
                                "since the previous scrape (100 = one core).",
                                labels=["agent", "pid"])
        rss = GaugeMetricFamily("owl_worker_memory_bytes", "Resident memory of each worker "
                                "process.", labels=["agent", "pid"])
        count = GaugeMetricFamily("owl_workers", "Worker processes of the agent.",
                                  labels=["agent"])
        alive: dict[int, psutil.Process] = {}
        for pid in self._pids():
            try:
                proc = self._workers.get(pid) or psutil.Process(pid)
                # the first reading of a new process is 0.0: psutil measures between calls;
                # a worker's own children (argv tasks) count as the worker's
                percent = proc.cpu_percent(None)
                memory = proc.memory_info().rss + sum(
                    c.memory_info().rss for c in proc.children(recursive=True))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            alive[pid] = proc
            cpu.add_metric([self.agent_id, str(pid)], percent)
            rss.add_metric([self.agent_id, str(pid)], memory)
        self._workers = alive
        count.add_metric([self.agent_id], len(alive))
        yield from (cpu, rss, count)
        if self.job_states is not None:
            jobs = GaugeMetricFamily("owl_condor_jobs", "The agent's HTCondor jobs by state.",
                                     labels=["agent", "state"])
            states = self.job_states()
            for state in sorted({"idle", "running", "held", *states}):
                jobs.add_metric([self.agent_id, state], states.get(state, 0))
            yield jobs


def serve_agent_metrics(board: Board, agent_id: str, executor: object, port: int,
                        host: str = "127.0.0.1") -> EventTail:
    """Serve ``/metrics`` for an agent on ``host:port`` in background threads; returns the
    event tail that feeds the counters (stop it when the agent stops)."""
    registry = CollectorRegistry()
    registry.register(BoardCollector(board))
    pids = getattr(executor, "worker_pids", None)
    job_states = getattr(executor, "job_states", None)
    registry.register(ProcessCollector(agent_id, pids if callable(pids) else None,
                                       job_states if callable(job_states) else None))
    tail = EventTail(board)
    tail.add(EventMetrics(board, registry))
    tail.start()
    start_http_server(port, addr=host, registry=registry)
    return tail
