"""Load the Lua transition scripts (``owl/lua/*.lua``) with their shared helper library.

Scripts are sent once (SCRIPT LOAD) and then called by their SHA1 (EVALSHA), also inside
pipelines. redis-py's own Script objects ask SCRIPT EXISTS before every pipeline, an extra
round trip on every hand-off; here a NOSCRIPT reply (a restarted or flushed Redis) makes the
caller load the scripts again and repeat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

from redis.exceptions import NoScriptError

#: A redis-py client made with ``decode_responses=True``. redis-py types every reply as a
#: union (bytes | str | awaitable | ...) whatever the client's settings, which no caller can
#: use without a cast per call; owl's replies are decoded strings, checked where used.
Client: TypeAlias = Any

LUA_DIR = Path(__file__).with_name("lua")

#: Every transition of a work item, one script each.
SCRIPT_NAMES = (
    "register", "sched_claim", "renew", "complete", "fail", "reap", "giveback", "hold",
    "release", "retry", "skip", "rerun", "pause_dataset", "shard_ctl", "unpark",
    "campaign_cancel", "ctl_campaign", "ctl_pause", "ctl_charge", "ctl_cron", "permit_take",
    "permit_settle", "permit_release",
)


@cache
def source(name: str) -> str:
    """The full text sent to Redis: the helper library, then the script itself."""
    lib = (LUA_DIR / "_lib.lua").read_text()
    return lib + "\n" + (LUA_DIR / f"{name}.lua").read_text()


class LuaScript:
    """One transition script, called by SHA1 on a client or a pipeline."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = source(name)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def __call__(self, *, keys: Sequence[Any], args: Sequence[Any],
                 client: Client) -> Any:
        """Run (or, on a pipeline, queue) the script. A direct call that meets NOSCRIPT
        loads the script and runs it again; a pipeline leaves that to its caller."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


class Scripts(dict[str, LuaScript]):
    """Every transition script by name."""

    def __init__(self) -> None:
        super().__init__((name, LuaScript(name)) for name in SCRIPT_NAMES)

    def load(self, client: Client) -> None:
        """Send every script to Redis (after a restart or SCRIPT FLUSH too)."""
        pipe = client.pipeline(transaction=False)
        for script in self.values():
            pipe.script_load(script.source)
        pipe.execute()

    def execute(self, pipe: Any, client: Client) -> list[Any]:
        """Execute a pipeline of script calls; on NOSCRIPT, load the scripts and repeat it
        (the whole pipeline failed: Redis had none of them)."""
        stack = list(pipe.command_stack)
        try:
            return list(pipe.execute())
        except NoScriptError:
            self.load(client)
            for args, options in stack:
                pipe.pipeline_execute_command(*args, **options)
            return list(pipe.execute())


def load_scripts(client: Client) -> Scripts:
    """Every script, sent to Redis once."""
    scripts = Scripts()
    scripts.load(client)
    return scripts
