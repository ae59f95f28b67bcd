"""Read pipeline template files (YAML) into :class:`owl.template.Template` values.

A file is checked in three passes, and every problem of every pass is reported, sorted by
line, each as ``file:line: path.inside.document: what is wrong``:

1. YAML: syntax, duplicate keys, values that are not plain data (custom tags);
2. the JSON Schema ``schemas/template.schema.json``, with jsonschema's messages rewritten in
   an author's words (the schema's ``x-expected`` annotation gives the "must be ..." phrase);
3. the stage graph: ``after`` naming unknown stages, cycles, a stage with neither ``task`` nor
   ``argv`` (or both), unknown ``{placeholders}`` in ``argv``.

ruamel.yaml's round-trip loader keeps the line of every key and list item, which is how a
problem found in plain data (a jsonschema path) is traced back to its line. Nothing read is
ever evaluated: the round-trip loader builds only plain mappings, lists and scalars.

Stage settings under ``defaults`` apply to every stage; a stage's own settings win, and
mappings (``resources``, ``retry``, ``retry.backoff``, ``condor``, ``params``) merge key by
key (values inside ``params`` are replaced whole). Sizes are MB (1 GB = 1024 MB, as HTCondor
counts); durations are seconds.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type information
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean

from owl import placeholders
from owl.errors import TemplateError
from owl.executor import Resources
from owl.resources import data_path, pipelines_dir
from owl.template import RetryPolicy, Stage, Template

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT])I?B?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_MB_PER_UNIT = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}
_SECONDS_PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# A top-level ``stages:`` key in block style, for telling templates from other YAML in a
# folder when the file cannot be parsed (a template with a syntax error is still reported).
_STAGES_LINE = re.compile(r"""^["']?stages["']?\s*:""", re.MULTILINE)

Step = str | int


class _Problem(NamedTuple):
    line: int
    path: str
    text: str


@dataclass
class _Document:
    """One file as read: its bytes, its round-trip YAML tree, the problems found so far."""

    source: str
    raw: bytes = b""
    tree: Any = None
    parsed: bool = False
    problems: list[_Problem] = field(default_factory=list)

    def is_template(self) -> bool:
        """Whether a file met in a folder is a template (and not, say, reference rules)."""
        if self.parsed:
            return isinstance(self.tree, dict) and "stages" in self.tree
        if not self.raw:
            return True  # unreadable: it may be a template, so its problem is reported
        return _STAGES_LINE.search(self.raw.decode("utf-8", "replace")) is not None


@dataclass(frozen=True)
class _Checked:
    template: Template | None
    messages: tuple[str, ...]
    name_line: int = 1


def load_template(path: str | Path) -> Template:
    """Read and check one template file.

    Parameters
    ----------
    path : str or pathlib.Path
        The YAML file.

    Returns
    -------
    Template
        The template, stages in file order, ``source`` set to ``str(path)``.

    Raises
    ------
    TemplateError
        Listing every problem of the file, one ``file:line: path: problem`` per line.
    """
    checked = _check(_read(Path(path)))
    if checked.template is None:
        raise TemplateError("\n".join(checked.messages))
    return checked.template


def load_templates(paths_or_dirs: Iterable[str | Path]) -> list[Template]:
    """Read and check template files and folders of them.

    Parameters
    ----------
    paths_or_dirs : iterable of str or pathlib.Path
        Files (each must be a template) and folders (their ``*.yaml`` and ``*.yml`` files whose
        top level has ``stages``; other YAML there, such as reference rules, is skipped).

    Returns
    -------
    list of Template
        In the order given, a folder's files sorted by name. A folder's template shadows
        one of the same name in a later folder (a search path).

    Raises
    ------
    TemplateError
        Listing every problem of every file, including two files using the same template
        name in one folder (or two files named directly).
    """
    checked = _check_all(paths_or_dirs)
    messages = [m for c in checked for m in c.messages]
    if messages:
        raise TemplateError("\n".join(messages))
    return [c.template for c in checked if c.template is not None]


def load_valid_templates(paths_or_dirs: Iterable[str | Path], notes: list[str] | None = None,
                         ) -> tuple[list[Template], list[str]]:
    """Like :func:`load_templates`, but one broken file does not stop the others.

    A template shadowed by one of the same name in an earlier folder is left out, and said
    so in ``notes`` when a list is given.

    Returns
    -------
    tuple of (list of Template, list of str)
        The valid templates, and every problem of the other files (``file:line: ...``).
    """
    checked = _check_all(paths_or_dirs, notes)
    messages = [m for c in checked for m in c.messages]
    return [c.template for c in checked if c.template is not None], messages


def find_template(name: str, search_dirs: Iterable[str | Path] | None = None) -> Template:
    """Find the template called ``name``.

    Parameters
    ----------
    name : str
        The template's ``name``.
    search_dirs : iterable of str or pathlib.Path, optional
        Folders (or files) searched in order; the first template of that name wins. By
        default, the pipelines shipped with owl.

    Returns
    -------
    Template
        The checked template.

    Raises
    ------
    TemplateError
        When the file defining it is invalid, or no template has that name (the message lists
        the names found, and the files that could not be parsed).
    """
    dirs = [pipelines_dir()] if search_dirs is None else list(search_dirs)
    found: list[str] = []
    unreadable: list[str] = []
    for doc in _documents(dirs):
        if not doc.parsed:
            unreadable.extend(_format(doc.source, p) for p in doc.problems)
        elif isinstance(doc.tree, dict) and doc.tree.get("name") == name:
            checked = _check(doc)
            if checked.template is None:
                raise TemplateError("\n".join(checked.messages))
            return checked.template
        elif isinstance(doc.tree, dict):
            found.append(str(doc.tree.get("name")))
    where = ", ".join(str(d) for d in dirs)
    text = f"no template named {name!r} in {where}"
    text += f"; templates found: {', '.join(found)}" if found else "; no templates found"
    if unreadable:
        text += "\nthese files could not be read and may hold it:\n" + "\n".join(unreadable)
    raise TemplateError(text)


def validate_files(paths: Iterable[str | Path]) -> list[str]:
    """Check template files and folders without stopping at the first problem.

    Parameters
    ----------
    paths : iterable of str or pathlib.Path
        Files and folders, as for :func:`load_templates`.

    Returns
    -------
    list of str
        Every problem as ``file:line: path: problem``; empty when all files are valid.
    """
    return [m for c in _check_all(paths) for m in c.messages]


def parse_size_mb(value: int | str) -> int:
    """Turn a size (``512``, ``"512MB"``, ``"2GB"``, ``"1.5G"``) into whole MB, rounding up.

    An integer is already MB; 1 GB = 1024 MB, as HTCondor counts.
    """
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value.strip().upper())
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    return math.ceil(float(match[1]) * _MB_PER_UNIT[match[2]])


