"""Which datasets a campaign takes: a template, a list file, header filters.

Header filters (``INSTRUME=ACS``, ``DATE-OBS>=2012-01-01``) are evaluated on the header
keywords each dataset keeps on the board (recorded at ingest), never by opening the files.
Values compare as numbers when both sides are numbers, else as strings (ISO dates sort).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owl.errors import BoardError
from owl.keys import valid_name

_FILTER = re.compile(r"^([A-Za-z0-9_-]+)\s*(>=|<=|!=|=|>|<)\s*(.*)$")
_OPS = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Filter:
    key: str
    op: str
    value: str

    def __call__(self, meta: dict[str, Any]) -> bool:
        have = meta.get(self.key)
        if have is None:
            return self.op == "!="
        a, b = _coerce(have, self.value)
        return bool(_OPS[self.op](a, b))

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def _coerce(have: Any, want: str) -> tuple[Any, Any]:
    try:
        return float(have), float(want)
    except (TypeError, ValueError):
        return str(have).strip().upper(), want.strip().upper()


def parse_filter(text: str) -> Filter:
    m = _FILTER.match(text.strip())
    if not m or not m.group(3) or m.group(3)[0] in "<>=!":
        raise BoardError(f"filter {text!r}: write KEYWORD=VALUE (or != >= <= > <), e.g. "
                         "INSTRUME=ACS or DATE-OBS>=2012-01-01")
    return Filter(m.group(1).upper(), m.group(2), m.group(3).strip())


@dataclass(frozen=True)
class Selector:
    """A campaign's selection. Empty parts select everything of the template."""

    template: str = ""
    filters: tuple[Filter, ...] = ()
    datasets: tuple[tuple[str, str], ...] = ()  # explicit (dataset, from stage or "")
    source: str = ""  # the list file it came from, for the record

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "filters": [str(f) for f in self.filters],
                "datasets": len(self.datasets), "source": self.source}


def read_list(path: Path) -> tuple[tuple[str, str], ...]:
    """A dataset list file: one dataset per line, optionally followed by its from-stage;
    blank lines and '#' comments are ignored."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise BoardError(f"cannot read dataset list {path}: {exc.strerror}") from exc
    for n, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2 or not valid_name(words[0]):
            raise BoardError(f"{path}:{n}: expected 'DATASET [FROM-STAGE]', got {line.strip()!r}")
        out.append((words[0], words[1] if len(words) == 2 else ""))
    return tuple(out)


@dataclass
class Walk:
    """Counts of a selection walk, for the progress line and the report."""

    seen: int = 0
    selected: int = 0
    other_template: list[str] = field(default_factory=list)


def matching(board: Any, sel: Selector, from_stage: str, walk: Walk,
             batch: int = 1000) -> Iterator[tuple[str, str]]:
    """(dataset, from stage) for every dataset the selector takes, shard by shard."""
    if sel.datasets:
        yield from _named(board, sel, from_stage, walk, batch)
        return
    k = board.keys
    for s in range(board.shards):
        start = 0
        while True:
            ids = board.redis.zrange(k.datasets(s), start, start + batch - 1)
            if not ids:
                break
            start += len(ids)
            pipe = board.redis.pipeline(transaction=False)
            for ds in ids:
                pipe.hmget(k.dataset(s, ds), ["t", "m"])
            for ds, (tpl, meta) in zip(ids, pipe.execute(), strict=True):
                walk.seen += 1
                if _takes(sel, tpl, meta):
                    walk.selected += 1
                    yield ds, from_stage


def _named(board: Any, sel: Selector, from_stage: str, walk: Walk,
           batch: int) -> Iterator[tuple[str, str]]:
    k = board.keys
    for i in range(0, len(sel.datasets), batch):
        chunk = sel.datasets[i:i + batch]
        pipe = board.redis.pipeline(transaction=False)
        for ds, _ in chunk:
            pipe.hmget(k.dataset(board.shard(ds), ds), ["t", "m"])
        for (ds, stage), (tpl, meta) in zip(chunk, pipe.execute(), strict=True):
            walk.seen += 1
            if tpl is None:
                raise BoardError(f"dataset {ds!r} (from {sel.source or 'the list'}) is not on "
                                 f"board {board.name!r}")
            if sel.template and tpl != sel.template:
                walk.other_template.append(ds)
                continue
            if _takes(sel, tpl, meta):
                walk.selected += 1
                yield ds, stage or from_stage


def _takes(sel: Selector, tpl: str | None, meta: str | None) -> bool:
    if tpl is None or (sel.template and tpl != sel.template):
        return False
    if not sel.filters:
        return True
    values = json.loads(meta) if meta else {}
    return all(f(values) for f in sel.filters)


def check_filters(filters: Sequence[Filter]) -> None:
    seen = {f.key for f in filters}
    if len(seen) < len(filters) and any(f.op == "=" for f in filters):
        dup = [f for f in filters if f.op == "="]
        if len({f.key for f in dup}) < len(dup):
            raise BoardError("two '=' filters on the same keyword can never both hold: "
                             + ", ".join(str(f) for f in dup))
