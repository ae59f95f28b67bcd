"""Benchmark of the engine alone: a no-op pipeline, N datasets x S stages, A agents.

Prints, for the embedded board and (with --redis) for a Redis server or a Redis Cluster
(``--redis redis+cluster://HOST:PORT``), measured in one run:
  - stage completions per second end to end (first claim to last completion, Redis clock),
    and item state transitions per second (every event: ready/running/done...);
  - latency from a stage's completion to its successor's claim, p50 and p99;
  - Redis CPU per completion (INFO cpu, user + sys, before/after, summed over every node of
    a cluster, replicas included), and the agents' and their workers' CPU per completion
    (start and exit included); the same split in the steady state (while 20-80 % of the
    completions are made: start-up and the tail left out), sampled every 0.25 s;
  - Redis memory per dataset after the run (primaries only), and (with --memory-datasets)
    at that many datasets.

    python tools/bench_engine.py --datasets 3000 --stages 5 --agents 2 --concurrency 4 \
        --redis redis://127.0.0.1:6379/14 --memory-datasets 100000
    python tests/helpers/redis_cluster.py /tmp/owl-cluster --port 7100 &   # 3+3 nodes
    python tools/bench_engine.py --no-embedded --redis redis+cluster://127.0.0.1:7100

With provenance figures (completion cost with/without, bytes per dataset, refs diff time)::

    python tools/bench_engine.py --datasets 0 --provenance 20000 \
        --provenance-memory 10000 100000 --refs-diff 1000000

Agents are real `owl agent --burst` processes running the no-op task in their child worker
processes, exactly as in production.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from owl import queries
from owl.board import Board
from owl.connect import connect
from owl.scripts import Client, is_cluster
from owl.server import ensure_server, stop_server
from owl.template_loader import load_template

REPO = Path(__file__).resolve().parent.parent


def write_template(directory: Path, stages: int) -> Path:
    lines = ["name: benchnoop", "version: '1'", "stages:"]
    for i in range(stages):
        lines.append(f"  s{i}:")
        lines.append("    task: owl.bench_tasks:noop")
        if i:
            lines.append(f"    after: s{i - 1}")
    path = directory / "benchnoop.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _nodes(client: Client, primaries_only: bool) -> list[Client]:
    if not is_cluster(client):
        return [client]
    nodes = client.get_primaries() if primaries_only else client.get_nodes()
    return [client.get_redis_connection(n) for n in nodes]


def used_memory(client: Client) -> int:
    """Bytes used, summed over the primaries (a replica holds a copy of the same data)."""
    return sum(int(c.info("memory")["used_memory"]) for c in _nodes(client, True))


def cpu_seconds(client: Client) -> float:
    """Redis CPU time (user + sys) so far, summed over every node, replicas included."""
    total = 0.0
    for c in _nodes(client, False):
        info = c.info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def _stat_cpu(pid: int) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pids: list[int]) -> tuple[float, float]:
    """CPU seconds (user + sys) so far of the agents (every thread) and of their workers."""
    agents = workers = 0.0
    for pid in pids:
        agents += _stat_cpu(pid)
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            kids = []
        workers += sum(_stat_cpu(int(k)) for k in kids)
    return agents, workers


class Sampler(threading.Thread):
    """Samples, every 0.25 s, completions so far and the CPU of agents, workers and Redis,
    for the steady-state split (start-up and the tail left out)."""

    def __init__(self, board: Board, client: Client, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.board, self.client, self.pids = board, client, pids
        self.samples: list[tuple[float, int, float, float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            done = sum(v for (_, _, st), v in queries.counts(self.board).items() if st == "done")
            self.samples.append((time.perf_counter(), done, *tree_cpu(self.pids),
                                 cpu_seconds(self.client)))

    def steady(self, total: int) -> str:
        window = [x for x in self.samples if 0.2 * total <= x[1] <= 0.8 * total]
        if len(window) < 2 or window[-1][1] == window[0][1]:
            return "too short a run for a steady-state window"
        a, b = window[0], window[-1]
        n = b[1] - a[1]
        per = [(b[i] - a[i]) * 1e6 / n for i in (2, 3, 4)]
        return (f"{n / (b[0] - a[0]):.0f} completions/s; per completion: agents {per[0]:.0f} us, "
                f"workers {per[1]:.0f} us, Redis {per[2]:.0f} us CPU")


def run_once(url: str, label: str, args: argparse.Namespace, work: Path,
             pythonpath: str = str(REPO)) -> float:
    """One run on one backend; prints its figures and returns stage completions/s."""
    client = connect(url)
    name = f"bench{uuid.uuid4().hex[:8]}"
    n, s = args.datasets, args.stages
    cap = n * (3 * s + 1) + 1000  # keep every event of the run for the latency figures
    board = Board(client, name, shards=args.shards, event_cap=cap)
    template = load_template(write_template(work, s))
    before = used_memory(client)
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        board.register_many(template, [(f"ds{j:07d}", "") for j in range(i, min(n, i + 1000))])
    reg_s = time.perf_counter() - t0
    env = {**os.environ, "OWL_REDIS_URL": url, "OWL_BOARD": name,
           "OWL_PIPELINES": str(work), "OWL_HOME": str(work / "home"),
           "OWL_EVENT_CAP": str(cap), "PYTHONPATH": pythonpath}
    cpu0 = cpu_seconds(client)
    wall0 = time.perf_counter()
    prefetch = ["--prefetch", str(args.prefetch)] if args.prefetch else []
    procs = [subprocess.Popen([sys.executable, "-m", "owl", "agent", "-t", "benchnoop",
                               "-c", str(args.concurrency), *prefetch, "--burst"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(args.agents)]
    sampler = Sampler(board, client, [p.pid for p in procs])
    sampler.start()
    agents_cpu = 0.0
    for p in procs:
        # wait4: the agent's CPU and its workers' (an agent waits for its workers)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        agents_cpu += usage.ru_utime + usage.ru_stime
        if p.returncode != 0:
            raise SystemExit(f"{label}: an agent exited with status {p.returncode}")
    wall = time.perf_counter() - wall0
    sampler.stop.set()
    sampler.join()
    cpu = cpu_seconds(client) - cpu0
    done = sum(v for (_, _, st), v in queries.counts(board).items() if st == "done")
    if done != n * s:
        raise SystemExit(f"{label}: only {done} of {n * s} items done")
    after = used_memory(client)

    claimed: dict[tuple[str, str], int] = {}
    finished: dict[tuple[str, str], int] = {}
    first = last = None
    events = 0
    for shard in range(board.shards):
        for _, f in client.xrange(board.keys.events(shard)):
            events += 1
            key, t = (f["ds"], f["st"]), int(f["t"])
            if f["to"] == "running":
                claimed[key] = t
                first = t if first is None else min(first, t)
            elif f["to"] == "done":
                finished[key] = t
                last = t if last is None else max(last, t)
    assert first is not None and last is not None
    span = (last - first) / 1e6
    lat = [(claimed[(ds, f"s{k + 1}")] - finished[(ds, f"s{k}")]) / 1000.0
           for ds, st in finished if st != f"s{s - 1}"
           for k in [int(st[1:])]]
    print(f"{label}: {n} datasets x {s} stages, {args.agents} agents x {args.concurrency}"
          f" workers, prefetch {args.prefetch}")
    print(f"  register            {n / reg_s:10.0f} datasets/s")
    print(f"  stage completions   {n * s / span:10.0f} /s   ({span:.2f} s first claim -> last "
          f"done; {wall:.2f} s wall incl. agent start)")
    print(f"  state transitions   {events / span:10.0f} /s   ({events} events)")
    print(f"  done->next claimed  p50 {statistics.median(lat):.2f} ms   "
          f"p99 {percentile(lat, 0.99):.2f} ms   ({len(lat)} hand-offs)")
    print(f"  Redis CPU           {cpu * 1e6 / (n * s):10.1f} us/completion (user+sys, "
          f"{len(_nodes(client, False))} node(s), agents' start and exit included)")
    print(f"  agents + workers    {agents_cpu * 1e6 / (n * s):10.1f} us/completion (CPU, user+sys, "
          "start and exit included)")
    print(f"  steady (20-80% done) {sampler.steady(n * s)}")
    print(f"  memory              {(after - before) / n:10.0f} bytes/dataset (events kept: "
          f"all {events})")
    board.destroy()
    if args.memory_datasets:
        memory_at_scale(client, label, args.memory_datasets, template, args.shards)
    return float(n * s / span)


def memory_at_scale(client: Client, label: str, n: int, template: object, shards: int) -> None:
    """Register n datasets and complete every stage with the board API (no task runs), then
    report bytes per dataset with the default event cap."""
    from owl.template import Template

    assert isinstance(template, Template)
    board = Board(client, f"mem{uuid.uuid4().hex[:8]}", shards=shards)
    before = used_memory(client)
    for i in range(0, n, 2000):
        board.register_many(template, [(f"j{j:08d}q", "") for j in range(i, min(n, i + 2000))])
    registered = used_memory(client)
    for stage in template.stage_names:
        while True:
            claims = board.claim("mem", template.name, [stage], 600, 2000)
            if not claims:
                break
            board.complete_many([(c, {}) for c in claims], "mem")
    after = used_memory(client)
    print(f"  at {n} datasets     {(registered - before) / n:10.0f} bytes/dataset registered, "
          f"{(after - before) / n:.0f} bytes/dataset all done (event cap "
          f"{board.event_cap}/shard x {board.shards} shards)")
    board.destroy()


def compare_provenance(url: str, args: argparse.Namespace, work: Path) -> None:
    """The same run with and without provenance records, alternating (``rounds`` each):
    without, the agents' workers use tools/noprov (the attempt builds no record)."""
    noprov = os.pathsep.join([str(Path(__file__).parent / "noprov"), str(REPO)])
    rates: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.compare_provenance):
        for mode, path in (("without", noprov), ("with", str(REPO))):
            rates[mode].append(run_once(url, f"embedded, {mode} provenance", args, work, path))
    w, wo = (statistics.median(rates[k]) for k in ("with", "without"))
    print(f"provenance: {wo:.0f} stage completions/s without, {w:.0f} with (medians of "
          f"{args.compare_provenance} alternating runs each): with provenance each completion "
          f"costs {(wo / w - 1) * 100:+.1f} %")


