"""``owl template migrate``: move in-flight datasets from one template version to another.

After a template edit (a renamed stage, a changed task), datasets registered before it stay
pinned to the old version, which agents with the new file will not run (owl.trust). Migrating
a dataset keeps the stages it has finished (done or skipped under a name the new version
still has), drops the stages the new version lacks and starts every other stage of the new
version afresh (waiting, or ready when its predecessors are finished); dead, held and
retrying items of the old version are started afresh too. Finished datasets (nothing left to
run) and datasets with a running item are not moved: the plan says so. Each move is one
``rerun.lua`` call (a new generation of the dataset, its old records archived), so a
migration is atomic per dataset and visible in ``owl show``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from owl import pins, queries
from owl.board import Board
from owl.errors import BoardError
from owl.template import Template, stage_graph

FINISHED = ("done", "skipped")


@dataclass(frozen=True)
class Move:
    """What migrating one dataset does (or why it is left alone: ``skip``)."""

    dataset: str
    keep: tuple[str, ...]  # finished stages kept as they are
    reset: tuple[str, ...]  # stages of the new version started afresh
    drop: tuple[str, ...]  # stages of the old version the new one lacks
    campaign: str
    skip: str = ""  # why it is not moved ("" when it is)


def plan_one(dataset: str, raw: dict[str, str], old: Template, new: Template) -> Move:
    state = {s: raw.get(f"{s}.s") for s in old.stage_names}
    campaign = raw.get("cp") or "production"
    running = [s for s, st in state.items()
               if st == "running" or (st == "held" and raw.get(f"{s}.hp") == "running")]
    keep = tuple(s for s in new.stage_names if state.get(s) in FINISHED)
    reset = tuple(s for s in new.stage_names if s not in keep)
    drop = tuple(s for s in old.stage_names if s not in new.stage_names)
    skip = ""
    if running:
        skip = f"stage {running[0]} is running: not moved (migrate again once it is out)"
    elif all(st in FINISHED for st in state.values()):
        skip = "finished: nothing left to run"
    return Move(dataset, keep, reset, drop, campaign, skip)


def _pinned_datasets(board: Board, name: str, version: str,
                     batch: int = 500) -> Iterator[tuple[str, dict[str, str]]]:
    for ds, raw in queries.raw_datasets(board, batch):
        if raw.get("t") == name and raw.get("v") == version:
            yield ds, raw


def plan(board: Board, old: Template, new: Template) -> list[Move]:
    """A move (or a reason not to) for every dataset pinned to ``old``."""
    if old.name != new.name:
        raise BoardError(f"cannot migrate template {old.name!r} datasets to template "
                         f"{new.name!r}")
    if old.version == new.version:
        raise BoardError(f"--from-version and --to-version are both {old.version!r}")
    return [plan_one(ds, raw, old, new) for ds, raw in _pinned_datasets(board, old.name,
                                                                        old.version)]


def apply(board: Board, new: Template, moves: list[Move], old_version: str,
          who: str) -> list[tuple[Move, str]]:
    """Carry out the moves (skipping those with a reason); (move, outcome) for each, the
    outcome ``moved`` or why it was not."""
    digest = pins.pin(board.redis, board.keys, new)
    graph = json.dumps(stage_graph(new), sort_keys=True)
    todo = [m for m in moves if not m.skip]
    out: list[tuple[Move, str]] = [(m, m.skip) for m in moves if m.skip]
    if not todo:
        return out
    k = board.keys
    pipe = board.scripts.batch()
    for m in todo:
        s = board.shard(m.dataset)
        first = m.reset[0] if m.reset else new.first_stages()[0]
        spec = {"from": first, "cp": m.campaign, "v": new.version, "ov": old_version,
                "reset": list(m.reset), "drop": list(m.drop),
                "why": f"migrated from version {old_version} to {new.version}"}
        board.scripts["rerun"](
            keys=[k.counts(s), k.events(s), k.dataset(s, m.dataset)],
            args=[k.prefix(s), m.dataset, json.dumps(spec), who, board.event_cap,
                  board.wake(s), graph, digest], client=pipe)
    for m, res in zip(todo, board.scripts.execute(pipe, board.redis), strict=True):
        if res[0] == 1:
            out.append((m, "moved"))
        elif res[0] == 2:
            out.append((m, "moved once its running item is out (it started meanwhile)"))
        elif res[0] == -1:
            raise BoardError(pins.conflict_text(new))
        elif res[0] == -2:
            out.append((m, f"not moved: it is on version {res[1]} now"))
        else:
            out.append((m, "not moved: it is no longer on the board"))
    return out
