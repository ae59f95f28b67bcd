"""Every custom job attribute owl puts on a condor job, and how values are written.

A job carries the board, agent, dataset, stage, token and attempt of the item it runs, so
that an agent that restarts finds its jobs on the schedd (:meth:`CondorExecutor.adopt`)
instead of submitting them twice, and so that an operator can tell them apart in
``condor_q -af OwlDataset OwlStage``.
"""

from __future__ import annotations

from collections.abc import Iterable

import classad2  # type: ignore[import-untyped]  # no stubs; pyproject lists htcondor2 only

BOARD = "OwlBoard"
AGENT = "OwlAgent"
DATASET = "OwlDataset"
STAGE = "OwlStage"
TOKEN = "OwlToken"
ATTEMPT = "OwlAttempt"
ITEM = "OwlItem"  # spool path of the item's files, without suffix

#: Standard job attributes the executor reads back from the schedd.
STATUS_PROJECTION: tuple[str, ...] = (
    "ClusterId",
    "ProcId",
    "JobStatus",
    "HoldReason",
    "HoldReasonCode",
    "HoldReasonSubCode",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "RemoveReason",
    "UserLog",
    "EnteredCurrentStatus",
    BOARD,
    AGENT,
    DATASET,
    STAGE,
    TOKEN,
    ATTEMPT,
    ITEM,
)

#: JobStatus values (condor_q's letters in comments).
IDLE, RUNNING, REMOVED, COMPLETED, HELD, TRANSFERRING, SUSPENDED = 1, 2, 3, 4, 5, 6, 7

STATUS_NAMES: dict[int, str] = {
    IDLE: "idle",
    RUNNING: "running",
    REMOVED: "removed",
    COMPLETED: "completed",
    HELD: "held",
    TRANSFERRING: "transferring",
    SUSPENDED: "suspended",
}


def classad_string(value: str) -> str:
    """Quote ``value`` as a ClassAd string literal (for constraints)."""
    return str(classad2.quote(value))


def submit_string(value: str) -> str:
    """Quote ``value`` as a ClassAd string literal that survives the submit language.

    The submit language expands ``$(...)`` macros even inside item values, so ``$`` is
    written as ``$(DOLLAR)``; ``classad2.quote`` already escapes quotes, newlines and the
    ``\\x1f`` separator that the bindings use between item values.
    """
    return classad_string(value).replace("$", "$(DOLLAR)")


def owner_constraint(board: str, agent_id: str | None = None) -> str:
    """Constraint matching the jobs of ``board`` (and of one agent, when given)."""
    parts = [f"{BOARD} == {classad_string(board)}"]
    if agent_id is not None:
        parts.append(f"{AGENT} == {classad_string(agent_id)}")
    return " && ".join(parts)


def item_constraint(board: str, dataset: str, stage: str) -> str:
    """Constraint matching the jobs of one work item on ``board``."""
    return (
        f"{BOARD} == {classad_string(board)} && {DATASET} == {classad_string(dataset)} && "
        f"{STAGE} == {classad_string(stage)}"
    )


def ids_constraint(job_ids: Iterable[tuple[int, int]]) -> str:
    """Constraint matching exactly the given ``(cluster, proc)`` ids."""
    by_cluster: dict[int, list[int]] = {}
    for cluster, proc in job_ids:
        by_cluster.setdefault(cluster, []).append(proc)
    terms = [
        f"(ClusterId == {cluster} && member(ProcId, {{{', '.join(map(str, sorted(procs)))}}}))"
        for cluster, procs in sorted(by_cluster.items())
    ]
    return "(" + " || ".join(terms) + ")" if terms else "false"
