"""Checks an agent makes before it claims anything, so a mistake is one clear error at
start instead of every dataset dying after its retries.

- Every ``module:function`` task of the served stages imports and names a callable, checked
  in a child process started exactly as the workers are (``spawn``: the same interpreter,
  ``sys.path`` and environment), never by importing task code into the agent. A stage run on
  HTCondor is checked in a plain interpreter started outside the agent's directory, as a job
  would start: a module found only in the current directory fails there.
- Every argv task's program is found on ``PATH`` (or is an existing file).
- ``OWL_WORK`` (where task outputs go) is a directory this process can create files in.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from owl.errors import ConfigError
from owl.template import Template

_CHECK = ("import json, sys; from owl.preflight import import_problems; "
          "print(json.dumps(import_problems(sys.argv[1:])))")


def import_problems(refs: Sequence[str]) -> dict[str, str]:
    """``module:function`` -> why it cannot be loaded by this interpreter (empty: all fine)."""
    out: dict[str, str] = {}
    for ref in refs:
        module, _, attr = ref.partition(":")
        try:
            func = getattr(importlib.import_module(module), attr, None)
        except BaseException as exc:  # anything a task module raises on import
            out[ref] = f"cannot import module {module!r}: {type(exc).__name__}: {exc}"
            continue
        if not callable(func):
            out[ref] = f"module {module!r} has no function {attr!r}"
    return out


def _child(conn: Connection, refs: list[str]) -> None:
    conn.send(json.dumps(import_problems(refs)))
    conn.close()


def worker_import_problems(refs: Sequence[str]) -> dict[str, str]:
    """:func:`import_problems` in a child started the way local workers are (spawn)."""
    if not refs:
        return {}
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, list(refs)), name="owl-preflight")
    proc.start()
    child.close()
    try:
        if not parent.poll(120):
            raise ConfigError("checking the task modules took over 120 s (a module that "
                              "blocks on import?)")
        return dict(json.loads(parent.recv()))
    except EOFError as exc:
        raise ConfigError(f"checking the task modules crashed the checking process "
                          f"(exit status {proc.exitcode})") from exc
    finally:
        proc.join(10)
        parent.close()


def job_import_problems(refs: Sequence[str], cwd: Path, python: str = sys.executable,
                        pythonpath: Sequence[str] | None = None) -> dict[str, str]:
    """:func:`import_problems` in a fresh interpreter in ``cwd`` (how a condor job starts):
    ``python`` with ``PYTHONPATH`` set to ``pythonpath`` (None: this process's)."""
    if not refs:
        return {}
    cwd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    proc = subprocess.run([python, "-c", _CHECK, *refs], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False, env=env)
    if proc.returncode != 0:
        raise ConfigError(f"checking the task modules failed: {proc.stderr.strip()[-500:]}")
    return dict(json.loads(proc.stdout))


def work_dir_problem(work: Path) -> str | None:
    """Why task outputs cannot be written under ``work`` (None when they can)."""
    try:
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=work, prefix=".owl-check-"):
            pass
    except OSError as exc:
        return (f"OWL_WORK={work} is not writable ({exc.strerror or exc}): task outputs go "
                "there; set OWL_WORK (or OWL_HOME) to a directory this user can write")
    return None


def check_agent(template: Template, stages: Sequence[str], executors: dict[str, str],
                work: Path, job_python: tuple[str, tuple[str, ...]] | None = None) -> None:
    """Raise ConfigError naming every problem that would fail the served stages' tasks.

    ``executors`` maps each served stage to ``local`` or ``condor``; ``job_python`` is the
    interpreter and ``PYTHONPATH`` condor jobs run with (None: this process's).
    """
    problems: list[str] = []
    where = template.source or f"template {template.name}"
    by_kind: dict[str, list[str]] = {"local": [], "condor": []}
    users: dict[str, list[str]] = {}
    for name in stages:
        stage = template.stage(name)
        if stage.task is not None:
            kind = executors.get(name, "local")
            if stage.task not in by_kind[kind]:
                by_kind[kind].append(stage.task)
            users.setdefault(stage.task, []).append(name)
        elif stage.argv:
            prog = stage.argv[0]
            if "{" not in prog and shutil.which(prog) is None and not Path(prog).is_file():
                problems.append(f"{where}: stage {name!r}: program {prog!r} of its argv is not "
                                "on PATH")
    found = {**worker_import_problems(by_kind["local"]),
             **job_import_problems(by_kind["condor"], work, *(job_python or (sys.executable,
                                                                           None)))}
    for ref, why in found.items():
        problems.append(f"{where}: stage {', '.join(map(repr, users[ref]))}: task {ref!r}: "
                        f"{why}")
    if found:
        problems.append("task modules are imported by the worker processes, not from the "
                        "current directory: install the package holding them, or put its "
                        f"directory on PYTHONPATH (now {os.environ.get('PYTHONPATH') or 'unset'})")
    bad_work = work_dir_problem(work)
    if bad_work:
        problems.append(bad_work)
    if problems:
        raise ConfigError("the agent cannot run its stages:\n  " + "\n  ".join(problems))
