"""The narrow schedd interface the executor needs, and its ``htcondor2`` implementation.

:class:`ScheddClient` is everything the executor asks of a schedd: submit one batch,
query the queue, query the history, and hold/release/remove jobs. :class:`HTCondorSchedd`
implements it over ``htcondor2.Schedd``; it locates the schedd on first use, so building
an executor (or importing owl.condor) needs no running pool.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import classad2  # type: ignore[import-untyped]  # no stubs
import htcondor2
import structlog

from owl.errors import OwlError

log = structlog.get_logger("owl.condor")


class CondorError(OwlError):
    """The schedd could not be reached or refused a request."""


class Action(StrEnum):
    """What :meth:`ScheddClient.act` can do to jobs."""

    HOLD = "hold"
    RELEASE = "release"
    REMOVE = "remove"


@dataclass(frozen=True)
class SubmitInfo:
    """Where a submitted batch went: procs ``0..count-1`` of ``cluster``."""

    cluster: int
    count: int


class ScheddClient(Protocol):
    """The schedd as the executor sees it. Ads come back as plain dicts."""

    def submit(self, description: Any, itemdata: Sequence[dict[str, str]]) -> SubmitInfo:
        """Submit one cluster: one proc per item of ``itemdata``, in order."""
        ...

    def query(self, constraint: str, projection: Sequence[str]) -> list[dict[str, Any]]:
        """Ads of the queued jobs matching ``constraint``."""
        ...

    def history(
        self,
        constraint: str,
        projection: Sequence[str],
        match: int = -1,
        since: str | None = None,
    ) -> list[dict[str, Any]]:
        """Ads of jobs that left the queue, newest first; stop at ``match`` ads or at the
        first ad for which the expression ``since`` is true."""
        ...

    def act(self, action: Action, job_ids: Sequence[str], reason: str) -> int:
        """Hold, release or remove jobs named ``"cluster.proc"``; returns how many changed."""
        ...


_JOB_ACTIONS = {
    Action.HOLD: htcondor2.JobAction.Hold,
    Action.RELEASE: htcondor2.JobAction.Release,
    Action.REMOVE: htcondor2.JobAction.Remove,
}


#: HoldReasonSubCode of holds owl places (HoldReasonCode is 1, "UserRequest", for every
#: hold through the schedd's hold command).
HOLD_SUBCODE = 0


def act_reason(reason: str) -> tuple[str, int]:
    """The ``reason`` argument of ``htcondor2.Schedd.act`` that keeps ``reason``.

    ``Schedd.act`` passes a reason on only when it is a ``(reason, code)`` tuple; a plain
    string is dropped and the job's HoldReason/RemoveReason stays empty. The code is the
    HoldReasonSubCode of a hold (ignored for release and remove).
    """
    return (reason, HOLD_SUBCODE)


def plain(ad: Any) -> dict[str, Any]:
    """A ClassAd as a dict of Python values (expressions evaluated, undefined as None)."""
    out: dict[str, Any] = {}
    for key in ad:
        value = ad.eval(key)
        # Exact types: classad2.Value (Undefined, Error) is an IntEnum, not a number.
        out[key] = value if type(value) in (str, int, float, bool) else None
    return out


class HTCondorSchedd:
    """:class:`ScheddClient` over ``htcondor2.Schedd``.

    Parameters
    ----------
    collector : str or None
        Collector host to locate the schedd with; None: the pool of CONDOR_CONFIG.
    schedd_name : str or None
        Name of the schedd; None: the local one.
    address : str or None
        The schedd's address (``<host:port>``) to use without asking a collector.
    """

    def __init__(self, collector: str | None = None, schedd_name: str | None = None,
                 address: str | None = None) -> None:
        self.collector = collector
        self.schedd_name = schedd_name
        self.address = address
        self._schedd: Any = None

    def submit(self, description: Any, itemdata: Sequence[dict[str, str]]) -> SubmitInfo:
        """Submit one cluster; submit warnings are logged, not raised."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = self._call("submit", description, itemdata=iter(itemdata))
        for w in caught:
            log.warning("condor.submit_warning", message=str(w.message))
        return SubmitInfo(cluster=int(result.cluster()), count=int(result.num_procs()))

    def query(self, constraint: str, projection: Sequence[str]) -> list[dict[str, Any]]:
        """Queued job ads matching ``constraint``."""
        return [plain(ad) for ad in self._call("query", constraint, list(projection))]

    def history(
        self,
        constraint: str,
        projection: Sequence[str],
        match: int = -1,
        since: str | None = None,
    ) -> list[dict[str, Any]]:
        """Job ads from the schedd history, newest first."""
        ads = self._call("history", constraint, list(projection), match, since)
        return [plain(ad) for ad in ads]

    def act(self, action: Action, job_ids: Sequence[str], reason: str) -> int:
        """Hold, release or remove jobs; returns the number of jobs changed.

        The reason becomes the job's HoldReason (or RemoveReason), so ``condor_q`` and
        ``owl show`` can say why.
        """
        if not job_ids:
            return 0
        result = self._call("act", _JOB_ACTIONS[action], list(job_ids), act_reason(reason))
        return int(result["TotalSuccess"]) if result is not None else 0

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._locate(), method)(*args, **kwargs)
        except htcondor2.HTCondorException as exc:
            raise CondorError(f"condor schedd {self._where()}: {method} failed: {exc}") from exc

    def _locate(self) -> Any:
        if self._schedd is None:
            try:
                if self.address is not None:
                    self._schedd = htcondor2.Schedd(classad2.ClassAd(
                        {"MyAddress": self.address, "CondorVersion": htcondor2.version()}))
                elif self.collector is None and self.schedd_name is None:
                    self._schedd = htcondor2.Schedd()
                else:
                    ad = htcondor2.Collector(self.collector).locate(
                        htcondor2.DaemonType.Schedd, self.schedd_name
                    )
                    self._schedd = htcondor2.Schedd(ad)
            except htcondor2.HTCondorException as exc:
                raise CondorError(
                    f"cannot locate the condor schedd {self._where()}: {exc}; check "
                    "CONDOR_CONFIG or the executor's collector/schedd_name settings"
                ) from exc
        return self._schedd

    def _where(self) -> str:
        if self.address is not None:
            return f"at {self.address}"
        name = self.schedd_name or "(local)"
        return f"{name} via collector {self.collector or '(from CONDOR_CONFIG)'}"
