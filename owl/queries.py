"""Read-only views of a board for operators: counts, datasets, items, events, failures.

Nothing here writes; every figure comes from keys the transition scripts maintain, so a
status summary costs O(shards x stages), not O(datasets).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from owl.board import Board
from owl.errors import BoardError
from owl.keys import split_member
from owl.model import Claim, State


@dataclass(frozen=True)
class Item:
    """One work item as read from the board."""

    dataset: str
    stage: str
    state: str
    attempts: int = 0
    token: str = ""
    owner: str = ""
    updated_ms: int = 0
    due_ms: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    memory_mb: int = 0


@dataclass(frozen=True)
class Dataset:
    """A dataset record with its items in template stage order."""

    dataset: str
    template: str
    version: str
    path: str
    created_ms: int
    items: tuple[Item, ...]


def counts(board: Board) -> dict[tuple[str, str, str], int]:
    """(template, stage, state) -> number of items, summed over shards."""
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.hgetall(board.keys.counts(s))
    total: dict[tuple[str, str, str], int] = {}
    for shard_counts in pipe.execute():
        for field_name, n in shard_counts.items():
            tpl, stage, state = field_name.split("|")
            key = (tpl, stage, state)
            total[key] = total.get(key, 0) + int(n)
    return {k: v for k, v in total.items() if v}


def _parse(dataset: str, raw: dict[str, str], order: Sequence[str]) -> Dataset:
    items = []
    for stage in order:
        state = raw.get(f"{stage}.s")
        if state is None:
            continue
        out = raw.get(f"{stage}.out")
        items.append(Item(
            dataset=dataset, stage=stage, state=state,
            attempts=int(raw.get(f"{stage}.a", 0)), token=raw.get(f"{stage}.k", ""),
            owner=raw.get(f"{stage}.o", ""), updated_ms=int(raw.get(f"{stage}.u", 0)),
            due_ms=int(raw.get(f"{stage}.d", 0)), outputs=json.loads(out) if out else {},
            error=raw.get(f"{stage}.e", ""), memory_mb=int(raw.get(f"{stage}.mem", 0)),
        ))
    return Dataset(dataset=dataset, template=raw["t"], version=raw["v"], path=raw.get("p", ""),
                   created_ms=int(raw.get("c", 0)), items=tuple(items))


class _Orders:
    """Stage order per (template, version), read once from the board."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.cache: dict[tuple[str, str], tuple[str, ...]] = {}

    def __call__(self, template: str, version: str) -> tuple[str, ...]:
        key = (template, version)
        if key not in self.cache:
            self.cache[key] = self.board.stored_template(template, version).stage_names
        return self.cache[key]


def dataset(board: Board, dataset_id: str) -> Dataset:
    """One dataset, or BoardError when it is not on the board."""
    raw = board.redis.hgetall(board.keys.dataset(board.shard(dataset_id), dataset_id))
    if not raw:
        raise BoardError(f"dataset {dataset_id!r} is not on board {board.name!r}")
    return _parse(dataset_id, raw, _Orders(board)(raw["t"], raw["v"]))


def raw_datasets(board: Board, batch: int = 500) -> Iterator[tuple[str, dict[str, str]]]:
    """Every dataset's id and record as stored, shard by shard in registration order."""
    for s in range(board.shards):
        start = 0
        while True:
            ids = board.redis.zrange(board.keys.datasets(s), start, start + batch - 1)
            if not ids:
                break
            start += len(ids)
            pipe = board.redis.pipeline(transaction=False)
            for ds in ids:
                pipe.hgetall(board.keys.dataset(s, ds))
            for ds, raw in zip(ids, pipe.execute(), strict=True):
                if raw:
                    yield ds, raw


def datasets(board: Board, *, template: str | None = None, batch: int = 500) -> Iterator[Dataset]:
    """Every dataset (optionally of one template), shard by shard in registration order."""
    orders = _Orders(board)
    for ds, raw in raw_datasets(board, batch):
        if template is None or raw["t"] == template:
            yield _parse(ds, raw, orders(raw["t"], raw["v"]))


def condor_jobs(board: Board, ds: Dataset, actor: str) -> dict[str, dict[str, Any]]:
    """Per condor stage of the dataset, what the schedd knows of its latest job (the
    condor bindings are imported only for templates that have condor stages)."""
    template = board.stored_template(ds.template, ds.version)
    stages = [s.name for s in template.stages if s.executor == "condor"]
    if not stages:
        return {}
    from pathlib import Path

    from owl.condor.executor import job_info
    from owl.condor.schedd import CondorError, HTCondorSchedd
    from owl.condor.settings import CondorSettings

    cs = CondorSettings.from_env(board.name, actor, Path("."))
    schedd = HTCondorSchedd(cs.collector, cs.schedd_name)
    out: dict[str, dict[str, Any]] = {}
    for stage in stages:
        try:
            out[stage] = job_info(schedd, board.name, ds.dataset, stage)
        except CondorError as exc:
            out[stage] = {"error": f"schedd not reachable: {exc}"}
    return out


