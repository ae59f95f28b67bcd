"""Reading the audit streams without losing or repeating an event.

Every shard has its own capped stream (``B:{sN}:events``). A reader keeps a
:class:`Cursor`, the last entry id it has seen per shard, and asks Redis for what comes
after it with ``XREAD BLOCK``: every event appended after the cursor is returned exactly
once, however fast they come (``owl events -f``, ``owl watch``). Entry ids are unique per
stream only, so an event is identified by (shard, id).

Stream ids start with the Redis clock in milliseconds, which makes ``--since`` a range
query (``XRANGE`` from ``SINCE_MS``), never a scan.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from owl.board import Board
from owl.errors import ConfigError
from owl.scripts import is_cluster

#: Entries read per stream and call; a follower that is behind gets them batch by batch.
BATCH = 1000
_MAX_SEQ = 2**64 - 1

Event = dict[str, Any]


@dataclass
class Cursor:
    """The last stream id seen per shard (exclusive start of the next read)."""

    ids: dict[int, str] = field(default_factory=dict)

    def advance(self, shard: int, entry_id: str) -> None:
        self.ids[shard] = entry_id


def _order(e: Event) -> tuple[int, int, int, int]:
    ms, _, seq = str(e["id"]).partition("-")
    return int(e.get("t") or 0), int(ms), int(seq), int(e["shard"])


def _event(shard: int, entry_id: str, fields: dict[str, str]) -> Event:
    return {"id": entry_id, "shard": shard, **fields}


def _shards(board: Board, dataset: str | None) -> list[int]:
    return [board.shard(dataset)] if dataset else list(range(board.shards))


def recent(board: Board, *, count: int | None = 50, dataset: str | None = None,
           since_ms: int | None = None) -> tuple[list[Event], Cursor]:
    """The last `count` events (all since `since_ms` when `count` is None), oldest first,
    and the cursor from which :func:`follow` continues without a gap.

    Parameters
    ----------
    board : Board
        The board to read.
    count : int or None
        At most this many events (the newest); None: no limit (needs `since_ms`).
    dataset : str, optional
        Only this dataset's events (its shard's stream, filtered).
    since_ms : int, optional
        Only events at or after this Redis-clock time (Unix ms).
    """
    if count is None and since_ms is None:
        raise ValueError("recent() needs a count or a since_ms")
    found: list[Event] = []
    cursor = Cursor()
    for s in _shards(board, dataset):
        key = board.keys.events(s)
        if since_ms is not None:
            cursor.advance(s, f"{max(since_ms - 1, 0)}-{_MAX_SEQ}")
            start = str(max(since_ms, 0))
            while True:
                chunk = board.redis.xrange(key, min=start, max="+", count=BATCH)
                for entry_id, fields in chunk:
                    if dataset is None or fields.get("ds") == dataset:
                        found.append(_event(s, entry_id, fields))
                if chunk:
                    cursor.advance(s, chunk[-1][0])
                if len(chunk) < BATCH:
                    break
                start = "(" + chunk[-1][0]
            continue
        assert count is not None
        last, taken, newest = "+", 0, None
        while taken < count:
            want = BATCH if dataset else min(BATCH, count - taken)
            chunk = board.redis.xrevrange(key, max=last, min="-", count=want)
            if newest is None:
                newest = chunk[0][0] if chunk else "0-0"
            for entry_id, fields in chunk:
                if dataset is None or fields.get("ds") == dataset:
                    found.append(_event(s, entry_id, fields))
                    taken += 1
            if len(chunk) < want:
                break
            last = "(" + chunk[-1][0]
        if newest is None:
            head = board.redis.xrevrange(key, max="+", min="-", count=1)
            newest = head[0][0] if head else "0-0"
        cursor.advance(s, newest)
    found.sort(key=_order)
    if count is not None:
        found = found[-count:] if count else []
    return found, cursor


def follow(board: Board, cursor: Cursor, *, block_ms: int = 1000,
           dataset: str | None = None) -> list[Event]:
    """Events appended after `cursor` (advanced past them), waiting up to `block_ms` when
    there are none yet. Nothing appended after the cursor is skipped or returned twice
    (unless the stream's cap trimmed it before it was read).

    Parameters
    ----------
    board : Board
        The board to read.
    cursor : Cursor
        From :func:`recent` (or an empty one: every event still in the streams).
    block_ms : int
        How long ``XREAD BLOCK`` waits for the first new event.
    dataset : str, optional
        Only this dataset's events (the cursor still moves past the others).
    """
    streams = {board.keys.events(s): cursor.ids.get(s, "0-0")
               for s in _shards(board, dataset)}
    shard_of = {board.keys.events(s): s for s in _shards(board, dataset)}
    if is_cluster(board.redis):
        reply = _xread_cluster(board, streams, block_ms)
    else:
        reply = board.redis.xread(streams, count=BATCH, block=block_ms)
    out: list[Event] = []
    for key, entries in reply or []:
        s = shard_of[key]
        for entry_id, fields in entries:
            if dataset is None or fields.get("ds") == dataset:
                out.append(_event(s, entry_id, fields))
        if entries:
            cursor.advance(s, entries[-1][0])
    out.sort(key=_order)
    return out


def _xread_cluster(board: Board, streams: dict[str, str], block_ms: int) -> list[Any]:
    """XREAD on a Redis Cluster: each stream is in its own slot and one XREAD may not span
    slots, so every stream is read on its own (one pipeline, grouped per node by redis-py),
    polled until something comes or ``block_ms`` is over: after 25 ms, then twice as long
    each time up to 250 ms."""
    deadline = time.monotonic() + block_ms / 1000
    pause = 0.025
    while True:
        pipe = board.redis.pipeline(transaction=False)
        for key, last in streams.items():
            pipe.xread({key: last}, count=BATCH)
        reply = [r for got in pipe.execute() for r in got or []]
        if reply or time.monotonic() >= deadline:
            return reply
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(0.25, pause * 2)  # an idle board is looked at less and less often


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, *, now: datetime.datetime | None = None) -> int:
    """Unix milliseconds for a ``--since`` value: a span back from now (``90s``, ``10m``,
    ``2h``, ``1d``, ``1w``) or an ISO 8601 time (``2026-12-02T13:00``, local time unless it
    names a zone, e.g. ``...Z`` or ``+01:00``).

    Raises
    ------
    ConfigError
        Neither form, naming what was given and both accepted forms.
    """
    current = now or datetime.datetime.now(datetime.UTC)
    m = _SPAN.match(text)
    if m:
        back = datetime.timedelta(seconds=float(m[1]) * _UNIT_S[m[2].lower()])
        return int((current - back).timestamp() * 1000)
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since {text!r}: give a span back from now (30s, 10m, 2h, 1d) "
                          "or an ISO time (2026-12-02T13:00, 2026-12-02T13:00Z)") from None
    if when.tzinfo is None:
        when = when.astimezone()
    return int(when.timestamp() * 1000)


def describe(e: Event) -> str:
    """One line for a person: local time, dataset, stage, transition, actor, reason."""
    import time

    t_us = int(e.get("t") or 0)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t_us / 1e6)) if t_us else "-"
    why = f" ({e['why']})" if e.get("why") else ""
    return (f"{when} {e.get('ds', ''):<20} {e.get('st', ''):<14} "
            f"{e.get('fr') or '-':>8} -> {e.get('to', ''):<8} by {e.get('by', '')}{why}")


def merge_order(events: Sequence[Event]) -> list[Event]:
    """Events of several shards in time order (Redis clock, then shard)."""
    return sorted(events, key=_order)
