"""Names an operator may mean, from the board's counters (O(shards), no keyspace scan),
with did-you-mean suggestions for typos."""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any

from owl.errors import BoardError


def known(board: Any) -> dict[str, set[str]]:
    """Template -> stages that have (or had) items on the board."""
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.hkeys(board.keys.counts(s))
    out: dict[str, set[str]] = {}
    for fields in pipe.execute():
        for f in fields:
            tpl, stage, _ = f.split("|")
            out.setdefault(tpl, set()).add(stage)
    return out


def _hint(name: str, choices: Any) -> str:
    near = get_close_matches(name, sorted(choices), 1)
    return f"; did you mean {near[0]!r}?" if near else ""


def check_template(board: Any, template: str) -> None:
    names = known(board)
    if template not in names:
        listed = f" (templates: {', '.join(sorted(names))})" if names else " (it has none)"
        raise BoardError(f"no template {template!r} on board {board.name!r}"
                         f"{_hint(template, names)}{listed}")


def check_stage(board: Any, template: str, stage: str) -> None:
    stages = known(board).get(template, set())
    if stage not in stages:
        raise BoardError(f"template {template!r} has no stage {stage!r} on board "
                         f"{board.name!r}{_hint(stage, stages)} (stages: "
                         f"{', '.join(sorted(stages))})")
