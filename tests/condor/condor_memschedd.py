"""A small in-memory schedd for the executor's reconciliation and adoption tests.

Not a mock of htcondor: it models a queue and a history of job ads and implements
owl's narrow ``ScheddClient`` interface. It builds job ads with the real
``htcondor2.Submit`` (each item's variables set, then every attribute expanded) and
evaluates constraints with the real ClassAd library, so what the executor submits and asks
for is checked by HTCondor's own code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import classad2
import htcondor2

from owl.condor.schedd import Action, SubmitInfo

_ACTION_STATUS = {Action.HOLD: 5, Action.RELEASE: 1, Action.REMOVE: 3}


class MemorySchedd:
    def __init__(self, first_cluster: int = 100) -> None:
        self.next_cluster = first_cluster
        self.queue: dict[tuple[int, int], dict[str, Any]] = {}
        self.history_ads: list[dict[str, Any]] = []
        self.submitted: list[tuple[Any, list[dict[str, str]]]] = []
        self.actions: list[tuple[Action, list[str], str]] = []
        self.queries: list[str] = []
        self.history_queries: list[str] = []

    def submit(self, description: Any, itemdata: Sequence[dict[str, str]]) -> SubmitInfo:
        cluster = self.next_cluster
        self.next_cluster += 1
        self.submitted.append((description, list(itemdata)))
        for proc, item in enumerate(itemdata):
            sub = htcondor2.Submit(str(description).replace("queue\n", ""))
            for key, value in item.items():
                sub[key] = value
            ad: dict[str, Any] = {"ClusterId": cluster, "ProcId": proc, "JobStatus": 1}
            for key in description:
                name = key[3:] if key.lower().startswith("my.") else key
                ad[name] = _literal(sub.expand(key))
            ad["UserLog"] = sub.expand("log")
            self.queue[(cluster, proc)] = ad
        return SubmitInfo(cluster=cluster, count=len(itemdata))

    def query(self, constraint: str, projection: Sequence[str]) -> list[dict[str, Any]]:
        self.queries.append(constraint)
        return [_project(ad, projection) for ad in self.queue.values() if _match(constraint, ad)]

    def history(
        self,
        constraint: str,
        projection: Sequence[str],
        match: int = -1,
        since: str | None = None,
    ) -> list[dict[str, Any]]:
        self.history_queries.append(constraint)
        out = []
        for ad in reversed(self.history_ads):
            if since is not None and _match(since, ad):
                break
            if _match(constraint, ad):
                out.append(_project(ad, projection))
                if len(out) == match:
                    break
        return out

    def act(self, action: Action, job_ids: Sequence[str], reason: str) -> int:
        self.actions.append((action, list(job_ids), reason))
        changed = 0
        for name in job_ids:
            cluster, proc = (int(x) for x in name.split("."))
            ad = self.queue.get((cluster, proc))
            if ad is None:
                continue
            ad["JobStatus"] = _ACTION_STATUS[action]
            if action is Action.HOLD:
                ad.update(HoldReason=reason, HoldReasonCode=1, HoldReasonSubCode=0)
            if action is Action.REMOVE:
                self.leave(cluster, proc, JobStatus=3, RemoveReason=reason)
            changed += 1
        return changed

    def leave(self, cluster: int, proc: int, **final: Any) -> None:
        """Move a job from the queue to the history with its final attributes."""
        ad = self.queue.pop((cluster, proc))
        ad.update(final)
        ad.setdefault("EnteredCurrentStatus", int(time.time()))
        self.history_ads.append(ad)


def _literal(text: str) -> Any:
    try:
        value = classad2.ExprTree(text).eval()
    except Exception:  # not a ClassAd expression: keep the submit text
        return text
    return value if type(value) in (str, int, float, bool) else text  # not classad2.Value


def _match(constraint: str, ad: dict[str, Any]) -> bool:
    return classad2.ExprTree(constraint).eval(classad2.ClassAd(ad)) is True


def _project(ad: dict[str, Any], projection: Sequence[str]) -> dict[str, Any]:
    return {k: ad[k] for k in projection if k in ad} if projection else dict(ad)
