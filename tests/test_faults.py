"""Passing faults at the process level: a hung (SIGSTOPped) Redis, a full disk, a server
that restarts or stays down. Each test runs its own redis-server (tests/helpers/
private_redis.py) or its own embedded server, never touching a shared one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from private_redis import PrivateRedis

from owl import queries
from owl.board import Board
from owl.connect import connect
from owl.server import ensure_server, server_info, stop_server
from owl.template import Template
from owl.template_loader import load_template

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


HELPERS = Path(__file__).with_name("helpers")


class Run:
    """owl agents on a private server: the environment, the board, the agent processes."""

    def __init__(self, server: PrivateRedis, tmp: Path, board: str = "faults") -> None:
        pipelines = tmp / "pipelines"
        pipelines.mkdir(exist_ok=True)
        self.server = server
        self.tmp = tmp
        self.env = {**base_env(tmp), "OWL_REDIS_URL": server.url, "OWL_BOARD": board,
                    "OWL_PIPELINES": str(pipelines), "OWL_LEASE": "2", "OWL_RESCAN": "0.3",
                    "OWL_REDIS_TIMEOUT": "2",
                    "PYTHONPATH": os.pathsep.join([str(HELPERS), str(ROOT)])}
        self.procs: list[subprocess.Popen[bytes]] = []

    def template(self, name: str, task: str, params: str = "{}") -> Template:
        path = Path(self.env["OWL_PIPELINES"]) / f"{name}.yaml"
        path.write_text(f"name: {name}\nversion: '1'\nstages:\n  work:\n    task: {task}\n"
                        f"    params: {params}\n    retry: {{max_attempts: 3}}\n")
        return load_template(path)

    def board(self) -> Board:
        return Board(connect(self.server.url), self.env["OWL_BOARD"], shards=2)

    def agent(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115  # closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "owl", "agent", *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=ROOT)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def item(board: Board, ds: str) -> queries.Item:
    return next(i for i in queries.dataset(board, ds).items if i.stage == "work")


@pytest.fixture
def aof_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis", config=("--appendonly", "yes",
                                                      "--appendfsync", "always"))
    yield server
    server.stop()


@pytest.fixture
def run(aof_server: PrivateRedis, tmp_path: Path) -> Iterator[Run]:
    r = Run(aof_server, tmp_path)
    yield r
    r.close()


def test_an_agent_started_before_its_redis_waits_for_it(run: Run) -> None:
    run.server.start()
    run.board().register(run.template("early", "owl_testtasks:record"), "ds1")
    run.server.stop()
    a = run.agent("a", "-t", "early", "--burst")
    wait_for(lambda: "board.unreachable" in run.log("a"), what="the agent to say it waits")
    assert a.poll() is None, run.log("a")
    run.server.start()
    assert a.wait(60) == 0, run.log("a")
    assert item(run.board(), "ds1").state == "done"


def test_an_outage_longer_than_the_lease_expires_no_live_item(run: Run) -> None:
    run.server.start()
    board = run.board()
    board.register(run.template("outage", "owl_testtasks:sleep_once", "{sleep: 6}"), "ds1")
    a = run.agent("a", "-t", "outage", "-c", "1")
    b = run.agent("b", "-t", "outage", "-c", "1")
    wait_for(lambda: item(board, "ds1").state == "running", what="the claim")
    run.server.kill()
    time.sleep(4.0)  # twice the lease: every deadline on the board has passed
    run.server.start()
    board = run.board()
    wait_for(lambda: item(board, "ds1").state == "done", timeout=60, what="the item done")
    assert item(board, "ds1").attempts == 1
    assert queries.failures(board, "ds1", "work") == []
    assert a.poll() is None and b.poll() is None


def test_an_agent_stopped_during_an_outage_exits_cleanly(run: Run) -> None:
    run.server.start()
    board = run.board()
    board.register(run.template("stopping", "owl_testtasks:sleepy"), "ds1")
    a = run.agent("a", "-t", "stopping", "-c", "1", "--grace", "0.5")
    wait_for(lambda: item(board, "ds1").state == "running", what="the claim")
    run.server.kill()
    a.send_signal(signal.SIGTERM)
    assert a.wait(60) == 0, run.log("a")
    assert "item.not_given_back" in run.log("a") and "Traceback" not in run.log("a")


def test_a_full_disk_pauses_agents_and_read_commands_still_work(tmp_path: Path) -> None:
    # MISCONF the way a full disk causes it: a snapshot that cannot be written, with save
    # points configured (stop-writes-on-bgsave-error is on by default).
    server = PrivateRedis(tmp_path / "redis").start()
    r = Run(server, tmp_path)
    try:
        board = r.board()
        board.register(r.template("full", "owl_testtasks:sleep_once", "{sleep: 4}"), "ds1")
        a = r.agent("a", "-t", "full", "-c", "1")
        wait_for(lambda: item(board, "ds1").state == "running", what="the claim")
        admin = server.client()
        admin.config_set("save", "3600 1")
        gone = tmp_path / "gone"
        gone.mkdir()
        admin.config_set("dir", str(gone))
        gone.rmdir()  # the snapshot cannot be created there, even by root
        admin.bgsave()
        wait_for(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "err",
                 what="the failed snapshot")
        wait_for(lambda: "board.refusing_writes" in r.log("a"), what="the agent to pause")
        status = owl(r.env, "status", "--json")
        assert status.returncode == 0, status.stderr  # reading writes nothing
        assert json.loads(status.stdout)["full"]["work"]["running"] == 1
        hold = owl(r.env, "hold", "ds1")
        assert hold.returncode == 1 and "cannot write its data to disk" in hold.stderr
        assert "Traceback" not in hold.stderr
        assert a.poll() is None
        admin.config_set("dir", str(server.root))
        admin.bgsave()
        wait_for(lambda: item(board, "ds1").state == "done", timeout=60, what="resumed work")
        assert item(board, "ds1").attempts == 1 and a.poll() is None
        assert "Traceback" not in r.log("a")
    finally:
        r.close()
        server.stop()
