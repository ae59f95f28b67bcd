"""Fault injection on the embedded board: the redis-server is SIGKILLed in the middle of a
run; agents restart it and every item still ends done, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis

from owl import queries
from owl.board import Board
from owl.server import ensure_server, server_info, stop_server
from owl.template_loader import load_template

pytestmark = pytest.mark.timeout(180)
HELPERS = Path(__file__).with_name("helpers")
N = 60


def test_agents_survive_a_sigkilled_embedded_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    path = pipelines / "chaos.yaml"
    path.write_text("name: chaos\nversion: '1'\nstages:\n"
                    + "".join(f"  s{i}:\n    task: owl_testtasks:short\n"
                              + (f"    after: s{i - 1}\n" if i else "") for i in range(3)))
    template = load_template(path)
    url = ensure_server(home)
    try:
        board = Board(Redis.from_url(url, decode_responses=True), "chaos", shards=4)
        board.register_many(template, [(f"ds{i:03d}", "") for i in range(N)])
        env = {**os.environ, "OWL_HOME": str(home), "OWL_BOARD": "chaos",
               "OWL_PIPELINES": str(pipelines), "OWL_RESCAN": "0.5",
               "PYTHONPATH": os.pathsep.join([str(HELPERS), str(Path(__file__).parents[1])])}
        env.pop("OWL_REDIS_URL", None)
        agents = [subprocess.Popen([sys.executable, "-m", "owl", "agent", "-t", "chaos", "-c",
                                    "2", "--burst"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) for _ in range(2)]

        def done() -> int:
            return sum(n for (_, _, st), n in queries.counts(board).items() if st == "done")

        end = time.monotonic() + 60
        while done() < N // 2:
            assert time.monotonic() < end, "the run did not get going"
            time.sleep(0.05)
        info = server_info(home)
        assert info is not None
        os.kill(info["pid"], signal.SIGKILL)
        for a in agents:
            assert a.wait(120) == 0
        board = Board(Redis.from_url(ensure_server(home), decode_responses=True), "chaos")
        assert done() == 3 * N
        done_events: dict[tuple[str, str], int] = {}
        for e in queries.events(board, count=100000):
            if e["to"] == "done":
                key = (e["ds"], e["st"])
                done_events[key] = done_events.get(key, 0) + 1
        assert len(done_events) == 3 * N and set(done_events.values()) == {1}
        new = server_info(home)
        assert new is not None and new["pid"] != info["pid"]  # an agent restarted it
    finally:
        stop_server(home)
