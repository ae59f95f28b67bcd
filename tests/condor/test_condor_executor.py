"""CondorExecutor: tracking by real event logs, reconciliation and adoption.

Event logs are written in HTCondor's format and parsed by htcondor2.JobEventLog; the schedd
is the in-memory model of ``condor_memschedd`` (real Submit expansion, real ClassAd
constraints). Jobs "run" by executing the command line their expanded submit description
gives, as a real subprocess.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import condor_userlog as ul
import pytest
from condor_jobs import make_job
from condor_memschedd import MemorySchedd

from owl.condor.executor import CondorExecutor
from owl.condor.schedd import Action
from owl.condor.settings import CondorSettings
from owl.condor.spool import Spool, item_files
from owl.errors import ConfigError
from owl.model import FailureClass

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def schedd():
    return MemorySchedd()


@pytest.fixture
def make_executor(settings, schedd, clock, task_dir):
    s = CondorSettings(**{**settings.__dict__, "pythonpath": (str(REPO), str(task_dir))})

    def make(**overrides):
        return CondorExecutor(
            CondorSettings(**{**s.__dict__, **overrides}), schedd, clock=clock, sleep=clock.sleep
        )

    return make


def _log(settings) -> Path:
    return Spool(settings.spool_dir).event_log(settings.agent_id)


def run_like_condor(schedd: MemorySchedd, cluster: int, proc: int) -> int:
    """Run a queued job's command line as the starter would; returns its exit status."""
    ad = schedd.queue[(cluster, proc)]
    env_text = shlex.split(ad["environment"])[0]  # PYTHONPATH='a:b'
    name, _, value = env_text.partition("=")
    env = dict(os.environ, **{name: value})
    args = shlex.split(ad["arguments"])
    return subprocess.run(
        [ad["executable"], *args], env=env, capture_output=True, timeout=120, check=False
    ).returncode


def finish(schedd, settings, cluster, proc):
    """Run the job, log its termination and move it to the history."""
    code = run_like_condor(schedd, cluster, proc)
    ul.append(_log(settings), ul.execute(cluster, proc), ul.terminated(cluster, proc, code))
    schedd.leave(cluster, proc, JobStatus=4, ExitCode=code, ExitBySignal=False)
    return code


def test_submit_is_one_transaction_per_stage(tmp_path, make_executor, schedd):
    ex = make_executor()
    ex.submit(
        [
            make_job(tmp_path, "a", 1),
            make_job(tmp_path, "b", 2, stage="crrej"),
            make_job(tmp_path, "c", 3, memory_mb=2048),
        ]
    )
    assert len(schedd.submitted) == 2
    assert ex.active() == 3
    ads = sorted(schedd.queue.values(), key=lambda a: (a["ClusterId"], a["ProcId"]))
    assert [(a["ClusterId"], a["ProcId"], a["OwlDataset"], a["OwlStage"]) for a in ads] == [
        (100, 0, "a", "calib"),
        (100, 1, "c", "calib"),
        (101, 0, "b", "crrej"),
    ]
    assert [a["request_memory"] for a in ads] == [1024, 2048, 1024]
    assert {a["OwlBoard"] for a in ads} == {"hst"} and ads[1]["OwlToken"] == 3


def test_outcomes_from_the_event_log(tmp_path, make_executor, schedd, settings):
    ex = make_executor()
    ex.submit(
        [
            make_job(tmp_path, "good", 1),
            make_job(tmp_path, "bad", 2, task="owltask_condor:explode"),
            make_job(tmp_path, "killed", 3),
        ]
    )
    assert ex.poll(0) == []
    assert finish(schedd, settings, 100, 0) == 0
    assert finish(schedd, settings, 100, 1) == 1
    ul.append(_log(settings), ul.execute(100, 2), ul.killed(100, 2, signal=9))
    out = {o.dataset: o for o in ex.poll(0)}
    good, bad, killed = out["good"], out["bad"], out["killed"]
    assert good.ok and good.token == 1 and good.outputs["attempt"] == 1
    assert Path(good.outputs["flt"]).read_text() == "good 2"
    assert not bad.ok and bad.failure is FailureClass.ERROR
    assert bad.error == "ValueError: bad frame bad" and "raise ValueError" in bad.traceback
    assert not killed.ok and killed.failure is FailureClass.CRASH
    assert killed.error == "job 100.2 was killed by signal 9"
    assert ex.active() == 0
    base = Spool(settings.spool_dir).item_base("calib", "good", 1)
    assert item_files(base)[1].exists()  # kept until the next poll confirms delivery
    assert ex.poll(0) == []
    assert not any(p.exists() for p in item_files(base))


