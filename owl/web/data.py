"""What the pages and the JSON API show, read from the board in O(shards x stages).

Each function returns plain JSON-able data shaped like the matching CLI ``--json`` output
(``owl status``, ``owl show``, ``owl agents``, ``owl dead``), so scripts can use either.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from owl import queries
from owl.board import Board
from owl.errors import BoardError
from owl.history import history
from owl.keys import split_member
from owl.model import State

#: Column order of the counts tables.
STATE_ORDER = [str(s) for s in (State.WAITING, State.READY, State.RUNNING, State.RETRY,
                                State.DONE, State.SKIPPED, State.HELD, State.DEAD)]


def status(board: Board) -> dict[str, dict[str, dict[str, int]]]:
    """``owl status --json``: template -> stage -> state -> items (non-zero only)."""
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for (tpl, stage, state), n in sorted(queries.counts(board).items()):
        table[tpl][stage][state] = n
    return {t: dict(s) for t, s in table.items()}


class StageOrders:
    """Stage order of each template, for tables: learnt from the versions of the oldest and
    newest datasets of each shard (no keyspace SCAN), kept for ``ttl`` seconds."""

    def __init__(self, board: Board, ttl: float = 60.0) -> None:
        self.board = board
        self.ttl = ttl
        self._orders: dict[str, list[str]] = {}
        self._learnt = 0.0

    def _learn(self) -> None:
        b = self.board
        pipe = b.redis.pipeline(transaction=False)
        for s in range(b.shards):
            pipe.zrange(b.keys.datasets(s), 0, 9)
            pipe.zrange(b.keys.datasets(s), -10, -1)
        ids = [(s // 2, ds) for s, found in enumerate(pipe.execute()) for ds in found]
        pipe = b.redis.pipeline(transaction=False)
        for s, ds in ids:
            pipe.hmget(b.keys.dataset(s, ds), ["t", "v"])
        versions: dict[str, str] = {}
        for tpl, version in pipe.execute():
            if tpl and version:
                versions[tpl] = version
        for tpl, version in versions.items():
            try:
                self._orders[tpl] = list(b.stored_template(tpl, version).stage_names)
            except BoardError:
                continue
        self._learnt = time.monotonic()

    def __call__(self, template: str, stages: Iterable[str]) -> list[str]:
        """The stages given, in template order (unknown ones sorted, last)."""
        if template not in self._orders and time.monotonic() - self._learnt > self.ttl:
            self._learn()
        names = self._orders.get(template, [])
        given = set(stages)
        return [s for s in names if s in given] + sorted(given - set(names))


def shard_campaign_counts(board: Board) -> list[dict[tuple[str, str, str, str], int]]:
    """Per shard, (campaign, template, stage, state) -> items (non-zero only)."""
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.hgetall(board.keys.campaign_counts(s))
    out = []
    for raw in pipe.execute():
        shard: dict[tuple[str, str, str, str], int] = {}
        for name, n in raw.items():
            cp, tpl, stage, state = name.split("|")
            if int(n):
                shard[(cp, tpl, stage, state)] = int(n)
        out.append(shard)
    return out


def campaigns(board: Board) -> list[dict[str, Any]]:
    """Each campaign with its state and its items per state; the board's pauses."""
    from owl.control.view import read_view

    view = read_view(board)
    per: dict[str, dict[str, int]] = {}
    for shard in shard_campaign_counts(board):
        for (cp, _, _, state), n in shard.items():
            row = per.setdefault(cp, {})
            row[state] = row.get(state, 0) + n
    names = sorted(set(view.campaigns) | set(per))
    return [{"campaign": n, "state": view.state(n), "counts": per.get(n, {})} for n in names]


def pauses(board: Board) -> dict[str, dict[str, Any]]:
    """Active pauses: "KIND:NAME" -> who, why, when."""
    from owl.control.view import read_view

    return read_view(board).pauses


def redis_now(board: Board) -> float:
    """The Redis clock (seconds), the clock ready times are written with. A cluster answers
    per node; their clocks agree as well as the board needs here."""
    reply: Any = board.redis.time()
    if isinstance(reply, dict):
        reply = next(iter(reply.values()))
    sec, usec = reply
    return float(sec) + float(usec) / 1e6


