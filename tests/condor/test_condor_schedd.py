"""The htcondor2-backed schedd client without a pool: lazy, and clear when unreachable."""

from __future__ import annotations

import os

import classad2
import htcondor2
import htcondor2._schedd as htcondor2_schedd
import pytest
from condor_jobs import make_job
from condor_memschedd import MemorySchedd

from owl.condor.executor import CondorExecutor
from owl.condor.schedd import Action, CondorError, HTCondorSchedd, plain
from owl.condor.settings import refuse_root
from owl.config import Settings
from owl.errors import ConfigError


def test_construction_contacts_nothing():
    schedd = HTCondorSchedd(collector="127.0.0.1:9")  # nothing answers there
    assert schedd._schedd is None  # located on first use, not when built


def test_unreachable_collector_is_a_clear_error():
    with pytest.raises(CondorError, match="cannot locate the condor schedd"):
        HTCondorSchedd(collector="127.0.0.1:9").query("true", ["ClusterId"])


def test_unreachable_schedd_is_a_clear_error():
    # An explicit address nobody listens on: a pool answering on this machine changes nothing.
    with pytest.raises(CondorError, match=r"schedd at <127.0.0.1:9>: query failed"):
        HTCondorSchedd(address="<127.0.0.1:9>").query("true", ["ClusterId"])


@pytest.fixture
def sent_actions(monkeypatch):
    """What htcondor2's own ``Schedd.act`` hands to its C extension, per call.

    The recorder replaces only the extension function that would open the connection;
    the argument handling under test is htcondor2's Python code.
    """
    calls = []

    def record(addr, job_ids, action, reason, code):
        calls.append((addr, job_ids, action, reason, code))
        return None

    monkeypatch.setattr(htcondor2_schedd, "_schedd_act_on_job_ids", record)
    return calls


def test_plain_string_reasons_are_dropped_by_htcondor2(sent_actions):
    # Why owl passes tuples: the bindings forward no reason for a plain string.
    schedd = htcondor2.Schedd(classad2.ClassAd({"MyAddress": "<127.0.0.1:9>",
                                                "CondorVersion": htcondor2.version()}))
    schedd.act(htcondor2.JobAction.Hold, ["1.0"], "plain")
    assert sent_actions[-1][3] is None


@pytest.mark.parametrize("action", list(Action))
def test_hold_and_remove_reasons_reach_the_schedd(sent_actions, action):
    client = HTCondorSchedd(address="<127.0.0.1:9>")
    client.act(action, ["7.0", "7.1"], "owl: token 3 of ds1/calib fenced")
    [(addr, job_ids, code, reason, subcode)] = sent_actions
    assert (addr, job_ids) == ("<127.0.0.1:9>", "7.0, 7.1")
    assert code == int({Action.HOLD: htcondor2.JobAction.Hold,
                        Action.RELEASE: htcondor2.JobAction.Release,
                        Action.REMOVE: htcondor2.JobAction.Remove}[action])
    assert reason == "owl: token 3 of ds1/calib fenced"
    assert subcode == "0"


def test_plain_evaluates_attributes():
    ad = classad2.ClassAd({"A": 1, "B": "x"})
    ad["C"] = classad2.ExprTree("A + 1")
    ad["D"] = classad2.ExprTree("Missing")
    assert plain(ad) == {"A": 1, "B": "x", "C": 2, "D": None}


class DownSchedd(MemorySchedd):
    def act(self, action, job_ids, reason):
        raise CondorError("schedd down")


def test_cancel_survives_an_unreachable_schedd(tmp_path, settings):
    ex = CondorExecutor(settings, DownSchedd())
    ex.submit([make_job(tmp_path, "x", 1)])
    ex.cancel("x", "calib", 1)
    assert ex.active() == 0


def test_root_is_refused_before_anything_is_submitted():
    with pytest.raises(ConfigError, match="cannot run as root: a schedd never lets root own"):
        refuse_root(0)
    refuse_root(1000)  # any other account goes on


def test_an_agent_run_as_root_refuses_with_a_clear_message(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the refusal is seen only by an agent run as root")
    with pytest.raises(ConfigError, match="cannot run as root"):
        CondorExecutor.from_settings(Settings(home=tmp_path), "ap1-heavy")
