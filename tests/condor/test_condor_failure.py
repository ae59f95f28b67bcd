"""Hold codes and exits mapped to failure classes; memory escalation."""

from __future__ import annotations

import pytest

from owl.condor.failure import classify_exit, classify_hold, escalate_memory, is_operator_hold
from owl.model import FailureClass
from owl.template import RetryPolicy

OOM = (
    "Job has gone over cgroup memory limit of 1024 megabytes. Last measured usage: 1099 "
    "megabytes.  Consider resubmitting with a higher request_memory."
)


@pytest.mark.parametrize(
    ("code", "subcode", "reason", "expected"),
    [
        (34, 0, OOM, FailureClass.MEMORY),
        (34, 0, "Job has encountered an out-of-memory event.", FailureClass.MEMORY),
        (34, 104, "Job has exceeded allocated disk", FailureClass.HELD),
        (21, 102, "memory usage exceeded request_memory", FailureClass.MEMORY),
        (
            3,
            0,
            "The job attribute PeriodicHold expression 'MemoryUsage > RequestMemory' "
            "evaluated to TRUE: memory usage exceeded",
            FailureClass.MEMORY,
        ),
        (47, 0, "The job exceeded allowed execute duration of 00:10:00", FailureClass.TIMEOUT),
        (46, 0, "The job exceeded allowed job duration", FailureClass.TIMEOUT),
        (13, 2, "Transfer input files failure at access point", FailureClass.HELD),
        (6, 2, "Error from slot1@ep: Failed to execute '/usr/bin/python3'", FailureClass.HELD),
    ],
)
def test_classify_hold(code, subcode, reason, expected):
    assert classify_hold(code, subcode, reason) is expected


def test_user_request_hold_is_a_pause():
    assert is_operator_hold(1)
    assert not is_operator_hold(34)


def test_classify_exit():
    assert classify_exit(0, None) is None
    assert classify_exit(1, None) is FailureClass.ERROR
    assert classify_exit(None, 9) is FailureClass.CRASH


def test_escalate_memory_grows_up_to_the_cap():
    policy = RetryPolicy(memory_multiplier=2.0, memory_cap_mb=6000)
    assert escalate_memory(1024, policy) == 2048
    assert escalate_memory(2048, policy) == 4096
    assert escalate_memory(4096, policy) == 6000
    assert escalate_memory(6000, policy) is None
    assert escalate_memory(1000, RetryPolicy(memory_multiplier=1.5)) == 1500
    assert escalate_memory(1001, RetryPolicy(memory_multiplier=1.5)) == 1502
    assert escalate_memory(1024, RetryPolicy(memory_multiplier=1.0)) is None
