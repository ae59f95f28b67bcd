"""One ``htcondor2.Submit`` description plus itemdata for a batch of jobs of one stage.

The batch goes to the schedd as one transaction (``Schedd.submit(description,
itemdata=iter(items))``): proc N of the new cluster runs item N. Whatever differs per
item (dataset, token, attempt, request_memory after an escalated retry, file paths) is an
itemdata variable; the rest is written once in the description::

    executable     = <agent's python>
    arguments      = "-m owl.condor.job '$(owl_spec)' '$(owl_item).result.json'"
    request_memory = $(owl_memory)
    My.OwlDataset  = $(owl_dataset)        # a quoted ClassAd string per item
    log            = SPOOL/events/AGENT.log

Shared-filesystem mode (default) runs on the spool paths as they are; a small TaskSpec
(``inline_spec`` bytes of JSON) goes in the arguments (``b64:...``) instead of a spec file.
File-transfer mode sends the spec file with the job and brings the result file back to
its spool path (``transfer_output_remaps``). A stage's timeout becomes
``allowed_execute_duration``, so HTCondor holds a job that runs too long (code 47, mapped
to TIMEOUT).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import htcondor2

from owl.condor import attrs
from owl.condor.job import inline_spec
from owl.condor.settings import CondorSettings
from owl.condor.spool import Spool, item_files
from owl.errors import ConfigError
from owl.executor import Job

#: Submit commands owl sets itself; ``Job.extra`` may not override them.
RESERVED = frozenset(
    {
        "universe",
        "container_image",
        "executable",
        "arguments",
        "log",
        "output",
        "error",
        "request_memory",
        "should_transfer_files",
        "when_to_transfer_output",
        "transfer_input_files",
        "transfer_output_files",
        "transfer_output_remaps",
        "transfer_executable",
    }
)


#: Most bytes of inline specs in one batch. ``Schedd.submit`` builds its submit text by
#: repeated concatenation, quadratic in its length: 2,000 specs of 600 bytes inline took
#: 3.6 s there against 0.03 s with spec files, so a big batch writes spec files instead.
INLINE_BATCH_BYTES = 256 * 1024


@dataclass(frozen=True)
class SubmitItem:
    """One item of a batch: which work item proc N of the cluster runs."""

    dataset: str
    stage: str
    token: int
    attempt: int
    base: Path  # the item's spool files, without suffix
    memory_mb: int


@dataclass(frozen=True)
class SubmitBatch:
    """What one submit transaction needs: description, itemdata, and the items in order."""

    description: Any  # htcondor2.Submit
    itemdata: list[dict[str, str]]
    items: tuple[SubmitItem, ...]


def batch_key(job: Job) -> tuple[Any, ...]:
    """Jobs with equal keys share a description (memory alone may differ per item)."""
    r = job.resources
    return (job.spec.stage, r.cpus, r.disk_mb, job.spec.timeout, job.extra)


def group_jobs(jobs: Sequence[Job], max_batch: int) -> list[list[Job]]:
    """Split ``jobs`` into batches of equal :func:`batch_key`, at most ``max_batch`` long.

    Order is kept within a batch; each batch is one submit transaction.
    """
    groups: dict[tuple[Any, ...], list[Job]] = {}
    for job in jobs:
        groups.setdefault(batch_key(job), []).append(job)
    size = max(1, max_batch)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


def description(first: Job, settings: CondorSettings, spool: Spool) -> Any:
    """The submit description shared by every job of ``first``'s batch.

    Parameters
    ----------
    first : Job
        Any job of the batch (all share stage, cpus, disk, timeout and extra attributes).
    settings : CondorSettings
        Board, agent, interpreter, transfer mode.
    spool : Spool
        The spool directory (event log path).

    Returns
    -------
    htcondor2.Submit
        The description, without a queue statement.

    Raises
    ------
    ConfigError
        When an extra submit attribute would override one owl manages.
    """
    r = first.resources
    sub: dict[str, str] = {
        "universe": "vanilla",
        "executable": settings.python,
        "transfer_executable": "false",
        "log": str(spool.event_log(settings.agent_id)),
        "output": "$(owl_item).out",
        "error": "$(owl_item).err",
        "request_cpus": str(r.cpus),
        "request_memory": "$(owl_memory)",
        "request_disk": str(r.disk_mb * 1024),  # KiB: the unit request_disk assumes
        "allowed_execute_duration": str(max(1, math.ceil(first.spec.timeout))),
        "batch_name": f"owl:{first.spec.stage}",
        "environment": _environment(settings.job_pythonpath()),
        f"My.{attrs.BOARD}": attrs.submit_string(settings.board),
        f"My.{attrs.AGENT}": attrs.submit_string(settings.agent_id),
        f"My.{attrs.STAGE}": attrs.submit_string(first.spec.stage),
        f"My.{attrs.DATASET}": "$(owl_dataset)",
        f"My.{attrs.TOKEN}": "$(owl_token)",
        f"My.{attrs.ATTEMPT}": "$(owl_attempt)",
        f"My.{attrs.ITEM}": '"$(owl_item)"',
    }
    if settings.container is not None:
        sub.update({"universe": "container", "container_image": settings.container})
    if settings.transfer_files:
        sub.update(
            {
                "should_transfer_files": "YES",
                "when_to_transfer_output": "ON_EXIT",
                "transfer_input_files": ", ".join(["$(owl_item).spec.json", *settings.wheels]),
                "arguments": "\"-m owl.condor.job '$Fnx(owl_item).spec.json' "
                "'$Fnx(owl_item).result.json'\"",
                "transfer_output_files": "$Fnx(owl_item).result.json",
                "transfer_output_remaps": '"$Fnx(owl_item).result.json = $(owl_item).result.json"',
            }
        )
    else:
        sub.update(
            {
                "should_transfer_files": "NO",
                # owl_spec: the spec file's path, or the spec itself (b64:...) when small
                "arguments": "\"-m owl.condor.job '$(owl_spec)' '$(owl_item).result.json'\"",
            }
        )
    for key, value in first.extra:
        if key.lower() in RESERVED or key.lower().startswith(("my.owl", "+owl")):
            raise ConfigError(
                f"stage {first.spec.stage!r}: condor submit attribute {key!r} is managed by "
                "owl and cannot be set in the template"
            )
        sub[key] = value
    return htcondor2.Submit(sub)


def build_batch(jobs: Sequence[Job], settings: CondorSettings, spool: Spool) -> SubmitBatch:
    """Write the spec files of ``jobs`` and build their submit description and itemdata.

    Parameters
    ----------
    jobs : sequence of Job
        One batch (see :func:`group_jobs`); not empty.
    settings : CondorSettings
        The executor's settings.
    spool : Spool
        Where spec files are written.

    Returns
    -------
    SubmitBatch
        Description, itemdata (one dict of strings per job, same keys in each) and items.
    """
    desc = description(jobs[0], settings, spool)
    spool.event_log(settings.agent_id).parent.mkdir(parents=True, exist_ok=True)
    itemdata: list[dict[str, str]] = []
    items: list[SubmitItem] = []
    made: set[Path] = set()
    texts = [json.dumps(job.spec.to_json()) for job in jobs]
    inline = not settings.transfer_files and sum(
        len(t) for t in texts if len(t) <= settings.inline_spec) <= INLINE_BATCH_BYTES
    for job, text in zip(jobs, texts, strict=True):
        spec = job.spec
        base = spool.item_base(spec.stage, spec.dataset, spec.token)
        if base.parent not in made:
            base.parent.mkdir(parents=True, exist_ok=True)
            made.add(base.parent)
        spec_path, result_path, _, _ = item_files(base)
        result_path.unlink(missing_ok=True)  # a stale result must never pass for this run
        if inline and len(text) <= settings.inline_spec:
            spec_arg = inline_spec(text)  # no file to write here and read on the other side
        else:
            # A plain write, not write_json_atomic (half the file operations): no job reads
            # its spec before the transaction below is sent.
            spec_path.write_text(text, encoding="utf-8")
            spec_arg = str(spec_path)
        itemdata.append(
            {
                "owl_item": str(base),
                "owl_dataset": attrs.submit_string(spec.dataset),
                "owl_token": str(spec.token),
                "owl_attempt": str(spec.attempt),
                "owl_memory": str(job.resources.memory_mb),
                "owl_spec": spec_arg,
            }
        )
        items.append(
            SubmitItem(
                dataset=spec.dataset,
                stage=spec.stage,
                token=spec.token,
                attempt=spec.attempt,
                base=base,
                memory_mb=job.resources.memory_mb,
            )
        )
    return SubmitBatch(description=desc, itemdata=itemdata, items=tuple(items))


def _environment(pythonpath: Sequence[str]) -> str:
    # New-style environment syntax: double-quoted, a value in single quotes with quotes
    # doubled; "$" written as $(DOLLAR) so the submit language leaves it alone.
    value = os.pathsep.join(pythonpath).replace("'", "''").replace('"', '""')
    return f"\"PYTHONPATH='{value.replace('$', '$(DOLLAR)')}'\""
