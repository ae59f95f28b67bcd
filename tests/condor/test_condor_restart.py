"""A condor agent killed with SIGKILL and restarted under its id: nothing runs twice.

Real agent processes on a real board; the schedd is the file-backed model of
``condor_fileschedd`` (real Submit expansion, real ClassAd constraints) and the test plays
the execute points, running each job's command line (``python -m owl.condor.job``). The
restart comes after every lease ran out, while the dead agent's heartbeat record still
lives: it must take the id over, adopt the jobs, renew their leases before its first reap,
and submit nothing again.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from condor_fileschedd import FileSchedd, end_finished_jobs, start_idle_jobs
from redis import Redis

from owl import queries
from owl.board import Board
from owl.server import ensure_server

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LEASE = 3.0  # heartbeat record: 10 s; the restart comes 4 s after the kill


@pytest.fixture
def process_board(embedded_home: Path) -> Any:
    url = ensure_server(embedded_home)
    board = Board(Redis.from_url(url, decode_responses=True), f"t{uuid.uuid4().hex[:12]}",
                  shards=4)
    yield url, board
    board.destroy()


def _done(board: Board) -> int:
    return sum(n for (_, _, state), n in queries.counts(board).items() if state == "done")


def test_sigkilled_agent_restarted_under_its_id_runs_nothing_twice(
        process_board: Any, tmp_path: Path, task_dir: Path) -> None:
    sys.path.insert(0, str(HERE))
    from condor_agent_proc import TEMPLATE

    url, board = process_board
    n = 12
    board.register_many(TEMPLATE, [(f"ds{i:02d}", "") for i in range(n)])
    schedd = FileSchedd(tmp_path / "schedd.json")
    running: dict[tuple[int, int], subprocess.Popen[bytes]] = {}
    ran: list[dict[str, Any]] = []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]))

    def agent(log: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / log, "wb") as out:
            return subprocess.Popen(
                [sys.executable, str(HERE / "condor_agent_proc.py"), url, board.name,
                 str(schedd.path), str(tmp_path), str(task_dir), "ap1-heavy", str(LEASE)],
                env=env, stdout=out, stderr=subprocess.STDOUT)

    def pump(until: Callable[[], bool], limit: float) -> None:
        end = time.monotonic() + limit
        while not until() and time.monotonic() < end:
            start_idle_jobs(schedd, running, slots=4)
            end_finished_jobs(schedd, running, ran.append)
            time.sleep(0.05)

    first = agent("first.log")
    pump(lambda: _done(board) >= 4, 90)
    assert _done(board) >= 4, (tmp_path / "first.log").read_text()[-3000:]
    first.kill()
    first.wait()
    killed_at = time.monotonic()
    pump(lambda: time.monotonic() - killed_at > LEASE + 1, LEASE + 2)  # every lease runs out
    assert "ap1-heavy" in [a["id"] for a in queries.agents(board)]  # its heartbeat lives on

    second = agent("second.log")
    try:
        pump(lambda: _done(board) == n or second.poll() is not None, 120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    log = (tmp_path / "second.log").read_text()
    assert "taking over agent id 'ap1-heavy'" in log and "is gone" in log, log[-3000:]
    items = [ds.items[0] for ds in (queries.dataset(board, f"ds{i:02d}") for i in range(n))]
    assert [(i.state, i.attempts) for i in items] == [("done", 1)] * n, log[-3000:]
    submitted = [(item["owl_dataset"], item["owl_token"])
                 for _, batch in schedd.submitted for item in batch]
    assert len(submitted) == n and len(set(submitted)) == n  # no token submitted twice
    assert collections.Counter(ad["OwlDataset"] for ad in ran) == {
        f"ds{i:02d}": 1 for i in range(n)}  # no dataset ran twice
    assert "lease_expired" not in log
