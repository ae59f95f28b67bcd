"""Which agent reaps which shard: rendezvous hashing over the live agents.

Every agent reads the same live set (the board's agents zset, by heartbeat) and computes
the same owner per shard, so each shard is reaped by one agent per rescan instead of by
all of them. An agent whose heartbeat stops drops out of the live set, and its shards go
to the agents that rank next for them (only those shards move). Two agents that briefly
disagree on the live set both reap a shard, which is harmless: reap.lua only touches
leases that are overdue, each once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def _rank(agent_id: str, shard: int) -> bytes:
    return hashlib.blake2b(f"{agent_id}|{shard}".encode(), digest_size=8).digest()


def owner(agents: Iterable[str], shard: int) -> str:
    """The live agent that reaps ``shard`` (agents must be non-empty)."""
    return max(agents, key=lambda a: _rank(a, shard))


def my_shards(me: str, live: Iterable[str], shards: int) -> list[int]:
    """The shards ``me`` reaps, given the other live agents (``me`` always counts as live)."""
    agents = set(live) | {me}
    return [s for s in range(shards) if owner(agents, s) == me]