@dataclass(frozen=True)
class Selector:
    """Which items an operator command acts on. Empty fields match everything."""

    datasets: tuple[str, ...] = ()
    template: str | None = None
    stages: tuple[str, ...] = ()
    states: tuple[str, ...] = ()

    def matches(self, ds: Dataset, item: Item) -> bool:
        return ((not self.datasets or ds.dataset in self.datasets)
                and (self.template is None or ds.template == self.template)
                and (not self.stages or item.stage in self.stages)
                and (not self.states or item.state in self.states))


#: Per-shard indexes of "DATASET|STAGE" members, by state (waiting and ready items are
#: indexed per (template, stage, state) instead: Keys.index).
_MEMBER_INDEX: dict[str, str] = {State.RETRY: "delayed", State.RUNNING: "leases",
                                 State.DEAD: "dead", State.HELD: "held"}


def select(board: Board, sel: Selector, *, batch: int = 500) -> Iterator[tuple[Dataset, Item]]:
    """Items matching a selector, found through indexes: named datasets are read directly;
    otherwise the index of each selected state is walked (waiting and ready: one zset per
    template, stage and state; retry, running, dead, held: the per-shard zsets) and only the
    datasets it names are read. Done and skipped items have no index (no operator command
    acts on them): a selector that names those states walks the datasets."""
    if sel.datasets:
        source: Iterator[Dataset] = (dataset(board, d) for d in sel.datasets)
    elif set(sel.states or tuple(State)) & {State.DONE, State.SKIPPED}:
        source = datasets(board, template=sel.template)
    else:
        source = _indexed(board, sel, batch)
    for ds in source:
        for item in ds.items:
            if sel.matches(ds, item):
                yield ds, item


def _candidates(board: Board, sel: Selector,
                templates: dict[str, tuple[str, ...]]) -> dict[tuple[int, str], set[str]]:
    """(shard, dataset) -> the stages the selected indexes name, in one round trip."""
    pipe = board.redis.pipeline(transaction=False)
    asked: list[tuple[int, str | None]] = []  # shard, and the stage of a per-stage index
    for s in range(board.shards):
        for state in sel.states or tuple(State):
            if state in _MEMBER_INDEX:
                pipe.zrange(getattr(board.keys, _MEMBER_INDEX[state])(s), 0, -1)
                asked.append((s, None))
                continue
            for tpl, stages in templates.items():
                for st in stages:
                    if not sel.stages or st in sel.stages:
                        pipe.zrange(board.keys.index(s, tpl, st, state), 0, -1)
                        asked.append((s, st))
    found: dict[tuple[int, str], set[str]] = {}
    for (s, stage), members in zip(asked, pipe.execute(), strict=True):
        for m in members:
            ds, st = (m, stage) if stage is not None else split_member(m)
            if not sel.stages or st in sel.stages:
                found.setdefault((s, ds), set()).add(st)
    return found


#: Fields of one item in the dataset hash (see owl.keys).
_ITEM_FIELDS = ("s", "a", "k", "o", "u", "d", "out", "e", "mem")


def _indexed(board: Board, sel: Selector, batch: int) -> Iterator[Dataset]:
    """The datasets the indexes name, each with only the items the indexes named (HMGET of
    those items' fields, not the whole hash: a filter over 10,000 items reads 10,000 items,
    not 10,000 datasets of every stage)."""
    from owl.names import board_stages  # names imports the board layer too

    orders = _Orders(board)
    found = _candidates(board, sel, board_stages(board, sel.template))
    ids = sorted(found)
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        pipe = board.redis.pipeline(transaction=False)
        wanted = []
        for s, ds in chunk:
            fields = ["t", "v", "p", "c"] + [f"{st}.{f}" for st in sorted(found[(s, ds)])
                                             for f in _ITEM_FIELDS]
            wanted.append(fields)
            pipe.hmget(board.keys.dataset(s, ds), fields)
        for (_, ds), fields, values in zip(chunk, wanted, pipe.execute(), strict=True):
            raw = {f: v for f, v in zip(fields, values, strict=True) if v is not None}
            if raw.get("t") and (sel.template is None or raw["t"] == sel.template):
                yield _parse(ds, raw, orders(raw["t"], raw["v"]))


