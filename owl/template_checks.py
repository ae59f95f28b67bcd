"""The checks of a template file after YAML parsing: its JSON Schema, its stage graph
(unknown ``after`` names, cycles, task/argv, ``{placeholders}`` in argv) and its cron
schedule; and the words and places of the problems found (``file:line: path: text``).
Used by :mod:`owl.template_loader`."""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type information
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from owl import placeholders
from owl.resources import data_path

Step = str | int


class Problem(NamedTuple):
    line: int
    path: str
    text: str


@lru_cache(maxsize=1)
def validator() -> Any:
    schema = json.loads(data_path("schemas", "template.schema.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema)


def schema_problems(tree: Any, data: Any) -> Iterator[Problem]:
    for error in validator().iter_errors(data):
        path = tuple(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        expected = schema.get("x-expected")
        if error.validator == "additionalProperties" and error.validator_value is False:
            allowed = list(schema.get("properties", {}))
            for key in (k for k in error.instance if k not in allowed):
                yield Problem(line_of(tree, (*path, key)), dotted(path), unknown_key(key, allowed))
        elif error.validator == "required":
            for key in (k for k in error.validator_value if k not in error.instance):
                yield Problem(line_of(tree, path), dotted(path), f"missing required key {key!r}")
        elif "propertyNames" in error.relative_schema_path:
            text = f"key {error.instance!r} must be {expected}"
            yield Problem(line_of(tree, (*path, error.instance)), dotted(path), text)
        elif error.validator == "enum":
            allowed = [str(v) for v in error.validator_value]
            text = f"must be one of {', '.join(allowed)}; got {show(error.instance)}"
            text += did_you_mean(error.instance, allowed)
            yield Problem(line_of(tree, path), dotted(path), text)
        elif expected:
            text = f"must be {expected}, got {show(error.instance)}"
            yield Problem(line_of(tree, path), dotted(path), text)
        else:
            yield Problem(line_of(tree, path), dotted(path), error.message)


def merged_stages(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each well-formed stage with the defaults applied (ill-formed ones have schema errors)."""
    stages = data.get("stages")
    defaults = data.get("defaults")
    if not isinstance(stages, dict):
        return {}
    # Keys the schema rejects under defaults (task, after, ...) are reported, not applied.
    allowed = validator().schema["properties"]["defaults"]["properties"]
    base = {k: v for k, v in defaults.items() if k in allowed} if isinstance(defaults, dict) else {}
    # Each stage gets its own copy, so no two stages share a mutable params value.
    return {n: _merge(copy.deepcopy(base), s) for n, s in stages.items() if isinstance(s, dict)}


def _merge(base: dict[str, Any], over: dict[str, Any], *, deep: bool = True) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if deep and isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge(old, value, deep=key != "params")
        else:
            out[key] = value
    return out


def schedule_problems(tree: Any, data: dict[str, Any]) -> Iterator[Problem]:
    scan = data.get("scan")
    expr = scan.get("schedule") if isinstance(scan, dict) else None
    if isinstance(expr, str) and expr:
        from croniter import croniter

        if not croniter.is_valid(expr):
            yield Problem(line_of(tree, ("scan", "schedule")), "scan.schedule",
                           f"{expr!r} is not a cron expression (5 fields: minute hour "
                           "day-of-month month day-of-week, e.g. \"0 * * * *\" hourly)")


def graph_problems(
    tree: Any, names: list[str], stages: dict[str, dict[str, Any]]
) -> Iterator[Problem]:
    """Problems of the stage graph; ``stages`` holds the well-formed ones among ``names``."""
    predecessors: dict[str, list[str]] = {}
    for name, stage in stages.items():
        here: tuple[Step, ...] = ("stages", name)
        if "task" not in stage and "argv" not in stage:
            text = "a stage needs 'task' (\"module:function\") or 'argv' (a command list)"
            yield Problem(line_of(tree, here), dotted(here), text)
        elif "task" in stage and "argv" in stage:
            text = "a stage has either 'task' or 'argv', not both"
            yield Problem(line_of(tree, here), dotted(here), text)
        predecessors[name] = []
        for dep, at in _after_entries(stage.get("after"), here):
            if dep in stages:
                predecessors[name].append(dep)
            elif dep not in names:
                text = f"unknown stage {dep!r}" + did_you_mean(dep, names)
                text += f"; stages: {', '.join(names)}"
                yield Problem(line_of(tree, at), dotted(at), text)
        yield from _placeholder_problems(tree, here, stage)
    for cycle in _cycles(predecessors):
        at = ("stages", cycle[0], "after")
        text = f"dependency cycle: {' -> '.join(cycle)} (each runs before the next)"
        yield Problem(line_of(tree, at), dotted(at), text)


def _after_entries(after: Any, here: tuple[Step, ...]) -> list[tuple[str, tuple[Step, ...]]]:
    """The stage names in ``after`` with their paths, skipping what the schema rejects."""
    if isinstance(after, str):
        return [(after, (*here, "after"))]
    if isinstance(after, list):
        return [(a, (*here, "after", i)) for i, a in enumerate(after) if isinstance(a, str)]
    return []


def _placeholder_problems(
    tree: Any, here: tuple[Step, ...], stage: dict[str, Any]
) -> Iterator[Problem]:
    argv = stage.get("argv")
    if not isinstance(argv, list):
        return
    params = stage.get("params")
    param_names = list(params) if isinstance(params, dict) else []
    script = placeholders.shell_script_index(argv)
    for i, item in enumerate(argv):
        if isinstance(item, str):
            for text in placeholders.problems(item, param_names, in_shell=i == script):
                yield Problem(line_of(tree, (*here, "argv", i)), dotted((*here, "argv", i)), text)


def _cycles(predecessors: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per tangle, in running order, starting at the stage first in the file."""
    order = list(predecessors)
    state: dict[str, str] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(name: str) -> None:
        state[name] = "open"
        stack.append(name)
        for dep in predecessors[name]:
            if state.get(dep) == "open":
                loop = stack[stack.index(dep) :][::-1]  # predecessors first: running order
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    start = loop.index(min(loop, key=order.index))
                    loop = loop[start:] + loop[:start]
                    cycles.append([*loop, loop[0]])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = "done"

    for name in order:
        if name not in state:
            visit(name)
    return cycles


# --- words and places ---------------------------------------------------------------


def line_of(tree: Any, path: Sequence[Step]) -> int:
    """1-based line of the key or list item at ``path`` (of the nearest enclosing one)."""
    line, node = 1, tree
    for step in path:
        try:
            if isinstance(node, CommentedMap):
                key = next(k for k in node if str(k) == step)
                line, node = node.lc.key(key)[0] + 1, node[key]
            elif isinstance(node, CommentedSeq) and isinstance(step, int):
                line, node = node.lc.item(step)[0] + 1, node[step]
            else:
                break
        except (StopIteration, KeyError, IndexError, AttributeError, TypeError):
            break  # keys merged in by `<<:` have no line of their own
    return line


def dotted(path: Sequence[Step]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path).lstrip(".")


def format_problem(source: str, problem: Problem) -> str:
    where = f"{source}:{problem.line}: "
    return where + (f"{problem.path}: " if problem.path else "") + problem.text


def show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: Any, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: str, allowed: Sequence[str]) -> str:
    hint = did_you_mean(key, allowed)
    return f"unknown key {key!r}" + (hint or f"; allowed keys: {', '.join(allowed)}")
