"""Taking over the id of a dead agent: what a heartbeat record proves about its process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from owl import queries
from owl.board import Board
from owl.errors import ConfigError
from owl.liveness import check_agent_id, identity


def _record(**changes: object) -> dict[str, object]:
    return {"id": "ap1-heavy", **identity(), **changes}


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_agent_keeps_its_id() -> None:
    with pytest.raises(ConfigError, match=r"already running on board 'b'.*another --id"):
        check_agent_id([_record()], "ap1-heavy", "b")


def test_another_hosts_agent_keeps_its_id_until_its_record_expires() -> None:
    with pytest.raises(ConfigError, match="already running"):
        check_agent_id([_record(host="elsewhere.example.org", pid=_exited_pid())],
                       "ap1-heavy", "b")


@pytest.mark.parametrize(("changes", "why"), [
    ({"pid": "exited"}, "is gone"),
    ({"boot": "another-boot"}, "rebooted since"),
    ({"pstart": 1}, "is another process now"),
])
def test_a_dead_agents_id_is_taken_over(changes: dict[str, object], why: str) -> None:
    if changes.get("pid") == "exited":
        changes = {"pid": _exited_pid()}
    note = check_agent_id([_record(**changes)], "ap1-heavy", "b")
    assert note is not None and note.startswith("taking over agent id 'ap1-heavy'")
    assert why in note


def test_a_killed_agent_not_yet_reaped_is_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    rec = _record(pid=proc.pid, pstart=0)
    proc.kill()
    note = None
    try:
        for _ in range(200):  # until the kernel has made it a zombie
            with contextlib.suppress(ConfigError):
                note = check_agent_id([rec], "ap1-heavy", "b")
            if note:
                break
            time.sleep(0.01)
        assert note is not None and "has exited" in note
    finally:
        proc.wait()


def test_other_ids_do_not_matter() -> None:
    assert check_agent_id([_record(id="other")], "ap1-heavy", "b") is None


def _owl_agent(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "owl", "agent", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def test_owl_agent_takes_over_the_id_of_a_killed_agent(owl_env: dict[str, str], board: Board,
                                                       tmp_path: Path) -> None:
    pipes = Path(owl_env["OWL_PIPELINES"].split(os.pathsep)[0])
    (pipes / "idle.yaml").write_text("name: idle\nstages:\n  a: {task: owl.bench_tasks:noop}\n")
    env = {**owl_env, "OWL_LEASE": "2"}
    args = ("-t", "idle", "--id", "ap1-idle")
    first = _owl_agent(env, tmp_path / "first.log", *args)
    try:
        end = time.monotonic() + 60
        while "ap1-idle" not in [a["id"] for a in queries.agents(board)]:
            assert time.monotonic() < end and first.poll() is None, (
                (tmp_path / "first.log").read_text())
            time.sleep(0.1)
        live = subprocess.run([sys.executable, "-m", "owl", "agent", *args, "--burst"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert live.returncode != 0
        assert "agent 'ap1-idle' is already running" in live.stderr + live.stdout
    finally:
        first.kill()
        first.wait()
    assert "ap1-idle" in [a["id"] for a in queries.agents(board)]  # its record lives on
    again = subprocess.run([sys.executable, "-m", "owl", "agent", *args, "--burst"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"taking over agent id 'ap1-idle': agent pid {first.pid}" in again.stderr
