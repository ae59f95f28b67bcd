"""Follows a board's event streams and hands every new event to listeners.

One thread per shard runs ``XREAD BLOCK`` on that shard's stream from the last id it saw:
each read names one key (one hash slot, so it works on Redis Cluster too), nothing is
polled, and no event is read twice. Listeners (the live pages, the metrics, the throughput
chart) are called in the reading thread and must be quick.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import structlog

from owl.board import Board

log = structlog.get_logger("owl.web")

#: A listener receives (shard, event id, fields) for every new event.
Listener = Callable[[int, str, dict[str, str]], None]


class EventTail:
    """Reads new events of every shard from the moment :meth:`start` is called.

    Parameters
    ----------
    board
        The board to follow.
    block_ms
        How long one ``XREAD`` waits; also how soon :meth:`stop` takes effect.
    """

    def __init__(self, board: Board, *, block_ms: int = 1000) -> None:
        self.board = board
        self.block_ms = block_ms
        self.listeners: list[Listener] = []
        self.last: dict[int, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def add(self, listener: Listener) -> None:
        with self._lock:
            self.listeners.append(listener)

    def remove(self, listener: Listener) -> None:
        with self._lock:
            if listener in self.listeners:
                self.listeners.remove(listener)

    def start(self) -> None:
        """Note the newest id of every shard (one pipelined round trip), then follow."""
        pipe = self.board.redis.pipeline(transaction=False)
        for s in range(self.board.shards):
            pipe.xrevrange(self.board.keys.events(s), count=1)
        for s, newest in enumerate(pipe.execute()):
            self.last[s] = newest[0][0] if newest else "0-0"
        for s in range(self.board.shards):
            t = threading.Thread(target=self._follow, args=(s,), name=f"owl-tail-{s}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.block_ms / 1000 + 2)

    def _follow(self, shard: int) -> None:
        key = self.board.keys.events(shard)
        while not self._stop.is_set():
            try:
                got = self.board.redis.xread({key: self.last[shard]}, count=1000,
                                             block=self.block_ms)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("web.tail_unreachable", shard=shard, error=str(exc))
                time.sleep(1.0)
                continue
            for _, entries in got or []:
                for entry_id, fields in entries:
                    self.last[shard] = entry_id
                    with self._lock:
                        listeners = list(self.listeners)
                    for listener in listeners:
                        try:
                            listener(shard, entry_id, fields)
                        except Exception as exc:  # one listener's fault must not stop the tail
                            log.error("web.listener_failed", shard=shard, error=repr(exc))


@dataclass(frozen=True)
class Minute:
    """Transitions in one minute (Redis clock) of the throughput chart."""

    start: int  # unix seconds
    done: int
    failed: int


class Throughput:
    """Completions and failed attempts per minute over the last ``minutes``, from events.

    It is seeded from the streams' recent history when created (at most ``seed`` events per
    shard), then kept up to date as an :class:`EventTail` listener.
    """

    def __init__(self, board: Board, *, minutes: int = 60, seed: int = 5000) -> None:
        self.minutes = minutes
        self._done: dict[int, int] = {}
        self._failed: dict[int, int] = {}
        self._stages: dict[str, dict[int, int]] = {}  # stage -> minute -> completions
        self._lock = threading.Lock()
        since = int((time.time() - minutes * 60) * 1000)
        pipe = board.redis.pipeline(transaction=False)
        for s in range(board.shards):
            pipe.xrevrange(board.keys.events(s), min=f"{since}-0", count=seed)
        for entries in pipe.execute():
            for entry_id, fields in entries:
                self(0, entry_id, fields)

    def __call__(self, shard: int, entry_id: str, fields: dict[str, str]) -> None:
        to = fields.get("to")
        if to == "done":
            book = self._done
        elif fields.get("fr") == "running" and to in ("retry", "dead"):
            book = self._failed
        else:
            return
        minute = int(fields.get("t", "0")) // 60_000_000 * 60
        with self._lock:
            books = [book]
            if to == "done":
                books.append(self._stages.setdefault(fields.get("st", ""), {}))
            for b in books:
                b[minute] = b.get(minute, 0) + 1
                if len(b) > self.minutes * 2:
                    for old in sorted(b)[:len(b) - self.minutes]:
                        del b[old]

    def series(self, now: float | None = None) -> list[Minute]:
        """One entry per minute, oldest first, the current (partial) minute last."""
        end = int((time.time() if now is None else now) // 60 * 60)
        with self._lock:
            return [Minute(m, self._done.get(m, 0), self._failed.get(m, 0))
                    for m in range(end - (self.minutes - 1) * 60, end + 1, 60)]

    def rate(self, minutes: int = 5, now: float | None = None) -> tuple[float, float]:
        """Completions and failures per minute over the last ``minutes`` full minutes."""
        recent = self.series(now)[-minutes - 1:-1]
        n = max(1, len(recent))
        return (sum(m.done for m in recent) / n, sum(m.failed for m in recent) / n)

    def stage_rates(self, minutes: int = 5, now: float | None = None) -> dict[str, float]:
        """Completions per minute of each stage over the last ``minutes`` full minutes."""
        end = int((time.time() if now is None else now) // 60 * 60)
        window = range(end - minutes * 60, end, 60)
        with self._lock:
            return {stage: sum(book.get(m, 0) for m in window) / minutes
                    for stage, book in self._stages.items()}
