"""Operator actions from the web: the same selection and scripts as ``owl retry`` & co.

An action is done in two steps: ``plan`` lists exactly the items a filter selects with
their state now and after (the dry run, nothing written); ``apply`` runs the board's
operator scripts on exactly those items, so what changes is what was shown. An item whose
state changed in between is left alone by its script and reported as unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from owl import queries
from owl.board import Board, OpResult
from owl.errors import OwlError
from owl.model import State

#: The states each action can change (as ``owl retry/hold/release/skip``).
ACTS_ON: dict[str, tuple[str, ...]] = {
    "retry": (State.DEAD, State.RETRY),
    "hold": (State.WAITING, State.READY, State.RUNNING, State.RETRY, State.DEAD),
    "release": (State.HELD,),
    "skip": (State.WAITING, State.READY, State.RUNNING, State.RETRY, State.DEAD, State.HELD),
}

#: What an item becomes, as the dry run of ``owl ACTION --dry-run --json`` says it.
TARGET = {"hold": "held", "release": "running/ready/waiting/dead", "retry": "ready",
          "skip": "skipped"}

#: Items one confirmation may change (a bigger selection is done in several rounds).
MAX_ITEMS = 5000


class ActionError(OwlError):
    """An action request that cannot be done as asked."""


@dataclass(frozen=True)
class Planned:
    """One item an action would change."""

    dataset: str
    stage: str
    before: str
    after: str

    def to_json(self) -> dict[str, str]:
        return {"dataset": self.dataset, "stage": self.stage, "before": self.before,
                "after": self.after}


def plan(board: Board, action: str, *, datasets: Sequence[str] = (), template: str = "",
         stages: Sequence[str] = (), states: Sequence[str] = (),
         limit: int = MAX_ITEMS) -> list[Planned]:
    """The items ``action`` would change (the dry run). Raises ActionError on a filter that
    selects nothing by construction (no filter at all, or a state the action cannot
    change)."""
    if action not in ACTS_ON:
        raise ActionError(f"unknown action {action!r}: use {', '.join(ACTS_ON)}")
    if not (datasets or template or stages or states):
        raise ActionError(f"{action} needs a filter: datasets, template, stages or states")
    useless = [s for s in states if s not in ACTS_ON[action]]
    if useless:
        raise ActionError(f"{action} cannot change items in state {', '.join(useless)}; it "
                          f"acts on {', '.join(ACTS_ON[action])}")
    if not datasets and (states == (State.DEAD,) or list(states) == [State.DEAD]):
        # the dead letters' bulk retry: read through the dead indexes in a few round trips
        from owl.web.data import dead

        return [Planned(r["dataset"], r["stage"], State.DEAD, TARGET[action])
                for r in dead(board, template or None, tuple(stages), limit=limit)]
    sel = queries.Selector(datasets=tuple(datasets), template=template or None,
                           stages=tuple(stages), states=tuple(states) or ACTS_ON[action])
    out = []
    for ds, item in queries.select(board, sel):
        out.append(Planned(ds.dataset, item.stage, item.state, TARGET[action]))
        if len(out) >= limit:
            break
    return out


def parse_items(text: str) -> list[tuple[str, str]]:
    """Items as a confirmation form sends them: one ``DATASET|STAGE`` per line."""
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        ds, sep, stage = line.rpartition("|")
        if not sep or not ds or not stage:
            raise ActionError(f"item {n} {line[:80]!r} is not DATASET|STAGE")
        items.append((ds, stage))
    if len(items) > MAX_ITEMS:
        raise ActionError(f"{len(items)} items in one confirmation; at most {MAX_ITEMS}")
    return items


def apply(board: Board, action: str, items: Sequence[tuple[str, str]], who: str,
          lease: float = 30.0) -> list[OpResult]:
    """Run the action's script on each item; every change is an event ``by`` ``who``."""
    if action == "release":
        return board.release(items, who, lease=lease)
    if action == "retry":
        return board.retry(items, who)
    if action == "hold":
        return board.hold(items, who)
    if action == "skip":
        return board.skip(items, who)
    raise ActionError(f"unknown action {action!r}: use {', '.join(ACTS_ON)}")


def results_json(results: Sequence[OpResult]) -> list[dict[str, Any]]:
    """As ``owl ACTION --json`` prints them."""
    return [vars(r) for r in results]