def test_memory_hold_fails_the_attempt_and_removes_the_job(
    tmp_path, make_executor, schedd, settings
):
    ex = make_executor()
    ex.submit([make_job(tmp_path, "big", 5, memory_mb=1024)])
    ul.append(_log(settings), ul.execute(100, 0), ul.memory_held(100, 0, limit_mb=1024))
    [outcome] = ex.poll(0)
    assert outcome.failure is FailureClass.MEMORY and not outcome.ok
    assert "cgroup memory limit of 1024 megabytes" in outcome.error
    assert "code 34" in outcome.error
    assert schedd.actions[-1][:2] == (Action.REMOVE, ["100.0"])
    ul.append(_log(settings), ul.aborted(100, 0))  # the removal's own event is not reported
    assert ex.poll(0) == []


def test_operator_hold_is_a_pause_not_a_failure(tmp_path, make_executor, schedd, settings):
    ex = make_executor()
    ex.submit([make_job(tmp_path, "x", 1)])
    assert ex.hold("x", "calib") == 1
    ul.append(_log(settings), ul.held(100, 0, "held by an owl operator", code=1))
    assert ex.poll(0) == []
    info = ex.job_info("x", "calib")
    assert info["state"] == "held" and info["hold_reason"] == "held by an owl operator"
    assert info["job"] == "100.0" and info["token"] == 1 and info["in_queue"]
    assert ex.release("x", "calib") == 1
    ul.append(_log(settings), ul.released(100, 0))
    finish(schedd, settings, 100, 0)
    [outcome] = ex.poll(0)
    assert outcome.ok


def test_removed_outside_owl(tmp_path, make_executor, schedd, settings):
    ex = make_executor()
    ex.submit([make_job(tmp_path, "x", 1)])
    ul.append(_log(settings), ul.aborted(100, 0))
    [outcome] = ex.poll(0)
    assert outcome.failure is FailureClass.REMOVED
    assert "via condor_rm (by user owl)" in outcome.error


def test_cancelled_job_is_removed_and_never_reported(tmp_path, make_executor, schedd, settings):
    ex = make_executor()
    ex.submit([make_job(tmp_path, "x", 1), make_job(tmp_path, "y", 2)])
    ex.cancel("x", "calib", 1)
    assert schedd.actions[-1][:2] == (Action.REMOVE, ["100.0"])
    assert ex.active() == 1
    ul.append(_log(settings), ul.aborted(100, 0))
    assert ex.poll(0) == []


def test_reconciliation_catches_what_the_log_missed(tmp_path, make_executor, schedd, clock):
    ex = make_executor(reconcile_interval=60.0)
    ex.submit([make_job(tmp_path, f"d{i}", i) for i in range(4)])
    run_like_condor(schedd, 100, 0)
    schedd.leave(100, 0, JobStatus=4, ExitCode=0, ExitBySignal=False)
    schedd.queue[(100, 1)].update(
        JobStatus=5,
        HoldReasonCode=34,
        HoldReasonSubCode=0,
        HoldReason="Job has gone over cgroup memory limit of 1024 megabytes.",
    )
    schedd.leave(100, 2, JobStatus=3, RemoveReason="via condor_rm (by user root)")
    assert ex.poll(0) == []  # no event in the log, and no reconciliation due yet
    clock.now += 61
    out = {o.dataset: o for o in ex.poll(0)}
    assert out["d0"].ok and out["d0"].outputs["flt"].endswith("flt.txt")
    assert out["d1"].failure is FailureClass.MEMORY
    assert out["d2"].failure is FailureClass.REMOVED and "by user root" in out["d2"].error
    assert set(out) == {"d0", "d1", "d2"} and ex.active() == 1
    assert any("member(ProcId" in q for q in schedd.queries)


def test_evicted_job_that_never_returns(tmp_path, make_executor, schedd, settings, clock):
    ex = make_executor()
    ex.submit([make_job(tmp_path, "x", 1)])
    ul.append(_log(settings), ul.execute(100, 0), ul.evicted(100, 0))
    assert ex.poll(0) == []
    del schedd.queue[(100, 0)]  # gone, and no history either
    clock.now += 61
    [outcome] = ex.poll(0)
    assert outcome.failure is FailureClass.EVICTED


def test_poll_waits_up_to_its_timeout(tmp_path, make_executor, clock):
    ex = make_executor(poll_interval=0.5)
    ex.submit([make_job(tmp_path, "x", 1)])
    start = clock.now
    assert ex.poll(2.0) == []
    assert clock.now - start == pytest.approx(2.0)


