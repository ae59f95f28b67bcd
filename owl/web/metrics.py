"""Prometheus metrics of a board (``/metrics`` of ``owl web`` and ``owl agent --metrics-port``).

Gauges are read from the board at scrape time from what the transition scripts maintain:
the per-shard counters, the heads of the ready queues, the agent records, so a scrape
costs O(shards x stages) at any board size. Counters and latency histograms are built from
the events the exporter reads as they happen (from the moment it starts; Prometheus'
``rate()`` and ``histogram_quantile()`` are made for counters that start at zero). The
latencies use the Redis clock every event carries (``t``, microseconds), so agents' clocks
do not matter.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from owl import queries
from owl.board import Board
from owl.web.data import agents, oldest_ready

#: Latency buckets (seconds): a quick hand-off to a multi-hour calibration backlog.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
           300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 12 * 3600.0, float("inf"))


class BoardCollector(Collector):
    """Gauges read from the board at each scrape."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def collect(self) -> Iterator[Any]:
        items = GaugeMetricFamily("owl_items", "Work items per template, stage and state "
                                  "(the board's counters).", labels=["template", "stage", "state"])
        counts = queries.counts(self.board)
        for (tpl, stage, state), n in sorted(counts.items()):
            items.add_metric([tpl, stage, state], n)
        yield items
        oldest = GaugeMetricFamily("owl_oldest_ready_seconds", "Time the item first in line "
                                   "of each ready queue has been ready.",
                                   labels=["template", "stage"])
        for (tpl, stage), age in sorted(oldest_ready(self.board).items()):
            oldest.add_metric([tpl, stage], age)
        yield oldest
        beat = GaugeMetricFamily("owl_agent_heartbeat_age_seconds", "Seconds since each "
                                 "live agent's last heartbeat.",
                                 labels=["agent", "host", "template"])
        held = GaugeMetricFamily("owl_agent_items", "Items each agent holds.", labels=["agent"])
        jobs = GaugeMetricFamily("owl_agent_jobs", "Tasks or pool jobs each agent has running.",
                                 labels=["agent"])
        done = CounterMetricFamily("owl_agent_completed", "Items each agent completed since "
                                   "it started.", labels=["agent"])
        failed = CounterMetricFamily("owl_agent_failed", "Failed attempts each agent reported "
                                     "since it started.", labels=["agent"])
        cpu = GaugeMetricFamily("owl_agent_workers_cpu_percent", "CPU use of each agent's "
                                "local workers, as its last heartbeat says (100 = one core).",
                                labels=["agent"])
        rss = GaugeMetricFamily("owl_agent_workers_memory_bytes", "Resident memory of each "
                                "agent's local workers, as its last heartbeat says.",
                                labels=["agent"])
        for a in agents(self.board):
            if "cpu_percent" in a:
                cpu.add_metric([a["id"]], float(a["cpu_percent"]))
            if "rss_mb" in a:
                rss.add_metric([a["id"]], float(a["rss_mb"]) * 1024 * 1024)
            beat.add_metric([a["id"], a.get("host", ""), a.get("template", "")],
                            a["heartbeat_age"])
            held.add_metric([a["id"]], len(a.get("items", [])))
            jobs.add_metric([a["id"]], int(a.get("jobs", 0)))
            done.add_metric([a["id"]], int(a.get("done", 0)))
            failed.add_metric([a["id"]], int(a.get("failed", 0)))
        yield from (beat, held, jobs, done, failed, cpu, rss)


class _Bounded(OrderedDict[Any, Any]):
    """Start times of items in flight; the oldest are forgotten beyond ``cap`` entries (a
    huge backlog then costs a few unobserved latencies, not the exporter's memory)."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.cap:
            self.popitem(last=False)


class EventMetrics:
    """Counters and histograms fed by an :class:`~owl.web.tail.EventTail` (as a listener).

    Events name the dataset and stage but not the template: the template of a stage is
    taken from the board's counters when only one template has that stage, else read from
    the dataset once (and remembered).
    """

    def __init__(self, board: Board, registry: CollectorRegistry, *,
                 cap: int = 200_000) -> None:
        self.board = board
        labels = ["template", "stage"]
        self.completions = Counter("owl_completions", "Items completed (events seen by this "
                                   "exporter).", labels, registry=registry)
        self.failures = Counter("owl_failures", "Failed attempts by failure class (events "
                                "seen by this exporter).", [*labels, "class"],
                                registry=registry)
        self.transitions = Counter("owl_transitions", "Item transitions by destination "
                                   "state.", [*labels, "to"], registry=registry)
        self.wait = Histogram("owl_ready_to_claimed_seconds", "Time from ready to claimed.",
                              labels, buckets=BUCKETS, registry=registry)
        self.run = Histogram("owl_claim_to_done_seconds", "Time from claimed to done.",
                             labels, buckets=BUCKETS, registry=registry)
        self._ready = _Bounded(cap)
        self._claimed = _Bounded(cap)
        self._stage_templates: dict[str, list[str]] = {}
        self._learnt = 0.0
        self._dataset_templates = _Bounded(cap // 10)
        self._lock = threading.Lock()

    def template(self, shard: int, dataset: str, stage: str) -> str:
        age = time.monotonic() - self._learnt
        if age > 30 or (stage not in self._stage_templates and age > 1):
            found: dict[str, set[str]] = {}
            for tpl, st, _ in queries.counts(self.board):
                found.setdefault(st, set()).add(tpl)
            self._stage_templates = {st: sorted(t) for st, t in found.items()}
            self._learnt = time.monotonic()
        tpls = self._stage_templates.get(stage, [])
        if len(tpls) == 1:
            return tpls[0]
        if dataset not in self._dataset_templates:
            self._dataset_templates.put(
                dataset, self.board.redis.hget(self.board.keys.dataset(shard, dataset), "t") or "")
        return str(self._dataset_templates[dataset])

    def __call__(self, shard: int, entry_id: str, fields: dict[str, str]) -> None:
        ds, stage, fr, to = fields.get("ds", ""), fields.get("st", ""), fields.get("fr", ""), \
            fields.get("to", "")
        t = int(fields.get("t") or 0)
        with self._lock:
            tpl = self.template(shard, ds, stage)
            self.transitions.labels(tpl, stage, to).inc()
            item = (ds, stage)
            if to == "ready":
                self._ready.put(item, t)
            elif fr == "ready" and to == "running":
                start = self._ready.pop(item, None)
                if start is not None:
                    self.wait.labels(tpl, stage).observe(max(0, t - start) / 1e6)
                self._claimed.put((ds, stage, fields.get("tk", "")), t)
            elif fr == "running" and to == "done":
                self.completions.labels(tpl, stage).inc()
                start = self._claimed.pop((ds, stage, fields.get("tk", "")), None)
                if start is not None:
                    self.run.labels(tpl, stage).observe(max(0, t - start) / 1e6)
            elif fr == "running" and to in ("retry", "dead"):
                why = fields.get("why", "")
                self.failures.labels(tpl, stage, why.split(":", 1)[0] if why else "").inc()
                self._claimed.pop((ds, stage, fields.get("tk", "")), None)
