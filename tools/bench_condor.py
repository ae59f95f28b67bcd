"""Benchmark of the condor executor: submitting 10,000 items and tracking their events.

Usage::

    python3 tools/bench_condor.py [--items 10000] [--max-batch 2000]

Submission: with a pool that answers (``condor_status`` works with CONDOR_CONFIG) the
items go to the local schedd for real and are removed again. Without one, the full
executor path runs (spec files, Submit description, itemdata, the bindings' own
``Schedd.submit`` text building and parsing) against a schedd address that refuses the
connection, and the output says that only the construction part was timed.

Tracking: a job event log of submit/execute/terminate events for every item, in
HTCondor's format, parsed with htcondor2.JobEventLog and turned into outcomes by
``CondorExecutor.poll``. Goal: 10,000 items in at most 10 s.

Job start-up: every condor item starts ``python -m owl.condor.job SPEC RESULT``; the
wrapper with the no-op task is timed against a bare interpreter (``--owl-root`` times
another checkout's wrapper too, e.g. an older commit unpacked with ``git archive``).

Pool: ``--pool-items 1000,5000`` compares owl with ``condor_submit`` of the same payload
(see ``tools/condor_pool_bench.py``) when a pool answers; without one it prints why it
skipped that part.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import classad2
import htcondor2
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from owl.condor.events import EventFollower  # owl from this checkout (sys.path above)
from owl.condor.executor import CondorExecutor
from owl.condor.schedd import Action, HTCondorSchedd, SubmitInfo
from owl.condor.settings import CondorSettings
from owl.condor.spool import Spool, item_files, write_json_atomic
from owl.executor import Job, Resources
from owl.model import TaskSpec

GOAL_S = 10.0
REPO = Path(__file__).resolve().parent.parent


class TimedSubmit:
    """Wraps a schedd client and adds up the time spent inside ``submit``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def submit(self, description: Any, itemdata: Sequence[dict[str, str]]) -> SubmitInfo:
        t0 = time.perf_counter()
        try:
            return self.inner.submit(description, itemdata)  # type: ignore[no-any-return]
        finally:
            self.seconds += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ConstructionOnlySchedd:
    """Runs the bindings' Schedd.submit up to the connection, which is refused."""

    def __init__(self) -> None:
        ad = classad2.ClassAd({"MyAddress": "<127.0.0.1:9>", "CondorVersion": htcondor2.version()})
        self._schedd = htcondor2.Schedd(ad)
        self._cluster = 0

    def submit(self, description: Any, itemdata: Sequence[dict[str, str]]) -> SubmitInfo:
        # Expected to fail: nothing listens at <127.0.0.1:9>.
        with contextlib.suppress(htcondor2.HTCondorException):
            self._schedd.submit(description, itemdata=iter(itemdata))
        self._cluster += 1
        return SubmitInfo(cluster=self._cluster, count=len(itemdata))

    def query(self, constraint: str, projection: Sequence[str]) -> list[dict[str, Any]]:
        return []

    def history(
        self, constraint: str, projection: Sequence[str], match: int = -1, since: str | None = None
    ) -> list[dict[str, Any]]:
        return []

    def act(self, action: Action, job_ids: Sequence[str], reason: str) -> int:
        return 0


