"""Provenance of a completed item: what ran, on what, with what, producing what.

The worker (a local child or a condor job) builds the record after the task ran and the
fenced completion stores it on the item (``complete.lua``). It has two parts:

- the *environment*, shared by thousands of items and stored once per shard under its digest
  (``B:{sN}:pvenv``): owl version, task and code version, template hash, effective params,
  the reference files the task used (logical name, name as given, resolved path, size,
  mtime, checksum), host and executor;
- the *item* part, stored in the dataset hash (``S.pv``, with ``S.pe`` the environment's
  digest): the provenance key, input and output files (path, size, mtime, checksum), start,
  duration, CPU time, peak memory, condor job id, and ``r`` when it was reused.

Files are records ``[path, size, mtime_ns, checksum]``; outputs inside the attempt's output
directory (``od``) are stored relative to it. Checksums are xxHash3-128: about 20 GB/s here
against 1 GB/s for blake2b, so hashing a 170 MB ACS frame costs under 10 ms and the disk is
the limit. A file already recorded on the board (a predecessor's output, or this item's own
output when it is checked for reuse) is not hashed again when its size and mtime_ns are
unchanged: owl writes every output once into a token-specific directory and never modifies
it, and any ordinary rewrite changes mtime_ns; ``owl explain --rehash`` hashes anyway.

The *provenance key* is a digest of task, code version, params, reference checksums and
input checksums (contents, not paths: an identical input written by a rerun under a new
token-specific path is the same input).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import xxhash

import owl

#: A file record: [path, size, mtime_ns, checksum].
FileRecord = list[Any]

_CHUNK = 8 << 20


def checksum(path: Path) -> str:
    """xxHash3-128 of a file's content, hex."""
    h = xxhash.xxh3_128()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def digest(value: Any, size: int = 16) -> str:
    """A short stable digest of a JSON-able value (hex, ``size`` characters)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return xxhash.xxh3_128_hexdigest(text.encode())[:size]


def file_record(path: Path, known: Mapping[str, FileRecord] | None = None, *,
                rehash: bool = False) -> FileRecord | None:
    """The record of an existing file, or None when it does not exist.

    A record in ``known`` for the same path with the same size and mtime_ns gives the
    checksum without reading the file (unless ``rehash``).
    """
    try:
        st = path.stat()
    except OSError:
        return None
    name = str(path)
    seen = (known or {}).get(name)
    if not rehash and seen is not None and seen[1] == st.st_size and seen[2] == st.st_mtime_ns:
        return [name, st.st_size, st.st_mtime_ns, seen[3]]
    return [name, st.st_size, st.st_mtime_ns, checksum(path)]


def paths_in(value: Any) -> Iterator[Path]:
    """Absolute paths of existing files named anywhere inside a JSON-able value."""
    if isinstance(value, str):
        if value.startswith("/") and len(value) < 4096:
            p = Path(value)
            if p.is_file():
                yield p
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from paths_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from paths_in(v)


def unique(paths: Iterable[Path]) -> list[Path]:
    seen: dict[str, Path] = {}
    for p in paths:
        seen.setdefault(str(p), p)
    return [seen[k] for k in sorted(seen)]


def known_files(pvs: Iterable[Mapping[str, Any]]) -> dict[str, FileRecord]:
    """Absolute path -> record, from item provenance records (their inputs and outputs)."""
    out: dict[str, FileRecord] = {}
    for pv in pvs:
        for rec in pv.get("in", []):
            out[rec[0]] = rec
        for rec in outputs_of(pv):
            out[rec[0]] = rec
    return out


def outputs_of(pv: Mapping[str, Any]) -> list[FileRecord]:
    """Output records of an item provenance with absolute paths."""
    base = pv.get("od", "")
    return [[r[0] if r[0].startswith("/") else f"{base}/{r[0]}", *r[1:]]
            for r in pv.get("out", [])]


def prior_of(values: Sequence[str]) -> dict[str, Any]:
    """Claim fields from the six skip-if-done values of a claim reply: the item's last
    provenance, environment id, environment and outputs, the predecessors' provenance and
    the dataset's reference overrides (``sched_claim.lua``)."""
    pv, pe, env, last_out, preds, refs = values
    last = ({"pv": json.loads(pv), "pe": pe, "env": json.loads(env) if env else None,
             "out": json.loads(last_out) if last_out else {}} if pv else None)
    known = [rec for p in json.loads(preds or "{}").values()
             for rec in [*p.get("in", []), *outputs_of(p)]]
    return {"last": last, "known": known, "refs": json.loads(refs) if refs else {}}


def _files_under(top: str) -> Iterator[str]:
    """Files below a directory, leaving out ``.owl`` (the attempt's own logs, owl.tasklog)."""
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            if e.name != ".owl":
                yield from _files_under(e.path)
        elif e.is_file(follow_symlinks=False):
            yield e.path


