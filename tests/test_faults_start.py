"""Outages at the two awkward moments of an agent's life, at the process level: inside its
adoption step at start (a proxy cuts the board exactly there), and while it restarts the
embedded server (each restarted server is killed again at once, several times)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cutting_proxy import CuttingProxy
from private_redis import PrivateRedis
from test_faults import ROOT, Run, base_env, item, wait_for

from owl import queries
from owl.board import Board
from owl.connect import connect
from owl.server import ensure_server, stop_server
from owl.template import Template
from owl.template_loader import load_template

pytestmark = pytest.mark.timeout(180)
HELPERS = Path(__file__).with_name("helpers")


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    r = Run(PrivateRedis(tmp_path / "redis"), tmp_path)
    yield r
    r.close()
    r.server.stop()


def test_an_outage_inside_adoption_at_start_is_waited_out(run: Run) -> None:
    run.server.start()
    board = run.board()
    board.register(run.template("adopt", "owl_testtasks:sleep_once", "{sleep: 2}"), "ds1")
    first = run.agent("first", "-t", "adopt", "-c", "1", "--id", "same-id")
    wait_for(lambda: item(board, "ds1").state == "running", what="the claim")
    os.killpg(first.pid, signal.SIGKILL)  # its worker dies with it; the item stays claimed
    first.wait()
    # the restarted agent's adoption starts by reading the leases (ZRANGE KEY 0 -1): the
    # board goes away at that very request, for 3 s
    proxy = CuttingProxy(run.server.port, b"leases\r\n$1\r\n0\r\n$2\r\n-1\r\n", 3.0).start()
    try:
        run.env["OWL_REDIS_URL"] = proxy.url
        again = run.agent("again", "-t", "adopt", "-c", "1", "--id", "same-id")
        wait_for(lambda: proxy.fired_at is not None, what="the cut inside adoption")
        wait_for(lambda: item(board, "ds1").state == "done", timeout=90,
                 what=f"the item done; agent log:\n{run.log('again')}")
        log = run.log("again")
        assert again.poll() is None, log
        assert log.index("agent.started") < log.index("board.unreachable") \
            < log.index("item.given_back"), log
        assert "Traceback" not in log
        done = item(board, "ds1")
        # the killed run was given back, not charged: one attempt, no failure recorded
        assert done.attempts == 1 and done.owner == "same-id"
        assert queries.failures(board, "ds1", "work") == []
    finally:
        proxy.stop()


def _template(pipelines: Path) -> Template:
    path = pipelines / "restart.yaml"
    path.write_text("name: restart\nversion: '1'\nstages:\n  work:\n"
                    "    task: owl_testtasks:sleep_once\n    params: {sleep: 8}\n"
                    "    retry: {max_attempts: 3}\n")
    return load_template(path)


def test_an_embedded_server_that_dies_again_right_after_its_restart(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    home = Path(env["OWL_HOME"])
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    env.update(OWL_PIPELINES=str(pipelines), OWL_LEASE="2", OWL_RESCAN="0.3",
               OWL_REDIS_TIMEOUT="2", PYTHONPATH=os.pathsep.join([str(HELPERS), str(ROOT)]))
    board = Board(connect(ensure_server(home)), env["OWL_BOARD"], shards=2)
    board.register(_template(pipelines), "ds1")
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen([sys.executable, "-m", "owl", "agent", "-t", "restart",
                                  "-c", "1"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=ROOT)
    try:
        wait_for(lambda: item(board, "ds1").state == "running", what="the claim")
        killed: set[int] = set()
        end = time.monotonic() + 4.0
        while time.monotonic() < end:  # every server the agent starts dies at once
            try:
                pid = int((home / "redis.pid").read_text().strip())
            except (OSError, ValueError):
                pid = 0
            if pid and pid not in killed:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        assert len(killed) >= 2, f"the agent restarted the server {len(killed) - 1} times"
        wait_for(lambda: agent.poll() is not None or "board.back" in log.read_text(),
                 timeout=60, what="the agent back on the board")
        assert agent.poll() is None, log.read_text()
        board = Board(connect(ensure_server(home)), env["OWL_BOARD"], shards=2)
        wait_for(lambda: item(board, "ds1").state == "done", timeout=60,
                 what=f"the item done; agent log:\n{log.read_text()}")
        assert item(board, "ds1").attempts == 1, log.read_text()
        text = log.read_text()
        assert agent.poll() is None and "Traceback" not in text
        assert "board.restart_failed" in text  # a restart failed, and the agent went on
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
        stop_server(home)
