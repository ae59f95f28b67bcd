"""Reference deliveries: which datasets and stages a change of rules or reference files moves.

Everything comes from what completions recorded on the board, never from opening the
datasets' files:

- ``B:{sN}:refsel:TEMPLATE:CFG``: per distinct config of the header keywords the rules
  select on (the config itself in ``B:{sN}:selcfg``), a zset of the datasets (members)
  that have it, scored by exposure start; recorded by the bestrefs stage's provenance;
- ``B:{sN}:refuse``: which stages of a template used which reference names
  (``TEMPLATE|STAGE|NAME``), recorded when a completion brought a new provenance
  environment.

A change is evaluated per distinct config, not per dataset: for each config and reftype the
matching rules of both sides give the exposure-start ranges where the choice moves, and one
ZRANGEBYSCORE per range returns exactly the datasets in it. The cost grows with the number
of configs and of datasets affected, not with the board.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from owl.board import Board
from owl.calib.bestrefs import Rule, load_rules
from owl.errors import BoardError
from owl.provenance import checksum

_AMBIGUOUS = "<ambiguous>"


@dataclass(frozen=True)
class Change:
    """One reference choice that moves: reftype, old file, new file (None: no choice)."""

    reftype: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        return f"{self.reftype} {self.old or '-'} → {self.new or '-'}"


@dataclass(frozen=True)
class Affected:
    """A dataset a change moves, and the first stage to rerun (None: no stage of its
    template has used the reference names that change)."""

    dataset: str
    template: str
    changes: tuple[Change, ...]
    from_stage: str | None


@dataclass(frozen=True)
class Report:
    """What ``owl refs diff`` prints."""

    scanned: int
    affected: tuple[Affected, ...]
    counts: dict[Change, int]
    stages: dict[tuple[str, str], tuple[str, ...]]  # (template, reftype) -> stages using it
    seconds: float


@dataclass(frozen=True)
class Side:
    """One side of a diff: a rules file, or a directory of reference files."""

    path: Path
    rules: tuple[Rule, ...] | None = None
    files: dict[str, str] | None = None  # file name -> checksum

    @classmethod
    def read(cls, path: Path) -> Side:
        if path.is_dir():
            return cls(path, files={p.name: checksum(p) for p in sorted(path.iterdir())
                                    if p.is_file()})
        if not path.exists():
            raise BoardError(f"{path}: no such rules file or reference directory")
        return cls(path, rules=load_rules(path))


def _by_type(rules: Iterable[Rule]) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    for r in rules:
        out.setdefault(r.reftype, []).append(r)
    return out


def changed_reftypes(old: Sequence[Rule], new: Sequence[Rule]) -> list[str]:
    """Reftypes whose rules differ (rule order and rule names aside)."""
    def key(rules: list[Rule]) -> set[tuple[Any, ...]]:
        return {(r.match, r.useafter, r.file) for r in rules}

    a, b = _by_type(old), _by_type(new)
    return sorted(t for t in set(a) | set(b) if key(a.get(t, [])) != key(b.get(t, [])))


def _epoch(when: datetime) -> int:
    return calendar.timegm(when.timetuple())


class Chooser:
    """The rules' choice per (config, reftype) as USEAFTER steps: from each step's epoch
    second on, the file it names (``<ambiguous>`` when two rules tie)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.by_type = _by_type(rules)
        self._steps: dict[tuple[str, str], tuple[list[int], list[str]]] = {}

    def steps(self, key: str, config: Mapping[str, Any],
              reftype: str) -> tuple[list[int], list[str]]:
        if (key, reftype) not in self._steps:
            files: dict[int, set[str]] = {}
            for r in self.by_type.get(reftype, []):
                if r.matches(config):
                    files.setdefault(_epoch(r.useafter), set()).add(r.file)
            after = sorted(files)
            picks = [next(iter(files[u])) if len(files[u]) == 1 else _AMBIGUOUS
                     for u in after]
            self._steps[(key, reftype)] = (after, picks)
        return self._steps[(key, reftype)]

    def at(self, key: str, config: Mapping[str, Any], reftype: str,
           when: float) -> str | None:
        after, picks = self.steps(key, config, reftype)
        i = bisect.bisect_right(after, when) - 1
        return picks[i] if i >= 0 else None