def failures(board: Board, dataset_id: str, stage: str) -> list[dict[str, Any]]:
    """Every failure record kept for an item (reason, class, traceback), oldest first."""
    s = board.shard(dataset_id)
    return [json.loads(r) for r in board.redis.lrange(board.keys.errors(s, dataset_id, stage),
                                                      0, -1)]


def failures_of(board: Board, dataset_id: str,
                stages: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """:func:`failures` of several stages of one dataset, in one round trip."""
    s = board.shard(dataset_id)
    pipe = board.redis.pipeline(transaction=False)
    for stage in stages:
        pipe.lrange(board.keys.errors(s, dataset_id, stage), 0, -1)
    return {stage: [json.loads(r) for r in raw]
            for stage, raw in zip(stages, pipe.execute(), strict=True)}


def events(board: Board, *, dataset_id: str | None = None,
           count: int = 200) -> list[dict[str, str]]:
    """Recent transition events, newest last. With a dataset, only its shard is read and
    the stream is scanned back (it is capped, so very old history may be gone)."""
    shards = [board.shard(dataset_id)] if dataset_id else list(range(board.shards))
    found: list[dict[str, str]] = []
    for s in shards:
        last = "+"
        taken = 0
        while taken < count:
            chunk = board.redis.xrevrange(board.keys.events(s), max=last, count=1000)
            if not chunk:
                break
            for entry_id, fields in chunk:
                if dataset_id is None or fields.get("ds") == dataset_id:
                    found.append({"id": entry_id, **fields})
                    taken += 1
            last = "(" + chunk[-1][0]
            if dataset_id is None:
                break
    found.sort(key=lambda e: tuple(int(p) for p in e["id"].split("-")))
    return found[-count:]


def agents(board: Board) -> list[dict[str, Any]]:
    """Registered agents that are still heartbeating, with their current items."""
    ids = board.redis.zrange(board.keys.agents, 0, -1)
    if not ids:
        return []
    # one GET each, not MGET: agent records live in different hash slots on a cluster
    pipe = board.redis.pipeline(transaction=False)
    for i in ids:
        pipe.get(board.keys.agent(i))
    return [json.loads(raw) for raw in pipe.execute() if raw is not None]


def held_by(board: Board, agent_id: str, template: str) -> list[Claim]:
    """Items of a template the board says this agent holds: running, or running when an
    operator paused them. An agent that restarts compares these with the jobs it finds."""
    out = []
    for s in range(board.shards):
        members = (board.redis.zrange(board.keys.leases(s), 0, -1)
                   + board.redis.zrange(board.keys.held(s), 0, -1))
        for m in members:
            ds, stage = split_member(m)
            f = board.redis.hmget(board.keys.dataset(s, ds), ["t", "v", "p", f"{stage}.o",
                                                              f"{stage}.k", f"{stage}.a",
                                                              f"{stage}.mem", f"{stage}.s",
                                                              f"{stage}.hp"])
            running = f[7] == State.RUNNING or (f[7] == State.HELD and f[8] == State.RUNNING)
            if f[0] == template and f[3] == agent_id and running:
                out.append(Claim(dataset=ds, stage=stage, template=template, version=f[1],
                                 token=int(f[4]), attempt=int(f[5] or 0), path=f[2] or "",
                                 memory_mb=int(f[6]) if f[6] else None))
    return out


def nothing_left(board: Board, template: str, stages: Sequence[str]) -> bool:
    """Whether a burst agent serving ``stages`` of ``template`` is done: nothing served is
    running, or ready or retrying where a claim could take it (paused work is left for
    after its resume), and nothing served is waiting on a stage that could still finish."""
    served = set(stages)
    queued = {State.READY, State.RETRY}  # count only where a claim could take them
    mine_busy = mine_waiting = other_busy = False
    seen: set[str] = set()
    for (tpl, stage, state), n in counts(board).items():
        if tpl != template or n <= 0:
            continue
        if state in queued:
            seen.add(stage)
        elif stage in served:
            mine_busy |= state == State.RUNNING
            mine_waiting |= state == State.WAITING
        else:
            other_busy |= state == State.RUNNING
    if seen:  # paused stages, templates and campaigns hold work no claim can take
        open_ = board.claimer.stages_with_work(template, sorted(seen))
        mine_busy |= bool(open_ & served)
        other_busy |= bool(open_ - served)
    return not mine_busy and not (mine_waiting and other_busy)