def test_restarted_agent_adopts_its_jobs(tmp_path, make_executor, schedd, settings):
    first = make_executor()
    first.submit([make_job(tmp_path, f"d{i}", 10 + i) for i in range(3)])
    ul.append(_log(settings), ul.execute(100, 0), ul.execute(100, 1))
    assert first.poll(0) == []
    finish(schedd, settings, 100, 2)  # finishes while the agent is away
    # The agent dies here: no close(), the last poll committed the log position.

    again = make_executor()
    held = {("d0", "calib", 10), ("d1", "calib", 11), ("d2", "calib", 12)}
    adopted = {a.dataset: a for a in again.adopt("hst", "ap1:4242", held)}
    assert {a: (j.token, j.job_id, j.state) for a, j in adopted.items()} == {
        "d0": (10, "100.0", "idle"),
        "d1": (11, "100.1", "idle"),
        "d2": (12, "100.2", "completed"),
    }
    again.submit([make_job(tmp_path, "d0", 10)])  # already running: not submitted twice
    assert len(schedd.submitted) == 1
    finish(schedd, settings, 100, 0)
    out = {o.dataset: o for o in again.poll(0)}
    assert set(out) == {"d0", "d2"} and all(o.ok for o in out.values())
    assert again.active() == 1


def test_outcomes_are_delivered_again_after_a_crash(tmp_path, make_executor, schedd, settings):
    first = make_executor()
    first.submit([make_job(tmp_path, "x", 1)])
    assert first.poll(0) == []
    finish(schedd, settings, 100, 0)
    assert [o.ok for o in first.poll(0)] == [True]
    # Crash before the next poll: the board never heard of that outcome.
    again = make_executor()
    schedd.history_ads.clear()  # only the event log can tell now
    schedd.queue[(100, 0)] = {
        "ClusterId": 100,
        "ProcId": 0,
        "JobStatus": 2,
        "OwlBoard": "hst",
        "OwlAgent": "ap1:4242",
        "OwlDataset": "x",
        "OwlStage": "calib",
        "OwlToken": 1,
        "OwlAttempt": 1,
        "OwlItem": str(Spool(settings.spool_dir).item_base("calib", "x", 1)),
    }
    again.adopt("hst", "ap1:4242")
    [outcome] = again.poll(0)
    assert outcome.ok and outcome.outputs["attempt"] == 1


def test_job_info_of_an_unknown_item(make_executor):
    assert make_executor().job_info("nothing", "calib") == {}


def test_big_batches_are_split_into_clusters(tmp_path, make_executor, schedd):
    ex = make_executor(max_batch=2)
    ex.submit([make_job(tmp_path, f"d{i}", i) for i in range(5)])
    assert [len(items) for _, items in schedd.submitted] == [2, 2, 1]
    assert sorted(schedd.queue)[-1] == (102, 0)
    assert schedd.queue[(101, 1)]["OwlDataset"] == "d3"


def test_adopt_ignores_jobs_that_ended_long_ago(tmp_path, make_executor, schedd, settings):
    first = make_executor()
    first.submit([make_job(tmp_path, "old", 1), make_job(tmp_path, "new", 2)])
    schedd.leave(100, 0, JobStatus=4, ExitCode=0, EnteredCurrentStatus=1_000_000_000)
    schedd.leave(100, 1, JobStatus=3, RemoveReason="via condor_rm")
    held = {("old", "calib", 1), ("new", "calib", 2)}
    adopted = make_executor().adopt("hst", "ap1:4242", held)
    assert [(a.dataset, a.state) for a in adopted] == [("new", "removed")]


def test_adopt_reads_history_only_for_held_items(tmp_path, make_executor, schedd, settings):
    first = make_executor()
    first.submit([make_job(tmp_path, f"d{i}", i + 1) for i in range(4)])
    for proc in range(3):  # three finished long ago as far as the board is concerned
        finish(schedd, settings, 100, proc)
    again = make_executor()
    adopted = again.adopt("hst", "ap1:4242", {("d2", "calib", 3), ("d3", "calib", 4)})
    # d3 is queued; d2 finished while the agent was away; d0 and d1 are no longer held
    assert sorted((a.dataset, a.state) for a in adopted) == [("d2", "completed"),
                                                              ("d3", "idle")]
    assert [o.dataset for o in again.poll(0)] == ["d2"]
    assert schedd.actions == []  # nothing removed again


def test_adopt_skips_the_history_when_every_held_item_is_queued(tmp_path, make_executor,
                                                               schedd):
    make_executor().submit([make_job(tmp_path, "d0", 1)])
    adopted = make_executor().adopt("hst", "ap1:4242", {("d0", "calib", 1)})
    assert [a.state for a in adopted] == ["idle"] and schedd.history_queries == []