def parse_duration(value: float | str) -> float:
    """Turn a duration (``90``, ``"45s"``, ``"30m"``, ``"2h"``, ``"1h30m"``) into seconds."""
    if not isinstance(value, str):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * _SECONDS_PER_UNIT[u] for n, u in parts)


# --- reading -------------------------------------------------------------------------------


def _documents(paths: Iterable[str | Path]) -> Iterator[_Document]:
    """Explicit files always; a folder's YAML files only when they are templates."""
    for _, doc in _rooted_documents(paths):
        yield doc


def _rooted_documents(paths: Iterable[str | Path]) -> Iterator[tuple[int | None, _Document]]:
    """Each document with the position of its folder among ``paths`` (None: a file)."""
    for i, path in enumerate(map(Path, paths)):
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            yield from ((i, d) for d in map(_read, files) if d.is_template())
        else:
            yield None, _read(path)


def _read(path: Path) -> _Document:
    doc = _Document(source=str(path))
    try:
        doc.raw = path.read_bytes()
        text = doc.raw.decode("utf-8")
    except OSError as exc:
        doc.problems.append(_Problem(1, "", f"cannot read the file: {exc.strerror or exc}"))
        return doc
    except UnicodeDecodeError as exc:
        line = doc.raw[: exc.start].count(b"\n") + 1
        doc.problems.append(_Problem(line, "", "the file is not UTF-8 text"))
        return doc
    try:
        doc.problems.extend(_duplicate_keys(YAML(typ="rt").compose(text), ()))
        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = True  # reported above, every one, with both lines
        doc.tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        doc.problems.append(_Problem(line, "", f"YAML syntax error: {what}"))
        return doc
    except YAMLError as exc:
        doc.problems.append(_Problem(1, "", f"YAML syntax error: {exc}"))
        return doc
    doc.parsed = True
    return doc


