"""Integration tests against a running HTCondor pool (``-m condor``).

They submit real jobs through the local schedd of CONDOR_CONFIG and need an execute point
that sees this machine's paths (a personal condor, or a shared filesystem). Skipped when
``condor_status`` does not answer, or when run as root (a schedd never lets root own a job).
See also ``test_pool_agent.py`` (whole agents on a pool).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from condor_jobs import make_job
from condor_pool import POOL, condor_lines

from owl.condor.executor import CondorExecutor
from owl.condor.settings import CondorSettings
from owl.model import FailureClass, Outcome

REPO = Path(__file__).resolve().parents[2]


pytestmark = POOL

HOG = """
import time


def hog(ctx):
    blocks = [b"x" * (64 * 1024 * 1024) for _ in range(16)]  # 1 GiB, every page written
    # Held a while: a pool without cgroup limits holds through its HOLD_IF_MEMORY_EXCEEDED
    # policy, which sees the job's memory in the starter's next update (seconds later).
    time.sleep(60)
    return {"n": len(blocks)}


def sleepy(ctx):
    time.sleep(600)
    return {}
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
    executor.flush()  # out of the submit window: the job is on the schedd
    settings = executor.settings
    # The agent "dies" without closing; a new one with the same id takes over.
    again = CondorExecutor(settings)
    adopted = again.adopt(settings.board, settings.agent_id)
    assert [(a.dataset, a.token) for a in adopted] == [("slow", 1)]
    [outcome] = _wait(again, 1)
    assert outcome.ok and outcome.dataset == "slow"
    assert again.job_info("slow", "calib")["job"] == adopted[0].job_id


def test_hold_and_remove_reasons_are_in_the_job_ad(tmp_path, executor):
    executor.submit([make_job(tmp_path, "held", 1, task="owltask_hog:sleepy")])
    executor.flush()
    [job] = [f"{c}.{p}" for c, p in executor._tracker.ids()]  # the test may look inside
    assert executor.hold("held", "calib", "owl pool test: held by an operator") == 1
    # The schedd appends who asked: "... (by user NAME)".
    [reason] = condor_lines("condor_q", job, "-af", "HoldReason")
    assert reason.startswith("owl pool test: held by an operator"), reason
    assert executor.job_info("held", "calib")["hold_reason"] == reason
    executor.cancel("held", "calib", 1)
    deadline = time.monotonic() + 120
    while condor_lines("condor_q", job, "-af", "ClusterId") and time.monotonic() < deadline:
        time.sleep(2)
    [reason] = condor_lines("condor_history", job, "-af", "RemoveReason")
    assert "owl: token 1 of held/calib fenced" in reason
