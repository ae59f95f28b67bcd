"""Wake-ups of an agent: the notifications of one template's channels as a readable file
descriptor."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from owl.board import Board


class Wakeup:
    """Turns the wake-ups of one template's channels into a readable file descriptor for
    ``wait``: an agent is woken only by work of the template it serves.

    On a cluster with shard channels, one listener thread per node subscribes (SSUBSCRIBE)
    to the channels of the shards that node owns; a listener whose node went away (a
    failover) finds the channels' new owner and subscribes again. Hints lost meanwhile only
    delay work until the next rescan.
    """

    def __init__(self, board: Board, template: str) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        os.set_blocking(self._r, False)
        self._stop = threading.Event()
        self._board = board
        channels = board.wake_channels(template)
        groups: list[list[str]] = [channels]
        if board.sharded_pubsub:
            by_node: dict[str, list[str]] = {}
            for ch in channels:
                by_node.setdefault(board.redis.get_node_from_key(ch).name, []).append(ch)
            groups = list(by_node.values())
        self._threads = [threading.Thread(target=self._run, args=(group,), name="owl-notify",
                                          daemon=True) for group in groups]
        for t in self._threads:
            t.start()

    def _subscribe(self, channels: list[str]) -> Any:
        if not self._board.sharded_pubsub:
            pubsub = self._board.redis.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(*channels)
            return pubsub
        cluster = self._board.redis
        node = cluster.get_node_from_key(channels[0])
        pubsub = cluster.get_redis_connection(node).pubsub(ignore_subscribe_messages=True)
        for ch in channels:  # one SSUBSCRIBE per channel: each is in its own slot
            pubsub.ssubscribe(ch)
        return pubsub

    def _run(self, channels: list[str]) -> None:
        pubsub = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self._subscribe(channels)
                msg = pubsub.get_message(timeout=0.5)
            except Exception:  # a broken subscription only costs the hint
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
                pubsub = None
                self._refresh()
                self._stop.wait(0.5)
                continue
            if msg is not None:
                # an operator held or released a running item: its agent must renew now;
                # a control change: the agent reads the control state now
                data = msg.get("data")
                self.poke(b"r" if data in ("hold", "release") else b"c" if data == "ctl"
                          else b"x")
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _refresh(self) -> None:
        if self._board.sharded_pubsub:
            with contextlib.suppress(Exception):  # the cluster may still be failing over
                self._board.redis.nodes_manager.initialize()

    def poke(self, what: bytes = b"x") -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe: a wake-up is pending
            os.write(self._w, what)

    def fileno(self) -> int:
        return self._r

    def drain(self) -> bytes:
        """What woke us: b"x" work may be ready, b"r" a hold or release (renew now), b"c" a
        control change (read the control state now)."""
        try:
            return os.read(self._r, 4096)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        os.close(self._r)
        os.close(self._w)
