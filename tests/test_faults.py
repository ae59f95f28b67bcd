"""Passing faults at the process level: a hung (SIGSTOPped) Redis, a full disk, a server
that restarts or stays down. Each test runs its own redis-server (tests/helpers/
private_redis.py) or its own embedded server, never touching a shared one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_redis import PrivateRedis

from owl.server import ensure_server, server_info, stop_server

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).parent.parent


def owl(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "owl", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=ROOT)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis", password="s3cret-pw").start()
    yield server
    server.stop()


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OWL_")}
    return {**env, "OWL_HOME": str(tmp_path / "home"), "OWL_BOARD": "faults",
            "PYTHONPATH": str(ROOT)}


def test_a_stopped_redis_is_not_answering_not_a_hang(private: PrivateRedis,
                                                    tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "OWL_REDIS_URL": private.url, "OWL_REDIS_TIMEOUT": "1"}
    assert owl(env, "status").returncode == 0
    private.signal(signal.SIGSTOP)
    try:
        res = owl(env, "status", timeout=30)
    finally:
        private.signal(signal.SIGCONT)
    assert res.returncode == 1
    assert f"Redis at redis://:***@127.0.0.1:{private.port}/0 is not answering" in res.stderr
    assert "s3cret-pw" not in res.stderr and "Traceback" not in res.stderr


def test_a_stopped_embedded_server_is_named_with_its_pid(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    home = Path(env["OWL_HOME"])
    ensure_server(home)
    info = server_info(home)
    assert info is not None
    os.kill(info["pid"], signal.SIGSTOP)
    try:
        res = owl(env, "status", timeout=30)
    finally:
        os.kill(info["pid"], signal.SIGCONT)
        stop_server(home)
    assert res.returncode == 1
    assert f"is stopped (SIGSTOP or a debugger); resume it with: kill -CONT {info['pid']}" \
        in res.stderr