def output_records(out_dir: Path, outputs: Mapping[str, Any]) -> list[FileRecord]:
    """Every file the attempt wrote: under its output directory, and any other file its
    outputs name. Paths under the output directory are stored relative to it."""
    top = str(out_dir)
    recs = []
    for p in unique([*map(Path, _files_under(top)), *paths_in(dict(outputs))]):
        rec = file_record(p)
        if rec is None:
            continue
        if rec[0].startswith(top + os.sep):
            rec[0] = rec[0][len(top) + 1:]
        recs.append(rec)
    return recs


@cache
def code_version(task: str | None, argv0: str | None = None) -> str:
    """The version of a stage's code, without importing it.

    A ``module:function`` task: the module's own ``__version__`` (read from its source with
    ``ast``) as ``v:VERSION``; otherwise a content hash of the source of the package the
    module lives in (every ``.py`` below its directory; the module file alone for a
    top-level module), so a change to any module the task may call is a code change. An
    argv task: a content hash of the executable found on PATH.
    """
    if task is None:
        found = shutil.which(argv0 or "")
        return checksum(Path(found))[:16] if found else f"argv:{argv0}"
    module = task.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return f"unknown:{module}"
    origin = Path(spec.origin)
    version = _declared_version(origin)
    if version:
        return f"v:{version}"
    files = sorted(origin.parent.rglob("*.py")) if spec.parent else [origin]
    h = xxhash.xxh3_128()
    for f in files:
        h.update(str(f.relative_to(origin.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _declared_version(path: Path) -> str:
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "__version__"
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return ""


def resolve_named(named: str) -> Path:
    """A reference file as given (``jref$name``: the directory from environment variable
    ``jref``, as hstcal does; otherwise a path) -> its path. Never fails: a name whose
    variable is unset resolves to the name itself, which then does not exist."""
    if "$" in named:
        prefix, _, rest = named.partition("$")
        directory = os.environ.get(prefix)
        if directory is not None:
            return Path(directory) / rest
    return Path(named)


def ref_records(used: Sequence[tuple[str, str, str]]) -> list[list[Any]]:
    """References a task used, as ``[name, named, path, size, mtime_ns, checksum]``,
    sorted by name (one record per name and file)."""
    out: dict[tuple[str, str], list[Any]] = {}
    for name, named, path in used:
        rec = file_record(Path(path))
        if rec is not None:
            out[(name, named)] = [name, named, *rec]
    return [out[k] for k in sorted(out)]


def provenance_key(task: str, cv: str, params: Mapping[str, Any],
                   refs: Sequence[Sequence[Any]], inputs: Sequence[FileRecord]) -> str:
    """Digest of what decides a stage's result: task, code, params, reference and input
    contents."""
    return digest([task, cv, dict(params), sorted([r[0], r[1], r[5]] for r in refs),
                   sorted(r[3] for r in inputs)])


def environment(*, task: str, cv: str, template_hash: str, params: Mapping[str, Any],
                refs: list[list[Any]], executor: str) -> dict[str, Any]:
    """The shared part of a provenance record (see the module docstring)."""
    return {"ov": owl.__version__, "task": task, "cv": cv, "th": template_hash,
            "pm": dict(params), "rf": refs, "h": socket.gethostname(), "x": executor}


_PROC_FDS: dict[tuple[int, str], int] = {}  # (pid, file) -> an open /proc/PID/FILE


def _proc_fd(name: str, flags: int) -> int:
    """This process's /proc/PID/NAME, opened once per process: opening a /proc file costs
    more than the rest of a no-op task's bookkeeping (a forked child opens its own)."""
    key = (os.getpid(), name)
    fd = _PROC_FDS.get(key)
    if fd is None:
        fd = _PROC_FDS[key] = os.open(f"/proc/{key[0]}/{name}", flags)
    return fd


def peak_reset() -> None:
    """Reset this process's peak resident size (Linux ``clear_refs``), so the peak read
    after a task is the task's own and not an earlier task's in a reused worker."""
    try:
        os.write(_proc_fd("clear_refs", os.O_WRONLY), b"5")
    except OSError:
        return


def _own_peak_kb() -> int:
    """This process's high-water mark (``VmHWM``, kB), which :func:`peak_reset` resets.
    Not ``ru_maxrss``: Linux carries that across exec, so a worker spawned by a large
    process would report its parent's size for every task."""
    try:
        status = os.pread(_proc_fd("status", os.O_RDONLY), 1 << 14, 0)
        line = status[status.index(b"VmHWM:"):].split(b"\n", 1)[0]
        return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_kb() -> int:
    """Peak resident size (kB) of this process since :func:`peak_reset`, or of the
    largest child a task ran."""
    import resource

    return max(_own_peak_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
