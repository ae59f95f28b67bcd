"""What condor knows of a work item's latest job, for operators (``owl show``, the web)."""

from __future__ import annotations

from typing import Any

from owl.condor import attrs
from owl.condor.schedd import ScheddClient


def job_info(schedd: ScheddClient, board: str, dataset: str, stage: str) -> dict[str, Any]:
    """What condor knows of the latest job of a work item, for operators.

    Returns
    -------
    dict
        ``job`` ("cluster.proc"), ``state``, ``in_queue``, ``token``, ``attempt``,
        ``hold_reason``, ``hold_code``, ``hold_subcode``, ``exit_code``; empty when
        the schedd knows no job of the item.
    """
    constraint = attrs.item_constraint(board, dataset, stage)
    ads = schedd.query(constraint, attrs.STATUS_PROJECTION)
    in_queue = bool(ads)
    if not ads:
        ads = schedd.history(constraint, attrs.STATUS_PROJECTION, 1)
    if not ads:
        return {}
    ad = max(ads, key=lambda a: (int(a["ClusterId"]), int(a["ProcId"])))
    return {
        "job": f"{ad['ClusterId']}.{ad['ProcId']}",
        "state": attrs.STATUS_NAMES.get(ad.get("JobStatus") or 0, "unknown"),
        "in_queue": in_queue,
        "dataset": dataset,
        "stage": stage,
        "token": ad.get(attrs.TOKEN),
        "attempt": ad.get(attrs.ATTEMPT),
        "hold_reason": ad.get("HoldReason") or "",
        "hold_code": ad.get("HoldReasonCode"),
        "hold_subcode": ad.get("HoldReasonSubCode"),
        "exit_code": ad.get("ExitCode"),
    }
