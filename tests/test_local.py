"""The local executor on its own: results, task errors, crashes, timeouts, cancel."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from local_jobs import collect, job, wait_file, wait_gone, wait_state

from owl.executor import Job
from owl.local import LocalExecutor
from owl.model import FailureClass
from owl.tasklog import MAX_ERROR_CHARS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalExecutor]:
    # spawned workers start with the parent's sys.path
    monkeypatch.syspath_prepend(str(Path(__file__).with_name("helpers")))
    ex = LocalExecutor(2)
    yield ex
    ex.close()


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


SLEEP_ARGV = ("sh", "-c", "echo $$ > sleep.pid; exec sleep 3600")


def test_timeout_kills_the_whole_argv_command(executor: LocalExecutor, tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "", 1, timeout=1.0, argv=SLEEP_ARGV)])
    pid = wait_file(tmp_path / "out1" / "sleep.pid")
    [out] = collect(executor, 1, timeout=15)
    assert out.failure is FailureClass.TIMEOUT
    assert wait_gone(pid), "the argv command outlived its timeout"


def test_timeout_kills_what_a_python_task_started(executor: LocalExecutor,
                                                  tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:spawn_child", 1, timeout=1.0)])
    child = wait_file(tmp_path / "out1" / "child.pid")
    [out] = collect(executor, 1, timeout=15)
    assert out.failure is FailureClass.TIMEOUT
    assert wait_gone(child), "the task's Popen child outlived the timeout"


def test_a_finished_task_leaves_nothing_running(executor: LocalExecutor,
                                                tmp_path: Path) -> None:
    spec = job(tmp_path, "owl_testtasks:spawn_child", 1)
    spec = Job(spec=replace(spec.spec, params={"wait": False}), resources=spec.resources)
    executor.submit([spec])
    [out] = collect(executor, 1)
    assert out.ok
    assert wait_gone(int(out.outputs["child"])), "a finished task's child was left running"


def test_pause_stops_the_argv_command_and_resume_continues_it(executor: LocalExecutor,
                                                               tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "", 1, argv=SLEEP_ARGV)])
    pid = wait_file(tmp_path / "out1" / "sleep.pid")
    executor.pause("ds1", "s", 1)
    assert wait_state(pid, "T")
    executor.resume("ds1", "s", 1)
    assert wait_state(pid, "S")
    executor.cancel("ds1", "s", 1)
    assert wait_gone(pid)


def test_close_kills_running_tasks_and_their_children(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).with_name("helpers")))
    ex = LocalExecutor(1)
    ex.submit([job(tmp_path, "owl_testtasks:spawn_child", 1)])
    child = wait_file(tmp_path / "out1" / "child.pid")
    ex.close()
    assert wait_gone(child)


def test_an_idle_worker_killed_from_outside_is_replaced(executor: LocalExecutor,
                                                        tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:record", 1),
                     job(tmp_path, "owl_testtasks:record", 2)])
    pids = {o.outputs["pid"] for o in collect(executor, 2)}
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for pid in pids:
        assert wait_gone(pid)
    executor.submit([job(tmp_path, "owl_testtasks:record", 3),
                     job(tmp_path, "owl_testtasks:record", 4)])
    got = collect(executor, 2)
    assert [o.ok for o in got] == [True, True] and not pids & {o.outputs["pid"] for o in got}


def test_a_worker_killed_before_it_reads_its_task_is_no_crash_of_the_task(
        executor: LocalExecutor, tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:record", 1)])
    [first] = collect(executor, 1)
    pid = first.outputs["pid"]
    os.kill(pid, signal.SIGSTOP)  # idle, stopped: the next spec waits unread in its pipe
    executor.submit([job(tmp_path, "owl_testtasks:record", 2)])
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    [out] = collect(executor, 1)
    assert out.ok and out.token == 2 and out.outputs["pid"] != pid, out.error


def test_a_worker_that_dies_after_reading_its_task_is_a_crash(executor: LocalExecutor,
                                                              tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:die", 1)])
    [out] = collect(executor, 1)
    assert not out.ok and out.failure is FailureClass.CRASH
    assert "exited with status 7" in out.error


@pytest.mark.parametrize(("task", "says"), [
    ("owl_testtasks:returns_int", "returned a int, not a mapping of outputs"),
    ("owl_testtasks:returns_nan", "non-finite number at outputs['stats']['mean']"),
    ("owl_testtasks:big_outputs", "the limit is 65536: write large results to files"),
])
def test_bad_results_are_clear_errors(executor: LocalExecutor, tmp_path: Path, task: str,
                                      says: str) -> None:
    executor.submit([job(tmp_path, task, 1)])
    [out] = collect(executor, 1)
    assert not out.ok and out.failure is FailureClass.ERROR
    assert says in out.error


def test_a_huge_error_message_is_cut_and_kept_in_a_file(executor: LocalExecutor,
                                                        tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:big_error", 1)])
    [out] = collect(executor, 1)
    assert len(out.error) < MAX_ERROR_CHARS + 300
    full = tmp_path / "out1" / ".owl" / "error.txt"
    assert f"the full text is in {full}" in out.error
    assert "y" * 100_000 in full.read_text()
    assert len(out.traceback) < 40_000


def test_task_output_streams_to_per_attempt_log_files(executor: LocalExecutor,
                                                      tmp_path: Path) -> None:
    spec = job(tmp_path, "owl_testtasks:chatty", 1)
    executor.submit([Job(spec=replace(spec.spec, params={"fail": True}),
                         resources=spec.resources)])
    [out] = collect(executor, 1)
    logs = tmp_path / "out1" / ".owl"
    assert (logs / "attempt").read_text().strip() == "1"
    assert (logs / "stdout.log").read_text() == "hello from stdout\nchild says hi\n"
    assert "trouble on stderr" in (logs / "stderr.log").read_text()
    assert not out.ok and "trouble on stderr" in out.log_tail


def test_a_silent_task_leaves_no_log_directory_and_a_chatty_one_after_it_its_own(
        executor: LocalExecutor, tmp_path: Path) -> None:
    executor.submit([job(tmp_path, "owl_testtasks:silent", 1)])
    assert collect(executor, 1)[0].ok
    assert not (tmp_path / "out1").exists()  # no output dir, no .owl: nothing was written
    chatty = job(tmp_path, "owl_testtasks:chatty", 2)
    executor.submit([chatty, job(tmp_path, "owl_testtasks:silent", 3)])
    assert all(o.ok for o in collect(executor, 2))
    executor.submit([job(tmp_path, "owl_testtasks:silent", 4),
                     job(tmp_path, "owl_testtasks:silent", 5)])
    assert all(o.ok for o in collect(executor, 2))
    logs = tmp_path / "out2" / ".owl"
    assert (logs / "stdout.log").read_text() == "hello from stdout\nchild says hi\n"
    assert (logs / "stderr.log").read_text() == "trouble on stderr\n"
    # the worker that ran the chatty task started fresh files: later tasks kept none
    assert not any((tmp_path / f"out{t}").exists() for t in (3, 4, 5))


@pytest.mark.parametrize(("task", "timeout", "said"), [
    ("owl_testtasks:print_then_die", 30.0, ("last words of ds1\n", "dying now\n")),
    ("owl_testtasks:print_then_hang", 1.0, ("working on ds1\n", None)),
])
def test_what_a_crashed_or_timed_out_task_printed_is_kept(
        executor: LocalExecutor, tmp_path: Path, task: str, timeout: float,
        said: tuple[str, str | None]) -> None:
    # both workers up first: a timeout counts from the send, a worker's start-up included
    executor.submit([job(tmp_path, "owl_testtasks:silent", 7),
                     job(tmp_path, "owl_testtasks:silent", 8)])
    collect(executor, 2)
    executor.submit([job(tmp_path, task, 1, timeout=timeout)])
    [out] = collect(executor, 1, timeout=10)
    assert out.failure in (FailureClass.CRASH, FailureClass.TIMEOUT)
    logs = tmp_path / "out1" / ".owl"
    assert (logs / "attempt").read_text().strip() == "1"
    assert (logs / "stdout.log").read_text() == said[0]
    assert (logs / "stderr.log").exists() == (said[1] is not None)
    if said[1] is not None:
        assert (logs / "stderr.log").read_text() == said[1]


def test_each_attempt_reports_its_own_peak_memory_in_a_reused_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).with_name("helpers")))
    ex = LocalExecutor(1)
    try:
        big = job(tmp_path, "owl_testtasks:allocate", 1)
        ex.submit([Job(spec=replace(big.spec, params={"mb": 200}), resources=big.resources)])
        [first] = collect(ex, 1)
        ex.submit([job(tmp_path, "owl_testtasks:silent", 2)])
        [second] = collect(ex, 1)
    finally:
        ex.close()
    assert first.provenance is not None and second.provenance is not None
    peak_kb = [o.provenance.item["mem"] for o in (first, second)]  # type: ignore[union-attr]
    assert peak_kb[0] > 200 * 1024 > peak_kb[1] + 100 * 1024, peak_kb


def test_the_workers_capture_files_go_with_them(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).with_name("helpers")))
    root = tmp_path / "capture"
    ex = LocalExecutor(2, capture_root=root)
    try:
        ex.submit([job(tmp_path, "owl_testtasks:die", 1)])
        collect(ex, 1)
        ex.submit([job(tmp_path, "owl_testtasks:silent", 2),
                   job(tmp_path, "owl_testtasks:silent", 3)])
        collect(ex, 2)
        assert len(list(root.iterdir())) == 2  # the dead worker's files went with it
    finally:
        ex.close()
    assert list(root.iterdir()) == []


def test_capture_files_left_by_a_killed_agent_of_this_host_are_removed(
        tmp_path: Path) -> None:
    import socket
    import subprocess

    root = tmp_path / "capture"
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    host = socket.gethostname()
    stale = root / f"{host}-{gone.pid}-w1"
    other_host = root / f"elsewhere-{gone.pid}-w1"
    alive = root / f"{host}-{os.getpid()}-w9"
    for d in (stale, other_host, alive):
        d.mkdir(parents=True)
    ex = LocalExecutor(1, capture_root=root)
    ex.close()
    assert not stale.exists() and other_host.exists() and alive.exists()


def test_an_argv_task_printing_300_mb_is_not_held_in_memory(executor: LocalExecutor,
                                                            tmp_path: Path) -> None:
    argv = ("python3", "-c", "import sys\nfor _ in range(300): sys.stdout.write('x' * 2**20)")
    executor.submit([job(tmp_path, "", 1, argv=argv)])
    [out] = collect(executor, 1, timeout=60)
    assert out.ok, out.error
    assert (tmp_path / "out1" / ".owl" / "stdout.log").stat().st_size == 300 * 2**20
    # the workers' peak resident memory (VmHWM, KiB) stayed far below the 300 MB printed
    for worker in executor._workers:
        status = Path(f"/proc/{worker.process.pid}/status").read_text()
        peak = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM")).split()[1])
        assert peak < 150 * 1024
