"""Whole ``owl agent`` processes on a real HTCondor pool (``-m condor``).

A condor agent killed with SIGKILL and restarted at once under its id (200 items of 3 s,
killed after 54 are done): nothing runs twice and no token is submitted twice. The README
recipe for the demo's heavy stage on Condor, run as written. Skipped without a pool (and
as root); ``test_condor_restart.py`` runs the restart scenario against the schedd model in
the default suite.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from condor_pool import POOL, condor_lines

from owl import queries
from owl.board import Board
from owl.demo_tasks import make_demo_frames
from owl.resources import pipelines_dir
from owl.template_loader import load_template

pytestmark = POOL

REPO = Path(__file__).resolve().parents[2]
SLOW3 = """
import time


def slow3(ctx):
    time.sleep(3)
    return {"dataset": ctx.dataset}
"""
TEMPLATE = """name: poolheavy
version: '1'
stages:
  a:
    task: owltask_pool:slow3
    executor: condor
    resources: {cpus: 1, memory: 128MB, disk: 10MB}
"""


@pytest.fixture
def pool_env(redis_url: str, board: Board, tmp_path: Path,
             task_dir: Path) -> Iterator[dict[str, str]]:
    (task_dir / "owltask_pool.py").write_text(SLOW3)
    pipes = tmp_path / "pipes"
    pipes.mkdir()
    (pipes / "poolheavy.yaml").write_text(TEMPLATE)
    env = {**os.environ, "OWL_REDIS_URL": redis_url, "OWL_BOARD": board.name,
           "OWL_HOME": str(tmp_path / "home"), "OWL_PIPELINES": str(pipes),
           "OWL_CONDOR_SPOOL": str(tmp_path / "spool"), "OWL_CONDOR_RECONCILE": "20",
           "PYTHONPATH": os.pathsep.join([str(REPO), str(task_dir)])}
    yield env
    subprocess.run(["condor_rm", "-constraint", f'OwlBoard == "{board.name}"'],
                   capture_output=True, timeout=120, check=False)


def _agent(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "owl", "agent", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(until: Callable[[], bool], limit: float, what: str) -> None:
    end = time.monotonic() + limit
    while not until():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(1)


def _done(board: Board) -> int:
    return sum(n for (_, _, state), n in queries.counts(board).items() if state == "done")


def _jobs_of(board: Board) -> list[tuple[str, int]]:
    """(dataset, token) of every job of the board, queued or in the history."""
    constraint = f'OwlBoard == "{board.name}"'
    lines = (condor_lines("condor_q", "-constraint", constraint, "-af", "OwlDataset",
                          "OwlToken")
             + condor_lines("condor_history", "-constraint", constraint, "-af", "OwlDataset",
                            "OwlToken"))
    return [(d, int(t)) for d, t in (line.split() for line in lines)]


def test_sigkilled_agent_restarted_at_once_runs_nothing_twice(
        pool_env: dict[str, str], board: Board, tmp_path: Path) -> None:
    n = 200
    template = load_template(Path(pool_env["OWL_PIPELINES"]) / "poolheavy.yaml")
    board.register_many(template, [(f"ds{i:03d}", "") for i in range(n)])
    args = ("-t", "poolheavy", "--executor", "condor", "-c", str(n), "--id", "pool-restart")
    first = _agent(pool_env, tmp_path / "first.log", *args)
    _wait(lambda: _done(board) >= 54, 1200, "54 datasets done")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    second = _agent(pool_env, tmp_path / "second.log", *args)  # at once: within the lease
    try:
        _wait(lambda: _done(board) == n or second.poll() is not None, 2400, "every dataset")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(120)
    log = (tmp_path / "second.log").read_text()
    assert "taking over agent id 'pool-restart'" in log, log[-3000:]
    items = [queries.dataset(board, f"ds{i:03d}").items[0] for i in range(n)]
    assert collections.Counter((i.state, i.attempts) for i in items) == {("done", 1): n}
    jobs = _jobs_of(board)
    assert len(jobs) == len(set(jobs)) == n  # one job per dataset: no token submitted twice
    assert collections.Counter(d for d, _ in jobs) == {f"ds{i:03d}": 1 for i in range(n)}


def test_readme_demo_heavy_stage_on_condor(board: Board, redis_url: str,
                                           tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text()
    block = text.split("The demo's heavy stage on Condor, everything else local:", 1)[1]
    body = re.search(r"```sh\n(.*?)```", block, re.S)
    assert body is not None
    mkdir_sed = body[1].replace("\\\n", " ").splitlines()[0]
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "pipelines").symlink_to(pipelines_dir())
    subprocess.run(["sh", "-c", mkdir_sed], cwd=checkout, check=True, timeout=30)
    n = 6
    frames = make_demo_frames(tmp_path / "incoming", n)
    env = {**os.environ, "OWL_REDIS_URL": redis_url, "OWL_BOARD": board.name,
           "OWL_PIPELINES": str(checkout / "mypipes"), "OWL_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "owl", "ingest", str(frames[0].parent)], env=env,
                   check=True, timeout=120)
    agent = subprocess.run([sys.executable, "-m", "owl", "agent", "-t", "demo", "-c", "8",
                            "--burst"], env=env, capture_output=True, text=True, timeout=1800,
                           check=False)
    assert agent.returncode == 0, agent.stdout[-3000:] + agent.stderr[-3000:]
    counts = queries.counts(board)
    assert counts.get(("demo", "combine", "done")) == n
    stages = condor_lines("condor_history", "-constraint", f'OwlBoard == "{board.name}"',
                          "-af", "OwlStage")
    assert stages == ["calibrate"] * n  # only the heavy stage went to the pool
