"""Load the Lua transition scripts (``owl/lua/*.lua``) and call them, also on a Redis Cluster.

Scripts are called by their SHA1 (EVALSHA). A NOSCRIPT reply (a new, restarted or flushed
Redis, or a cluster node that never saw them) makes the caller load every script on that
node and repeat only the calls that failed; nothing is sent ahead "just in case", so a
read-only CLI command costs no SCRIPT LOAD.

Several calls go out as a :class:`Batch`: one pipeline on a single Redis, one pipeline per
node on a Redis Cluster. A script names its keys in KEYS, all in one hash slot ("one script
= one slot"), so its first key says which node runs it, whatever the key naming (shard
keys ``B:{sN}:...`` or control-plane keys ``B:{ctl}:...``). redis-py's own cluster pipeline
refuses SCRIPT LOAD and cannot repeat a NOSCRIPT call, hence the grouping here. A MOVED reply
(slots moved, a replica promoted) refreshes the slot map and sends the call again; an ASK
reply (a slot being migrated) sends it once to the importing node after ASKING.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import redis
from redis.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)

#: A redis-py client made with ``decode_responses=True`` (``Redis`` or ``RedisCluster``).
#: redis-py types every reply as a union (bytes | str | awaitable | ...) whatever the
#: client's settings, which no caller can use without a cast per call; owl's replies are
#: decoded strings, checked where used.
Client: TypeAlias = Any

_pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack_command
except ImportError:  # redis-py's own packer
    _pack_command = None

LUA_DIR = Path(__file__).with_name("lua")

#: Every transition of a work item, one script each.
SCRIPT_NAMES = (
    "register", "sched_claim", "renew", "complete", "fail", "reap", "giveback", "hold",
    "release", "retry", "skip", "rerun", "pause_dataset", "shard_ctl", "unpark",
    "campaign_cancel", "ctl_campaign", "ctl_pause", "ctl_charge", "ctl_cron", "permit_take",
    "permit_settle", "permit_release", "setrefs",
)

#: What "the board cannot answer right now" looks like: a Redis restarting, a cluster node
#: gone, a cluster failing over (CLUSTERDOWN, slots uncovered until a replica takes over).
#: Agents wait and retry on these; any other error is a bug or bad input.
BOARD_DOWN: tuple[type[Exception], ...] = (
    redis.ConnectionError, redis.TimeoutError, ClusterDownError, TryAgainError,
    SlotNotCoveredError,
)

#: Seconds a node that could not meet ``wait_replicas`` is not waited for.
_UNWAITED_S = 10.0

_REFRESH_FAILS: tuple[type[Exception], ...] = (*BOARD_DOWN,
                                               redis.exceptions.RedisClusterException)

#: Rounds of MOVED/ASK/TRYAGAIN/NOSCRIPT handling before a batch gives up.
_ROUNDS = 5


@cache
def source(name: str) -> str:
    """The full text sent to Redis: the helper library, then the script itself."""
    lib = (LUA_DIR / "_lib.lua").read_text()
    return lib + "\n" + (LUA_DIR / f"{name}.lua").read_text()


def is_cluster(client: Client) -> bool:
    return isinstance(client, RedisCluster)


@dataclass(frozen=True)
class Call:
    """One queued command: a script call (EVALSHA) or a plain one-key command."""

    command: tuple[Any, ...]

    @property
    def key(self) -> Any:
        """The key that says which slot (and node) runs it."""
        return self.command[3] if self.is_script else self.command[1]

    @property
    def is_script(self) -> bool:
        return str(self.command[0]).upper() == "EVALSHA"


class Batch:
    """Commands collected to be sent together (see :meth:`Scripts.execute`).

    It answers ``evalsha`` like a redis-py pipeline, so a :class:`LuaScript` queues into it;
    ``command`` queues a plain command whose first argument is its only key.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Batch:
        if numkeys < 1:
            raise ValueError("an owl script names at least one key (it says which slot)")
        self.calls.append(Call(("EVALSHA", sha, numkeys, *keys_and_args)))
        return self

    def command(self, name: str, key: Any, *args: Any) -> Batch:
        self.calls.append(Call((name, key, *args)))
        return self

    def __len__(self) -> int:
        return len(self.calls)


