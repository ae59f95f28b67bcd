"""How job endings map to owl's failure classes, and how memory grows on retry.

Hold codes (``HoldReasonCode``/``HoldReasonSubCode``, from HTCondor's
``condor_holdcodes.h`` and the hold-reason table of its manual):

- 1  UserRequest: someone ran ``condor_hold`` (or owl's operator hold). Not a failure:
  the job waits for a release.
- 34 JobOutOfResources: the starter's cgroup OOM handler ("Job has gone over cgroup memory
  limit of N megabytes"), subcode 0; subcode 104 is the disk limit (LVM), not memory.
- 21 StartdHeldJob with subcode 102: the ``HOLD_IF_MEMORY_EXCEEDED`` policy
  (``HOLD_SUBCODE_MEMORY_EXCEEDED``).
- 46 JobDurationExceeded / 47 JobExecuteExceeded: ``allowed_job_duration`` /
  ``allowed_execute_duration`` elapsed, which is how owl enforces a stage's timeout.

A pool may also hold for memory through its own ``periodic_hold`` or
``SYSTEM_PERIODIC_HOLD`` (codes 3 and 26) with a reason text of its choosing, so a reason
that says the memory limit was exceeded counts as a memory hold whatever its code.
"""

from __future__ import annotations

import math
import re

from owl.model import FailureClass
from owl.template import RetryPolicy

USER_REQUEST = 1
STARTD_HELD_JOB = 21
JOB_OUT_OF_RESOURCES = 34
JOB_DURATION_EXCEEDED = 46
JOB_EXECUTE_EXCEEDED = 47
SUBCODE_MEMORY_EXCEEDED = 102
SUBCODE_DISK_EXCEEDED = 104

# "exhaused" (sic) is the docker universe's wording.
_MEMORY_TEXT = re.compile(
    r"memory usage exceed|memory limit|out-of-memory|exceeded request_memory|exhaused .* memory",
    re.IGNORECASE,
)


def is_operator_hold(code: int) -> bool:
    """True for a hold someone asked for (``condor_hold``): a pause, not a failure."""
    return code == USER_REQUEST


def classify_hold(code: int, subcode: int, reason: str) -> FailureClass:
    """The failure class of a job held by HTCondor.

    Parameters
    ----------
    code, subcode : int
        ``HoldReasonCode`` and ``HoldReasonSubCode``.
    reason : str
        ``HoldReason``.

    Returns
    -------
    FailureClass
        MEMORY for a memory-limit hold, TIMEOUT for a duration limit, HELD otherwise.
    """
    if code == JOB_OUT_OF_RESOURCES and subcode != SUBCODE_DISK_EXCEEDED:
        return FailureClass.MEMORY
    if code == STARTD_HELD_JOB and subcode == SUBCODE_MEMORY_EXCEEDED:
        return FailureClass.MEMORY
    if code in (JOB_DURATION_EXCEEDED, JOB_EXECUTE_EXCEEDED):
        return FailureClass.TIMEOUT
    if subcode != SUBCODE_DISK_EXCEEDED and _MEMORY_TEXT.search(reason):
        return FailureClass.MEMORY
    return FailureClass.HELD


def classify_exit(exit_code: int | None, signal: int | None) -> FailureClass | None:
    """None for exit status 0, ERROR for another status, CRASH for a signal."""
    if signal is not None:
        return FailureClass.CRASH
    return None if exit_code == 0 else FailureClass.ERROR


def escalate_memory(current_mb: int, policy: RetryPolicy) -> int | None:
    """The ``request_memory`` for the retry of an attempt held for memory.

    Parameters
    ----------
    current_mb : int
        The request (MB) of the attempt that was held.
    policy : RetryPolicy
        Supplies ``memory_multiplier`` and ``memory_cap_mb``.

    Returns
    -------
    int or None
        ``ceil(current_mb * memory_multiplier)``, at most ``memory_cap_mb``; None when the
        request cannot grow (already at the cap, or a multiplier of 1 or less): retrying
        with the same memory would be held again.
    """
    if current_mb >= policy.memory_cap_mb or policy.memory_multiplier <= 1.0:
        return None
    return min(policy.memory_cap_mb, math.ceil(current_mb * policy.memory_multiplier))
