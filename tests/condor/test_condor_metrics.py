"""An agent's /metrics counts its HTCondor jobs by state (the executor's tracked jobs)."""

from __future__ import annotations

from pathlib import Path

import condor_userlog as ul
from condor_jobs import make_job
from condor_memschedd import MemorySchedd
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from owl.condor.executor import CondorExecutor
from owl.condor.settings import CondorSettings
from owl.condor.spool import Spool
from owl.web.exporter import ProcessCollector


def _jobs(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {s.labels["state"]: s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == "owl_condor_jobs"}


def test_condor_jobs_by_state(tmp_path: Path, settings: CondorSettings) -> None:
    schedd = MemorySchedd()
    ex = CondorExecutor(settings, schedd)
    registry = CollectorRegistry()
    registry.register(ProcessCollector("a1", lambda: [], ex.job_states))
    assert _jobs(registry) == {"idle": 0, "running": 0, "held": 0}
    ex.submit([make_job(tmp_path, "x", 1), make_job(tmp_path, "y", 2),
               make_job(tmp_path, "z", 3)])
    log = Spool(settings.spool_dir).event_log(settings.agent_id)
    ul.append(log, ul.execute(100, 0), ul.execute(100, 1), ul.held(100, 1, "by operator",
                                                                    code=1))
    assert ex.poll(0) == []
    assert _jobs(registry) == {"idle": 1, "running": 1, "held": 1}
    ex.cancel("z", "calib", 3)
    assert _jobs(registry) == {"idle": 0, "running": 1, "held": 1}
