"""Skip-if-done: does an item's last completion still stand for what it would do now?

A stage may complete as *reused*, without running, when its last recorded completion had
the same task and code version, the same params, the same reference files (same names
after the board's overrides, same contents), the same input contents, and every output it
recorded still exists with the recorded content. :func:`differences` lists, in an
operator's words, every component that differs; none means reuse. The worker asks before
running a task (:mod:`owl.attempt`); ``owl explain`` asks the same question to say why an
item would run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owl.provenance import FileRecord, file_record, outputs_of, resolve_named


@dataclass(frozen=True)
class Current:
    """What an item would run with now."""

    task: str
    code_version: str
    params: Mapping[str, Any]
    overrides: Mapping[str, str]  # reference name -> file, from the board
    inputs: Sequence[FileRecord]


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_show(v) for v in value)
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def param_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out.append(f"param {key} {_show(old[key])} removed")
        elif key not in old:
            out.append(f"param {key} added: {_show(new[key])}")
        elif old[key] != new[key]:
            out.append(f"param {key} {_show(old[key])} → {_show(new[key])}")
    return out


def ref_changes(refs: Sequence[Sequence[Any]], overrides: Mapping[str, str], *,
                rehash: bool = False) -> list[str]:
    """Reference files recorded at the last completion against what would be used now."""
    out = []
    for name, named, path, size, mtime, ck in refs:
        now = overrides.get(name, named)
        if now != named:
            out.append(f"{name} {named} → {now}")
            continue
        rec = file_record(Path(path), {path: [path, size, mtime, ck]}, rehash=rehash)
        if rec is None:
            rec = file_record(resolve_named(named), rehash=True)
            if rec is None:
                out.append(f"{name} {named}: reference file {path} missing")
                continue
        if rec[3] != ck:
            out.append(f"{name} {named}: reference file content changed ({rec[0]})")
    return out


def input_changes(old: Sequence[FileRecord], new: Sequence[FileRecord]) -> list[str]:
    """Compared by content: a rerun's identical input under a new path is the same input."""
    old_sums = {r[3]: r[0] for r in old}
    new_sums = {r[3]: r[0] for r in new}
    old_names = {Path(r[0]).name: r[0] for r in old}
    out, changed = [], set()
    for ck, path in sorted(new_sums.items(), key=lambda kv: kv[1]):
        if ck in old_sums:
            continue
        name = Path(path).name
        if name in old_names:
            changed.add(name)
            out.append(f"input {name} changed")
        else:
            out.append(f"new input {path}")
    for ck, path in sorted(old_sums.items(), key=lambda kv: kv[1]):
        if ck not in new_sums and Path(path).name not in changed:
            out.append(f"input {path} no longer read or missing")
    return out


def output_changes(pv: Mapping[str, Any], *, rehash: bool = False) -> list[str]:
    out = []
    for rec in outputs_of(pv):
        now = file_record(Path(rec[0]), {rec[0]: rec}, rehash=rehash)
        if now is None:
            out.append(f"output file missing: {rec[0]}")
        elif now[3] != rec[3]:
            out.append(f"output file changed: {rec[0]}")
    return out


def differences(current: Current, last: Mapping[str, Any] | None, *,
                rehash: bool = False) -> list[str]:
    """Why the last completion cannot be reused; an empty list means it can.

    Parameters
    ----------
    current : Current
        What the item would run with now.
    last : mapping or None
        ``{"pv": item provenance, "env": its environment, "out": outputs}`` of the last
        completion; None when the item never completed.
    rehash : bool
        Hash files even when size and mtime are unchanged.
    """
    if not last or not last.get("pv"):
        return ["never completed"]
    pv, env = last["pv"], last.get("env") or {}
    if not env:
        return ["the last completion's environment is not on the board"]
    out = []
    if env.get("task") != current.task:
        out.append(f"task {env.get('task')} → {current.task}")
    elif current.code_version.startswith("unknown:"):
        out.append(f"task module {current.code_version[8:]} cannot be found here: its code "
                   "version is unknown")
    elif env.get("cv") != current.code_version:
        out.append(f"task code changed ({env.get('cv')} → {current.code_version})")
    out += param_changes(env.get("pm") or {}, current.params)
    out += ref_changes(env.get("rf") or [], current.overrides, rehash=rehash)
    out += input_changes(pv.get("in") or [], current.inputs)
    out += output_changes(pv, rehash=rehash)
    return out
