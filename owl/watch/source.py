"""What ``owl watch`` reads from the board on each refresh, in a few pipelined round trips.

Nothing here scans the keyspace: counts come from the per-shard counter hashes the
transition scripts maintain, the oldest-ready age from the head of each ready queue, dead
items from the dead index (newest first), agents from their registry. The cost of a refresh
is O(shards x stages + rows shown), whatever the number of datasets.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from owl import queries
from owl.board import Board
from owl.keys import split_member
from owl.model import State

#: Current items listed per agent on the agent board.
SHOWN_ITEMS = 3

#: Seconds of counter history the rates are computed over.
RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class StageRow:
    """One (template, stage): items per state, completions per second, oldest ready age."""

    template: str
    stage: str
    counts: dict[str, int]
    done_per_s: float
    oldest_ready_s: float | None


@dataclass(frozen=True)
class AgentRow:
    """One agent of the process board."""

    id: str
    host: str
    pid: int
    template: str
    stages: tuple[str, ...]
    items: tuple[str, ...]
    heartbeat_age_s: float
    cpu: str
    memory: str
    mode: str


@dataclass(frozen=True)
class DeadRow:
    """A dead item and the reason of its last failure."""

    dataset: str
    stage: str
    template: str
    died_ms: int
    reason: str


@dataclass(frozen=True)
class Snapshot:
    """Everything one refresh shows, and how long the board took to answer it."""

    stages: tuple[StageRow, ...]
    agents: tuple[AgentRow, ...]
    dead: tuple[DeadRow, ...]
    dead_total: int
    pauses: dict[str, dict[str, Any]]
    board_ms: float


class RateMeter:
    """Completions per second per (template, stage), from successive counter readings."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, dict[tuple[str, str], int]]] = deque()

    def add(self, now: float, done: dict[tuple[str, str], int]) -> dict[tuple[str, str], float]:
        """Record a reading (done+skipped+dead per stage); the rates over the window."""
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window_s:
            self.samples.popleft()
        then, old = self.samples[0]
        span = now - then
        if span <= 0:
            return dict.fromkeys(done, 0.0)
        return {k: max(0.0, (n - old.get(k, 0)) / span) for k, n in done.items()}


