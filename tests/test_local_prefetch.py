"""The local executor's prefetch: jobs queued in the workers' pipes beyond its workers.

A queued job starts as soon as its worker sends the previous result; one that is cancelled
or held before it starts never runs (until released); a worker that dies loses only its
running task; a hold on a running task moves the jobs queued behind it to another worker.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from local_jobs import collect, job, wait_file, wait_state

from owl.executor import Job
from owl.local import LocalExecutor
from owl.model import FailureClass

pytestmark = pytest.mark.timeout(60)


def slow(tmp_path: Path, token: int, sleep: float, **kw: float) -> Job:
    base = job(tmp_path, "owl_testtasks:slow_first", token, **kw)
    return replace(base, spec=replace(base.spec, params={"sleep": sleep}))


@pytest.fixture
def one_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalExecutor]:
    monkeypatch.syspath_prepend(str(Path(__file__).with_name("helpers")))
    ex = LocalExecutor(1, prefetch=2)
    yield ex
    ex.close()


def test_queued_jobs_run_in_order_on_one_worker(one_worker: LocalExecutor,
                                                tmp_path: Path) -> None:
    assert one_worker.free() == 3
    one_worker.submit([job(tmp_path, "owl_testtasks:record", t) for t in (1, 2, 3)])
    assert one_worker.free() == 0 and one_worker.active() == 3
    with pytest.raises(RuntimeError, match="only 0 places free"):
        one_worker.submit([job(tmp_path, "owl_testtasks:record", 4)])
    got = collect(one_worker, 3)
    assert [o.token for o in got] == [1, 2, 3] and all(o.ok for o in got)
    assert len({o.outputs["pid"] for o in got}) == 1  # one worker ran them all
    assert one_worker.free() == 3


def test_a_queued_job_cancelled_never_runs(one_worker: LocalExecutor, tmp_path: Path) -> None:
    one_worker.submit([slow(tmp_path, 1, 1.0), job(tmp_path, "owl_testtasks:record", 2),
                       job(tmp_path, "owl_testtasks:record", 3)])
    wait_file(tmp_path / "out1" / "started")
    one_worker.cancel("ds1", "s", 2)
    got = collect(one_worker, 2)
    assert [o.token for o in got] == [1, 3] and all(o.ok for o in got)
    assert one_worker.poll(0.3) == [] and not (tmp_path / "out2").exists()
    # the worker that skipped it is the one that ran the others: nothing was killed
    assert got[0].outputs["pid"] == got[1].outputs["pid"]


def test_a_queued_job_held_waits_until_released(one_worker: LocalExecutor,
                                                tmp_path: Path) -> None:
    one_worker.submit([slow(tmp_path, 1, 0.5), job(tmp_path, "owl_testtasks:record", 2)])
    one_worker.pause("ds1", "s", 2)
    [first] = collect(one_worker, 1)
    assert first.token == 1
    assert one_worker.poll(0.5) == [] and not (tmp_path / "out2").exists()
    assert one_worker.active() == 1  # still this executor's (its item is still leased)
    one_worker.resume("ds1", "s", 2)
    [second] = collect(one_worker, 1)
    assert second.token == 2 and second.ok


def test_a_worker_dying_loses_only_its_running_task(one_worker: LocalExecutor,
                                                    tmp_path: Path) -> None:
    one_worker.submit([job(tmp_path, "owl_testtasks:die", 1),
                       job(tmp_path, "owl_testtasks:record", 2),
                       job(tmp_path, "owl_testtasks:record", 3)])
    got = {o.token: o for o in collect(one_worker, 3)}
    assert got[1].failure is FailureClass.CRASH and "status 7" in got[1].error
    assert got[2].ok and got[3].ok, (got[2].error, got[3].error)


def test_a_worker_killed_while_its_jobs_wait_unread_charges_none(
        one_worker: LocalExecutor, tmp_path: Path) -> None:
    one_worker.submit([job(tmp_path, "owl_testtasks:record", 1)])
    [first] = collect(one_worker, 1)
    pid = first.outputs["pid"]
    os.kill(pid, signal.SIGSTOP)  # idle and stopped: what is sent now stays unread
    one_worker.submit([job(tmp_path, "owl_testtasks:record", t) for t in (2, 3)])
    os.kill(pid, signal.SIGKILL)
    got = collect(one_worker, 2)
    assert [o.token for o in got] == [2, 3] and all(o.ok for o in got), got
    assert pid not in {o.outputs["pid"] for o in got}


def test_a_hold_on_a_running_task_moves_the_queue_to_another_worker(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).with_name("helpers")))
    ex = LocalExecutor(2, prefetch=2)
    try:
        # token 1 sleeps on worker A with token 3 queued behind it; 2 runs on worker B
        ex.submit([slow(tmp_path, 1, 30.0), job(tmp_path, "owl_testtasks:record", 2),
                   job(tmp_path, "owl_testtasks:record", 3)])
        pid = wait_file(tmp_path / "out1" / "started")
        ex.pause("ds1", "s", 1)
        assert wait_state(pid, "T")
        got = collect(ex, 2)
        assert sorted(o.token for o in got) == [2, 3] and all(o.ok for o in got)
        assert pid not in {o.outputs["pid"] for o in got}
        ex.cancel("ds1", "s", 1)
    finally:
        ex.close()


def test_the_timeout_of_a_queued_job_starts_when_it_starts(one_worker: LocalExecutor,
                                                           tmp_path: Path) -> None:
    one_worker.submit([slow(tmp_path, 1, 1.5), job(tmp_path, "owl_testtasks:record", 2,
                                                    timeout=1.0)])
    got = collect(one_worker, 2)
    assert [(o.token, o.ok) for o in got] == [(1, True), (2, True)], [o.error for o in got]
    start = time.monotonic()
    one_worker.submit([job(tmp_path, "owl_testtasks:sleepy", 3, timeout=0.5)])
    [out] = collect(one_worker, 1, timeout=10)
    assert out.failure is FailureClass.TIMEOUT and time.monotonic() - start < 5


def test_a_negative_prefetch_is_refused() -> None:
    with pytest.raises(ValueError, match="prefetch must be 0 or more"):
        LocalExecutor(1, prefetch=-1)


def test_a_big_spec_waits_for_an_idle_worker_instead_of_blocking_the_agent(
        one_worker: LocalExecutor, tmp_path: Path) -> None:
    # a Linux pipe holds 64 KiB: three 40 kB specs queued behind a running task would
    # block the agent's write (and its lease renewals) until the task ended
    def big(token: int) -> Job:
        base = job(tmp_path, "owl_testtasks:record", token)
        return replace(base, spec=replace(base.spec, params={"blob": "x" * 40_000}))

    start = time.monotonic()
    one_worker.submit([slow(tmp_path, 1, 1.0), big(2), big(3)])
    assert time.monotonic() - start < 0.5 and one_worker.active() == 3
    got = collect(one_worker, 3)
    assert [(o.token, o.ok) for o in got] == [(1, True), (2, True), (3, True)], got