def oldest_ready(board: Board) -> dict[tuple[str, str], float]:
    """Seconds since the item first in line of each (template, stage) ready queue became
    ready, over every shard and campaign; three pipelined round trips.

    Every item of one stage has the same priority, so a ready queue is ordered by dataset
    age: its head is the next item claimed, and the one that has waited about the longest.
    """
    queues = [(s, cp, tpl, stage) for s, shard in enumerate(shard_campaign_counts(board))
              for (cp, tpl, stage, state) in shard if state == "ready"]
    if not queues:
        return {}
    pipe = board.redis.pipeline(transaction=False)
    for s, cp, tpl, stage in queues:
        pipe.zrange(board.keys.ready(s, cp, tpl, stage), 0, 0)
    heads = pipe.execute()
    wanted = [(s, (tpl, stage), head[0]) for (s, _, tpl, stage), head in zip(queues, heads,
                                                                             strict=True)
              if head]
    if not wanted:
        return {}
    pipe = board.redis.pipeline(transaction=False)
    for s, (_, stage), ds in wanted:
        pipe.hget(board.keys.dataset(s, ds), f"{stage}.u")
    updated = pipe.execute()
    now = redis_now(board)
    out: dict[tuple[str, str], float] = {}
    for (_, pair, _), u in zip(wanted, updated, strict=True):
        if u:
            out[pair] = max(out.get(pair, 0.0), now - int(u) / 1000)
    return out


def show(board: Board, dataset_id: str) -> dict[str, Any]:
    """``owl show --json``: the dataset, its items, failures, condor jobs and history."""
    ds = queries.dataset(board, dataset_id)
    return {"dataset": ds.dataset, "template": ds.template, "version": ds.version,
            "path": ds.path, "created_ms": ds.created_ms,
            "items": [vars(i) for i in ds.items],
            "failures": {i.stage: queries.failures(board, ds.dataset, i.stage)
                         for i in ds.items},
            "condor": condor_jobs(board, ds),
            "history": history(board, ds.dataset, ds.created_ms)}


def condor_jobs(board: Board, ds: queries.Dataset) -> dict[str, dict[str, Any]]:
    """Per condor stage of the dataset, what the schedd knows of its latest job."""
    return queries.condor_jobs(board, ds, "web")


def agents(board: Board) -> list[dict[str, Any]]:
    """``owl agents --json``, each with ``heartbeat_age`` (seconds) added."""
    now = time.time()
    return [{**a, "heartbeat_age": round(now - float(a.get("heartbeat", now)), 3)}
            for a in queries.agents(board)]


def dead(board: Board, template: str | None = None, stages: tuple[str, ...] = (),
         limit: int | None = None) -> list[dict[str, Any]]:
    """``owl dead --json`` (optionally one template, some stages, at most ``limit`` rows),
    shard by shard, oldest death first: read from the per-shard dead indexes, the records
    of the items fetched in pipelined chunks until ``limit`` rows are found."""
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.zrange(board.keys.dead(s), 0, -1)
    found = [(s, *split_member(m)) for s, members in enumerate(pipe.execute())
             for m in members]
    found = [f for f in found if not stages or f[2] in stages]
    rows: list[dict[str, Any]] = []
    for start in range(0, len(found), 500):
        chunk = found[start:start + 500]
        pipe = board.redis.pipeline(transaction=False)
        for s, ds, stage in chunk:
            pipe.hmget(board.keys.dataset(s, ds), ["t", f"{stage}.a", f"{stage}.e"])
            pipe.lindex(board.keys.errors(s, ds, stage), -1)
        replies = pipe.execute()
        for n, (_, ds, stage) in enumerate(chunk):
            (tpl, attempts, error), last_raw = replies[2 * n], replies[2 * n + 1]
            if tpl is None or (template is not None and tpl != template):
                continue
            last = json.loads(last_raw) if last_raw else {}
            rows.append({"dataset": ds, "template": tpl, "stage": stage,
                         "attempts": int(attempts or 0), "class": last.get("class", ""),
                         "message": last.get("message", error or ""),
                         "traceback": last.get("traceback", "")})
            if limit is not None and len(rows) >= limit:
                return rows
    return rows


def dead_total(board: Board) -> int:
    """Dead items on the board (the dead index sizes)."""
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.zcard(board.keys.dead(s))
    return sum(int(n) for n in pipe.execute())
