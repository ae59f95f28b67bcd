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

import datetime
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean

from owl.errors import TemplateError
from owl.resources import pipelines_dir
from owl.template import Template
from owl.template_build import build
from owl.template_build import parse_duration as parse_duration  # re-exported
from owl.template_build import parse_size_mb as parse_size_mb  # re-exported
from owl.template_checks import (
    Problem,
    Step,
    dotted,
    format_problem,
    graph_problems,
    line_of,
    merged_stages,
    schedule_problems,
    schema_problems,
    show,
)

# A top-level ``stages:`` key in block style, for telling templates from other YAML in a
# folder when the file cannot be parsed (a template with a syntax error is still reported).
_STAGES_LINE = re.compile(r"""^["']?stages["']?\s*:""", re.MULTILINE)

@dataclass
class _Document:
    """One file as read: its bytes, its round-trip YAML tree, the problems found so far."""

    source: str
    raw: bytes = b""
    tree: Any = None
    parsed: bool = False
    problems: list[Problem] = field(default_factory=list)

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
            unreadable.extend(format_problem(doc.source, p) for p in doc.problems)
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
        doc.problems.append(Problem(1, "", f"cannot read the file: {exc.strerror or exc}"))
        return doc
    except UnicodeDecodeError as exc:
        line = doc.raw[: exc.start].count(b"\n") + 1
        doc.problems.append(Problem(line, "", "the file is not UTF-8 text"))
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
        doc.problems.append(Problem(line, "", f"YAML syntax error: {what}"))
        return doc
    except YAMLError as exc:
        doc.problems.append(Problem(1, "", f"YAML syntax error: {exc}"))
        return doc
    doc.parsed = True
    return doc


def _duplicate_keys(node: Node | None, path: tuple[Step, ...]) -> Iterator[Problem]:
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
                yield Problem(line, dotted(path), text)
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
            got = "the file is empty" if tree is None else f"got {show(_plain(tree, (), []))}"
            problems.append(Problem(1, "", f"a template is a mapping with name and stages; {got}"))
        else:
            odd: list[tuple[Step, ...]] = []
            data = _plain(tree, (), odd)
            problems += [
                Problem(line_of(tree, p), dotted(p), "unsupported YAML tag; write plain data")
                for p in odd
            ]
            problems += schema_problems(tree, data)
            stages = merged_stages(data)
            names = list(data["stages"]) if isinstance(data.get("stages"), dict) else []
            problems += graph_problems(tree, names, stages)
            problems += schedule_problems(tree, data)
            if not problems:
                template = build(doc.source, doc.raw, doc.tree, data, stages)
    messages = tuple(format_problem(doc.source, p) for p in sorted(set(problems)))
    name_line = line_of(doc.tree, ("name",)) if doc.parsed else 1
    return _Checked(template, messages, name_line)
