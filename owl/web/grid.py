"""The OPUS-style grid, paged on the server over the board's indexes.

A page is read from per-shard sorted sets: the ``datasets`` index (registration order), or
the index of the state asked for (``dead``, ``held``, ``delayed``, ``leases``, or the ready
queues). The cursor holds how far each of those sets has been read, so every page costs
O(shards x page size) whatever the board's size. Filters the indexes cannot answer (a name
pattern, a state without an index) are applied while walking, and one request examines at
most ``budget`` index entries (a record is read only for entries whose member passes the
name and stage filters): a rare match may take several "next" pages to reach, never one
slow request.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import functools
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from owl import queries
from owl.board import Board
from owl.control.model import PRODUCTION
from owl.errors import OwlError
from owl.keys import split_member
from owl.model import State
from owl.web.data import StageOrders, shard_campaign_counts


class GridError(OwlError):
    """A grid request that cannot be answered (bad cursor, bad filter)."""


@dataclass(frozen=True)
class GridQuery:
    """Filters and position of one grid page; empty fields match everything."""

    template: str = ""
    stage: str = ""
    state: str = ""
    name: str = ""  # glob pattern over dataset ids, e.g. "j8xi*"
    campaign: str = ""
    limit: int = 50
    cursor: str = ""

    def checked(self) -> GridQuery:
        if self.state and self.state not in {str(s) for s in State}:
            raise GridError(f"state {self.state!r} is not one of "
                            f"{', '.join(str(s) for s in State)}")
        if not 1 <= self.limit <= 1000:
            raise GridError(f"limit must be between 1 and 1000, got {self.limit}")
        return self


@dataclass(frozen=True)
class GridPage:
    """One page: rows like ``owl status --grid --json``, and where the next page starts."""

    rows: list[dict[str, Any]]
    next: str  # cursor of the next page; "" at the end
    total: int | None  # items or datasets the filters select, when the counters know it
    examined: int  # index entries read for this page
    stages: dict[str, list[str]] = field(default_factory=dict)  # template -> stage order

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "next": self.next, "total": self.total,
                "examined": self.examined, "stages": self.stages}


_INDEX = {State.DEAD: "dead", State.HELD: "held", State.RETRY: "delayed",
          State.RUNNING: "leases"}


def _decode(cursor: str) -> dict[str, int]:
    if not cursor:
        return {}
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError) as exc:
        raise GridError(f"cursor {cursor[:40]!r} is not one this server made") from exc
    if not isinstance(raw, dict) or not all(isinstance(v, int) for v in raw.values()):
        raise GridError(f"cursor {cursor[:40]!r} is not one this server made")
    return {str(k): int(v) for k, v in raw.items()}


def _encode(offsets: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(offsets, sort_keys=True).encode()).decode()


def _sources(board: Board, q: GridQuery, counts: dict[tuple[str, str, str], int]
             ) -> tuple[list[tuple[int, str]], bool]:
    """The sorted sets to read, as (shard, key), and whether their members are items
    ("DATASET|STAGE") rather than datasets."""
    k = board.keys
    if q.state == State.READY:
        return [(sh, k.ready(sh, cp, t, s))
                for sh, shard in enumerate(shard_campaign_counts(board))
                for (cp, t, s, st) in sorted(shard) if st == State.READY
                and (not q.campaign or cp == q.campaign)
                and (not q.template or t == q.template) and (not q.stage or s == q.stage)], False
    if q.state in _INDEX:
        name = _INDEX[State(q.state)]
        return [(sh, f"{k.prefix(sh)}{name}") for sh in range(board.shards)], True
    if q.campaign and q.campaign != PRODUCTION:
        # production datasets are in no campaign index: they are read from `datasets`
        return [(sh, k.campaign_datasets(sh, q.campaign)) for sh in range(board.shards)], False
    return [(sh, k.datasets(sh)) for sh in range(board.shards)], False


def _total(board: Board, q: GridQuery, counts: dict[tuple[str, str, str], int]) -> int | None:
    if q.name or q.campaign:
        return None
    if q.state:
        return sum(n for (t, s, st), n in counts.items() if st == q.state
                   and (not q.template or t == q.template) and (not q.stage or s == q.stage))
    if q.template or q.stage:
        return None
    pipe = board.redis.pipeline(transaction=False)
    for sh in range(board.shards):
        pipe.zcard(board.keys.datasets(sh))
    return sum(int(n) for n in pipe.execute())


def page(board: Board, q: GridQuery, *, budget: int = 5000, name_budget: int = 40_000,
         orders: StageOrders | None = None) -> GridPage:
    """One page of the grid for the filters and cursor of ``q``; at most ``budget`` index
    entries are read (``name_budget`` with a name pattern, which Redis tests itself)."""
    q = q.checked()
    orders = orders or StageOrders(board)
    if q.name and not any(c in q.name for c in "*?["):
        return _exact(board, q, orders)
    offsets = _decode(q.cursor)
    counts = queries.counts(board)
    sources, items = _sources(board, q, counts)
    fields = _fields(counts)
    if q.name and not items:
        return _scan(board, q, sources, offsets, orders, fields, name_budget)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    examined = 0
    exhausted: set[str] = set()
    while len(rows) < q.limit and examined < budget:
        live = [(sh, key) for sh, key in sources if key not in exhausted]
        if not live:
            break
        batch = max(q.limit * 2, 100) if not q.name else 2000
        pipe = board.redis.pipeline(transaction=False)
        for _, key in live:
            off = offsets.get(key, 0)
            pipe.zrange(key, off, off + batch - 1, withscores=True)
        windows = pipe.execute()
        entries: list[tuple[float, str, int, str]] = []
        horizon: tuple[float, str] | None = None
        for (sh, key), window in zip(live, windows, strict=True):
            if len(window) < batch:
                exhausted.add(key)
            elif horizon is None or (window[-1][1], window[-1][0]) < horizon:
                # entries past the end of a full window may sort after unread ones
                horizon = (window[-1][1], window[-1][0])
            entries += [(score, m, sh, key) for m, score in window]
        entries.sort()
        if horizon is not None:
            entries = [e for e in entries if (e[0], e[1]) <= horizon]
        if not entries:
            continue
        taken = _take(board, q, entries[:budget - examined], items, rows, seen, orders,
                      fields)
        for _, _, _, key in entries[:taken]:
            offsets[key] = offsets.get(key, 0) + 1
        examined += taken
    # the loop ends early only when every index was read to its end
    done = len(rows) < q.limit and examined < budget
    stage_orders = {r["template"]: list(r["stages"]) for r in rows}
    return GridPage(rows=rows, next="" if done else _encode(offsets),
                    total=_total(board, q, counts), examined=examined, stages=stage_orders)


def _fields(counts: dict[tuple[str, str, str], int]) -> list[str]:
    """The record fields a row needs: template, campaign and the state of every stage any
    template on the board has (from the counters), not the whole record with its
    provenance (a tenth of the bytes)."""
    return ["t", "cp", *sorted({f"{stage}.s" for _, stage, _ in counts})]


def _scan(board: Board, q: GridQuery, sources: list[tuple[int, str]],
          offsets: dict[str, int], orders: StageOrders, fields: list[str], budget: int,
          count: int = 5000) -> GridPage:
    """A name pattern over the datasets indexes: ``ZSCAN MATCH`` tests it inside Redis, so
    only matching ids cross the network. Rows come in each shard's hash order (sorted by
    registration time within one reply), shard after shard. The cursor keeps, per index,
    the ZSCAN cursor and how many matches of that reply were shown (a reply is asked again
    to resume inside it)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    examined = 0
    for sh, key in sources:
        cursor, skip = offsets.get(key, 0), offsets.get(f"{key}#", 0)
        while cursor >= 0:
            if len(rows) >= q.limit or examined >= budget:
                offsets[key], offsets[f"{key}#"] = cursor, skip
                return _scanned(rows, offsets, sources, examined)
            after, found = board.redis.zscan(key, cursor, match=q.name, count=count)
            examined += count
            fresh = sorted((score, m) for m, score in found)[skip:]
            # Redis matched the name already (its glob dialect, not fnmatch's)
            used = _take(board, replace(q, name=""),
                         [(score, m, sh, key) for score, m in fresh], False, rows, seen, orders,
                         fields)
            if used < len(fresh):
                skip += used
                continue
            cursor, skip = (int(after) if int(after) != 0 else -1), 0
        offsets[key], offsets[f"{key}#"] = -1, 0
    return _scanned(rows, offsets, sources, examined)


