"""Operator names checked against the board before a command acts on them.

A typo must not act on nothing silently: ``owl hold demo0007 -s combin`` or
``owl retry -t demoo`` is an error with a did-you-mean. Template and stage names come from
the board's pinned templates (``B:templates``), not from a keyspace scan and not from the
local template files, which may be newer or older than what the board holds.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from owl import pins
from owl.board import Board
from owl.errors import BoardError


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def board_stages(board: Board, template: str | None) -> dict[str, tuple[str, ...]]:
    """Template name -> every stage name of its pinned versions (in template order)."""
    out: dict[str, list[str]] = {}
    for p in pins.pinned(board.redis, board.keys):
        if template is not None and p.name != template:
            continue
        names = out.setdefault(p.name, [])
        for stage in board.stored_template(p.name, p.version).stage_names:
            if stage not in names:
                names.append(stage)
    return {k: tuple(v) for k, v in out.items()}


def check_template(board: Board, template: str | None) -> None:
    """BoardError unless ``template`` (when given) has datasets on the board."""
    if template is None:
        return
    known = sorted(board_stages(board, None))
    if template not in known:
        listed = ", ".join(known) if known else "none yet"
        raise BoardError(f"template {template!r} is not on board {board.name!r}"
                         f"{did_you_mean(template, known)}; its templates: {listed}")


def check_selection(board: Board, template: str | None, stages: Sequence[str],
                    datasets: Sequence[str]) -> None:
    """BoardError naming the first unknown template, stage or dataset of a selection."""
    check_template(board, template)
    if stages:
        by_template = board_stages(board, template)
        known = [s for names in by_template.values() for s in names]
        unknown = [s for s in stages if s not in known]
        if unknown:
            where = f"template {template!r}" if template else f"board {board.name!r}"
            raise BoardError(f"stage {unknown[0]!r} is not a stage of {where}"
                             f"{did_you_mean(unknown[0], known)}; its stages: "
                             f"{', '.join(dict.fromkeys(known)) or 'none'}")
    missing = [d for d in datasets
               if not board.redis.exists(board.keys.dataset(board.shard(d), d))]
    if missing:
        raise BoardError(f"dataset {missing[0]!r} is not on board {board.name!r}"
                         + (f" ({len(missing) - 1} more named are not either)"
                            if len(missing) > 1 else ""))
