"""A TCP proxy in front of a Redis server that goes down at an exact moment.

It forwards bytes both ways until a client sends a request containing ``trigger``; from
then on, for ``down_for`` seconds, it closes every connection and refuses new ones (accepts
and closes them at once), as a server that died at that instant would. Then it forwards
again. The trigger fires once. This puts an outage inside one precise step of an agent
(say, the first command of its adoption at start) instead of wherever a timer lands.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time


class CuttingProxy:
    def __init__(self, target_port: int, trigger: bytes, down_for: float) -> None:
        self.target_port = target_port
        self.trigger = trigger
        self.down_for = down_for
        self.fired_at: float | None = None  # time.monotonic() of the cut
        self._listen = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listen.getsockname()[1])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> CuttingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listen.close()
        for a, b in self._pairs:
            a.close()
            b.close()

    def _down(self) -> bool:
        return self.fired_at is not None and time.monotonic() < self.fired_at + self.down_for

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listen, selectors.EVENT_READ, None)
        while not self._stop.is_set():
            for key, _ in sel.select(0.05):
                if key.data is None:
                    self._accept(sel)
                else:
                    self._pump(sel, key.fileobj, key.data)  # type: ignore[arg-type]
            if self._down():
                self._cut_all(sel)

    def _accept(self, sel: selectors.BaseSelector) -> None:
        conn, _ = self._listen.accept()
        if self._down():
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        self._pairs.append((conn, upstream))
        sel.register(conn, selectors.EVENT_READ, (upstream, True))
        sel.register(upstream, selectors.EVENT_READ, (conn, False))

    def _pump(self, sel: selectors.BaseSelector, src: socket.socket,
              data: tuple[socket.socket, bool]) -> None:
        dst, from_client = data
        try:
            chunk = src.recv(65536)
        except OSError:
            chunk = b""
        if from_client and self.fired_at is None and self.trigger in chunk:
            self.fired_at = time.monotonic()
            chunk = b""  # the request never reaches the server
        if not chunk:
            self._close_pair(sel, src, dst)
            return
        try:
            dst.sendall(chunk)
        except OSError:
            self._close_pair(sel, src, dst)

    def _close_pair(self, sel: selectors.BaseSelector, a: socket.socket,
                    b: socket.socket) -> None:
        for s in (a, b):
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(s)
            s.close()
        self._pairs = [p for p in self._pairs if a not in p]

    def _cut_all(self, sel: selectors.BaseSelector) -> None:
        for a, b in list(self._pairs):
            self._close_pair(sel, a, b)
