"""Benchmark of the scheduled claim path: production ingest, two reprocessing campaigns
(weights 3:1) and bursts of urgent work at once, with real agents and no-op tasks.

Prints, measured in one run on one board:
  - completions per second with scheduling (the same number of items spread over four
    campaigns in three bands, 3:1 weights, nothing arriving) against a plain FIFO run (all
    in one campaign: one queue, oldest first), the two runs alternated twice, and the ratio
    of the medians;
  - then a mixed run (production ingest arriving, two reprocessing campaigns 3:1, bursts of
    urgent work): the share each reprocessing campaign got while both were backlogged,
    against its weight, and p50 / p99 / max wait (ready -> claimed, Redis clock) per band;
  - board bytes per dataset with the campaigns on it (Redis used_memory delta).

    python tools/bench_sched.py --datasets 4000 --agents 2 --concurrency 8
    python tools/bench_sched.py --redis redis://127.0.0.1:6379/9

Agents are real `owl agent --burst` processes running `owl.demo_tasks:noop`.
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
from collections import Counter, defaultdict
from pathlib import Path

from redis import Redis

from owl import queries
from owl.board import Board
from owl.control import campaigns as camps
from owl.control.model import Band
from owl.control.rerun import rerun
from owl.control.select import Selector
from owl.server import ensure_server, stop_server
from owl.template_loader import load_template

REPO = Path(__file__).resolve().parent.parent
BAND_OF = {"p": "production", "a": "reprocessing", "b": "reprocessing", "h": "urgent"}
CAMPAIGN_OF = {"a": "redo3", "b": "redo1", "h": "hot", "p": "production"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def agents(url: str, name: str, pipelines: Path, work: Path, n: int, c: int) -> float:
    """Run n burst agents to the end; seconds from start to the last exit."""
    env = {**os.environ, "OWL_REDIS_URL": url, "OWL_BOARD": name,
           "OWL_PIPELINES": str(pipelines), "OWL_HOME": str(work),
           "PYTHONPATH": str(REPO), "OWL_RESCAN": "0.5"}
    start = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "owl", "agent", "-t", "benchsched",
                               "-c", str(c), "--burst"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    for p in procs:
        p.wait()
    return time.monotonic() - start


def events(board: Board) -> list[dict[str, str]]:
    out = []
    for s in range(board.shards):
        last = "-"
        while True:
            chunk = board.redis.xrange(board.keys.events(s), min=last, count=10000)
            if not chunk:
                break
            out += [f for _, f in chunk]
            last = "(" + chunk[-1][0]
    return out


def span(board: Board, prefix: str) -> tuple[int, int]:
    """First claim and last completion (us, Redis clock) of the datasets with a prefix."""
    claimed = [int(e["t"]) for e in events(board)
               if e["ds"].startswith(prefix) and e["to"] in ("running", "done")]
    return min(claimed), max(claimed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=4000,
                    help="items per reprocessing campaign; production and FIFO get as many")
    ap.add_argument("--agents", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--redis", help="a Redis server URL (a dedicated database) instead of "
                    "the embedded board")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = args.redis or ensure_server(work / "home")
        try:
            run(url, args, work)
        finally:
            if not args.redis:
                stop_server(work / "home")


def run(url: str, args: argparse.Namespace, work: Path) -> None:
    client = Redis.from_url(url, decode_responses=True)
    name = f"sched{uuid.uuid4().hex[:8]}"
    n = args.datasets
    pipelines = work / "pipelines"
    pipelines.mkdir()
    (pipelines / "benchsched.yaml").write_text(
        "name: benchsched\nversion: '1'\nstages:\n  work:\n    task: owl.demo_tasks:noop\n")
    template = load_template(pipelines / "benchsched.yaml")
    board = Board(client, name, shards=args.shards, event_cap=40 * n + 10000)
    try:
        base = int(client.info("memory")["used_memory"])
        rates: dict[str, list[float]] = {"fifo": [], "scheduled": []}
        for rnd in range(2):
            for kind in ("fifo", "scheduled"):
                ids = [f"{kind[0]}{rnd}{i:06d}" for i in range(n)]
                board.register_many(template, [(d, "") for d in ids])
                if kind == "scheduled":
                    quarter = n // 4
                    for j, (camp, band, w) in enumerate((
                            (f"s{rnd}a", Band.REPROCESSING, 3.0),
                            (f"s{rnd}b", Band.REPROCESSING, 1.0),
                            (f"s{rnd}u", Band.URGENT, 1.0))):
                        part = tuple((d, "") for d in ids[(j + 1) * quarter:(j + 2) * quarter])
                        camps.create(board, name=camp, selector=Selector(
                            template="benchsched", datasets=part), who="bench", band=band,
                            weight=w)
                agents(url, name, pipelines, work, args.agents, args.concurrency)
                first, last = span(board, f"{kind[0]}{rnd}")
                rates[kind].append(n / ((last - first) / 1e6))
        fifo = statistics.median(rates["fifo"])
        sched = statistics.median(rates["scheduled"])
        print(f"completions/s (first claim to last done, Redis clock, {n} items a run): "
              "plain FIFO "
              f"{', '.join(f'{r:.0f}' for r in rates['fifo'])}; scheduled "
              f"{', '.join(f'{r:.0f}' for r in rates['scheduled'])}; "
              f"ratio scheduled/FIFO {sched / fifo:.3f}")
        # the mixed run: production ingest going on, two campaigns 3:1, urgent bursts
        for prefix in "ab":
            for i in range(0, n, 5000):
                board.register_many(template, [(f"{prefix}{j:07d}", "")
                                               for j in range(i, min(n, i + 5000))])
        hot = [f"h{i:07d}" for i in range(max(50, n // 10))]
        board.register_many(template, [(d, "") for d in hot])
        # the datasets registered above ran nowhere yet: move them into their campaigns
        t0 = time.monotonic()
        for prefix, camp, weight in (("a", "redo3", 3.0), ("b", "redo1", 1.0)):
            ids = tuple((f"{prefix}{j:07d}", "") for j in range(n))
            camps.create(board, name=camp, selector=Selector(template="benchsched",
                                                             datasets=ids),
                         who="bench", band=Band.REPROCESSING, weight=weight)
        create_s = time.monotonic() - t0
        print(f"campaign creation: {2 * n} datasets in {create_s:.2f} s "
              f"({2 * n / create_s:.0f} datasets/s, batches of 1000 rerun scripts)")
        camps.create(board, name="hot", selector=Selector(template="benchsched",
                                                          datasets=((hot[0], ""),)),
                     who="bench", band=Band.URGENT)
        stop = threading.Event()
        before = finished(board)

        def feed() -> None:
            # the waits count from when work became ready: start feeding once the agents
            # and their workers are up (every slot finished a task: start-up, seconds on a
            # loaded machine, is not a wait of the scheduler's)
            while not stop.is_set() and finished(board) < before + args.agents * args.concurrency:
                time.sleep(0.05)
            i, k = 0, 1
            while not stop.is_set():
                board.register_many(template, [(f"p{j:07d}", "") for j in range(i, i + 50)])
                i += 50
                if i % 500 == 0 and k < len(hot):
                    rerun(board, [(d, "") for d in hot[k:k + 50]], campaign="hot", who="bench")
                    k += 50
                if i >= n:
                    break
                time.sleep(0.05)

        feeder = threading.Thread(target=feed)
        feeder.start()
        agents(url, name, pipelines, work, args.agents, args.concurrency)
        stop.set()
        feeder.join()
        agents(url, name, pipelines, work, args.agents, args.concurrency)  # what arrived late
        used = int(client.info("memory")["used_memory"]) - base
        report(board, n, used)
    finally:
        board.destroy()


def finished(board: Board) -> int:
    """Items done so far on the board."""
    return sum(n for (_t, _s, st), n in queries.counts(board).items() if st == "done")


def report(board: Board, n: int, used: int) -> None:
    ready: dict[tuple[str, str], int] = {}
    waits: dict[str, list[float]] = defaultdict(list)
    claims: list[tuple[int, str]] = []
    for e in events(board):
        if e["ds"][0] not in BAND_OF:
            continue  # the throughput runs
        key = (e["ds"], e["st"])
        if e["ds"][0] == "h" and (e["ds"] == "h0000000" or (e["to"] == "ready"
                                  and "rerun" not in e.get("why", ""))):
            # urgent work is the reruns the feeder made while agents ran: not the hot
            # datasets' first (production) runs, nor the campaign's seed made before start
            continue
        if e["to"] == "ready":
            ready[key] = int(e["t"])
        elif e["fr"] == "ready" and e["to"] == "running":
            kind = e["ds"][0]
            if key in ready:
                waits[BAND_OF[kind]].append((int(e["t"]) - ready.pop(key)) / 1e6)
            claims.append((int(e["t"]), CAMPAIGN_OF[kind]))
    claims.sort()
    got: Counter[str] = Counter()
    need = {"redo3": n, "redo1": n}
    for _, camp in claims:
        if camp in need:
            got[camp] += 1
            if got[camp] >= need[camp]:
                break  # one campaign ran out: the share is no longer contested
    both = got["redo3"] + got["redo1"]
    print(f"share while both reprocessing campaigns were backlogged ({both} claims):")
    for camp, w in (("redo3", 3), ("redo1", 1)):
        share = got[camp] / both if both else float("nan")
        print(f"  {camp}: {share:.3f} of claims, weight share {w / 4:.3f} "
              f"(off by {100 * (share - w / 4) / (w / 4):+.1f} %)")
    print("wait ready -> claimed per band (s):")
    for band in ("urgent", "production", "reprocessing"):
        v = waits.get(band, [])
        print(f"  {band:<13} n={len(v):>7}  p50 {percentile(v, 0.5):8.3f}  "
              f"p99 {percentile(v, 0.99):8.3f}  max {max(v) if v else float('nan'):8.3f}")
    datasets = sum(int(board.redis.zcard(board.keys.datasets(s))) for s in range(board.shards))
    print(f"board bytes per dataset with campaigns: {used / datasets:.0f} "
          f"({datasets} datasets, all events kept)")


if __name__ == "__main__":
    main()
