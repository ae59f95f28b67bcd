"""Task functions used by the engine tests (imported by agents' worker processes)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
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


def print_then_die(ctx: TaskContext) -> None:
    """Prints a line on each stream, then kills its worker (no Python clean-up)."""
    import sys

    print(f"last words of {ctx.dataset}", flush=True)
    print("dying now", file=sys.stderr, flush=True)
    os._exit(9)


def print_then_hang(ctx: TaskContext) -> None:
    print(f"working on {ctx.dataset}", flush=True)
    time.sleep(60)


def allocate(ctx: TaskContext) -> Mapping[str, Any]:
    """Touches ``params.mb`` megabytes of memory, then frees them."""
    block = bytearray(int(ctx.params.get("mb", 200)) * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    del block
    return {}


def silent(ctx: TaskContext) -> Mapping[str, Any]:
    return {"quiet": True}


def short(ctx: TaskContext) -> Mapping[str, Any]:
    """A task that takes a little time, so a run lasts long enough to break things in."""
    time.sleep(float(ctx.params.get("sleep", 0.05)))
    return {"token": ctx.token}


def spawn_child(ctx: TaskContext) -> Mapping[str, Any]:
    """Starts a long child process, names its pid, then waits (or returns at once)."""
    import subprocess

    child = subprocess.Popen(["sleep", "3600"])
    (ctx.output_dir / "child.pid").write_text(str(child.pid))
    (ctx.output_dir / "worker.pid").write_text(str(os.getpid()))
    if ctx.params.get("wait", True):
        time.sleep(3600)
    return {"child": child.pid}


def returns_int(ctx: TaskContext) -> int:
    return 42


def returns_nan(ctx: TaskContext) -> Mapping[str, Any]:
    return {"stats": {"mean": float("nan")}}


def big_outputs(ctx: TaskContext) -> Mapping[str, Any]:
    return {"blob": "x" * 100_000}


def big_error(ctx: TaskContext) -> None:
    raise RuntimeError("y" * 100_000)


def chatty(ctx: TaskContext) -> Mapping[str, Any]:
    """Prints to stdout and stderr (and from a child process), then fails or not."""
    import subprocess
    import sys

    print("hello from stdout", flush=True)
    print("trouble on stderr", file=sys.stderr, flush=True)
    subprocess.run(["sh", "-c", "echo child says hi"], check=True)
    if ctx.params.get("fail"):
        raise RuntimeError("chatty failed")
    return {"ok": True}


def transform(ctx: TaskContext) -> Mapping[str, Any]:
    """Reads the dataset's input (or the predecessor's file) and the reference file named
    by ``params.ref`` (``prefix$name`` resolved through the environment), writes one file."""
    source = ctx.input_path
    for outputs in ctx.inputs.values():
        source = Path(outputs["files"]["out"])
    assert source is not None
    text = source.read_text()
    named = ctx.refs.get("REFFILE", str(ctx.params.get("ref", "")))
    if named:
        prefix, _, rest = named.partition("$")
        path = Path(os.environ[prefix]) / rest
        ctx.record.reference("REFFILE", named, path)
        text += path.read_text()
    out = ctx.output_dir / f"{ctx.dataset}_{ctx.stage}.txt"
    out.write_text(text + f"{ctx.stage}\n")
    return {"files": {"out": str(out)}}


def bad_input(ctx: TaskContext) -> None:
    from owl.errors import PermanentError

    raise PermanentError(f"{ctx.dataset}: the input has no SCI extension")


def tally(ctx: TaskContext) -> Mapping[str, Any]:
    """Appends one line per execution to the file ``params['tally']`` (O_APPEND: lines of
    concurrent workers never interleave), so a test can count how often each item ran."""
    fd = os.open(str(ctx.params["tally"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.dataset} {ctx.stage} {ctx.token} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)
    time.sleep(float(ctx.params.get("sleep", 0.02)))
    return {"token": ctx.token}


def sleep_once(ctx: TaskContext) -> Mapping[str, Any]:
    """The first run of an item (whatever its attempt number) sleeps; later runs do not."""
    marker = ctx.output_dir.parent / f"{ctx.stage}.slept"
    if not marker.exists():
        marker.write_text(str(ctx.token))
        (ctx.output_dir / "started").write_text(str(os.getpid()))
        time.sleep(float(ctx.params.get("sleep", 60)))
    return {"token": ctx.token}
