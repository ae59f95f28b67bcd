"""Which Redis errors are passing faults: the board is unreachable, or refuses writes.

An agent meeting one of these pauses (its tasks run on, their outcomes wait) and resumes by
itself once the board answers again; a CLI command reports it as one line. Everything else
is a bug or a bad request and is raised as usual.
"""

from __future__ import annotations

import redis

from owl.scripts import BOARD_DOWN

#: The server is down, restarting, stopped or partitioned away (a cluster failing over).
UNREACHABLE: tuple[type[Exception], ...] = BOARD_DOWN

#: Reply prefixes of a server that answers but refuses writes for a while: its disk is full
#: or failing (MISCONF: the AOF or a snapshot cannot be written), it is out of memory under
#: ``maxmemory`` with noeviction (OOM), or it is a replica / a primary that lost its
#: replicas (READONLY, NOREPLICAS). Inside a Lua script the prefix follows the script name.
_REFUSALS = ("MISCONF", "OOM command not allowed", "READONLY", "NOREPLICAS")


def refuses_writes(exc: BaseException) -> bool:
    """Whether `exc` is a server refusing writes for now (disk full, out of memory)."""
    return isinstance(exc, redis.ResponseError) and any(r in str(exc) for r in _REFUSALS)


def passing(exc: BaseException) -> bool:
    """Whether `exc` is a passing fault: wait and try again, never crash or give up."""
    return isinstance(exc, UNREACHABLE) or refuses_writes(exc)


def explain(exc: BaseException) -> str:
    """One line saying what the fault is and what to do."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for marker in _REFUSALS:  # inside a script the server's words follow the script's name
        if marker in text:
            text = text[text.index(marker):].split(". ")[0]
    if "MISCONF" in str(exc):
        return ("the Redis server refuses writes because it cannot write its data to disk "
                f"(disk full or failing?): {text}. Free disk space; owl agents wait and "
                "resume by themselves")
    if "OOM" in str(exc):
        return ("the Redis server refuses writes because it reached its memory limit "
                f"(maxmemory): {text}. Raise maxmemory or free memory; owl agents wait and "
                "resume by themselves")
    if refuses_writes(exc):
        return f"the Redis server refuses writes for now: {text}"
    return f"lost the connection to Redis: {text}"
