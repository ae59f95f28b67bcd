"""The control of ``tools/bench_engine.py --compare-provenance``, never used in production.

Agents and their worker processes started with this directory first on ``PYTHONPATH``
import it at interpreter start (Python's ``sitecustomize`` hook), and each attempt then runs
its task exactly as owl does, but builds no provenance record (no code version, checksums,
timing record, environment digest); the completion carries none. Everything else (claims,
workers, pipes, completion scripts, fsync) is the engine as shipped, so the two runs differ
by the cost of provenance alone.
"""

from __future__ import annotations

import time
from typing import Any

import owl.attempt
from owl.errors import PermanentError
from owl.model import FailureClass, TaskSpec
from owl.task import run_task
from owl.tasklog import failure


def _attempt_without_provenance(spec: TaskSpec) -> dict[str, Any]:
    wall0 = time.perf_counter()
    try:
        outputs = run_task(spec)
        return {"ok": True, "outputs": outputs, "seconds": time.perf_counter() - wall0}
    except BaseException as exc:
        kind = FailureClass.PERMANENT if isinstance(exc, PermanentError) else FailureClass.ERROR
        return {**failure(exc, spec.output_dir), "failure": str(kind),
                "seconds": time.perf_counter() - wall0}


owl.attempt.run_attempt = _attempt_without_provenance