def provenance(url: str, args: argparse.Namespace) -> None:
    """Provenance figures (completion cost, bytes per dataset, refs diff): bench_prov.py."""
    if not (args.provenance or args.provenance_memory or args.refs_diff):
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_prov

    bench_prov.run(connect(url), argparse.Namespace(
        cost=args.provenance, memory=args.provenance_memory, refs=args.refs_diff,
        memory_modes=["none", "noop", "files"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=3000)
    parser.add_argument("--stages", type=int, default=5)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=0,
                        help="items each agent queues in its workers beyond --concurrency")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--redis", help="also run against this Redis URL (a dedicated "
                        "database; redis+cluster://HOST:PORT for a Redis Cluster)")
    parser.add_argument("--no-embedded", action="store_true",
                        help="skip the embedded board (only --redis)")
    parser.add_argument("--memory-datasets", type=int, default=0,
                        help="also measure memory at this many datasets (e.g. 100000)")
    parser.add_argument("--provenance", type=int, default=0, metavar="N",
                        help="also time N completions with and without provenance "
                             "(tools/bench_prov.py)")
    parser.add_argument("--provenance-memory", type=int, nargs="*", default=[],
                        metavar="N", help="bytes per dataset with provenance at N datasets")
    parser.add_argument("--compare-provenance", type=int, default=0, metavar="ROUNDS",
                        help="run the engine with and without provenance records, "
                             "alternating, ROUNDS times each (embedded board)")
    parser.add_argument("--refs-diff", type=int, default=0, metavar="N",
                        help="time `owl refs diff` at N datasets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = work / "embedded"
        if not args.no_embedded:
            try:
                url = ensure_server(home)
                if args.compare_provenance:
                    compare_provenance(url, args, work)
                elif args.datasets:
                    run_once(url, "embedded", args, work)
                provenance(url, args)
            finally:
                stop_server(home)
        if args.redis:
            kind = "cluster" if args.redis.startswith(("redis+cluster", "rediss+cluster")) \
                else "server"
            run_once(args.redis, f"{kind} {args.redis}", args, work)


if __name__ == "__main__":
    main()
