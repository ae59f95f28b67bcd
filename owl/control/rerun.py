"""Generations: rerun datasets from a stage onward, on their version or a newer one.

The plan is made here (which stages a rerun resets, given the target version's graph); the
change itself is ``rerun.lua``, one call per dataset, pipelined in batches, so a rerun of a
million datasets never holds the board for long.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from owl.control.model import PRODUCTION
from owl.errors import BoardError
from owl.template import Template, stage_graph
from owl.template_checks import did_you_mean


@dataclass(frozen=True)
class Planned:
    """What a rerun of one dataset does."""

    dataset: str
    template: str
    version: str  # the version it runs on
    old_version: str  # the version it was on when planned
    from_stage: str
    reset: tuple[str, ...]
    drop: tuple[str, ...] = ()
    busy: bool = False  # an item is running: the rerun starts when it is out


@dataclass
class RerunReport:
    """What a batch of reruns did (or, for a dry run, would do)."""

    started: int = 0
    pending: int = 0  # recorded; they start when their running items finish
    missing: list[str] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)


def descendants(template: Template, stage: str) -> tuple[str, ...]:
    """The stage and every stage after it, in template order."""
    if stage not in template.stage_names:
        raise BoardError(f"template {template.name!r} version {template.version!r} has no "
                         f"stage {stage!r}{did_you_mean(stage, template.stage_names)}; its "
                         f"stages are {', '.join(template.stage_names)}")
    keep = {stage}
    for s in template.stages:  # stages are in dependency order
        if any(a in keep for a in s.after):
            keep.add(s.name)
    return tuple(s for s in template.stage_names if s in keep)


class Planner:
    """Plans reruns; reads each (template, version) from the board once."""

    def __init__(self, board: Any, target: Template | None = None) -> None:
        self.board = board
        self.target = target
        self._templates: dict[tuple[str, str], Template] = {}

    def template(self, name: str, version: str) -> Template:
        key = (name, version)
        if key not in self._templates:
            self._templates[key] = self.board.stored_template(name, version)
        return self._templates[key]

    def plan(self, dataset: str, raw: dict[str, str], from_stage: str) -> Planned:
        old = self.template(raw["t"], raw["v"])
        new = self.target if self.target is not None and self.target.name == raw["t"] else old
        first = from_stage or new.first_stages()[0]
        reset = descendants(new, first)
        extra = tuple(s for s in new.stage_names if s not in reset
                      and f"{s}.s" not in raw)  # stages the new version adds
        drop = tuple(s for s in old.stage_names if s not in new.stage_names)
        busy = any(raw.get(f"{s}.s") == "running"
                   or (raw.get(f"{s}.s") == "held" and raw.get(f"{s}.hp") == "running")
                   for s in old.stage_names)
        order = [s for s in new.stage_names if s in reset or s in extra]
        return Planned(dataset, raw["t"], new.version, raw["v"], first, tuple(order), drop,
                       busy)


def rerun(board: Any, datasets: Iterable[tuple[str, str]], *, campaign: str = PRODUCTION,
          who: str, why: str = "", target: Template | None = None, dry_run: bool = False,
          batch: int = 1000, progress: Callable[[int], object] | None = None) -> RerunReport:
    """Rerun each (dataset, from stage) — an empty stage means its first stages.

    ``target`` is a newer version of the datasets' template to move them to (it is pinned on
    the board first). A dry run plans and reports, and changes nothing.
    """
    planner = Planner(board, target)
    digest = ""
    if target is not None and not dry_run:
        from owl import pins

        digest = pins.pin(board.redis, board.keys, target)
    report = RerunReport()
    chunk: list[tuple[str, str]] = []
    for item in datasets:
        chunk.append(item)
        if len(chunk) >= batch:
            _batch(board, planner, chunk, campaign, who, why, dry_run, report, digest)
            if progress is not None:
                progress(len(chunk))
            chunk = []
    if chunk:
        _batch(board, planner, chunk, campaign, who, why, dry_run, report, digest)
        if progress is not None:
            progress(len(chunk))
    return report


def _batch(board: Any, planner: Planner, chunk: Sequence[tuple[str, str]], campaign: str,
           who: str, why: str, dry_run: bool, report: RerunReport, digest: str) -> None:
    k = board.keys
    pipe = board.redis.pipeline(transaction=False)
    for ds, _ in chunk:
        pipe.hgetall(k.dataset(board.shard(ds), ds))
    plans: list[Planned] = []
    for (ds, stage), raw in zip(chunk, pipe.execute(), strict=True):
        if not raw:
            report.missing.append(ds)
            continue
        plans.append(planner.plan(ds, raw, stage))
    if dry_run:
        report.planned += plans
        report.pending += sum(p.busy for p in plans)
        report.started += sum(not p.busy for p in plans)
        return
    pipe = board.scripts.batch()
    for p in plans:
        s = board.shard(p.dataset)
        graph = ""
        if planner.target is not None and p.version != p.old_version:
            graph = json.dumps(stage_graph(planner.target), sort_keys=True)
        spec = {"from": p.from_stage, "cp": campaign, "v": p.version, "ov": p.old_version,
                "reset": list(p.reset), "drop": list(p.drop), "why": why}
        board.scripts["rerun"](
            keys=[k.counts(s), k.events(s), k.dataset(s, p.dataset)],
            args=[k.prefix(s), p.dataset, json.dumps(spec), who, board.event_cap, board.wake(s),
                  graph, digest if graph else ""], client=pipe)
    for p, res in zip(plans, board.scripts.execute(pipe, board.redis), strict=True):
        if res[0] == 1:
            report.started += 1
        elif res[0] == 2:
            report.pending += 1
        elif res[0] == -1:
            raise BoardError(f"template {p.template!r} version {p.version!r} is on the board "
                             "with a different stage graph; give the changed template a new "
                             "version")
        else:  # gone, or moved to another version since it was read: not rerun
            report.missing.append(p.dataset)
            continue
        report.planned.append(p)


def generations(board: Any, dataset: str) -> dict[str, Any]:
    """A dataset's current generation and campaign, and every archived generation (oldest
    first: the stage records as they were when the next generation began)."""
    s = board.shard(dataset)
    pipe = board.redis.pipeline(transaction=False)
    pipe.hmget(board.keys.dataset(s, dataset), ["g", "cp", "rr"])
    pipe.lrange(board.keys.generations(s, dataset), 0, -1)
    (gen, camp, pending), archived = pipe.execute()
    past = []
    for raw in archived:
        rec = json.loads(raw)
        for st in rec.get("stages", {}).values():
            st["out"] = json.loads(st.get("out") or "{}")
        past.append(rec)
    return {"generation": int(gen or 1), "campaign": camp or PRODUCTION,
            "pending_rerun": json.loads(pending) if pending else None, "previous": past}