class LuaScript:
    """One transition script, called by SHA1 on a client or queued into a batch."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = source(name)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def __call__(self, *, keys: Sequence[Any], args: Sequence[Any],
                 client: Client) -> Any:
        """Run (or, on a batch, queue) the script. A direct call that meets NOSCRIPT
        loads the script and runs it again (on a cluster, redis-py sends SCRIPT LOAD to
        every primary)."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


class Scripts(dict[str, LuaScript]):
    """Every transition script by name, and the way to send batches of calls.

    Parameters
    ----------
    wait_replicas
        After each node's part of a batch, ``WAIT`` for this many replicas to acknowledge
        (0: do not wait). It narrows what a failover can lose (see the README); a replica
        that does not answer within ``wait_timeout_ms`` delays the reply, it does not fail
        it, and that node's transitions are then not waited for during the next
        ``_UNWAITED_S`` seconds (a promoted replica has no replica of its own until one
        is added).
    """

    def __init__(self, wait_replicas: int = 0, wait_timeout_ms: int = 1000) -> None:
        super().__init__((name, LuaScript(name)) for name in SCRIPT_NAMES)
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._unwaited: dict[int, float] = {}  # node (its pool) -> wait again after (monotonic)

    def by_sha(self) -> dict[str, LuaScript]:
        return {s.sha: s for s in self.values()}

    def load(self, client: Client) -> None:
        """Send every script to one Redis node (on a cluster client: to every primary)."""
        if is_cluster(client):
            for script in self.values():
                client.script_load(script.source)
            return
        pipe = client.pipeline(transaction=False)
        for script in self.values():
            pipe.script_load(script.source)
        pipe.execute()

    @staticmethod
    def batch() -> Batch:
        return Batch()

    def execute(self, batch: Batch | Any, client: Client) -> list[Any]:
        """Send a batch; the replies in call order. An error reply other than the
        redirections above is raised (the calls before it in its node's pipeline ran).

        A redis-py pipeline is accepted too (script calls and one-key commands such as
        HMGET), and sent the same way, grouped per node."""
        if not isinstance(batch, Batch):
            batch = _from_pipeline(batch)
        if not batch.calls:
            return []
        replies: list[Any] = [None] * len(batch.calls)
        todo = list(range(len(batch.calls)))
        ask: dict[int, tuple[str, int]] = {}
        for _ in range(_ROUNDS):
            groups = self._groups(client, batch.calls, todo, ask)
            todo, ask = [], {}
            for node_client, asking, idxs in groups:
                try:
                    got = self._send(node_client, [batch.calls[i] for i in idxs], asking)
                except (redis.ConnectionError, redis.TimeoutError):
                    if is_cluster(client):  # a node gone: learn the new slot map for next time
                        _refresh(client)
                    raise
                if any(isinstance(r, NoScriptError) for r in got):
                    self.load(node_client)  # once per node, however many calls missed
                for i, reply in zip(idxs, got, strict=True):
                    if isinstance(reply, NoScriptError):
                        todo.append(i)
                    elif isinstance(reply, MovedError):
                        if not is_cluster(client):
                            raise ResponseError(
                                f"this Redis is a cluster node ({reply}); connect with a "
                                "redis+cluster:// URL") from reply
                        client.nodes_manager.initialize()
                        todo.append(i)
                    elif isinstance(reply, AskError):
                        ask[i] = (reply.host, reply.port)
                        todo.append(i)
                    elif isinstance(reply, TryAgainError):
                        todo.append(i)
                    elif isinstance(reply, ResponseError):
                        raise reply
                    else:
                        replies[i] = reply
            if not todo:
                return replies
        raise ResponseError(f"{len(todo)} script call(s) still redirected or unloaded after "
                            f"{_ROUNDS} rounds (cluster resharding or failing over?)")

    def _groups(self, client: Client, calls: Sequence[Call], todo: Sequence[int],
                ask: dict[int, tuple[str, int]]) -> list[tuple[Client, bool, list[int]]]:
        """(node client, send ASKING first, call indexes) for each node concerned."""
        if not is_cluster(client):
            return [(client, False, list(todo))]
        groups: dict[tuple[str, bool], tuple[Client, bool, list[int]]] = {}
        for i in todo:
            if i in ask:
                host, port = ask[i]
                node = client.get_node(host=host, port=port)
                if node is None:
                    client.nodes_manager.initialize()
                    node = client.get_node(host=host, port=port)
                asking = True
            else:
                node = client.get_node_from_key(calls[i].key)
                asking = False
            key = (node.name, asking)
            if key not in groups:
                groups[key] = (client.get_redis_connection(node), asking, [])
            groups[key][2].append(i)
        return list(groups.values())

    def _send(self, node_client: Client, calls: Sequence[Call], asking: bool) -> list[Any]:
        """One pipeline on one node; error replies come back in place, not raised."""
        commands: list[tuple[Any, ...]] = []
        for call in calls:
            if asking:
                commands.append(("ASKING",))
            commands.append(call.command)
        node = id(node_client.connection_pool)
        wait = self.wait_replicas > 0 and self._unwaited.get(node, 0.0) <= time.monotonic()
        if wait:
            commands.append(("WAIT", self.wait_replicas, self.wait_timeout_ms))
        got = pipeline(node_client, commands)
        if wait:
            acked = got.pop()
            if isinstance(acked, int) and acked < self.wait_replicas:
                # this node lacks replicas (its own primary failed and it took over): stop
                # waiting a full timeout on every transition; look again in a while
                self._unwaited[node] = time.monotonic() + _UNWAITED_S
        if asking:
            got = got[1::2]
        return got


