"""Load the Lua transition scripts (``owl/lua/*.lua``) with their shared helper library."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

from redis.commands.core import Script

#: A redis-py client made with ``decode_responses=True``. redis-py types every reply as a
#: union (bytes | str | awaitable | ...) whatever the client's settings, which no caller can
#: use without a cast per call; owl's replies are decoded strings, checked where used.
Client: TypeAlias = Any

LUA_DIR = Path(__file__).with_name("lua")

#: Every transition of a work item, one script each.
SCRIPT_NAMES = (
    "register", "claim", "renew", "complete", "fail", "reap", "giveback", "hold", "release",
    "retry", "skip",
)


@cache
def source(name: str) -> str:
    """The full text sent to Redis: the helper library, then the script itself."""
    lib = (LUA_DIR / "_lib.lua").read_text()
    return lib + "\n" + (LUA_DIR / f"{name}.lua").read_text()


def load_scripts(client: Client) -> dict[str, Script]:
    """Register every script with a client (EVALSHA, re-loaded on NOSCRIPT)."""
    return {name: client.register_script(source(name)) for name in SCRIPT_NAMES}
