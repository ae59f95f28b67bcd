"""The placeholders of argv tasks: one list, used by template validation and at run time.

An ``argv`` item may contain ``{NAME}`` for any name in :data:`PLACEHOLDERS` and
``{param.KEY}`` for a parameter of the stage; ``{{`` and ``}}`` are literal braces. A
placeholder followed by ``!q`` (``{input!q}``) is shell-quoted (:func:`shlex.quote`): use it
inside a ``sh -c "..."`` command string, where a file named ``x;touch PWNED;_sh.fits`` would
otherwise run ``touch``. Validation refuses an unquoted placeholder inside the command string
of a shell (``sh``/``bash``/... followed by ``-c``), so that mistake cannot be deployed.
Without a shell, each argv item is one argument whatever it contains: no quoting needed.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any

#: Every name an argv item may use in braces, with what it expands to.
PLACEHOLDERS: dict[str, str] = {
    "dataset": "the dataset id",
    "stage": "the stage name",
    "template": "the template name",
    "input": "the dataset's registered input file",
    "output_dir": "this attempt's (token-specific) output directory",
    "token": "the fencing token of this attempt",
    "attempt": "the attempt number (1 for the first)",
}

#: ``{param.KEY}`` names a stage parameter (non-string values are written as JSON).
PARAM_PREFIX = "param."

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SHELL_C = re.compile(r"-[A-Za-z]*c[A-Za-z]*")  # -c, or a cluster such as -ec
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})


def _split(name: str) -> tuple[str, bool]:
    quoted = name.endswith("!q")
    return (name[:-2] if quoted else name), quoted


def known_names(params: Sequence[str]) -> list[str]:
    return [*PLACEHOLDERS, *(PARAM_PREFIX + p for p in params)]


def problems(item: str, params: Sequence[str], *, in_shell: bool = False) -> Iterator[str]:
    """What is wrong with the placeholders of one argv item (empty when it is valid)."""
    for m in _TOKEN.finditer(item):
        text = m.group(0)
        if text in ("{{", "}}"):
            continue
        if m.group(1) is None:
            yield f"lone {text!r}: write {text * 2!r} for a literal brace"
            continue
        name, quoted = _split(m.group(1))
        if "!" in name:
            yield f"{{{m.group(1)}}}: the only conversion is !q (shell quoting)"
        elif name.startswith(PARAM_PREFIX):
            if name[len(PARAM_PREFIX):] not in params:
                have = ", ".join(params) or "none"
                yield f"{{{name}}} names no parameter of this stage (its params: {have})"
                continue
        elif name not in PLACEHOLDERS:
            choices = [f"{{{k}}}" for k in (*PLACEHOLDERS, "param.NAME")]
            close = difflib.get_close_matches(f"{{{name}}}", choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield (f"unknown placeholder {{{name}}}" + hint
                   + f"; known: {', '.join(choices)} (add !q to shell-quote)")
            continue
        if in_shell and not quoted:
            yield (f"{{{name}}} inside a shell command must be quoted: write {{{name}!q}} "
                   "(a file name with ';' or spaces would otherwise run as shell code)")


def shell_script_index(argv: Sequence[Any]) -> int | None:
    """Index of the command string when argv runs a shell with ``-c`` (else None)."""
    if len(argv) >= 3 and isinstance(argv[0], str) and PurePath(argv[0]).name in SHELLS:
        for i, arg in enumerate(argv[1:-1], start=1):
            if isinstance(arg, str) and _SHELL_C.fullmatch(arg):
                return i + 1
    return None


def expand(argv: Sequence[str], values: Mapping[str, str], params: Mapping[str, Any]
           ) -> list[str]:
    """The argv with every placeholder replaced.

    Raises
    ------
    ValueError
        Naming the item and the placeholder, for anything :func:`problems` would report.
    """
    table = dict(values)
    for key, value in params.items():
        table[PARAM_PREFIX + key] = value if isinstance(value, str) else json.dumps(value)

    def one(m: re.Match[str]) -> str:
        text = m.group(0)
        if text in ("{{", "}}"):
            return text[0]
        if m.group(1) is None:
            raise ValueError(f"lone {text!r}")
        name, quoted = _split(m.group(1))
        if name not in table:
            raise ValueError(f"unknown placeholder {{{name}}}")
        return shlex.quote(table[name]) if quoted else table[name]

    out = []
    for arg in argv:
        try:
            out.append(_TOKEN.sub(one, arg))
        except ValueError as exc:
            raise ValueError(f"argv element {arg!r}: {exc}") from exc
    return out