def pipeline(node_client: Client, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` to one node in one write and read their replies (error replies in
    place). What redis-py's pipeline does, without its per-argument encoding in Python:
    the commands are packed by hiredis (C) when it is there, as each agent sends tens of
    thousands of script calls of some 25 arguments a second. A connection error is retried
    on a fresh connection as redis-py's pipeline does (the client's retry policy)."""
    pool = node_client.connection_pool
    conn = pool.get_connection()

    def roundtrip() -> list[Any]:
        conn.send_packed_command(_pack(conn, commands))
        out: list[Any] = []
        try:
            for command in commands:
                try:
                    out.append(node_client.parse_response(conn, command[0]))
                except ResponseError as exc:
                    out.append(exc)
        except BaseException:
            conn.disconnect()  # replies still on the socket: never hand it on
            raise
        return out

    try:
        return list(conn.retry.call_with_retry(roundtrip, lambda _err: conn.disconnect()))
    finally:
        pool.release(conn)


def _pack(conn: Any, commands: Sequence[tuple[Any, ...]]) -> Any:
    if _pack_command is None:
        return conn.pack_commands(commands)
    return [b"".join([_pack_command(c) for c in commands])]


def _refresh(client: Client) -> None:
    with contextlib.suppress(*_REFRESH_FAILS):  # still failing over: the caller retries
        client.nodes_manager.initialize()


def _from_pipeline(pipe: Any) -> Batch:
    """A redis-py pipeline's commands as a batch: script calls and one-key commands."""
    batch = Batch()
    for args, _options in pipe.command_stack:
        if str(args[0]).upper() == "EVALSHA":
            batch.evalsha(args[1], int(args[2]), *args[3:])
        elif len(args) >= 2:
            batch.command(*args)
        else:
            raise ValueError(f"a batch holds keyed commands only, not {args[0]!r}")
    pipe.reset()
    return batch


def load_scripts(client: Client, wait_replicas: int = 0) -> Scripts:
    """Every script, ready to be called (each node gets them on its first NOSCRIPT)."""
    return Scripts(wait_replicas)
