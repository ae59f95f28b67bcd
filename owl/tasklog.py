"""Per-attempt log files and the limits on what a task may put on the board.

Each attempt writes its standard output and error to files in ``OUTPUT_DIR/.owl/`` (the
token's own directory): an argv command's streams go straight to the files, a Python task's
file descriptors 1 and 2 are redirected for the duration of the task, so nothing a task
prints is held in memory. The board keeps only a tail (with a failed attempt's record) and
the path; ``owl logs DATASET STAGE`` prints the files. ``.owl/attempt`` names the attempt,
so the files of attempt N are found without asking the board.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from owl.errors import TaskError

LOG_DIR: Final = ".owl"
#: Largest outputs mapping (as JSON) a task may return; larger results belong in files.
MAX_OUTPUTS_BYTES: Final = 64 * 1024
#: Largest error message kept on the board; the full text goes to ``.owl/error.txt``.
MAX_ERROR_CHARS: Final = 8 * 1024
#: Largest traceback kept on the board (its end, where the error is).
MAX_TRACEBACK_CHARS: Final = 32 * 1024
#: Bytes of the task's output kept with a failed attempt's record.
TAIL_BYTES: Final = 4 * 1024


def log_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / LOG_DIR


def start_attempt(output_dir: str | Path, attempt: int) -> Path:
    """Create the attempt's log directory (and its output directory) and name the attempt."""
    logs = log_dir(output_dir)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "attempt").write_text(f"{attempt}\n")
    return logs


@contextlib.contextmanager
def captured(logs: Path) -> Iterator[None]:
    """Send this process's file descriptors 1 and 2 (and those of its children) to
    ``stdout.log`` and ``stderr.log`` in `logs` while the block runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    out = os.open(logs / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    err = os.open(logs / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(out, 1)
        os.dup2(err, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (out, err, *saved):
            os.close(fd)


def tail(path: Path, size: int = TAIL_BYTES) -> str:
    """The last `size` bytes of a file as text ("" when it is missing)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def log_tail(output_dir: str | Path) -> str:
    """What a failed attempt's record keeps: the end of stderr, else of stdout."""
    logs = log_dir(output_dir)
    return tail(logs / "stderr.log") or tail(logs / "stdout.log")


def bounded(text: str, limit: int, what: str, *, tail: bool = False) -> str:
    """`text` cut to `limit` characters (its end when `tail`), saying that it was cut."""
    if len(text) <= limit:
        return text
    note = f"[{what} of {len(text)} characters cut to {limit}]"
    return f"{note}\n{text[-limit:]}" if tail else f"{text[:limit]}... {note}"


def capped_error(error: str, trace: str, output_dir: str | Path) -> tuple[str, str]:
    """Cut an oversized error message or traceback to the board's limits; the full text is
    written to ``.owl/error.txt`` and the cut message says so."""
    if len(error) <= MAX_ERROR_CHARS and len(trace) <= MAX_TRACEBACK_CHARS:
        return error, trace
    full = log_dir(output_dir) / "error.txt"
    try:
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(f"{error}\n\n{trace}")
        where = f"the full text is in {full}"
    except OSError as exc:
        where = f"the full text could not be written to {full}: {exc.strerror}"
    if len(error) > MAX_ERROR_CHARS:
        error = (f"{error[:MAX_ERROR_CHARS]}... [error message of {len(error)} characters "
                 f"cut at {MAX_ERROR_CHARS}; {where}]")
    if len(trace) > MAX_TRACEBACK_CHARS:
        trace = (f"[traceback cut to its last {MAX_TRACEBACK_CHARS} characters; {where}]\n"
                 + trace[-MAX_TRACEBACK_CHARS:])
    return error, trace


def failure(exc: BaseException, output_dir: str | Path) -> dict[str, Any]:
    """The result record of a failed attempt: the error and traceback within the board's
    limits, and the tail of what the task printed."""
    error, trace = capped_error(f"{type(exc).__name__}: {exc}",
                                "".join(traceback.format_exception(exc)), output_dir)
    return {"ok": False, "error": error, "traceback": trace, "log_tail": log_tail(output_dir)}


def checked_outputs(result: object, task: str) -> dict[str, Any]:
    """The outputs a task returned, as a JSON-able dict within the size limit.

    Raises
    ------
    TaskError
        The result is not a mapping (or None), holds values JSON cannot carry (NaN,
        Infinity, objects), or is larger than `MAX_OUTPUTS_BYTES` as JSON.
    """
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise TaskError(f"task {task!r} returned a {type(result).__name__}, not a mapping of "
                        "outputs: return a dict (or None)")
    outputs = dict(result)
    bad = [k for k in outputs if not isinstance(k, str)]
    if bad:
        raise TaskError(f"task {task!r} returned outputs with non-string key(s) {bad[:5]!r}: "
                        "JSON object keys are strings")
    where = _not_finite(outputs, "outputs")
    if where:
        raise TaskError(f"task {task!r} returned a non-finite number at {where} (NaN and "
                        "Infinity are not JSON): return null or a string instead")
    try:
        text = json.dumps(outputs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TaskError(f"task {task!r} returned outputs that are not JSON: {exc}") from exc
    if len(text.encode()) > MAX_OUTPUTS_BYTES:
        raise TaskError(f"task {task!r} returned {len(text.encode())} bytes of outputs (as "
                        f"JSON); the limit is {MAX_OUTPUTS_BYTES}: write large results to "
                        "files in ctx.output_dir and return their paths")
    return outputs


def _not_finite(value: object, path: str) -> str:
    """The path of the first NaN or infinite float inside `value`, or ""."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = _not_finite(v, f"{path}[{k!r}]")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _not_finite(v, f"{path}[{i}]")
            if found:
                return found
    return ""


def find_attempt_logs(dataset_root: Path, stage: str, attempt: int | None,
                      generation: int | None = None) -> Path | None:
    """The log directory of `attempt` (default: the latest) of `generation` (default: the
    latest with logs) among a dataset's token directories ``gGEN/STAGE.tTOKEN``. An attempt
    given back unfinished (agent shutdown) runs again under the same number: the newest
    token wins."""
    found: list[tuple[int, int, int, Path]] = []
    for d in dataset_root.glob(f"g*/{stage}.t*/{LOG_DIR}"):
        try:
            gen = int(d.parent.parent.name[1:])
            n = int((d / "attempt").read_text().strip())
            token = int(d.parent.name.rpartition(".t")[2])
        except (OSError, ValueError):
            continue
        if generation is not None and gen != generation:
            continue
        found.append((gen, n, token, d))
    if not found:
        return None
    latest = max(f[0] for f in found)
    mine = [f for f in found if f[0] == latest and (attempt is None or f[1] == attempt)]
    return max(mine)[3] if mine else None
