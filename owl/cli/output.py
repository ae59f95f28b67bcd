"""How the CLI prints: strict JSON and JSON Lines for scripts, rich tables for people.

Conventions (README "Command-line conventions"):

- ``--json`` prints one JSON document; commands that stream (``events -f``, ``ingest``)
  print JSON Lines, one object per line, flushed as it happens.
- JSON is strict: NaN and Infinity (which ``json.dumps`` would write as non-JSON tokens)
  become ``null``; anything that is not JSON data raises instead of printing a Python repr.
- Tables use rich only when stdout is a terminal; piped output is plain text that is stable
  to grep and diff.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import click


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data: NaN/Infinity -> None, tuples/sets -> lists, paths and
    enums -> strings, frozen dataclasses -> dicts.

    Raises
    ------
    TypeError
        For anything else (never silently a Python repr).
    """
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    raise TypeError(f"{type(value).__name__} is not JSON data: {value!r:.80}")


def to_json(data: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of `data` (keys sorted; see :func:`jsonable`)."""
    return json.dumps(jsonable(data), indent=indent, sort_keys=True, allow_nan=False,
                      separators=None if indent else (",", ":"))


def emit_line(data: Any) -> None:
    """One JSON Lines record on stdout, flushed at once (a reader sees it immediately)."""
    click.echo(to_json(data))


def to_yaml(data: Any) -> str:
    """YAML text of `data` (block style, keys in order), for ``owl show --yaml``."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(jsonable(data), out)
    return out.getvalue()


def is_terminal() -> bool:
    """True when stdout is a terminal: rich tables and progress bars, else plain text."""
    return sys.stdout.isatty()


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                *, right: Sequence[str] = ()) -> None:
    """A table: rich on a terminal, aligned plain text otherwise.

    Parameters
    ----------
    title : str
        Shown above the table (a rich caption, or a plain line).
    columns : sequence of str
        Column headers.
    rows : sequence of sequences
        Cell values; printed with ``str``.
    right : sequence of str
        Columns aligned right (numbers).
    """
    cells = [[str(c) for c in row] for row in rows]
    if is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title or None, title_justify="left", header_style="bold")
        for col in columns:
            table.add_column(col, justify="right" if col in right else "left")
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max([len(col), *(len(r[i]) for r in cells)]) for i, col in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if col in right else v.ljust(w)
                 for v, w, col in zip(values, widths, columns, strict=True)]
        return "  ".join(parts).rstrip()

    if title:
        click.echo(title)
    click.echo(line(columns))
    for row in cells:
        click.echo(line(row))