def _scanned(rows: list[dict[str, Any]], offsets: dict[str, int],
             sources: list[tuple[int, str]], examined: int) -> GridPage:
    done = all(offsets.get(key, 0) < 0 for _, key in sources)
    return GridPage(rows=rows, next="" if done else _encode(offsets), total=None,
                    examined=examined,
                    stages={r["template"]: list(r["stages"]) for r in rows})


def _exact(board: Board, q: GridQuery, orders: StageOrders) -> GridPage:
    """A name without wildcards names one dataset: read it from its shard directly."""
    rows: list[dict[str, Any]] = []
    raw = board.redis.hgetall(board.keys.dataset(board.shard(q.name), q.name))
    if raw and _matches(q, q.name, "", raw):
        states = {f[:-2]: v for f, v in raw.items() if f.endswith(".s")}
        rows.append({"dataset": q.name, "template": raw["t"],
                     "campaign": raw.get("cp", PRODUCTION),
                     "stages": {s: states[s] for s in orders(raw["t"], states)}})
    return GridPage(rows=rows, next="", total=len(rows), examined=1,
                    stages={r["template"]: list(r["stages"]) for r in rows})


def _take(board: Board, q: GridQuery, entries: list[tuple[float, str, int, str]],
          items: bool, rows: list[dict[str, Any]], seen: set[str],
          orders: StageOrders, fields: list[str]) -> int:
    """Read the records of ``entries`` in order, append matching rows; how many entries
    were consumed (all of them unless the page filled)."""
    used = 0
    while used < len(entries):
        chunk = entries[used:used + max(q.limit - len(rows), 20 if not q.name else 2000)]
        # what the member alone decides (name pattern, indexed stage) costs no record read
        wanted = [_cheap(q, m, items) for _, m, _, _ in chunk]
        pipe = board.redis.pipeline(transaction=False)
        for (_, m, sh, _), want in zip(chunk, wanted, strict=True):
            if want:
                pipe.hmget(board.keys.dataset(sh, split_member(m)[0] if items else m), fields)
        records = iter({f: v for f, v in zip(fields, got, strict=True) if v is not None}
                       for got in pipe.execute())
        for (_, m, _, _), want in zip(chunk, wanted, strict=True):
            used += 1
            if not want:
                continue
            raw = next(records)
            ds, stage = split_member(m) if items else (m, "")
            if raw and ds not in seen and _matches(q, ds, stage, raw):
                seen.add(ds)
                states = {f[:-2]: v for f, v in raw.items() if f.endswith(".s")}
                rows.append({"dataset": ds, "template": raw["t"],
                             "campaign": raw.get("cp", PRODUCTION),
                             "stages": {s: states[s] for s in orders(raw["t"], states)}})
                if len(rows) >= q.limit:
                    return used
    return used


@functools.lru_cache(maxsize=64)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(glob))


def _cheap(q: GridQuery, m: str, items: bool) -> bool:
    ds, stage = split_member(m) if items else (m, "")
    if q.name and not _pattern(q.name).match(ds):
        return False
    return not (stage and q.stage and stage != q.stage)


def _matches(q: GridQuery, ds: str, indexed_stage: str, raw: dict[str, str]) -> bool:
    if q.template and raw.get("t") != q.template:
        return False
    if q.campaign and raw.get("cp", PRODUCTION) != q.campaign:
        return False
    if q.name and not _pattern(q.name).match(ds):
        return False
    if indexed_stage and q.stage and indexed_stage != q.stage:
        return False
    if q.stage and f"{q.stage}.s" not in raw:
        return False
    if q.state:
        stages = [q.stage] if q.stage else [f[:-2] for f in raw if f.endswith(".s")]
        return any(raw.get(f"{s}.s") == q.state for s in stages)
    return True
