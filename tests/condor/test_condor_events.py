"""Event logs in HTCondor's format parsed by the real htcondor2.JobEventLog."""

from __future__ import annotations

import condor_userlog as ul

from owl.condor.events import EventFollower, EventKind, JobEvent
from owl.condor.spool import Spool


def _follower(path):
    return EventFollower(path, Spool.offset_file(path))


def test_every_event_kind_is_translated(tmp_path):
    log = tmp_path / "events" / "agent.log"
    ul.append(
        log,
        ul.submit(101, 0),
        ul.execute(101, 0),
        ul.terminated(101, 0, exit_code=0),
        ul.terminated(101, 1, exit_code=3),
        ul.killed(101, 2, signal=9),
        ul.memory_held(101, 3, limit_mb=2048),
        ul.released(101, 3),
        ul.evicted(101, 4),
        ul.aborted(101, 5),
    )
    events = _follower(log).read()
    assert [(e.kind, e.job_id) for e in events] == [
        (EventKind.SUBMIT, (101, 0)),
        (EventKind.EXECUTE, (101, 0)),
        (EventKind.TERMINATED, (101, 0)),
        (EventKind.TERMINATED, (101, 1)),
        (EventKind.TERMINATED, (101, 2)),
        (EventKind.HELD, (101, 3)),
        (EventKind.RELEASED, (101, 3)),
        (EventKind.EVICTED, (101, 4)),
        (EventKind.ABORTED, (101, 5)),
    ]
    assert events[2].exit_code == 0 and events[2].signal is None
    assert events[3].exit_code == 3
    assert events[4].signal == 9 and events[4].exit_code is None
    held = events[5]
    assert (held.hold_code, held.hold_subcode) == (34, 0)
    assert held.reason.startswith("Job has gone over cgroup memory limit of 2048 megabytes.")
    assert events[6].reason == "via condor_release (by user owl)"
    assert events[7].requeued is False
    assert events[8].reason == "via condor_rm (by user owl)"
    assert events[0].timestamp < events[1].timestamp


def test_missing_log_yields_nothing_until_it_appears(tmp_path):
    log = tmp_path / "events" / "agent.log"
    follower = _follower(log)
    assert follower.read() == []
    ul.append(log, ul.submit(7, 0))
    assert [e.kind for e in follower.read()] == [EventKind.SUBMIT]


def test_only_new_and_complete_events_are_returned(tmp_path):
    log = tmp_path / "agent.log"
    ul.append(log, ul.submit(7, 0))
    follower = _follower(log)
    assert len(follower.read()) == 1
    assert follower.read() == []
    text = ul.terminated(7, 0)
    ul.append(log, text[: len(text) // 2])  # the shadow is mid-write
    assert follower.read() == []
    ul.append(log, text[len(text) // 2 :])
    assert [e.kind for e in follower.read()] == [EventKind.TERMINATED]


def test_restart_resumes_from_the_committed_position(tmp_path):
    log = tmp_path / "agent.log"
    ul.append(log, ul.submit(7, 0), ul.execute(7, 0))
    first = _follower(log)
    assert len(first.read()) == 2
    first.commit()
    ul.append(log, ul.terminated(7, 0))
    assert [e.kind for e in first.read()] == [EventKind.TERMINATED]  # read, not committed
    first.close()

    ul.append(log, ul.submit(8, 0))
    again = _follower(log)  # the agent restarted
    assert [(e.kind, e.cluster) for e in again.read()] == [
        (EventKind.TERMINATED, 7),  # at least once: read before the crash, not committed
        (EventKind.SUBMIT, 8),
    ]
    again.commit()
    assert _follower(log).read() == []


def test_a_replaced_log_is_read_from_its_start(tmp_path):
    log = tmp_path / "agent.log"
    ul.append(log, ul.submit(7, 0), ul.execute(7, 0))
    f = _follower(log)
    f.read()
    f.commit()
    f.close()
    log.unlink()
    ul.append(log, ul.submit(9, 0))
    assert [e.cluster for e in _follower(log).read()] == [9]


def test_job_event_value():
    e = JobEvent(EventKind.HELD, 5, 2, 0, hold_code=34)
    assert e.job_id == (5, 2)
