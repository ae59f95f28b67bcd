"""The local executor on its own: results, task errors, crashes, timeouts, cancel."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from owl.executor import Job, Resources
from owl.local import LocalExecutor
from owl.model import FailureClass, Outcome, TaskSpec

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalExecutor]:
    # spawned workers start with the parent's sys.path
    monkeypatch.syspath_prepend(str(Path(__file__).with_name("helpers")))
    ex = LocalExecutor(2)
    yield ex
    ex.close()


def job(tmp_path: Path, task: str, token: int = 1, timeout: float = 30.0,
        argv: tuple[str, ...] | None = None) -> Job:
    spec = TaskSpec(dataset="ds1", stage="s", template="t", token=token, attempt=1,
                    task=None if argv else task, argv=argv, input_path="", inputs={},
                    output_dir=str(tmp_path / f"out{token}"), timeout=timeout)
    return Job(spec=spec, resources=Resources())


def collect(ex: LocalExecutor, n: int, timeout: float = 30.0) -> list[Outcome]:
    got: list[Outcome] = []
    end = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        got += ex.poll(0.2)
    return got


def test_result_and_task_error(executor: LocalExecutor, tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:record", 1),
                     job(tmp_path, "owl_testtasks:always_crash", 2)])
    got = {o.token: o for o in collect(executor, 2)}
    assert got[1].ok and got[1].outputs["token"] == 1
    assert got[1].outputs["pid"] != os.getpid()  # ran in a child process
    assert not got[2].ok and got[2].failure is FailureClass.ERROR
    assert "calibration exploded" in got[2].error and "Traceback" in got[2].traceback


def test_crashed_worker_is_reported_and_replaced(executor: LocalExecutor,
                                                 tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:die", 1)])
    [out] = collect(executor, 1)
    assert out.failure is FailureClass.CRASH and "status 7" in out.error
    executor.submit([job(tmp_path, "owl_testtasks:record", 2)])
    assert collect(executor, 1)[0].ok


def test_timeout_kills_the_task(executor: LocalExecutor, tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:sleepy", 1, timeout=0.5)])
    [out] = collect(executor, 1, timeout=10)
    assert out.failure is FailureClass.TIMEOUT and out.seconds < 5


def test_cancel_reports_nothing(executor: LocalExecutor, tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:sleepy", 1)])
    executor.cancel("ds1", "s", 1)
    assert executor.poll(0.3) == [] and executor.active() == 0


def test_bad_task_reference_is_a_clear_error(executor: LocalExecutor, tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "no_such_module:fn", 1)])
    [out] = collect(executor, 1)
    assert "cannot import module 'no_such_module'" in out.error


def test_argv_task_runs_without_shell(executor: LocalExecutor, tmp_path: Path) -> None:
    argv = ("python3", "-c", "import sys; open('made.txt', 'w').write(sys.argv[1])",
            "{dataset};echo no-shell")
    executor.submit([job(tmp_path, "", 1, argv=argv)])
    [out] = collect(executor, 1)
    assert out.ok and out.outputs == {"files": ["made.txt"]}
    assert (tmp_path / "out1" / "made.txt").read_text() == "ds1;echo no-shell"
