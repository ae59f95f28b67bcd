"""The embedded board server: sharing, concurrent start, crash durability, stale state.

Every test runs real redis-server processes in its own tmp_path home; the `home` fixture
stops whatever server a test left running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import owl
from owl.errors import ConfigError
from owl.server import ensure_server, redis_server_binary, server_info, stop_server
from owl.server_aof import cut_torn_tail

pytestmark = pytest.mark.timeout(60)

REPO = Path(owl.__file__).resolve().parent.parent
N = 2000
# The shape of an owl transition: one script changes a counter, a hash and a stream together.
TRANSITION = """
local n = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'item' .. n, ARGV[1])
redis.call('XADD', KEYS[3], '*', 'n', n)
return n
"""
REPORT_PID = """
import sys
import time
from pathlib import Path
from owl.server import ensure_server, server_info
home = Path(sys.argv[1])
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
ensure_server(home)
info = server_info(home)
print(info["pid"] if info else "none")
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "owl"
    yield path
    if path.is_dir():
        stop_server(path)


def server_pid(home: Path) -> int:
    info = server_info(home)
    assert info is not None, f"no server answers in {home}"
    return info["pid"]


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (killed, not yet reaped by init) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} survived SIGKILL"
        time.sleep(0.01)


def report_pids(home: Path, processes: int, start_at: float = 0.0) -> list[int]:
    """Run `processes` Python processes that each ensure the server and print its pid."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", REPORT_PID, str(home), str(start_at)]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) for _ in range(processes)
    ]
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=30)[0])
        finally:
            proc.kill()
            proc.wait()
    assert [proc.returncode for proc in procs] == [0] * processes, outputs
    return [int(out) for out in outputs]


def test_shared_by_processes_and_stopped_only_on_purpose(home: Path) -> None:
    # A CLI-like process starts the server and exits: the server must outlive it.
    [pid] = report_pids(home, 1)
    assert pid_alive(pid)
    url = ensure_server(home)
    assert url == f"unix://{home}/redis.sock"
    assert server_pid(home) == pid
    assert ensure_server(home) == url and server_pid(home) == pid

    assert report_pids(home, 1) == [pid] and server_pid(home) == pid

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("aof-use-rdb-preamble") == {"aof-use-rdb-preamble": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("port") == {"port": "0"}
    finally:
        client.close()
    info = server_info(home)
    assert info is not None and info["appendonly"] and info["appendfsync"] == "always"
    ensure_server(home, appendfsync="everysec")
    info = server_info(home)
    assert info is not None and info["appendfsync"] == "everysec" and info["pid"] == pid

    assert stop_server(home) is True
    assert not pid_alive(pid)
    assert server_info(home) is None
    assert not (home / "redis.sock").exists() and not (home / "redis.pid").exists()
    assert stop_server(home) is False


def test_concurrent_start_makes_one_server(home: Path) -> None:
    # The processes wait for a common instant so that their ensure_server calls overlap.
    pids = report_pids(home, 4, start_at=time.time() + 1.0)
    assert set(pids) == {server_pid(home)}
    log = (home / "redis.log").read_text()
    assert log.count("Redis is starting") == 1


@pytest.mark.parametrize("appendfsync", ["everysec", "always"])
def test_sigkill_loses_no_acknowledged_write(home: Path, appendfsync: str) -> None:
    url = ensure_server(home, appendfsync=appendfsync)
    client = redis.Redis.from_url(url, decode_responses=True)
    transition = client.register_script(TRANSITION)
    try:
        for i in range(N):
            assert client.incr("counter") == i + 1
            assert client.hset("hash", f"f{i}", i) == 1
            client.xadd("stream", {"i": i})
            assert transition(keys=["lua:n", "lua:items", "lua:log"], args=[i]) == i + 1
        pid = server_pid(home)
    finally:
        client.close()
    sigkill(pid)

    url = ensure_server(home)
    assert server_pid(home) != pid
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        assert client.get("counter") == str(N)
        assert client.hlen("hash") == N and client.hget("hash", f"f{N - 1}") == str(N - 1)
        assert client.xlen("stream") == N
        assert client.get("lua:n") == str(N)
        assert client.hlen("lua:items") == N and client.xlen("lua:log") == N
    finally:
        client.close()


def test_sigkill_mid_write_and_torn_aof_tail_restart(home: Path) -> None:
    url = ensure_server(home)
    pid = server_pid(home)
    client = redis.Redis.from_url(url, decode_responses=True)
    transition = client.register_script(TRANSITION)
    # Start from a rewritten file, so that the check of the torn tail also reads a preamble.
    transition(keys=["n", "items", "log"], args=["x"])
    client.bgrewriteaof()
    while client.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.01)
    acknowledged = 0
    killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        while True:
            acknowledged = transition(keys=["n", "items", "log"], args=["x"])
    except redis.ConnectionError:
        pass
    finally:
        killer.join()
        client.close()
    sigkill(pid)
    assert acknowledged > 0

    # A torn write leaves half a command, or a MULTI/EXEC block without its EXEC, at the end.
    with (home / "appendonly.aof").open("ab") as aof:
        aof.write(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nn\r\n$1\r\n0\r\n*3\r\n$3\r\nSE")

    client = redis.Redis.from_url(ensure_server(home), decode_responses=True)
    try:
        recovered = int(client.get("n") or 0)
        # The script in flight at the kill may have run without its reply arriving.
        assert acknowledged <= recovered <= acknowledged + 1
        assert client.hlen("items") == recovered and client.xlen("log") == recovered
        client.incr("n")
        second = server_pid(home)
    finally:
        client.close()
    sigkill(second)
    client = redis.Redis.from_url(ensure_server(home), decode_responses=True)
    try:
        # Redis 6.2 alone would have left an open MULTI in the file and lost this INCR.
        assert client.get("n") == str(recovered + 1)
    finally:
        client.close()
    assert "cut a torn tail" in (home / "redis.log").read_text()
    assert len(list(home.glob("appendonly.aof.torn-*"))) == 1


def test_stale_socket_and_pidfile_are_cleaned(home: Path) -> None:
    client = redis.Redis.from_url(ensure_server(home))
    try:
        client.set("survives", "yes")
    finally:
        client.close()
    killed = server_pid(home)
    sigkill(killed)
    assert (home / "redis.sock").exists() and (home / "redis.pid").exists()
    client = redis.Redis.from_url(ensure_server(home))
    try:
        assert client.get("survives") == b"yes"
    finally:
        client.close()
    assert server_pid(home) != killed

    # A pid file naming live unrelated processes (a reused pid), and a dead socket file.
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        for unrelated in (bystander.pid, os.getpid()):
            assert stop_server(home) is True
            (home / "redis.pid").write_text(f"{unrelated}\n")
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(str(home / "redis.sock"))
            ensure_server(home)
            assert server_pid(home) != unrelated
            assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_unusable_home_is_a_config_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain-file"
    plain.write_text("not a directory")
    for bad in (plain, plain / "owl"):
        with pytest.raises(ConfigError, match=str(bad)):
            ensure_server(bad)
    deep = tmp_path / ("d" * 120)
    with pytest.raises(ConfigError, match="too deep"):
        ensure_server(deep)
    with pytest.raises(ConfigError, match="appendfsync"):
        ensure_server(tmp_path / "owl", appendfsync="sometimes")


def test_corrupt_aof_names_home_and_quotes_log(home: Path) -> None:
    home.mkdir()
    (home / "appendonly.aof").write_text("this is not an append-only file\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=str(home)) as error:
        ensure_server(home, timeout=15)
    assert time.monotonic() - started < 5
    assert "Bad file format reading the append only file" in str(error.value)


SELECT_INCR = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"
OPEN_MULTI = b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nn\r\n$1\r\n0\r\n"


@pytest.mark.parametrize(
    ("tail", "cut"),
    [
        (b"", 0),
        (b"*3", 2),
        (b"*3\r\n", 4),
        (b"*3\r\n$3\r\nSE", 10),
        (OPEN_MULTI, len(OPEN_MULTI)),
        (OPEN_MULTI + b"*3\r\n$3\r\nSE", len(OPEN_MULTI) + 10),
        (b"GARBAGE\r\n" + SELECT_INCR, 0),
        (b"*3\r\n$3\r\nSETXX\r\n", 0),
    ],
)
def test_only_a_torn_tail_is_cut(tmp_path: Path, tail: bytes, cut: int) -> None:
    aof = tmp_path / "appendonly.aof"
    aof.write_bytes(SELECT_INCR + tail)
    log = tmp_path / "redis.log"
    assert cut_torn_tail(aof, redis_server_binary(), log, timeout=10) == cut
    assert aof.read_bytes() == SELECT_INCR + (tail if cut == 0 else b"")
    assert log.exists() == (cut > 0)


def test_corruption_after_a_crash_is_refused_not_cut(home: Path) -> None:
    client = redis.Redis.from_url(ensure_server(home))
    try:
        client.set("kept", "1")
    finally:
        client.close()
    sigkill(server_pid(home))
    with (home / "appendonly.aof").open("ab") as aof:
        aof.write(b"GARBAGE\r\n" + SELECT_INCR)
    size = (home / "appendonly.aof").stat().st_size
    with pytest.raises(ConfigError, match="Bad file format"):
        ensure_server(home, timeout=15)
    assert (home / "appendonly.aof").stat().st_size == size
