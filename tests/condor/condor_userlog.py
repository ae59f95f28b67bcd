"""Writes job event logs in HTCondor's own text format, for the tests to parse.

The layouts follow ``formatBody`` of each event class in HTCondor's
``src/condor_utils/condor_event.cpp`` (header ``NNN (cluster.proc.subproc) date time``,
tab-indented body, ``...`` after each event) and the sample log shipped with the bindings'
tests (``src/python-bindings/tests/job.log``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

_RUSAGE = "Usr 0 00:00:01, Sys 0 00:00:00"
_T0 = datetime(2025, 3, 1, 10, 0, 0)


def _header(code: int, cluster: int, proc: int, seconds: int) -> str:
    when = (_T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
    return f"{code:03d} ({cluster:03d}.{proc:03d}.000) {when} "


def submit(cluster: int, proc: int, t: int = 0) -> str:
    return (
        _header(0, cluster, proc, t)
        + "Job submitted from host: <10.0.0.1:9618?addrs=10.0.0.1-9618&alias=ap.example.org"
        "&noUDP&sock=schedd_1234_abcd>\n...\n"
    )


def execute(cluster: int, proc: int, t: int = 5) -> str:
    return (
        _header(1, cluster, proc, t)
        + "Job executing on host: <10.0.0.2:9618?addrs=10.0.0.2-9618&alias=ep1.example.org"
        "&noUDP&sock=startd_99_f00d>\n\tSlotName: slot1_1@ep1.example.org\n...\n"
    )


def _usage(total: bool) -> str:
    lines = [
        f"\t\t{_RUSAGE}  -  Run Remote Usage\n",
        f"\t\t{_RUSAGE}  -  Run Local Usage\n",
    ]
    if total:
        lines += [
            f"\t\t{_RUSAGE}  -  Total Remote Usage\n",
            f"\t\t{_RUSAGE}  -  Total Local Usage\n",
        ]
    return "".join(lines)


def _bytes(total: bool) -> str:
    names = ["Run Bytes Sent By Job", "Run Bytes Received By Job"]
    if total:
        names += ["Total Bytes Sent By Job", "Total Bytes Received By Job"]
    return "".join(f"\t0  -  {n}\n" for n in names)


def terminated(cluster: int, proc: int, exit_code: int = 0, t: int = 60) -> str:
    return (
        _header(5, cluster, proc, t)
        + "Job terminated.\n"
        + f"\t(1) Normal termination (return value {exit_code})\n"
        + _usage(True)
        + _bytes(True)
        + "\tPartitionable Resources :    Usage  Request Allocated\n"
        + "\t   Cpus                 :                 1         1\n"
        + "\t   Disk (KB)            :       18  1048576   7330524\n"
        + "\t   Memory (MB)          :       35     1024      1024\n"
        + "...\n"
    )


def killed(cluster: int, proc: int, signal: int = 9, t: int = 60) -> str:
    return (
        _header(5, cluster, proc, t)
        + "Job terminated.\n"
        + f"\t(0) Abnormal termination (signal {signal})\n"
        + "\t(0) No core file\n"
        + _usage(True)
        + _bytes(True)
        + "...\n"
    )


def held(cluster: int, proc: int, reason: str, code: int, subcode: int = 0, t: int = 30) -> str:
    return (
        _header(12, cluster, proc, t)
        + f"Job was held.\n\t{reason}\n\tCode {code} Subcode {subcode}\n...\n"
    )


def memory_held(cluster: int, proc: int, limit_mb: int = 1024, t: int = 30) -> str:
    # The starter's cgroup OOM wording (VanillaProc::outOfMemoryEvent).
    return held(
        cluster,
        proc,
        f"Job has gone over cgroup memory limit of {limit_mb} megabytes. Last measured usage: "
        f"{limit_mb + 75} megabytes.  Consider resubmitting with a higher request_memory.",
        34,
        0,
        t,
    )


def released(cluster: int, proc: int, t: int = 40) -> str:
    return (
        _header(13, cluster, proc, t)
        + "Job was released.\n\tvia condor_release (by user owl)\n...\n"
    )


def evicted(cluster: int, proc: int, t: int = 50) -> str:
    return (
        _header(4, cluster, proc, t)
        + "Job was evicted.\n\t(0) CPU times\n"
        + _usage(False)
        + _bytes(False)
        + "...\n"
    )


def aborted(cluster: int, proc: int, t: int = 70) -> str:
    return _header(9, cluster, proc, t) + "Job was aborted.\n\tvia condor_rm (by user owl)\n...\n"


def append(path: Path, *events: str) -> None:
    """Append events to a log the way the schedd/shadow does (create it if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("".join(events))