def test_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("OWL_CONDOR_SPOOL", str(tmp_path / "sp"))
    monkeypatch.setenv("OWL_CONDOR_TRANSFER", "1")
    monkeypatch.setenv("OWL_CONDOR_SCHEDD", "ap2.example.org")
    s = CondorSettings.from_env("hst", "agent-1", tmp_path)
    assert (s.spool_dir, s.transfer_files, s.schedd_name) == (
        tmp_path / "sp",
        True,
        "ap2.example.org",
    )
    assert s.collector is None and s.reconcile_interval == 60.0
    monkeypatch.setenv("OWL_CONDOR_RECONCILE", "soon")
    with pytest.raises(ConfigError, match="OWL_CONDOR_RECONCILE"):
        CondorSettings.from_env("hst", "agent-1", tmp_path)


def test_nothing_to_wait_on(make_executor):
    assert make_executor().waitables() == []


def _queued(ex, tmp_path, schedd) -> None:
    """One idle job of the executor in the queue (it went at once: none was queued)."""
    ex.submit([make_job(tmp_path, "q", 99)])
    assert len(schedd.submitted) == 1


def _tokens(schedd) -> list[list[str]]:
    return [[i["owl_token"] for i in items] for _, items in schedd.submitted]


def test_jobs_ready_within_the_submit_window_share_a_transaction(tmp_path, make_executor,
                                                                 schedd, clock):
    ex = make_executor(submit_window=0.5, poll_interval=0.1)
    _queued(ex, tmp_path, schedd)
    ex.submit([make_job(tmp_path, "a", 1)])
    clock.now += 0.2
    ex.submit([make_job(tmp_path, "b", 2), make_job(tmp_path, "c", 3)])
    assert _tokens(schedd) == [["99"]] and ex.active() == 4
    assert ex.poll(0) == [] and _tokens(schedd) == [["99"]]
    assert ex.due() == pytest.approx(clock.now + 0.1)  # the next event-log look
    clock.now += 0.3
    ex.poll(0)
    assert _tokens(schedd) == [["99"], ["1", "2", "3"]]  # the window opened with "a"
    assert ex.due() == pytest.approx(clock.now + 0.1)


def test_jobs_go_at_once_while_the_queue_does_not_cover_the_running_jobs(
        tmp_path, make_executor, schedd):
    ex = make_executor(submit_window=60.0)
    ex.submit([make_job(tmp_path, "a", 1)])  # nothing of ours queued: at once
    ul.append(_log(ex.settings), ul.execute(100, 0))
    ex.poll(0)
    ex.submit([make_job(tmp_path, "b", 2)])  # one running, none idle: at once
    ex.submit([make_job(tmp_path, "c", 3)])  # one idle covers the one running: waits
    assert _tokens(schedd) == [["1"], ["2"]] and ex.active() == 3


def test_waiting_jobs_go_when_the_queue_no_longer_covers_the_running_jobs(
        tmp_path, make_executor, schedd):
    ex = make_executor(submit_window=60.0)
    _queued(ex, tmp_path, schedd)
    ex.submit([make_job(tmp_path, "a", 1)])
    assert _tokens(schedd) == [["99"]]
    ul.append(_log(ex.settings), ul.execute(100, 0))  # the idle job starts: none left idle
    ex.poll(0)
    assert _tokens(schedd) == [["99"], ["1"]]


def test_a_job_cancelled_in_the_window_is_never_submitted(tmp_path, make_executor, schedd):
    ex = make_executor(submit_window=0.5)
    _queued(ex, tmp_path, schedd)
    ex.submit([make_job(tmp_path, "a", 1), make_job(tmp_path, "b", 2)])
    ex.cancel("a", "calib", 1)
    ex.flush()
    assert [[i["owl_dataset"] for i in items] for _, items in schedd.submitted[1:]] == [['"b"']]
    assert schedd.actions == []


def test_a_full_window_is_submitted_at_once(tmp_path, make_executor, schedd):
    ex = make_executor(submit_window=60.0, max_batch=2)
    _queued(ex, tmp_path, schedd)
    ex.submit([make_job(tmp_path, "a", 1)])
    assert len(schedd.submitted) == 1
    ex.submit([make_job(tmp_path, "b", 2)])
    assert len(schedd.submitted) == 2 and ex.due() is not None


def test_close_submits_what_waits_for_the_window(tmp_path, make_executor, schedd):
    ex = make_executor(submit_window=60.0)
    _queued(ex, tmp_path, schedd)
    ex.submit([make_job(tmp_path, "a", 1)])
    assert len(schedd.submitted) == 1
    ex.close()  # the stopping agent leaves it running for its restart to adopt
    assert len(schedd.submitted) == 2
