"""The HTCondor executor: items run as HTCondor jobs through the ``htcondor2`` bindings.

Importing this package contacts no daemon; the schedd is located on first use.

Modules, one concern each:

``settings``  the executor's one settings object
``attrs``     every custom job attribute name and how values are quoted for them
``spool``     the on-disk layout: spec, result, stdout/stderr and event-log files
``submit``    one ``htcondor2.Submit`` description + itemdata per batch
``job``       the job's entry point (``python -m owl.condor.job SPEC RESULT``)
``events``    typed job events read from the event log, resumable after a restart
``failure``   hold codes and exits mapped to failure classes; memory escalation
``tracker``   the pure bookkeeping of submitted jobs (events and schedd ads in, endings out)
``schedd``    the narrow schedd interface and its ``htcondor2`` implementation
``executor``  :class:`CondorExecutor`, the :class:`owl.executor.Executor` for condor
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["AdoptedJob", "CondorExecutor", "CondorSettings", "escalate_memory"]

#: Names imported on first use: a local agent imports ``owl.condor.failure`` and must not
#: load the htcondor2 bindings (slow, and absent on hosts that never talk to a pool).
_WHERE = {"AdoptedJob": "owl.condor.adopt", "CondorExecutor": "owl.condor.executor",
          "CondorSettings": "owl.condor.settings", "escalate_memory": "owl.condor.failure"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'owl.condor' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
