"""Is the agent behind a heartbeat record still alive? For restarts under the same id.

An agent killed with SIGKILL leaves its heartbeat record until the record expires. A restart
on the same host may take the id over at once when the recorded process is provably gone:
the host rebooted since (another boot id), no process has that pid, or the pid now belongs
to a process started at another time (pid reuse). A record from another host cannot be
checked from here, so it is respected until it expires.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This host's boot id ("" where the system does not publish one)."""
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str]:
    """Fields 3.. of /proc/PID/stat ([] when unknown or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    return stat[stat.rfind(")") + 2:].split()


def process_start(pid: int) -> int:
    """When process ``pid`` started, in clock ticks since boot (0 when unknown or gone)."""
    fields = _stat(pid)
    return int(fields[19]) if len(fields) > 19 else 0  # field 22, starttime


def identity() -> dict[str, Any]:
    """What a heartbeat records so that a restart can tell whether this process lives."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "boot": boot_id(),
            "pstart": process_start(pid)}


def gone(record: dict[str, Any]) -> str | None:
    """Why the process of a heartbeat ``record`` is certainly gone, or None.

    None means it may be alive: the record is of another host, or its pid runs the process
    that wrote it (or the record predates these fields and the pid is in use).
    """
    if record.get("host") != socket.gethostname():
        return None
    pid = int(record.get("pid") or 0)
    if record.get("boot") and boot_id() and record["boot"] != boot_id():
        return f"host {record['host']} rebooted since agent pid {pid} wrote its heartbeat"
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"agent pid {pid} on {record['host']} is gone"
    except PermissionError:  # another user's process: it exists
        pass
    if _stat(pid)[:1] == ["Z"]:  # killed, not yet reaped by its parent: it runs no more
        return f"agent pid {pid} on {record['host']} has exited"
    started = process_start(pid)
    if record.get("pstart") and started and started != int(record["pstart"]):
        return f"pid {pid} on {record['host']} is another process now"
    return None


def check_agent_id(records: list[dict[str, Any]], agent_id: str, board: str) -> str | None:
    """May an agent start under ``agent_id``, given the heartbeat ``records`` of a board?

    Returns
    -------
    str or None
        None when no record has this id; a note saying why the id is taken over when its
        agent is certainly gone.

    Raises
    ------
    ConfigError
        Another agent that may be alive runs under this id.
    """
    from owl.errors import ConfigError

    for record in records:
        if record.get("id") != agent_id:
            continue
        why = gone(record)
        if why is None:
            raise ConfigError(
                f"agent {agent_id!r} is already running on board {board!r} (host "
                f"{record.get('host')}, pid {record.get('pid')}); give this one another --id"
            )
        return f"taking over agent id {agent_id!r}: {why}"
    return None