def intervals(before: Chooser, after: Chooser, key: str, config: Mapping[str, Any],
              reftype: str, changed_files: set[str] | None,
              ) -> list[tuple[float, float, Change]]:
    """Exposure-start ranges [lo, hi) where a config's choice of a reftype moves."""
    cuts = sorted(set(before.steps(key, config, reftype)[0])
                  | set(after.steps(key, config, reftype)[0]))
    out = []
    for lo, hi in itertools.pairwise([-math.inf, *cuts, math.inf]):
        was = before.at(key, config, reftype, lo)
        now = after.at(key, config, reftype, lo)
        if changed_files is None:
            if was != now:
                out.append((lo, hi, Change(reftype, was, now)))
        elif was is not None and was.rpartition("$")[2] in changed_files:
            out.append((lo, hi, Change(reftype, was, f"{was} (new content)")))
    return out


def _configs(board: Board) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(shard, template, config id, config) of every recorded selection config."""
    import json

    out = []
    for s in range(board.shards):
        for field_name, raw in board.redis.hgetall(board.keys.selcfg(s)).items():
            tpl, _, cid = field_name.partition("|")
            out.append((s, tpl, cid, json.loads(raw)))
    return out


def stage_use(board: Board) -> dict[tuple[str, str], tuple[str, ...]]:
    """(template, reference name) -> stages that used it, in the template's stage order."""
    found: dict[tuple[str, str], set[str]] = {}
    for s in range(board.shards):
        for key in board.redis.hkeys(board.keys.refuse(s)):
            tpl, stage, name = key.split("|", 2)
            found.setdefault((tpl, name), set()).add(stage)
    orders: dict[str, list[str]] = {}
    out = {}
    for (tpl, name), stages in found.items():
        if tpl not in orders:
            orders[tpl] = stage_order(board, tpl)
        order = orders[tpl]
        out[(tpl, name)] = tuple(sorted(stages, key=lambda st: (
            order.index(st) if st in order else len(order), st)))
    return out


def stage_order(board: Board, template: str) -> list[str]:
    """Stage names of a template, from any version stored on the board."""
    prefix = board.keys.template_source(template, "")
    for key in board.redis.scan_iter(match=prefix + "*", count=100):
        return list(board.stored_template(template, key.removeprefix(prefix)).stage_names)
    return []


