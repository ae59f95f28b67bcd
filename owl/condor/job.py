"""The entry point of a condor job: ``python -m owl.condor.job SPEC RESULT``.

Runs :func:`owl.attempt.run_attempt` (reuse, or the task, with its provenance) on the
TaskSpec in ``SPEC`` and writes ``RESULT`` atomically (temporary file + rename), so the
agent never reads half a result::

    {"ok": true, "outputs": {...}, "error": "", "traceback": "", "seconds": 1.2}

Exit status: 0 when the task succeeded, 1 when it raised (the result says why), 2 when
the command line is wrong. A job killed by a signal writes no result; the agent learns
that from the event log.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from owl.attempt import run_attempt
from owl.condor.spool import write_json_atomic
from owl.model import TaskSpec

USAGE = "usage: python -m owl.condor.job SPEC_JSON|b64:SPEC RESULT_JSON"
#: Prefix of a spec given inline on the command line (base64url of its JSON).
INLINE = "b64:"


def inline_spec(text: str) -> str:
    """The command-line form of a spec's JSON ``text``: ``b64:`` and its base64url (only
    letters, digits, ``-``, ``_`` and ``=``: nothing the submit language expands)."""
    return INLINE + base64.urlsafe_b64encode(text.encode()).decode("ascii")


def read_spec(arg: str | Path) -> dict[str, Any]:
    """A spec given as a file path or inline (:func:`inline_spec`)."""
    text = str(arg)
    if text.startswith(INLINE):
        return json.loads(base64.urlsafe_b64decode(text[len(INLINE):]))  # type: ignore[no-any-return]
    return json.loads(Path(text).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def run(spec_path: Path | str, result_path: Path) -> dict[str, Any]:
    """Run the task described in ``spec_path`` and return the result record.

    Parameters
    ----------
    spec_path : Path or str
        A file holding the JSON of a :class:`~owl.model.TaskSpec` (``TaskSpec.to_json``),
        or that JSON inline (:func:`inline_spec`).
    result_path : Path
        Where the result record is written.

    Returns
    -------
    dict
        The record written to ``result_path``.
    """
    started = time.monotonic()
    try:
        spec = TaskSpec.from_json(read_spec(spec_path))
        result: dict[str, Any] = {"outputs": {}, "error": "", "traceback": "",
                                  **run_attempt(spec)}
    except Exception as exc:  # an unreadable spec becomes a result, not a crash
        result = {
            "ok": False,
            "outputs": {},
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    result["seconds"] = round(time.monotonic() - started, 6)
    write_json_atomic(result_path, result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    result = run(args[0], Path(args[1]))
    if not result["ok"]:
        print(result["traceback"], file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
