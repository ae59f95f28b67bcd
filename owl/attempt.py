"""One attempt in a worker: reuse the last completion if it still stands, else run the task;
either way measure it and build its provenance record.

Both workers call :func:`run_attempt`: the local executor's child processes and the condor
job entry point (``owl.condor.job``). The result is JSON::

    {"ok": true, "outputs": {...}, "seconds": 1.2, "provenance": {...}}
    {"ok": false, "error": "...", "traceback": "...", "failure": "error", "seconds": 0.3}

``failure`` is ``permanent`` when the task raised :class:`owl.errors.PermanentError`.
"""

from __future__ import annotations

import calendar
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from owl.capture import Capture
from owl.errors import PermanentError
from owl.model import FailureClass, Provenance, TaskSpec
from owl.provenance import (
    FileRecord,
    code_version,
    digest,
    environment,
    file_record,
    known_files,
    output_records,
    paths_in,
    peak_kb,
    peak_reset,
    provenance_key,
    ref_records,
    unique,
)
from owl.reuse import Current, differences
from owl.task import Recorder, run_task
from owl.tasklog import failure


def epoch_s(start: str) -> int:
    """An exposure start ``YYYY-MM-DDTHH:MM:SS`` (UTC) as seconds since 1970."""
    return calendar.timegm(datetime.strptime(start, "%Y-%m-%dT%H:%M:%S").timetuple())


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def task_name(spec: TaskSpec) -> str:
    return spec.task if spec.task is not None else " ".join(spec.argv or ())


def input_records(spec: TaskSpec, extra: list[str], known: dict[str, FileRecord],
                  ) -> list[FileRecord]:
    """The registered input, every file named in the predecessors' outputs, and ``extra``
    (files a task said it read)."""
    paths = [*paths_in(spec.inputs), *(Path(p) for p in extra)]
    if spec.input_path:
        paths.append(Path(os.path.abspath(spec.input_path)))
    recs = [file_record(p, known) for p in unique(paths)]
    return [r for r in recs if r is not None]


def current(spec: TaskSpec, known: dict[str, FileRecord]) -> Current:
    """What the item would run with now (for the reuse check and ``owl explain``)."""
    last_in = [r[0] for r in ((spec.last or {}).get("pv") or {}).get("in", [])]
    return Current(task=task_name(spec),
                   code_version=code_version(spec.task, spec.argv[0] if spec.argv else None),
                   params=spec.params, overrides=spec.refs,
                   inputs=input_records(spec, last_in, known))


def run_attempt(spec: TaskSpec, capture: Capture | None = None) -> dict[str, Any]:
    """Reuse or run one attempt; never raises for the task's own failure. A local worker
    passes its `capture` files (`owl.capture`)."""
    started, wall0, cpu0 = time.time(), time.perf_counter(), _cpu()
    peak_reset()

    def timing() -> dict[str, Any]:
        return {"t0": int(started * 1000), "du": round(time.perf_counter() - wall0, 4),
                "cpu": round(_cpu() - cpu0, 4), "mem": peak_kb()}

    try:
        last_pv = (spec.last or {}).get("pv")
        known = known_files([*([last_pv] if last_pv else []), {"in": spec.known}])
        if (spec.reuse and spec.last and last_pv
                and not differences(current(spec, known), spec.last)):
            item = {**last_pv, **timing(), "r": 1}
            prov = Provenance(item=item, env_id=str(spec.last.get("pe", "")), env=None,
                              reused=True)
            return {"ok": True, "outputs": spec.last.get("out") or {},
                    "seconds": item["du"], "provenance": prov.to_json()}
        record = Recorder()
        outputs = run_task(spec, record, capture)
        name = task_name(spec)
        cv = code_version(spec.task, spec.argv[0] if spec.argv else None)
        inputs = input_records(spec, record.inputs, known)
        refs = ref_records(record.refs)
        env = environment(task=name, cv=cv, template_hash=spec.template_hash,
                          params=spec.params, refs=refs, executor=spec.executor)
        produced = output_records(Path(spec.output_dir), outputs)
        item = {"k": provenance_key(name, cv, spec.params, refs, inputs), **timing()}
        # Empty parts are left out: the record sits in the item's hash on the hot board.
        if inputs:
            item["in"] = inputs
        if produced:
            item.update(od=spec.output_dir, out=produced)
        selection = [[digest(kw, 10), kw, start, epoch_s(start)]
                     for kw, start in record.selections]
        prov = Provenance(item=item, env_id=digest(env, 12), env=env, selection=selection)
        return {"ok": True, "outputs": outputs, "seconds": item["du"],
                "provenance": prov.to_json()}
    except BaseException as exc:  # the task's failure is reported, not fatal
        kind = FailureClass.PERMANENT if isinstance(exc, PermanentError) else FailureClass.ERROR
        return {**failure(exc, spec.output_dir), "failure": str(kind),
                "seconds": time.perf_counter() - wall0}
