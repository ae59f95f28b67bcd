"""owl against plain ``condor_submit`` on a real pool: the same payload, N items each.

Used by ``tools/bench_condor.py --pool-items 1000,5000``. The payload is one no-op job per
item running ``python -m owl.condor.job SPEC RESULT`` with the no-op benchmark task
(``owl.bench_tasks:noop``): what every owl condor item runs (batches this big write spec
files). ``condor_submit`` gets one cluster of N jobs (``queue item from FILE``); owl gets
N datasets of a one-stage condor template served by one ``owl agent --executor condor
--burst -c N`` (``-c C`` with ``--pool-concurrency C``: items claimed as others end, the
agent's steady submit cadence). Each side reports its
submit time (condor_submit's run; the agent's start to its last ``condor.submitted`` log
line) and its completion rate (N over the time until the last job ended).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import htcondor2

from owl.board import Board
from owl.condor.spool import write_json_atomic
from owl.config import Settings
from owl.connect import open_board
from owl.model import TaskSpec
from owl.server import stop_server
from owl.template_loader import load_template

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = """name: condorbench
description: One no-op stage on HTCondor (tools/condor_pool_bench.py).
stages:
  a:
    task: owl.bench_tasks:noop
    executor: condor
    resources: {cpus: 1, memory: 128MB, disk: 10MB}
    retry: {max_attempts: 1}
"""


def raw_condor_submit(n: int, root: Path, limit_s: float) -> tuple[float, float]:
    """Submit ``n`` owl job wrappers with ``condor_submit``; (submit s, s until all ended)."""
    items = root / "items"
    items.mkdir(parents=True)
    names = []
    for i in range(n):
        base = items / f"d{i:06d}"
        spec = TaskSpec(dataset=f"d{i:06d}", stage="a", template="raw", token=i + 1,
                        attempt=1, task="owl.bench_tasks:noop", argv=None, input_path="",
                        inputs={}, output_dir=str(root / "out" / str(i)), params={})
        write_json_atomic(base.with_name(base.name + ".spec.json"), spec.to_json())
        names.append(str(base))  # a spec file each, as owl writes for batches this big
    (root / "items.txt").write_text("\n".join(names) + "\n")
    log = root / "events.log"
    (root / "raw.sub").write_text(
        f"universe = vanilla\nexecutable = {sys.executable}\ntransfer_executable = false\n"
        "should_transfer_files = NO\n"
        "arguments = \"-m owl.condor.job '$(item).spec.json' '$(item).result.json'\"\n"
        f"environment = \"PYTHONPATH='{REPO}'\"\n"
        f"log = {log}\noutput = $(item).out\nerror = $(item).err\n"
        "request_cpus = 1\nrequest_memory = 128\nrequest_disk = 10240\n"
        f"queue item from {root / 'items.txt'}\n")
    t0 = time.monotonic()
    proc = subprocess.run(["condor_submit", str(root / "raw.sub")], capture_output=True,
                          text=True, timeout=limit_s, check=True)
    submit_s = time.monotonic() - t0
    found = re.search(r"submitted to cluster (\d+)", proc.stdout)
    if found is None:
        raise RuntimeError(f"condor_submit said: {proc.stdout} {proc.stderr}")
    while not log.exists() and time.monotonic() - t0 < limit_s:
        time.sleep(0.1)
    ended = 0
    events = htcondor2.JobEventLog(str(log))
    end_types = (htcondor2.JobEventType.JOB_TERMINATED, htcondor2.JobEventType.JOB_ABORTED)
    while ended < n and time.monotonic() - t0 < limit_s:
        ended += sum(1 for e in events.events(stop_after=2) if e.type in end_types)
    return submit_s, time.monotonic() - t0


def owl_agent(n: int, root: Path, limit_s: float,
              concurrency: int | None = None) -> tuple[float, float, int]:
    """Run ``n`` no-op condor items through one owl agent holding at most ``concurrency``
    (default ``n``); (submit s, s until it exited, submit transactions)."""
    pipes = root / "pipes"
    pipes.mkdir(parents=True)
    (pipes / "condorbench.yaml").write_text(TEMPLATE)
    home = root / "home"
    settings = Settings(home=home, board=f"condorbench{n}", pipelines=(pipes,))
    board: Board = open_board(settings)
    board.register_many(load_template(pipes / "condorbench.yaml"),
                        [(f"d{i:06d}", "") for i in range(n)])
    env = {**os.environ, "OWL_PIPELINES": str(pipes), "OWL_CONDOR_SPOOL": str(root / "spool"),
           "PYTHONPATH": str(REPO)}
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "owl", "--home", str(home), "--board", settings.board,
             "--log-json", "agent", "-t", "condorbench", "--executor", "condor",
             "-c", str(concurrency or n), "--burst", "--id", f"bench-{n}"],
            env=env, capture_output=True, text=True, timeout=limit_s, check=False)
        total_s = time.monotonic() - t0
    finally:
        board.destroy()
        stop_server(home)
    if proc.returncode != 0:
        raise RuntimeError(f"owl agent exited {proc.returncode}: {proc.stderr[-2000:]}")
    lines = proc.stderr.splitlines()  # owl logs to stderr
    stamps = [json.loads(line)["timestamp"] for line in lines if '"condor.submitted"' in line]
    first = [json.loads(line)["timestamp"] for line in lines if '"agent.started"' in line]
    submit_s = _span(first[0], stamps[-1]) if stamps and first else float("nan")
    return submit_s, total_s, len(stamps)


def _span(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end.rstrip("Z")) -
            datetime.fromisoformat(start.rstrip("Z"))).total_seconds()


def compare(counts: list[int], root: Path, limit_s: float = 3600.0,
            concurrency: int | None = None) -> None:
    """Print owl against condor_submit for each count (the agent holding ``concurrency``
    items at a time; default all of them, one burst)."""
    for n in counts:
        raw_submit, raw_total = raw_condor_submit(n, root / f"raw{n}", limit_s)
        owl_submit, owl_total, transactions = owl_agent(n, root / f"owl{n}", limit_s, concurrency)
        print(f"pool      {n} items: condor_submit {raw_submit:.1f} s to submit, "
              f"{n / raw_total:.2f} jobs/s to the end ({raw_total:.0f} s)")
        print(f"          {n} items: owl agent -c {concurrency or n} {owl_submit:.1f} s to submit "
              f"({transactions} transactions), "
              f"{n / owl_total:.2f} items/s to the end ({owl_total:.0f} s); owl at "
              f"{100 * raw_total / owl_total:.0f} % of condor_submit's rate")