def _duplicate_keys(node: Node | None, path: tuple[Step, ...]) -> Iterator[_Problem]:
    if isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, i))
    elif isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if name in first:
                what = "stage name" if path == ("stages",) else "key"
                text = f"duplicate {what} {name!r} (first at line {first[name]}); remove one"
                yield _Problem(line, _dotted(path), text)
            else:
                first[name] = line
            yield from _duplicate_keys(value, (*path, name))


def _plain(value: Any, path: tuple[Step, ...], odd: list[tuple[Step, ...]]) -> Any:
    """The JSON value of a round-trip tree; paths of values JSON has no word for go to odd."""
    if isinstance(value, dict):
        return {str(k): _plain(v, (*path, str(k)), odd) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, (*path, i), odd) for i, v in enumerate(value)]
    # ruamel's scalar subclasses (ScalarFloat, ScalarBoolean, ...) become the plain types;
    # ScalarBoolean subclasses int, so it would otherwise pass for an integer.
    if isinstance(value, bool | ScalarBoolean):
        return bool(value)
    for plain_type in (int, float, str):
        if isinstance(value, plain_type):
            return plain_type(value)
    if isinstance(value, datetime.date):
        return value.isoformat()  # an unquoted date where a string was meant
    if value is None:
        return None
    odd.append(path)  # a custom tag such as `!foo bar`
    return str(getattr(value, "value", value))


# --- checking ------------------------------------------------------------------------------


def _check_all(paths: Iterable[str | Path], notes: list[str] | None = None) -> list[_Checked]:
    """Check every document. A name used twice in one folder, or by two files named
    directly, is an error; a folder's template shadows one of the same name in a folder
    named after it (a search path), which is noted in ``notes``."""
    checked: list[_Checked] = []
    seen: dict[str, tuple[str, int | None]] = {}  # name -> (file:line, folder index) first
    for root, doc in _rooted_documents(paths):
        result = _check(doc)
        if result.template is not None:
            name, here = result.template.name, f"{doc.source}:{result.name_line}"
            first = seen.get(name)
            if first is not None and root is not None and first[1] is not None \
                    and first[1] < root:
                if notes is not None:
                    notes.append(f"{here}: template {name!r} is shadowed by {first[0]} "
                                 "(an earlier template directory)")
                continue
            if first is not None:
                text = f"{here}: name: template name {name!r} is already used by {first[0]}"
                result = _Checked(None, (text,))
            else:
                seen[name] = (here, root)
        checked.append(result)
    return checked


def _check(doc: _Document) -> _Checked:
    problems = list(doc.problems)
    template = None
    if doc.parsed:
        tree = doc.tree
        if not isinstance(tree, dict):
            got = "the file is empty" if tree is None else f"got {_show(_plain(tree, (), []))}"
            problems.append(_Problem(1, "", f"a template is a mapping with name and stages; {got}"))
        else:
            odd: list[tuple[Step, ...]] = []
            data = _plain(tree, (), odd)
            problems += [
                _Problem(_line(tree, p), _dotted(p), "unsupported YAML tag; write plain data")
                for p in odd
            ]
            problems += _schema_problems(tree, data)
            stages = _merged_stages(data)
            names = list(data["stages"]) if isinstance(data.get("stages"), dict) else []
            problems += _graph_problems(tree, names, stages)
            problems += _schedule_problems(tree, data)
            if not problems:
                template = _build(doc, data, stages)
    messages = tuple(_format(doc.source, p) for p in sorted(set(problems)))
    name_line = _line(doc.tree, ("name",)) if doc.parsed else 1
    return _Checked(template, messages, name_line)


