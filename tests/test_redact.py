"""Passwords in Redis URLs are never printed: board status, errors, logs, child argv."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis

from owl.cli.main import build_cli
from owl.redact import redact
from owl.server import redis_server_binary

pytestmark = pytest.mark.timeout(120)

SECRET = "hunter2-s3cr@t"


@pytest.mark.parametrize(("text", "shown"), [
    ("redis://owl:hunter2@db:6379/3", "redis://owl:***@db:6379/3"),
    ("rediss://:p@ss:w@db.example:6380", "rediss://:***@db.example:6380"),
    ("connecting to redis://u:x@h:1. refused", "connecting to redis://u:***@h:1. refused"),
    ("redis://h:6379/0?password=topsecret&db=2", "redis://h:6379/0?password=***&db=2"),
    ("unix:///tmp/owl/redis.sock", "unix:///tmp/owl/redis.sock"),
    ("redis://db:6379/0", "redis://db:6379/0"),
    ("two: redis://a:b@h1 rediss://c:d@h2/1", "two: redis://a:***@h1 rediss://c:***@h2/1"),
])
def test_redact_masks_only_the_password(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[str]:
    """A real redis-server that requires a password (URL with the password in it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(redis_server_binary()), "--port", str(port), "--bind",
                             "127.0.0.1", "--requirepass", SECRET, "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL)
    url = f"redis://:{SECRET}@127.0.0.1:{port}/0".replace("@", "%40", 1)
    end = time.monotonic() + 10
    while True:
        try:
            Redis.from_url(url).ping()
            break
        except Exception:
            assert time.monotonic() < end, "redis-server did not start"
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    return {**os.environ, "OWL_REDIS_URL": url, "OWL_BOARD": "redact",
            "OWL_HOME": str(tmp_path / "home"), "OWL_PIPELINES": str(tmp_path)}


def test_board_status_and_errors_hide_the_password(tmp_path: Path, locked_redis: str) -> None:
    shown = CliRunner().invoke(build_cli(), ["board", "status"],
                               env=_env(tmp_path, locked_redis), catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "redis://:***@127.0.0.1:" in shown.output
    wrong = locked_redis.replace("hunter2", "wrongpw")
    failed = subprocess.run([sys.executable, "-m", "owl", "--log-json", "status"],
                            env=_env(tmp_path, wrong), capture_output=True, text=True,
                            timeout=60)
    assert failed.returncode == 1
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in failed.stderr
    for secret in ("wrongpw", "s3cr"):
        assert secret not in failed.stdout + failed.stderr


def test_demo_agents_get_the_url_outside_argv(tmp_path: Path, locked_redis: str) -> None:
    env = _env(tmp_path, locked_redis)
    proc = subprocess.Popen([sys.executable, "-m", "owl", "demo", "-n", "40", "-a", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        argvs: list[str] = []
        end = time.monotonic() + 60
        while not any(" agent " in a for a in argvs) and time.monotonic() < end:
            time.sleep(0.1)
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    except OSError:
                        continue
                    line = " ".join(a.decode(errors="replace") for a in argv)
                    if "redact" in line and "-m owl" in line:
                        argvs.append(line)
        assert any(" agent " in a for a in argvs), "the demo started no agent"
        assert not any("hunter2" in a or "s3cr" in a for a in argvs), argvs
    finally:
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "board 'redact' on redis://:***@127.0.0.1:" in out
    assert "hunter2" not in out
