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

USAGE = "usage: python -m owl.condor.job SPEC_JSON RESULT_JSON"


def run(spec_path: Path, result_path: Path) -> dict[str, Any]:
    """Run the task described in ``spec_path`` and return the result record.

    Parameters
    ----------
    spec_path : Path
        JSON of a :class:`~owl.model.TaskSpec` (``TaskSpec.to_json``).
    result_path : Path
        Where the result record is written.

    Returns
    -------
    dict
        The record written to ``result_path``.
    """
    started = time.monotonic()
    try:
        spec = TaskSpec.from_json(json.loads(spec_path.read_text(encoding="utf-8")))
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
    result = run(Path(args[0]), Path(args[1]))
    if not result["ok"]:
        print(result["traceback"], file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