@lru_cache(maxsize=1)
def _validator() -> Any:
    schema = json.loads(data_path("schemas", "template.schema.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _schema_problems(tree: Any, data: Any) -> Iterator[_Problem]:
    for error in _validator().iter_errors(data):
        path = tuple(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        expected = schema.get("x-expected")
        if error.validator == "additionalProperties" and error.validator_value is False:
            allowed = list(schema.get("properties", {}))
            for key in (k for k in error.instance if k not in allowed):
                yield _Problem(_line(tree, (*path, key)), _dotted(path), _unknown_key(key, allowed))
        elif error.validator == "required":
            for key in (k for k in error.validator_value if k not in error.instance):
                yield _Problem(_line(tree, path), _dotted(path), f"missing required key {key!r}")
        elif "propertyNames" in error.relative_schema_path:
            text = f"key {error.instance!r} must be {expected}"
            yield _Problem(_line(tree, (*path, error.instance)), _dotted(path), text)
        elif error.validator == "enum":
            allowed = [str(v) for v in error.validator_value]
            text = f"must be one of {', '.join(allowed)}; got {_show(error.instance)}"
            text += _did_you_mean(error.instance, allowed)
            yield _Problem(_line(tree, path), _dotted(path), text)
        elif expected:
            text = f"must be {expected}, got {_show(error.instance)}"
            yield _Problem(_line(tree, path), _dotted(path), text)
        else:
            yield _Problem(_line(tree, path), _dotted(path), error.message)


def _merged_stages(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each well-formed stage with the defaults applied (ill-formed ones have schema errors)."""
    stages = data.get("stages")
    defaults = data.get("defaults")
    if not isinstance(stages, dict):
        return {}
    # Keys the schema rejects under defaults (task, after, ...) are reported, not applied.
    allowed = _validator().schema["properties"]["defaults"]["properties"]
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


def _schedule_problems(tree: Any, data: dict[str, Any]) -> Iterator[_Problem]:
    scan = data.get("scan")
    expr = scan.get("schedule") if isinstance(scan, dict) else None
    if isinstance(expr, str) and expr:
        from croniter import croniter

        if not croniter.is_valid(expr):
            yield _Problem(_line(tree, ("scan", "schedule")), "scan.schedule",
                           f"{expr!r} is not a cron expression (5 fields: minute hour "
                           "day-of-month month day-of-week, e.g. \"0 * * * *\" hourly)")


def _graph_problems(
    tree: Any, names: list[str], stages: dict[str, dict[str, Any]]
) -> Iterator[_Problem]:
    """Problems of the stage graph; ``stages`` holds the well-formed ones among ``names``."""
    predecessors: dict[str, list[str]] = {}
    for name, stage in stages.items():
        here: tuple[Step, ...] = ("stages", name)
        if "task" not in stage and "argv" not in stage:
            text = "a stage needs 'task' (\"module:function\") or 'argv' (a command list)"
            yield _Problem(_line(tree, here), _dotted(here), text)
        elif "task" in stage and "argv" in stage:
            text = "a stage has either 'task' or 'argv', not both"
            yield _Problem(_line(tree, here), _dotted(here), text)
        predecessors[name] = []
        for dep, at in _after_entries(stage.get("after"), here):
            if dep in stages:
                predecessors[name].append(dep)
            elif dep not in names:
                text = f"unknown stage {dep!r}" + _did_you_mean(dep, names)
                text += f"; stages: {', '.join(names)}"
                yield _Problem(_line(tree, at), _dotted(at), text)
        yield from _placeholder_problems(tree, here, stage)
    for cycle in _cycles(predecessors):
        at = ("stages", cycle[0], "after")
        text = f"dependency cycle: {' -> '.join(cycle)} (each runs before the next)"
        yield _Problem(_line(tree, at), _dotted(at), text)


def _after_entries(after: Any, here: tuple[Step, ...]) -> list[tuple[str, tuple[Step, ...]]]:
    """The stage names in ``after`` with their paths, skipping what the schema rejects."""
    if isinstance(after, str):
        return [(after, (*here, "after"))]
    if isinstance(after, list):
        return [(a, (*here, "after", i)) for i, a in enumerate(after) if isinstance(a, str)]
    return []


def _placeholder_problems(
    tree: Any, here: tuple[Step, ...], stage: dict[str, Any]
) -> Iterator[_Problem]:
    argv = stage.get("argv")
    if not isinstance(argv, list):
        return
    params = stage.get("params")
    param_names = list(params) if isinstance(params, dict) else []
    script = placeholders.shell_script_index(argv)
    for i, item in enumerate(argv):
        if isinstance(item, str):
            for text in placeholders.problems(item, param_names, in_shell=i == script):
                yield _Problem(_line(tree, (*here, "argv", i)), _dotted((*here, "argv", i)), text)


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


# --- building ------------------------------------------------------------------------------


def _build(doc: _Document, data: dict[str, Any], stages: dict[str, dict[str, Any]]) -> Template:
    version = data.get("version") or "sha256:" + hashlib.sha256(doc.raw).hexdigest()[:12]
    match = {k: tuple(v) if isinstance(v, list) else (v,) for k, v in data.get("match", {}).items()}
    return Template(
        name=data["name"],
        version=version,
        description=data.get("description", ""),
        match=match,
        ingest=tuple(data.get("ingest", ())),
        stages=tuple(_build_stage(doc.tree, n, s) for n, s in stages.items()),
        source=doc.source,
        limits=dict(data.get("limits", {})),
        scan_schedule=data.get("scan", {}).get("schedule"),
        scan_dirs=tuple(_scan_dirs(doc.source, data.get("scan", {}).get("dirs", ()))),
    )


def _scan_dirs(source: str, dirs: Sequence[str]) -> list[str]:
    """Scan directories, relative ones taken from the template file's directory."""
    base = Path(source).parent if source else Path.cwd()
    return [str(Path(d) if Path(d).is_absolute() else (base / d).resolve()) for d in dirs]


def _build_stage(tree: Any, name: str, s: dict[str, Any]) -> Stage:
    after = s.get("after", [])
    res = s.get("resources", {})
    default = Resources()
    resources = Resources(
        cpus=res.get("cpus", default.cpus),
        memory_mb=parse_size_mb(res.get("memory", default.memory_mb)),
        disk_mb=parse_size_mb(res.get("disk", default.disk_mb)),
    )
    return Stage(
        name=name,
        after=(after,) if isinstance(after, str) else tuple(after),
        task=s.get("task"),
        argv=tuple(s["argv"]) if "argv" in s else None,
        executor=s.get("executor", "local"),
        resources=resources,
        timeout=parse_duration(s.get("timeout", Stage.timeout)),
        retry=_build_retry(s.get("retry", {})),
        priority=s.get("priority", 0),
        params=s.get("params", {}),
        condor=s.get("condor", {}),
        reuse=bool(s.get("reuse", True)),
        line=_line(tree, ("stages", name)),
        pools=tuple(s.get("pools", ())),
        max_running=s.get("max_running"),
    )


def _build_retry(r: dict[str, Any]) -> RetryPolicy:
    backoff = r.get("backoff", {})
    renamed = {"base": "base", "factor": "factor", "max": "max_delay", "jitter": "jitter"}
    kwargs: dict[str, Any] = {renamed[k]: float(v) for k, v in backoff.items()}
    if "max_attempts" in r:
        kwargs["max_attempts"] = r["max_attempts"]
    if "no_retry" in r:
        kwargs["no_retry"] = tuple(r["no_retry"])
    if "memory_multiplier" in r:
        kwargs["memory_multiplier"] = float(r["memory_multiplier"])
    if "memory_cap" in r:
        kwargs["memory_cap_mb"] = parse_size_mb(r["memory_cap"])
    return RetryPolicy(**kwargs)


# --- words and places ----------------------------------------------------------------------


def _line(tree: Any, path: Sequence[Step]) -> int:
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


def _dotted(path: Sequence[Step]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path).lstrip(".")


def _format(source: str, problem: _Problem) -> str:
    where = f"{source}:{problem.line}: "
    return where + (f"{problem.path}: " if problem.path else "") + problem.text


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(word: Any, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_key(key: str, allowed: Sequence[str]) -> str:
    hint = _did_you_mean(key, allowed)
    return f"unknown key {key!r}" + (hint or f"; allowed keys: {', '.join(allowed)}")
