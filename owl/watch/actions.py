"""Operator actions from the watch: planned first (exactly what would change), then applied.

A plan lists each item with its state now and the state it will be in, read from the board
when the key is pressed; the confirmation screen shows it verbatim. Applying runs the same
board scripts as ``owl hold|release|retry``; an item whose state changed in between is left
alone by the script and reported as unchanged. A pause (or resume) of a stage, dataset or
agent is the control layer's persistent pause, as ``owl pause|resume`` sets it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from owl.board import Board, OpResult
from owl.model import State

#: The states each action changes and what they become (release: the state before the
#: hold, read per item).
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "hold": ((State.WAITING, State.READY, State.RUNNING, State.RETRY, State.DEAD), "held"),
    "release": ((State.HELD,), ""),
    "retry": ((State.DEAD, State.RETRY), "ready"),
}


@dataclass(frozen=True)
class Change:
    """One item an action will change."""

    dataset: str
    stage: str
    before: str
    after: str


@dataclass(frozen=True)
class Pause:
    """A pause to set or lift: what (``stage``/``dataset``/``agent``) and its name."""

    kind: str
    name: str
    resume: bool


@dataclass(frozen=True)
class Plan:
    """What an action will do, item by item (or the one pause it sets or lifts); empty when
    it would change nothing."""

    action: str
    changes: tuple[Change, ...]
    why_empty: str = ""
    pause: Pause | None = None

    @property
    def empty(self) -> bool:
        return not self.changes and self.pause is None

    def lines(self) -> list[str]:
        if self.pause is not None:
            p = self.pause
            effect = ("its items may be claimed again" if p.resume else
                      "nothing new is claimed there; running items finish")
            return [f"{self.action} {p.kind} {p.name}: "
                    f"{'paused -> active' if p.resume else 'active -> paused'} ({effect})"]
        return [f"{self.action} {c.dataset} {c.stage}: {c.before} -> {c.after}"
                for c in self.changes]


def plan_pause(kind: str, name: str, pauses: Mapping[str, Any]) -> Plan:
    """Pause `kind` `name`, or resume it when it is paused now (`pauses`: the board's)."""
    resume = f"{kind}:{name}" in pauses
    return Plan("resume" if resume else "pause", (), pause=Pause(kind, name, resume))


def plan(board: Board, action: str, targets: Sequence[tuple[str, str | None]]) -> Plan:
    """The plan of `action` on (dataset, stage) targets; a stage of None means every stage
    of the dataset that the action can change."""
    states, after = ACTIONS[action]
    pipe = board.redis.pipeline(transaction=False)
    for ds, _ in targets:
        pipe.hgetall(board.keys.dataset(board.shard(ds), ds))
    changes = []
    seen_states: set[str] = set()
    for (ds, stage), raw in zip(targets, pipe.execute(), strict=True):
        stages = [stage] if stage else [k[:-2] for k in raw if k.endswith(".s")]
        for st in stages:
            state = raw.get(f"{st}.s", "")
            seen_states.add(state)
            if state in states:
                changes.append(Change(ds, st, state,
                                      after or raw.get(f"{st}.hp") or State.READY))
    why = "" if changes else (
        f"nothing to {action}: it changes items in state {', '.join(states)}; the selection "
        f"is {', '.join(sorted(s for s in seen_states if s)) or 'empty'}")
    return Plan(action, tuple(changes), why)


def apply(board: Board, p: Plan, who: str, lease: float) -> tuple[int, int]:
    """Run the plan (each item by its own transition script); (changed, planned)."""
    if p.pause is not None:
        from owl.control.actions import pause

        done = pause(board, p.pause.kind, p.pause.name, who, "from owl watch",
                     resume=p.pause.resume)
        return int(done.changed), 1
    items = [(c.dataset, c.stage) for c in p.changes]
    results: list[OpResult]
    if p.action == "release":
        results = board.release(items, who, lease=lease)
    elif p.action == "hold":
        results = board.hold(items, who)
    else:
        results = board.retry(items, who)
    return sum(r.changed for r in results), len(results)
