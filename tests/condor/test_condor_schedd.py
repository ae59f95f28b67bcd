"""The htcondor2-backed schedd client without a pool: lazy, and clear when unreachable."""

from __future__ import annotations

import classad2
import pytest
from condor_jobs import make_job
from condor_memschedd import MemorySchedd

from owl.condor.executor import CondorExecutor
from owl.condor.schedd import CondorError, HTCondorSchedd, plain


def test_construction_contacts_nothing():
    schedd = HTCondorSchedd(collector="127.0.0.1:9")  # nothing answers there
    assert schedd._schedd is None  # located on first use, not when built


@pytest.mark.parametrize("collector", [None, "127.0.0.1:9"])
def test_unreachable_schedd_is_a_clear_error(collector):
    with pytest.raises(CondorError, match="cannot locate the condor schedd"):
        HTCondorSchedd(collector=collector).query("true", ["ClusterId"])


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