def diff(board: Board, old: Side, new: Side, *, current: Sequence[Rule] | None = None,
         ) -> Report:
    """Which datasets and stages a change moves.

    Parameters
    ----------
    board : Board
    old, new : Side
        Two rules files, or two directories of reference files (then a file whose content
        differs moves every dataset whose current rules choose it).
    current : sequence of Rule, optional
        The rules in force, for directories (default: the board's recorded rules, else the
        shipped ones).
    """
    t0 = time.perf_counter()
    if old.rules is not None and new.rules is not None:
        before, after = Chooser(old.rules), Chooser(new.rules)
        reftypes = changed_reftypes(old.rules, new.rules)
        changed_files: set[str] | None = None
    elif old.files is not None and new.files is not None:
        rules = tuple(current) if current is not None else current_rules(board)
        before = after = Chooser(rules)
        changed_files = {n for n in set(old.files) | set(new.files)
                         if old.files.get(n) != new.files.get(n)}
        reftypes = sorted({r.reftype for r in rules
                           if r.file.rpartition("$")[2] in changed_files})
    else:
        raise BoardError(f"compare two rules files or two directories, not {old.path} and "
                         f"{new.path}")
    sizes = board.redis.pipeline(transaction=False)
    ranges = board.redis.pipeline(transaction=False)
    asked: list[tuple[str, Change]] = []
    for s, tpl, cid, config in _configs(board):
        key = board.keys.refsel(s, tpl, cid)
        sizes.zcard(key)
        for reftype in reftypes:
            for lo, hi, change in intervals(before, after, f"{tpl}|{cid}", config, reftype,
                                            changed_files):
                ranges.zrangebyscore(key, "-inf" if lo == -math.inf else lo,
                                     "+inf" if hi == math.inf else f"({hi}")
                asked.append((tpl, change))
    scanned = sum(sizes.execute())
    per_ds: dict[str, dict[str, Change]] = {}
    template_of: dict[str, str] = {}
    for (tpl, change), members in zip(asked, ranges.execute() if asked else [], strict=True):
        for m in members:
            ds = m.partition("#")[0]
            per_ds.setdefault(ds, {})[change.reftype] = change
            template_of[ds] = tpl
    use = stage_use(board)
    orders = {tpl: stage_order(board, tpl) for tpl in set(template_of.values())}
    first_of: dict[tuple[str, tuple[str, ...]], str | None] = {}
    affected: list[Affected] = []
    counts: dict[Change, int] = {}
    for ds in sorted(per_ds):
        tpl = template_of[ds]
        changes = tuple(per_ds[ds][t] for t in sorted(per_ds[ds]))
        for ch in changes:
            counts[ch] = counts.get(ch, 0) + 1
        names = tuple(ch.reftype for ch in changes)
        if (tpl, names) not in first_of:
            order = orders[tpl]
            stages = {st for name in names for st in use.get((tpl, name), ())}
            first_of[(tpl, names)] = min(
                stages, key=lambda st: order.index(st) if st in order else len(order),
                default=None)
        affected.append(Affected(ds, tpl, changes, first_of[(tpl, names)]))
    return Report(scanned=scanned, affected=tuple(affected), counts=counts,
                  stages={k: v for k, v in use.items() if k[1] in reftypes},
                  seconds=time.perf_counter() - t0)


def current_rules(board: Board) -> tuple[Rule, ...]:
    """The rules recorded by the last ``owl refs apply``, else the shipped rules."""
    import json
    import tempfile

    cur = board.redis.hget(board.keys.refs, "current")
    if not cur:
        return load_rules()
    record = json.loads(board.redis.hget(board.keys.refs, cur) or "{}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(record.get("content", ""))
        f.flush()
        return load_rules(Path(f.name))


def record_rules(board: Board, path: Path, who: str, campaign: str) -> str:
    """Record a rules file's content on the board as the rules in force; returns its id
    (a content digest, so applying the same rules twice records one version)."""
    import json

    content = path.read_text()
    rid = checksum(path)[:12]
    record = {"path": str(path.resolve()), "content": content, "applied_ms":
              int(time.time() * 1000), "by": who, "campaign": campaign}
    pipe = board.redis.pipeline(transaction=True)  # one key: atomic on a cluster too
    pipe.hsetnx(board.keys.refs, rid, json.dumps(record))
    pipe.hset(board.keys.refs, "current", rid)
    pipe.execute()
    return rid


def set_overrides(board: Board, affected: Sequence[Affected], who: str, why: str,
                  batch: int = 1000) -> int:
    """Write each affected dataset's new choices as its reference overrides (``rf``), in
    batches; returns how many datasets took them."""
    import json

    done = 0
    for i in range(0, len(affected), batch):
        pipe = board.scripts.batch()
        for a in affected[i:i + batch]:
            s = board.shard(a.dataset)
            overrides = {c.reftype: c.new for c in a.changes
                         if c.new is not None and not c.new.endswith("(new content)")}
            board.scripts["setrefs"](
                keys=[board.keys.dataset(s, a.dataset)],
                args=[board.keys.prefix(s), a.dataset, json.dumps(overrides), who,
                      f"{why}: " + ", ".join(str(c) for c in a.changes)],
                client=pipe)
        done += sum(1 for r in board.scripts.execute(pipe, board.redis) if r[0] == 1)
    return done
