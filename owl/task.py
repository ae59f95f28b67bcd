"""The task contract: how a stage's code is found and called.

A task is either a Python function named ``module:function`` that receives a
:class:`TaskContext` and returns a JSON-able mapping (its outputs), or an argv list run
without a shell. Task code never imports the engine's Redis layer; the engine imports task
code only here, in the process that runs it.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owl.capture import Capture
from owl.errors import PermanentError, TaskError
from owl.model import TaskSpec
from owl.tasklog import captured, checked_outputs, start_attempt, tail


@dataclass
class Recorder:
    """What a task tells the engine about its work, for its provenance record.

    ``reference`` names a reference file the task used (logical name such as
    ``DARKFILE``, the name as given such as ``jref$x_drk.fits``, its resolved path);
    ``input`` a file it read that the engine cannot see in its inputs (association members);
    ``selection`` the header keywords reference rules select on, with the exposure start.
    """

    refs: list[tuple[str, str, str]] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    selections: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def reference(self, name: str, named: str, path: str | Path) -> None:
        self.refs.append((name, named, str(path)))

    def input(self, path: str | Path) -> None:
        self.inputs.append(str(Path(path).resolve()))

    def selection(self, keywords: Mapping[str, Any], start: str) -> None:
        self.selections.append((dict(keywords), start))


@dataclass(frozen=True)
class TaskContext:
    """What a task function receives.

    ``output_dir`` is specific to this attempt's fencing token; it holds the attempt's log
    files in ``.owl/`` (what the task prints goes there), next to what the task writes.
    """

    dataset: str
    stage: str
    attempt: int
    token: int
    input_path: Path | None
    inputs: Mapping[str, Any]
    output_path: Path
    params: Mapping[str, Any]
    refs: Mapping[str, str]  # reference overrides from the board: name -> file
    log: Any  # a structlog BoundLogger bound to dataset/stage/token/attempt
    record: Recorder = field(default_factory=Recorder)

    @property
    def output_dir(self) -> Path:
        self.output_path.mkdir(parents=True, exist_ok=True)
        return self.output_path


TaskFunction = Callable[[TaskContext], Mapping[str, Any] | None]


_LOADED: dict[str, TaskFunction] = {}


def load_function(ref: str) -> TaskFunction:
    """Import ``module:function`` and return the callable, with a clear error if absent
    (found once per worker process)."""
    func = _LOADED.get(ref)
    if func is None:
        func = _LOADED[ref] = _import_function(ref)
    return func


def _import_function(ref: str) -> TaskFunction:
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise TaskError(f"task {ref!r} is not of the form 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TaskError(f"task {ref!r}: cannot import module {module_name!r}: {exc}") from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise TaskError(f"task {ref!r}: module {module_name!r} has no function {attr!r}")
    return func  # type: ignore[no-any-return]  # checked callable above; signature is the contract


def expand_argv(spec: TaskSpec) -> list[str]:
    """The argv of an argv task with its placeholders expanded (:mod:`owl.placeholders`)."""
    from owl.placeholders import expand

    assert spec.argv is not None
    values = {"dataset": spec.dataset, "stage": spec.stage, "template": spec.template,
              "input": spec.input_path, "output_dir": spec.output_dir,
              "token": str(spec.token), "attempt": str(spec.attempt)}
    try:
        return expand(spec.argv, values, spec.params)
    except ValueError as exc:  # the same every attempt: not retried
        raise PermanentError(f"stage {spec.stage!r}: {exc}") from exc


class TaskLog:
    """A task's logger: a structlog logger bound to the item, made when first used.

    structlog (with rich) costs about a third of a second to import; a condor job starts a
    fresh interpreter per item, and most tasks never log.
    """

    def __init__(self, **bound: Any) -> None:
        self._bound = bound
        self._log: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._log is None:
            import structlog

            self._log = structlog.get_logger("owl.task").bind(**self._bound)
        return getattr(self._log, name)


def run_task(spec: TaskSpec, record: Recorder | None = None,
             capture: Capture | None = None) -> dict[str, Any]:
    """Run one task in the current process and return its outputs (JSON-able, capped).

    The attempt's standard output and error stream to ``OUTPUT_DIR/.owl/`` (see
    `owl.tasklog`): straight there, or, with a worker's `capture`, to its capture files,
    moved there afterwards only when the task printed something (`owl.capture`). What the
    task reports of its references and inputs goes to ``record``. Raises whatever the task
    raises; the caller (a worker process) reports it.
    """
    out_dir = Path(spec.output_dir)
    if spec.argv is not None:
        return _run_argv(spec, out_dir, start_attempt(out_dir, spec.attempt))
    if spec.task is None:
        raise TaskError(f"stage {spec.stage!r} has neither a task nor an argv")
    func = load_function(spec.task)
    log = TaskLog(dataset=spec.dataset, stage=spec.stage, token=spec.token,
                  attempt=spec.attempt)
    ctx = TaskContext(
        dataset=spec.dataset,
        stage=spec.stage,
        attempt=spec.attempt,
        token=spec.token,
        input_path=Path(spec.input_path) if spec.input_path else None,
        inputs=spec.inputs,
        output_path=out_dir,
        params=spec.params,
        refs=spec.refs,
        log=log,
        record=record if record is not None else Recorder(),
    )
    if capture is None:
        with captured(start_attempt(out_dir, spec.attempt)):
            result = func(ctx)
    else:
        try:
            with capture.redirected():
                result = func(ctx)
        finally:
            capture.keep(out_dir, spec.attempt)
    return checked_outputs(result, spec.task)


def _run_argv(spec: TaskSpec, out_dir: Path, logs: Path) -> dict[str, Any]:
    argv = expand_argv(spec)
    env = dict(os.environ, OWL_DATASET=spec.dataset, OWL_STAGE=spec.stage,
               OWL_OUTPUT_DIR=spec.output_dir, OWL_TOKEN=str(spec.token))
    # Straight to files: a command printing gigabytes costs disk, never the worker's memory.
    with (logs / "stdout.log").open("ab") as out, (logs / "stderr.log").open("ab") as err:
        try:
            code = subprocess.run(argv, cwd=out_dir, env=env, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=err, check=False).returncode
        except OSError as exc:
            raise TaskError(f"command {argv[0]!r} cannot be run: {exc.strerror or exc}") from exc
    if code != 0:
        said = tail(logs / "stderr.log", 2000).strip()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise TaskError(f"command {argv[0]!r} {how}"
                        + (f": {said}" if said else "")
                        + f" (output of this attempt: {logs})")
    return {"files": sorted(p.name for p in out_dir.iterdir() if p.is_file())}
