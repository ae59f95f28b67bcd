"""Whether the pool tests can run here: a pool that answers, and an account it accepts."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def pool_problem() -> str | None:
    """Why no pool test can run (None: they can)."""
    if shutil.which("condor_status") is None:
        return "condor_status is not installed"
    try:
        proc = subprocess.run(
            ["condor_status", "-schedd"], capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return "condor_status timed out"
    if proc.returncode != 0:
        return f"condor_status failed with the current CONDOR_CONFIG: {proc.stderr.strip()}"
    if os.geteuid() == 0:
        return "running as root: a schedd never lets root own a job (run as an ordinary user)"
    return None


PROBLEM = pool_problem()
#: Marks of every pool test module.
POOL = [
    pytest.mark.condor,
    pytest.mark.skipif(PROBLEM is not None, reason=f"no HTCondor pool: {PROBLEM}"),
]


def condor_lines(*args: str) -> list[str]:
    """The output lines of a condor command-line tool (condor_q, condor_history)."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=True)
    return [line for line in proc.stdout.splitlines() if line.strip()]
