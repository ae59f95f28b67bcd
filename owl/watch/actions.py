"""Operator actions from the watch: planned first (exactly what would change), then applied.

A plan lists each item with its state now and the state it will be in, read from the board
when the key is pressed; the confirmation screen shows it verbatim. Applying runs the same
board scripts as ``owl hold|release|retry``; an item whose state changed in between is left
alone by the script and reported as unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
class Plan:
    """What an action will do, item by item; empty when it would change nothing."""

    action: str
    changes: tuple[Change, ...]
    why_empty: str = ""

    def lines(self) -> list[str]:
        return [f"{self.action} {c.dataset} {c.stage}: {c.before} -> {c.after}"
                for c in self.changes]


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


def apply(board: Board, p: Plan, who: str, lease: float) -> list[OpResult]:
    """Run the plan's action on its items (each by its own transition script)."""
    items = [(c.dataset, c.stage) for c in p.changes]
    if p.action == "release":
        return board.release(items, who, lease=lease)
    if p.action == "hold":
        return board.hold(items, who)
    return board.retry(items, who)