def _finished(counts: dict[tuple[str, str, str], int]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for (tpl, stage, state), n in counts.items():
        out.setdefault((tpl, stage), 0)
        if state in (State.DONE, State.SKIPPED, State.DEAD):
            out[(tpl, stage)] += n
    return out


def _counts_and_queues(board: Board) -> tuple[dict[tuple[str, str, str], int],
                                              list[tuple[int, str, str, str]]]:
    """Item counts, and the ready queues (shard, campaign, template, stage) not empty."""
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.hgetall(board.keys.counts(s))
        pipe.hgetall(board.keys.campaign_counts(s))
    replies = pipe.execute()
    counts: dict[tuple[str, str, str], int] = {}
    queues = []
    for s in range(board.shards):
        for name, n in replies[2 * s].items():
            tpl, stage, state = name.split("|")
            counts[(tpl, stage, state)] = counts.get((tpl, stage, state), 0) + int(n)
        for name, n in replies[2 * s + 1].items():
            camp, tpl, stage, state = name.split("|")
            if state == State.READY and int(n) > 0:
                queues.append((s, camp, tpl, stage))
    return {k: v for k, v in counts.items() if v}, queues


def _oldest_ready(board: Board, queues: list[tuple[int, str, str, str]],
                  now_ms: int) -> dict[tuple[str, str], float]:
    """Seconds the item at the head of each ready queue has been ready (the next one an
    agent takes), the largest per (template, stage)."""
    if not queues:
        return {}
    pipe = board.redis.pipeline(transaction=False)
    for s, camp, tpl, stage in queues:
        pipe.zrange(board.keys.ready(s, camp, tpl, stage), 0, 0)
    heads = pipe.execute()
    pipe = board.redis.pipeline(transaction=False)
    asked = []
    for (s, _, tpl, stage), head in zip(queues, heads, strict=True):
        if head:
            pipe.hget(board.keys.dataset(s, head[0]), f"{stage}.u")
            asked.append((tpl, stage))
    out: dict[tuple[str, str], float] = {}
    for key, since in zip(asked, pipe.execute(), strict=True):
        if since:
            out[key] = max(out.get(key, 0.0), max(0.0, (now_ms - int(since)) / 1000))
    return out


def _agents(board: Board, pauses: dict[str, dict[str, Any]], now: float) -> list[AgentRow]:
    rows = []
    for a in queries.agents(board):
        mode = ("draining" if f"drain:{a['id']}" in pauses else
                "paused" if f"agent:{a['id']}" in pauses else "serving")
        held = a.get("items", [])
        items = tuple(f"{i['dataset']}:{i['stage']}" + (" (held)" if i.get("paused") else "")
                      for i in held[:SHOWN_ITEMS])
        if len(held) > SHOWN_ITEMS:  # a condor agent may hold thousands
            items += (f"+{len(held) - SHOWN_ITEMS} more",)
        cpu = a.get("cpu_percent", a.get("cpu"))
        mem = a.get("rss_mb", a.get("memory_mb"))
        rows.append(AgentRow(
            id=str(a["id"]), host=str(a.get("host", "")), pid=int(a.get("pid", 0)),
            template=str(a.get("template", "")), stages=tuple(a.get("stages") or ("*",)),
            items=items, heartbeat_age_s=max(0.0, now - float(a.get("heartbeat", now))),
            cpu=f"{float(cpu):.0f}%" if cpu is not None else "-",
            memory=f"{float(mem):.0f}M" if mem is not None else "-", mode=mode))
    return sorted(rows, key=lambda r: r.id)


def _dead(board: Board, limit: int) -> tuple[list[DeadRow], int]:
    """The newest `limit` dead items (of all shards) and how many there are."""
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.zcard(board.keys.dead(s))
        pipe.zrevrange(board.keys.dead(s), 0, limit - 1, withscores=True)
    replies = pipe.execute()
    total = sum(int(replies[2 * s]) for s in range(board.shards))
    newest = sorted(((int(score), s, m) for s in range(board.shards)
                     for m, score in replies[2 * s + 1]), reverse=True)[:limit]
    pipe = board.redis.pipeline(transaction=False)
    for _, s, m in newest:
        ds, stage = split_member(m)
        pipe.hmget(board.keys.dataset(s, ds), ["t", f"{stage}.e"])
    rows = []
    for (died, _, m), (tpl, err) in zip(newest, pipe.execute(), strict=True):
        ds, stage = split_member(m)
        reason = (err or "").strip().splitlines()
        rows.append(DeadRow(dataset=ds, stage=stage, template=tpl or "", died_ms=died,
                            reason=reason[-1] if reason else ""))
    return rows, total


class Source:
    """Reads snapshots of one board; keeps the counter history the rates need."""

    def __init__(self, board: Board, *, dead_limit: int = 200) -> None:
        self.board = board
        self.dead_limit = dead_limit
        self.rates = RateMeter()
        self._order: dict[str, tuple[str, ...]] = {}
        self._looked_up: set[tuple[str, str]] = set()

    def _stage_order(self, shown: dict[tuple[str, str], Any]) -> Any:
        """A sort key putting stages in template order; the pinned templates are read again
        only when a stage appears that the cached order does not know."""
        unknown = {(t, st) for t, st in shown if st not in self._order.get(t, ())}
        if unknown - self._looked_up:  # a stage no pinned version names is looked up once
            from owl.names import board_stages

            self._order = board_stages(self.board, None)
            self._looked_up |= unknown

        def key(row: tuple[tuple[str, str], Any]) -> tuple[str, int, str]:
            (tpl, stage), _ = row
            names = self._order.get(tpl, ())
            return tpl, names.index(stage) if stage in names else len(names), stage

        return key

    def snapshot(self) -> Snapshot:
        """One refresh's worth of board state (see the module docstring for its cost)."""
        started = time.perf_counter()
        now = time.time()
        counts, queues = _counts_and_queues(self.board)
        oldest = _oldest_ready(self.board, queues, int(now * 1000))
        raw_pauses = self.board.redis.hgetall(self.board.keys.ctl_key("pauses"))
        pauses = {k: json.loads(v) for k, v in raw_pauses.items()}
        agents = _agents(self.board, pauses, now)
        dead, dead_total = _dead(self.board, self.dead_limit)
        board_ms = (time.perf_counter() - started) * 1000
        rates = self.rates.add(time.monotonic(), _finished(counts))
        by_stage: dict[tuple[str, str], dict[str, int]] = {}
        for (tpl, stage, state), n in counts.items():
            by_stage.setdefault((tpl, stage), {})[state] = n
        order = self._stage_order(by_stage)
        rows = tuple(StageRow(template=tpl, stage=stage, counts=c,
                              done_per_s=rates.get((tpl, stage), 0.0),
                              oldest_ready_s=oldest.get((tpl, stage)))
                     for (tpl, stage), c in sorted(by_stage.items(), key=order))
        return Snapshot(stages=rows, agents=tuple(agents), dead=tuple(dead),
                        dead_total=dead_total, pauses=pauses, board_ms=board_ms)
