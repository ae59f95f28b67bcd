"""Jobs for the local executor tests and waits on the processes they start."""

from __future__ import annotations

import time
from pathlib import Path

from owl.executor import Job, Resources
from owl.local import LocalExecutor
from owl.model import Outcome, TaskSpec


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


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def wait_state(pid: int, state: str, timeout: float = 5.0) -> bool:
    """Signals arrive asynchronously: wait for the process to show `state`."""
    end = time.monotonic() + timeout
    while proc_state(pid) != state and time.monotonic() < end:
        time.sleep(0.02)
    return proc_state(pid) == state


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    return not alive(pid)


def wait_file(path: Path, timeout: float = 20.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")
