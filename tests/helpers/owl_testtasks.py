"""Task functions used by the engine tests (imported by agents' worker processes)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from owl.task import TaskContext


def record(ctx: TaskContext) -> Mapping[str, Any]:
    """Writes a file naming its token, so a test can tell whose output survived."""
    (ctx.output_dir / "result.txt").write_text(f"{ctx.dataset} {ctx.stage} {ctx.token}\n")
    return {"token": ctx.token, "pid": os.getpid(), "dir": str(ctx.output_dir)}


def slow_first(ctx: TaskContext) -> Mapping[str, Any]:
    """The first attempt announces itself and sleeps; later attempts finish at once."""
    if ctx.attempt == 1:
        (ctx.output_dir / "started").write_text(str(os.getpid()))
        time.sleep(float(ctx.params.get("sleep", 30)))
    return record(ctx)


def always_crash(ctx: TaskContext) -> None:
    raise RuntimeError(f"calibration exploded on {ctx.dataset} (attempt {ctx.attempt})")


def die(ctx: TaskContext) -> None:
    os._exit(7)


def sleepy(ctx: TaskContext) -> None:
    time.sleep(60)


def short(ctx: TaskContext) -> Mapping[str, Any]:
    """A task that takes a little time, so a run lasts long enough to break things in."""
    time.sleep(float(ctx.params.get("sleep", 0.05)))
    return {"token": ctx.token}
