"""Integration tests against a running HTCondor pool (``-m condor``).

They submit real jobs through the local schedd of CONDOR_CONFIG and need an execute point
that sees this machine's paths (a personal condor, or a shared filesystem). Skipped when
``condor_status`` does not answer.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from condor_jobs import make_job

from owl.condor.executor import CondorExecutor
from owl.condor.settings import CondorSettings
from owl.model import FailureClass, Outcome

REPO = Path(__file__).resolve().parents[2]


def _pool_problem() -> str | None:
    if shutil.which("condor_status") is None:
        return "condor_status is not installed"
    try:
        proc = subprocess.run(
            ["condor_status", "-schedd"], capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return "condor_status timed out"
    if proc.returncode != 0:
        return f"condor_status failed with the current CONDOR_CONFIG: {proc.stderr.strip()}"
    return None


_PROBLEM = _pool_problem()
pytestmark = [
    pytest.mark.condor,
    pytest.mark.skipif(_PROBLEM is not None, reason=f"no HTCondor pool: {_PROBLEM}"),
]

HOG = """
def hog(ctx):
    blocks = [bytearray(64 * 1024 * 1024) for _ in range(16)]  # 1 GiB, touched
    return {"n": len(blocks)}
"""


@pytest.fixture
def executor(tmp_path, task_dir):
    (task_dir / "owltask_hog.py").write_text(HOG)
    settings = CondorSettings(
        board="test-pool",
        agent_id=f"pytest-{time.time_ns()}",
        spool_dir=tmp_path / "spool",
        reconcile_interval=20.0,
        pythonpath=(str(REPO), str(task_dir)),
    )
    ex = CondorExecutor(settings)
    yield ex
    ex.close()


def _wait(ex: CondorExecutor, count: int, limit: float = 300.0) -> list[Outcome]:
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + limit
    while len(outcomes) < count and time.monotonic() < deadline:
        outcomes += ex.poll(5.0)
    return outcomes


def test_submit_run_complete(tmp_path, executor):
    executor.submit([make_job(tmp_path, f"d{i}", i + 1) for i in range(3)])
    outcomes = _wait(executor, 3)
    assert sorted(o.dataset for o in outcomes) == ["d0", "d1", "d2"]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]


def test_memory_hold(tmp_path, executor):
    executor.submit([make_job(tmp_path, "hog", 1, memory_mb=128, task="owltask_hog:hog")])
    [outcome] = _wait(executor, 1)
    if outcome.ok:
        pytest.skip("this pool does not enforce request_memory (no hold for memory)")
    assert outcome.failure is FailureClass.MEMORY, outcome.error


def test_killed_agent_adopts_its_jobs(tmp_path, executor):
    executor.submit([make_job(tmp_path, "slow", 1)])
    settings = executor.settings
    # The agent "dies" without closing; a new one with the same id takes over.
    again = CondorExecutor(settings)
    adopted = again.adopt(settings.board, settings.agent_id)
    assert [(a.dataset, a.token) for a in adopted] == [("slow", 1)]
    [outcome] = _wait(again, 1)
    assert outcome.ok and outcome.dataset == "slow"
    assert again.job_info("slow", "calib")["job"] == adopted[0].job_id
