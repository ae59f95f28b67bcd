"""Operator commands on a big board: ``owl status``, ``owl show`` and filtered
``owl hold --dry-run`` at N datasets (e.g. 20,000 and 1,000,000).

Builds a board of N datasets under a 5-stage chain (registered through the real register
script), completes the first stage of 1% of them (so 1% have their second stage ready),
then times each command as the operator runs it (a fresh ``python -m owl`` process, wall
clock, best of 3) and the query inside it (in this process, best of 5), and prints bytes
per dataset. The CLI figure includes Python's start-up and imports; the floor printed
first (``owl --version``-like ``owl board --help``) says how much of it that is.

    python tools/bench_ops.py --datasets 20000
    python tools/bench_ops.py --datasets 1000000          # about 10 minutes on 2 vCPUs
    python tools/bench_ops.py --datasets 20000 --redis redis+cluster://127.0.0.1:7100

Without ``--redis`` it starts its own embedded server in a temporary home, so a big board
never lands on a shared Redis.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from owl import queries
from owl.board import Board
from owl.connect import connect
from owl.history import history
from owl.scripts import Client, is_cluster
from owl.server import ensure_server, stop_server
from owl.template import Stage, Template

REPO = Path(__file__).resolve().parent.parent
CHAIN = Template(name="opsbench", version="1", stages=tuple(
    Stage(f"s{i}", after=(f"s{i - 1}",) if i else ()) for i in range(5)))


def used_memory(client: Client) -> int:
    nodes = ([client.get_redis_connection(n) for n in client.get_primaries()]
             if is_cluster(client) else [client])
    return sum(int(c.info("memory")["used_memory"]) for c in nodes)


def build(board: Board, n: int) -> float:
    """Register n datasets; complete s0 of the first 1%. Returns bytes per dataset."""
    before = used_memory(board.redis)
    t0 = time.perf_counter()
    step = 5000
    for i in range(0, n, step):
        board.register_many(CHAIN, [(f"x{j:08d}", "") for j in range(i, min(n, i + step))])
        if (i // step) % 40 == 39:
            rate = (i + step) / (time.perf_counter() - t0)
            print(f"  registered {i + step} ({rate:.0f}/s)", flush=True)
    left = max(1, n // 100)
    while left > 0:
        claims = board.claim("bench", CHAIN.name, ["s0"], 600, min(left, 1000))
        if not claims:
            break
        board.complete_many([(c, {}) for c in claims], "bench")
        left -= len(claims)
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return (used_memory(board.redis) - before) / n


def best(fn: Callable[[], Any], times: int) -> tuple[float, Any]:
    out, got = float("inf"), None
    for _ in range(times):
        t = time.perf_counter()
        got = fn()
        out = min(out, time.perf_counter() - t)
    return out * 1000, got


def cli(env: dict[str, str], *argv: str) -> Callable[[], int]:
    def run() -> int:
        proc = subprocess.run([sys.executable, "-m", "owl", *argv], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"owl {' '.join(argv)} failed: {proc.stderr[-500:]}")
        return len(proc.stdout.splitlines())

    return run


def show(board: Board, dataset: str) -> int:
    """What ``owl show`` reads: the dataset hash, its history list, its failure lists."""
    ds = queries.dataset(board, dataset)
    hist = history(board, dataset, ds.created_ms)
    fails = queries.failures_of(board, dataset, [i.stage for i in ds.items])
    return len(ds.items) + len(hist) + len(fails)


def measure(url: str, n: int, shards: int, work: Path) -> None:
    board = Board(connect(url), f"ops{uuid.uuid4().hex[:6]}", shards=shards)
    try:
        per_ds = build(board, n)
        env = {**os.environ, "OWL_REDIS_URL": url, "OWL_BOARD": board.name,
               "OWL_HOME": str(work / "home"), "PYTHONPATH": str(REPO)}
        some = f"x{n // 2:08d}"
        ready = queries.Selector(template=CHAIN.name, stages=("s1",), states=("ready",))
        print(f"{n} datasets x 5 stages on {url.split('@')[-1]} ({shards} shards): "
              f"{per_ds:.0f} bytes/dataset (registered, 1% past s0)")
        rows = [
            ("owl board --help (floor: start-up)", cli(env, "board", "--help"), 3),
            ("owl status", cli(env, "status"), 3),
            (f"owl show {some}", cli(env, "show", some), 3),
            ("owl hold -t opsbench -s s1 --state ready --dry-run",
             cli(env, "hold", "-t", CHAIN.name, "-s", "s1", "--state", "ready", "--dry-run"), 3),
            ("  query: counts (status)", lambda: len(queries.counts(board)), 5),
            ("  query: dataset + history + failures (show)", lambda: show(board, some), 5),
            ("  query: select s1 ready (hold filter)",
             lambda: sum(1 for _ in queries.select(board, ready)), 5),
        ]
        for label, fn, times in rows:
            ms, got = best(fn, times)
            print(f"  {label:<52} {ms:9.1f} ms   ({got} lines/items)", flush=True)
    finally:
        board.destroy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--datasets", type=int, default=20000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--redis", help="a Redis URL (dedicated database) or redis+cluster://")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.redis:
            measure(args.redis, args.datasets, args.shards, work)
            return
        home = work / "embedded"
        try:
            measure(ensure_server(home), args.datasets, args.shards, work)
        finally:
            stop_server(home)


if __name__ == "__main__":
    main()
