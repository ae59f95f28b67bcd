"""The :class:`~owl.model.Outcome` of an ended job: its ending plus its result file."""

from __future__ import annotations

from typing import Any

from owl.condor.spool import item_files, read_result, tail
from owl.condor.tracker import Ending
from owl.model import FailureClass, Outcome, Provenance


def outcome_of(ending: Ending) -> Outcome:
    """The outcome of an ended job, reading the result file its ``job.py`` wrote.

    Parameters
    ----------
    ending : Ending
        How the job ended, from the event log or the schedd.

    Returns
    -------
    Outcome
        Exit status 0 and an ok result: ok, with the task's outputs. Exit status 1 (or
        a vanished job) with a failed result: ERROR with the task's message and
        traceback. Anything else: the ending's failure class, with the exit status,
        signal or hold/removal reason as error and the tail of the job's stderr as
        traceback.
    """
    job = ending.job
    _, result_path, _, err_path = item_files(job.base)
    result = read_result(result_path)
    seconds = float(result.get("seconds") or 0.0) if result else 0.0

    def make(ok: bool, **fields: Any) -> Outcome:
        return Outcome(job.dataset, job.stage, job.token, ok, seconds=seconds, **fields)

    # A result file is evidence only when the job ran to its end (or nothing better is
    # left); a held or killed job may have left one from a run that was cut short.
    if result is not None and (ending.failure in (None, FailureClass.ERROR) or ending.vanished):
        if result.get("ok") and (ending.failure is None or ending.vanished):
            return make(True, outputs=dict(result.get("outputs") or {}),
                        provenance=_provenance(result, job.cluster, job.proc))
        if not result.get("ok"):
            return make(
                False,
                error=str(result.get("error") or ""),
                traceback=str(result.get("traceback") or ""),
                failure=FailureClass(result.get("failure") or "error"),
            )
    if ending.failure is None:
        error = f"job {job.name} exited 0 but left no readable result at {result_path}"
    elif ending.signal is not None:
        error = f"job {job.name} was killed by signal {ending.signal}"
    elif ending.exit_code is not None:
        error = f"job {job.name} exited with status {ending.exit_code}"
    else:
        error = f"job {job.name}: {ending.reason}"
    return make(
        False, error=error, traceback=tail(err_path), failure=ending.failure or FailureClass.ERROR
    )


def _provenance(result: dict[str, Any], cluster: int, proc: int) -> Provenance | None:
    """The job's provenance record, with its condor job id (``j``)."""
    raw = result.get("provenance")
    if not raw:
        return None
    prov = Provenance.from_json(raw)
    return Provenance(item={**prov.item, "j": f"{cluster}.{proc}"}, env_id=prov.env_id,
                      env=prov.env, reused=prov.reused, selection=prov.selection)
