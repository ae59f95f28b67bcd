"""Process groups for tasks: everything a task starts is signalled, paused and killed with it.

A local worker makes itself the leader of a new session (``setsid``), so the argv command
it runs and any ``Popen`` a Python task starts share its process group. The agent signals
the group, never just the worker: a timeout, a fenced item or an agent shutdown kills the
whole tree, and a hold stops all of it (``SIGSTOP``). A worker also dies with its agent:
Linux delivers ``SIGTERM`` when the agent dies (``PR_SET_PDEATHSIG``), even by SIGKILL,
and the worker's handler kills its group; the worker loop checks its parent pid too, which
covers an agent that died before the request was made, and platforms without ``prctl``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Final

_PR_SET_PDEATHSIG: Final = 1
_PR_SET_CHILD_SUBREAPER: Final = 36


def signal_group(pid: int, sig: int) -> None:
    """Send `sig` to the process group led by `pid` (or to `pid` alone when it leads none
    yet: a worker killed before its ``setsid``). A group already gone is not an error."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    except PermissionError:
        # The pid leads a group of someone else's (reused): signal only our own child.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def kill_own_group(signum: int = 0, frame: FrameType | None = None) -> None:
    """Kill this process's whole group, this process included (a signal handler too)."""
    os.killpg(os.getpgrp(), signal.SIGKILL)


def become_group_leader(parent: int) -> None:
    """Start a new session led by this process, and die (with the group) with `parent`.

    Parameters
    ----------
    parent
        The pid of the agent that started this worker.
    """
    os.setsid()
    signal.signal(signal.SIGTERM, kill_own_group)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # orphans of the tasks are re-parented to this worker, not to init, so "no child"
        # means "nothing left in the group" and kill_strays need not read all of /proc
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    check_parent(parent)


def check_parent(parent: int) -> None:
    """Kill this process's group when `parent` is no longer its parent (it died)."""
    if os.getppid() != parent:
        kill_own_group()


def _has_children() -> bool:
    """Whether this process has a child (alive or a zombie; one zombie may be reaped on
    the way). A subreaper with no child has no other member in its group: every member
    descends from it, and orphans come back to it. One ``waitpid`` call, not a read of
    ``/proc``: it runs after every task."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def kill_strays() -> int:
    """Kill the other members of this process's group (what a finished task left running)
    and reap those that were our children. Returns how many were killed (Linux: read from
    ``/proc``; elsewhere 0, and they die with the group at the next timeout or shutdown)."""
    me, group = os.getpid(), os.getpgrp()
    killed = 0
    proc = Path("/proc")
    if not _has_children() or not proc.is_dir():
        return 0
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    return killed
