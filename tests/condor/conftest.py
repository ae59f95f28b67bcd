"""Fixtures of the condor executor tests: settings in a tmp spool, jobs, task modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from owl.condor.settings import CondorSettings

TASK_MODULE = """
import json
import os


def calibrate(ctx):
    out = ctx.output_dir / "flt.txt"
    out.write_text(f"{ctx.dataset} {ctx.params.get('gain', 1)}")
    return {"flt": str(out), "attempt": ctx.attempt}


def explode(ctx):
    raise ValueError(f"bad frame {ctx.dataset}")


def die(ctx):
    os._exit(9)


def slow(ctx):
    import time

    time.sleep(0.5)
    return {"dataset": ctx.dataset, "token": ctx.token}


def modules(ctx):
    import sys

    heavy = ("redis", "structlog", "rich", "numpy", "htcondor2", "click", "owl.board")
    return {"loaded": [m for m in heavy if m in sys.modules]}


def logs(ctx):
    ctx.log.info("task.note", detail="a task that logs gets structlog")
    return {"logged": True}
"""


@pytest.fixture
def settings(tmp_path: Path) -> CondorSettings:
    # Submitted at once (no submit window) unless a test asks for one.
    return CondorSettings(board="hst", agent_id="ap1:4242", spool_dir=tmp_path / "spool",
                          submit_window=0.0)


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    """A directory holding the module ``owltask_condor`` with a few task functions."""
    d = tmp_path / "tasks"
    d.mkdir()
    (d / "owltask_condor.py").write_text(TASK_MODULE)
    return d