def pool_answers() -> bool:
    if shutil.which("condor_status") is None:
        return False
    try:
        proc = subprocess.run(["condor_status", "-schedd"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def make_jobs(n: int, root: Path) -> list[Job]:
    return [
        Job(
            spec=TaskSpec(
                dataset=f"jcxx{i:06d}q",
                stage="calib",
                template="acs-wfc",
                token=i + 1,
                attempt=1,
                task="owl.calib.steps:calacs",
                argv=None,
                input_path=f"/data/raw/jcxx{i:06d}q_raw.fits",
                inputs={},
                output_dir=str(root / "out" / f"jcxx{i:06d}q" / str(i + 1)),
                params={"crsplit": 2},
            ),
            resources=Resources(cpus=1, memory_mb=2048 if i % 10 else 4096, disk_mb=2048),
        )
        for i in range(n)
    ]


def write_event_log(path: Path, clusters: list[tuple[int, int]]) -> int:
    """Submit, execute and normal-termination events for every (cluster, proc)."""
    usage = "Usr 0 00:00:01, Sys 0 00:00:00"
    term_body = (
        "Job terminated.\n\t(1) Normal termination (return value 0)\n"
        f"\t\t{usage}  -  Run Remote Usage\n\t\t{usage}  -  Run Local Usage\n"
        f"\t\t{usage}  -  Total Remote Usage\n\t\t{usage}  -  Total Local Usage\n"
        "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n"
        "\t0  -  Total Bytes Sent By Job\n\t0  -  Total Bytes Received By Job\n...\n"
    )
    parts = []
    for cluster, proc in clusters:
        jid = f"({cluster:03d}.{proc:03d}.000)"
        parts.append(
            f"000 {jid} 2025-03-01 10:00:00 Job submitted from host: <10.0.0.1:9618>\n...\n"
            f"001 {jid} 2025-03-01 10:00:05 Job executing on host: <10.0.0.2:9618>\n...\n"
            f"005 {jid} 2025-03-01 10:01:00 {term_body}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts))
    return 3 * len(clusters)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--max-batch", type=int, default=2000)
    parser.add_argument(
        "--spool-parent", type=Path, default=None, help="where the spool lives (default: $TMPDIR)"
    )
    parser.add_argument("--startup-runs", type=int, default=10,
                        help="job wrapper start-ups to time (0: skip)")
    parser.add_argument("--owl-root", type=Path, action="append", default=[],
                        help="another owl checkout whose job wrapper is timed too")
    parser.add_argument("--pool-concurrency", type=int, default=None,
                        help="items the owl agent holds at a time on a pool (default: all)")
    parser.add_argument("--pool-items", default="",
                        help="comma-separated item counts for owl vs condor_submit on a pool")
    args = parser.parse_args()
    n = args.items
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.startup_runs > 0:
        with tempfile.TemporaryDirectory(prefix="owl-bench-startup-") as tmp:
            job_startup(Path(tmp), args.startup_runs, args.owl_root)
    if args.pool_items:
        counts = [int(c) for c in args.pool_items.split(",") if c]
        if not pool_answers():
            print(f"pool      skipped ({', '.join(map(str, counts))} items): no HTCondor pool "
                  "answers (condor_status -schedd is missing or fails with CONDOR_CONFIG)")
        else:
            from condor_pool_bench import compare  # tools/ is on sys.path: run as a script

            with tempfile.TemporaryDirectory(prefix="owl-bench-pool-",
                                             dir=args.spool_parent) as tmp:
                compare(counts, Path(tmp), concurrency=args.pool_concurrency)

    with tempfile.TemporaryDirectory(prefix="owl-bench-condor-", dir=args.spool_parent) as tmp:
        root = Path(tmp)
        print(f"spool     {root}: {file_create_us(root):.0f} us to create one small file")
        live = pool_answers()
        settings = CondorSettings(
            board="bench",
            agent_id="bench-agent",
            spool_dir=root / "spool",
            max_batch=args.max_batch,
            reconcile_interval=1e9,
            submit_window=0.0,
        )
        schedd = TimedSubmit(HTCondorSchedd() if live else ConstructionOnlySchedd())
        ex = CondorExecutor(settings, schedd)
        jobs = make_jobs(n, root)

        t0 = time.perf_counter()
        ex.submit(jobs)
        submit_s = time.perf_counter() - t0
        mode = (
            "submitted to the local schedd (pool answered)"
            if live
            else "NO POOL: construction only (spec files, Submit description, itemdata, "
            "the bindings' submit-text build and parse; the schedd transaction is not timed)"
        )
        print(f"submit    {n} items in {submit_s:.3f} s  ({1e6 * submit_s / n:.0f} us/item)")
        print(f"          {mode}; max_batch={args.max_batch}")
        print(
            f"          of which Schedd.submit {schedd.seconds:.3f} s, spec files + "
            f"description + itemdata + tracking {submit_s - schedd.seconds:.3f} s"
        )
        print(f"          goal {GOAL_S:.0f} s: {'met' if submit_s <= GOAL_S else 'MISSED'}")
        small_batches(root, min(n, 500))
        if live:
            schedd.act(Action.REMOVE, [f"{c}.{p}" for c, p in ex_ids(ex)], "owl benchmark")

        ids = ex_ids(ex)
        spool = Spool(settings.spool_dir)
        for job, _ in zip(jobs, ids, strict=True):
            s = job.spec
            base = spool.item_base(s.stage, s.dataset, s.token)
            write_json_atomic(
                item_files(base)[1],
                {"ok": True, "outputs": {"flt": "x"}, "error": "", "traceback": "", "seconds": 1},
            )
        log = root / "alt" / "events.log"
        events = write_event_log(log, ids)
        t0 = time.perf_counter()
        follower = EventFollower(log, Spool.offset_file(log))
        parsed = follower.read()
        parse_s = time.perf_counter() - t0
        print(
            f"parse     {events} events ({n} jobs) in {parse_s:.3f} s  "
            f"({1e6 * parse_s / events:.1f} us/event, {1e6 * parse_s / n:.0f} us/job)"
        )
        assert len(parsed) == events

        own = spool.event_log(settings.agent_id)
        if live:
            own.unlink(missing_ok=True)
        shutil.copy(log, own)
        t0 = time.perf_counter()
        outcomes = ex.poll(0)
        track_s = time.perf_counter() - t0
        ok = sum(o.ok for o in outcomes)
        print(
            f"track     poll() -> {len(outcomes)} outcomes ({ok} ok) in {track_s:.3f} s  "
            f"({1e6 * track_s / n:.0f} us/job: parse + tracking + result file read)"
        )
        t0 = time.perf_counter()
        ex.poll(0)
        print(
            f"commit    offsets saved, {n} items' files deleted in {time.perf_counter() - t0:.3f} s"
        )
        ex.close()
    return 0


def small_batches(root: Path, n: int, size: int = 4) -> None:
    """Submit construction at an agent's usual cadence (a few items a transaction), with
    small specs inline in the arguments and with a spec file each."""
    jobs = make_jobs(n, root / "small")
    for label, inline in (("inline specs", 2048), ("spec files", 0)):
        settings = CondorSettings(board="bench", agent_id=f"small-{inline}",
                                  spool_dir=root / f"small-{inline}", reconcile_interval=1e9,
                                  submit_window=0.0, inline_spec=inline)
        ex = CondorExecutor(settings, ConstructionOnlySchedd())
        t0 = time.perf_counter()
        for i in range(0, n, size):
            ex.submit(jobs[i:i + size])
        seconds = time.perf_counter() - t0
        print(f"          {n} items {size} a transaction, {label}: {seconds:.3f} s "
              f"({1e6 * seconds / n:.0f} us/item)")
        ex.close()


def job_startup(root: Path, runs: int, others: Sequence[Path]) -> None:
    """Time ``python -m owl.condor.job`` with the no-op task against ``python -c pass``."""
    bare = _best_of(runs, [sys.executable, "-c", "pass"], {})
    print(f"startup   python -c pass: {1000 * bare:.0f} ms (best of {runs})")
    for i, owl_root in enumerate([REPO, *others]):
        # Checkouts from before owl.bench_tasks ran the benchmark's no-op from demo_tasks.
        light = (owl_root / "owl" / "bench_tasks.py").exists()
        task = "owl.bench_tasks:noop" if light else "owl.demo_tasks:noop"
        spec = TaskSpec(dataset="d1", stage="a", template="noop", token=1, attempt=1,
                        task=task, argv=None, input_path="", inputs={},
                        output_dir=str(root / f"out{i}"), params={})
        spec_path = root / f"d{i}.spec.json"
        write_json_atomic(spec_path, spec.to_json())
        cmd = [sys.executable, "-m", "owl.condor.job", str(spec_path), str(root / "r.json")]
        best = _best_of(runs, cmd, {"PYTHONPATH": str(owl_root)})
        print(f"          job wrapper + {task} ({owl_root}): {1000 * best:.0f} ms, "
              f"{1000 * (best - bare):.0f} ms above a bare interpreter")


def _best_of(runs: int, cmd: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env={**os.environ, **env}, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def file_create_us(directory: Path, n: int = 500) -> float:
    """Baseline of the filesystem: one spec file per item is the floor of submit's cost."""
    probe = directory / "probe"
    probe.mkdir()
    t0 = time.perf_counter()
    for i in range(n):
        (probe / f"{i}.json").write_text("{}")
    seconds = time.perf_counter() - t0
    shutil.rmtree(probe)
    return 1e6 * seconds / n


def ex_ids(ex: CondorExecutor) -> list[tuple[int, int]]:
    return sorted(ex._tracker.ids())  # a benchmark may look inside


if __name__ == "__main__":
    sys.exit(main())
