"""Taking over the id of a dead agent: what a heartbeat record proves about its process."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import pytest

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
