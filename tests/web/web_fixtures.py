"""Fixtures of the web board tests: a board with done, running, failing and dead items,
and the web app on it (Starlette's TestClient, or a real uvicorn server for the browser)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from redis import Redis
from starlette.applications import Starlette
from starlette.testclient import TestClient

from owl.board import Board
from owl.model import FailureClass
from owl.server import ensure_server
from owl.template import RetryPolicy, Stage, Template
from owl.web.app import create_app

TOKEN = "test-token-0123456789"
ONCE = RetryPolicy(max_attempts=1, base=0.01, factor=1.0, max_delay=0.01, jitter=0.0)
PIPE = Template(name="pipe", version="1", stages=(
    Stage("check", retry=ONCE),
    Stage("calib", after=("check",), retry=ONCE),
    Stage("measure", after=("calib",), retry=ONCE),
))


def populate(board: Board, n: int = 30, dead_every: int = 5) -> list[str]:
    """``n`` datasets: every one's ``check`` done, every ``dead_every``-th ``calib`` dead
    (with a traceback), the others' ``calib`` done; ``measure`` ready."""
    ids = [f"obs{i:04d}" for i in range(n)]
    board.register_many(PIPE, [(d, f"/data/{d}_raw.fits") for d in ids])
    for stage in ("check", "calib"):
        claims = board.claim("agent-1", "pipe", [stage], 30, n)
        assert len(claims) == n
        for c in claims:
            if stage == "calib" and int(c.dataset[3:]) % dead_every == 0:
                res = board.fail(c, FailureClass.ERROR, "ValueError: bad bias level",
                                 "Traceback (most recent call last):\n  File \"calib.py\", "
                                 "line 3\nValueError: bad bias level", 0.0, "agent-1")
                assert res.state == "dead"
            else:
                assert board.complete(c, {"files": {"flt": f"/out/{c.dataset}_flt.fits"}},
                                      "agent-1").ok
    return ids


def dead_ids(n: int = 30, every: int = 5) -> list[str]:
    return [f"obs{i:04d}" for i in range(n) if i % every == 0]


@pytest.fixture
def client_ro(board: Board) -> Iterator[TestClient]:
    """A read-only app (no token)."""
    with TestClient(create_app(board), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def client_rw(board: Board) -> Iterator[TestClient]:
    """An app whose actions need :data:`TOKEN`."""
    with TestClient(create_app(board, token=TOKEN), base_url="http://127.0.0.1") as c:
        yield c


@dataclass(frozen=True)
class Served:
    url: str
    board: Board


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(embedded_home: Path, board_name: str) -> Iterator[Served]:
    """The web app on a real uvicorn server in a thread, as `owl web` runs it, on the
    embedded board (the browser flow runs once; the API tests cover every backend)."""
    conn: Redis[str] = Redis.from_url(ensure_server(embedded_home), decode_responses=True)
    board = Board(conn, board_name, shards=4)
    app: Starlette = create_app(board, token=TOKEN)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Served(f"http://127.0.0.1:{port}", board)
    server.should_exit = True
    thread.join(15)
    board.destroy()
    conn.close()
