"""A dataset's own history: every transition of every item, kept per dataset.

The per-shard event stream is capped (``event_cap`` entries per shard), so on a busy board a
dataset's early transitions fall out of it within minutes. Every transition script therefore
also appends one short entry to the dataset's list ``B:{sN}:hist:DATASET`` (``remember`` in
``owl/lua/_lib.lua``), which lives in the dataset's shard slot and is capped per dataset
(200 entries, trimmed 20 at a time). ``owl show`` reads that one list instead of scanning
a shard's stream (4.4 s on a 20k-dataset board before; one LRANGE now).

Two transitions the template implies are left out to keep the list short: a registered
stage waiting for its predecessors, and a waiting stage becoming ready when its last
predecessor is done (the predecessor's ``done`` entry gives the time). Everything else is
kept: claims, completions (``reused`` when skip-if-done applied), failures with their
reason, retries, reruns (generations), holds, skips and other operator actions.

An entry is tab-separated, the reason last (it may contain anything but a newline is not
expected)::

    ms since registration, stage ('*' for a dataset-wide action), from+to state letters,
    token, attempt, actor, reason
"""

from __future__ import annotations

from typing import Any

from owl.board import Board
from owl.model import LETTERS

_STATE_OF = {letter: str(state) for state, letter in LETTERS.items()}


def _state(letter: str) -> str:
    if letter == "-":
        return ""
    return _STATE_OF.get(letter, letter)


def parse_entry(raw: str, created_ms: int) -> dict[str, Any]:
    """One history entry as the event fields ``owl events`` uses (``t`` in microseconds)."""
    parts = raw.split("\t", 6)
    parts += [""] * (7 - len(parts))
    offset, stage, moves, token, attempt, who, why = parts
    fr, to = (moves[:1], moves[1:]) if len(moves) >= 2 else ("-", moves)
    return {"t": (created_ms + int(offset or 0)) * 1000, "st": stage, "fr": _state(fr),
            "to": _state(to), "tk": token, "at": attempt, "by": who, "why": why}


def history(board: Board, dataset: str, created_ms: int) -> list[dict[str, Any]]:
    """Every kept history entry of a dataset, oldest first.

    Parameters
    ----------
    board : Board
    dataset : str
    created_ms : int
        The dataset's registration time (its ``c`` field): entries store offsets from it.

    Returns
    -------
    list of dict
        ``t`` (microseconds), ``st`` stage, ``fr``/``to`` states, ``tk`` token, ``at``
        attempt, ``by`` actor, ``why`` reason.
    """
    raw = board.redis.lrange(board.keys.history(board.shard(dataset), dataset), 0, -1)
    return [parse_entry(r, created_ms) for r in raw]
