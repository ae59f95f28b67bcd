"""Operator control actions: persistent pauses, drains, limits and scheduling settings.

Each action is a control-slot script (with who and why in the control event stream) and,
where the claim script must see it, one ``shard_ctl.lua`` call per shard; the action returns
only after every shard has its copy (docs/control.md, "Two kinds of slot").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from owl.errors import BoardError

#: What can be paused, and how its name is written.
KINDS = {"stage": "TEMPLATE:STAGE", "template": "TEMPLATE", "campaign": "CAMPAIGN",
         "dataset": "DATASET", "agent": "AGENT-ID"}

#: Control events kept (approximately).
EVENT_CAP = 20000


@dataclass(frozen=True)
class Change:
    """The outcome of one control action."""

    what: str
    changed: bool
    detail: str = ""


def _fan_out(board: Any, ops: Sequence[tuple[str, str, str]]) -> None:
    """Write the same control fields into every shard's copy (one pipeline)."""
    args: list[Any] = []
    for op, name, value in ops:
        args += [op, name, value]
    pipe = board.scripts.batch()
    for s in range(board.shards):
        board.scripts["shard_ctl"](keys=[board.keys.shard_ctl(s)], args=args, client=pipe)
    board.scripts.execute(pipe, board.redis)


def wake_all(board: Any) -> None:
    """Wake every agent of every template on the board (a control change may free work);
    this process's own cached control view is read again at its next claim."""
    from owl.names import board_stages

    board.claimer.view.invalidate()
    for template in board_stages(board, None):
        for s in range(board.shards if board.sharded_pubsub else 1):
            wake_shard(board, s, template, "ctl")


def wake_shard(board: Any, shard: int, template: str, what: str = "1") -> None:
    """Wake the agents of `template` for work in `shard` (its shard channel, or the
    board's channel); `what` "ctl" makes them read the control state at once."""
    channel = board.wake(shard) + template
    if board.sharded_pubsub:
        board.redis.spublish(channel, what)
    else:
        board.redis.publish(channel, what)


def pause(board: Any, kind: str, name: str, who: str, reason: str, *,
          resume: bool = False) -> Change:
    """Pause (or resume) a stage, template, campaign, dataset or agent, persistently."""
    if kind not in KINDS:
        raise BoardError(f"cannot pause {kind!r}: choose one of {', '.join(KINDS)}")
    what = f"{kind}:{name}"
    op = "resume" if resume else "pause"
    k = board.keys
    if kind == "dataset":
        s = board.shard(name)
        res = board.scripts["pause_dataset"](
            keys=[k.counts(s), k.events(s), k.dataset(s, name)],
            args=[k.prefix(s), name, op, reason, who, board.event_cap, board.wake(s)],
            client=board.redis)
        if res[0] == 0 and res[1] == "missing":
            raise BoardError(f"dataset {name!r} is not on board {board.name!r}")
    res = board.scripts["ctl_pause"](keys=[k.ctl_key("pauses"), k.ctl_key("events")],
                                     args=[op, what, who, EVENT_CAP, reason],
                                     client=board.redis)
    if kind in ("stage", "template", "campaign"):
        field = f"pause:{what}"
        _fan_out(board, [("del", field, "")] if resume else [("set", field, reason or "-")])
    if resume or kind == "agent":  # an agent reads its own pause at once (its view)
        wake_all(board)
    return Change(what, res[0] == 1, "" if res[0] == 1 else str(res[1]))


def drain_agent(board: Any, agent_id: str, who: str, reason: str) -> Change:
    """Ask an agent to finish its items and exit (it reads this on its next heartbeat)."""
    k = board.keys
    res = board.scripts["ctl_pause"](keys=[k.ctl_key("pauses"), k.ctl_key("events")],
                                     args=["pause", f"drain:{agent_id}", who, EVENT_CAP, reason],
                                     client=board.redis)
    wake_all(board)
    return Change(f"drain:{agent_id}", res[0] == 1, "" if res[0] == 1 else "already draining")


def clear_drain(board: Any, agent_id: str, who: str) -> None:
    """A drained agent that exits clears its request, so a restart under its id serves."""
    k = board.keys
    board.scripts["ctl_pause"](keys=[k.ctl_key("pauses"), k.ctl_key("events")],
                               args=["resume", f"drain:{agent_id}", who, EVENT_CAP, "drained"],
                               client=board.redis)


def set_limit(board: Any, name: str, value: int | None, who: str) -> Change:
    """Set (or with None, remove) a live limit: ``pool:P``, ``stage:T:S``, ``campaign:C``."""
    kind = name.split(":", 1)[0]
    if kind not in ("pool", "stage", "campaign") or ":" not in name:
        raise BoardError(f"limit name {name!r}: use pool:NAME, stage:TEMPLATE:STAGE or "
                         "campaign:NAME")
    if value is not None and value < 0:
        raise BoardError(f"limit {name}: a limit is a number of items >= 0, got {value}")
    k = board.keys
    pipe = board.redis.pipeline(transaction=True)
    if value is None:
        pipe.hdel(k.ctl_key("limits"), name)
    else:
        pipe.hset(k.ctl_key("limits"), name, value)
    pipe.xadd(k.ctl_key("events"), {"what": "limit", "kind": kind, "name": name,
                                     "to": "" if value is None else str(value), "by": who,
                                     "why": ""}, maxlen=EVENT_CAP, approximate=True)
    changed = pipe.execute()[0]
    wake_all(board)
    return Change(name, bool(changed) or value is not None)


def declare_limits(board: Any, limits: dict[str, int]) -> None:
    """Limits a template declares (written by agents and ingest; live limits win)."""
    if limits:
        board.redis.hset(board.keys.ctl_key("tlimits"), mapping=limits)


def set_aging(board: Any, *, band_aging_s: float | None = None,
              priority_aging_s: float | None = None) -> None:
    """Board-wide scheduling settings (docs/control.md)."""
    if band_aging_s is not None:
        board.redis.hset(board.keys.ctl_key("settings"), "band_aging", band_aging_s)
    if priority_aging_s is not None:
        board.redis.hset(board.keys.ctl_key("settings"), "priority_aging", priority_aging_s)
        _fan_out(board, [("set", "pag", str(int(priority_aging_s * 1000)))])


def permits_held(board: Any, limit: str) -> int:
    """Permits (items and open reservations) held now under a limit."""
    return int(board.redis.zcard(board.keys.permits(limit)))


def control_events(board: Any, count: int = 100) -> list[dict[str, str]]:
    """The newest operator/control events, oldest first."""
    got = board.redis.xrevrange(board.keys.ctl_key("events"), count=count)
    return [{"id": i, **f} for i, f in reversed(got)]
