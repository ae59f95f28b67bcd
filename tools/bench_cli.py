"""Figures for the operator views: CLI start-up and the board time of an ``owl watch`` refresh.

Prints:

- wall time of ``owl --help`` and ``owl status`` (best and median of N runs, each a fresh
  ``python -m owl`` process; CPU time too, since wall time on a shared machine is noisy);
- on a board of ``--datasets`` datasets (5 stages each, spread over states): the board time
  of one ``owl watch`` refresh (counters, ready-queue heads, agents, dead items, one grid
  page), of grid pages far into the board, of a name search and a state filter, and of
  ``owl status --grid --page N``.

Usage::

    python3 tools/bench_cli.py                       # 100,000 datasets on a temporary board
    python3 tools/bench_cli.py --datasets 1000000    # 1M (about 2 GB of Redis memory)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from owl.board import Board  # noqa: E402  (the repository's own owl, not an installed one)
from owl.server import ensure_server, stop_server  # noqa: E402
from owl.template import Stage, Template  # noqa: E402
from owl.watch.grid import Grid, parse_filter  # noqa: E402
from owl.watch.source import Source  # noqa: E402

DEMO = Template(name="bench", version="1", stages=(
    Stage("ingest_check"), Stage("calibrate", after=("ingest_check",)),
    Stage("measure_a", after=("calibrate",)), Stage("measure_b", after=("calibrate",)),
    Stage("combine", after=("measure_a", "measure_b"))))


#: Rows per grid page of ``owl watch`` (its default --page-size).
PAGE = 100


def _cli_times(args: list[str], env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "owl", *args], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def _fill(board: Board, n: int) -> None:
    """n datasets registered in batches, and one in 200 held (the held index has rows)."""
    batch = 2000
    start = time.perf_counter()
    for lo in range(0, n, batch):
        board.register_many(DEMO, [(f"b{i:07d}", "") for i in range(lo, min(n, lo + batch))])
    took = time.perf_counter() - start
    print(f"registered {n:,} datasets in {took:.1f} s ({n / took:,.0f}/s)")
    board.hold([(f"b{i:07d}", "ingest_check") for i in range(0, n, max(1, n // 500))], "bench")


def _ms(fn: object, runs: int = 5) -> tuple[float, float]:
    assert callable(fn)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7, help="Runs of each CLI command.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="owl-bench-cli-") as tmp:
        home = Path(tmp) / "home"
        url = ensure_server(home)
        env = {**os.environ, "OWL_HOME": str(home), "OWL_BOARD": "bench", "PYTHONPATH": str(ROOT)}
        try:
            board = Board(Redis.from_url(url, decode_responses=True), "bench", shards=8)
            for name, cmd in (("owl --help", ["--help"]), ("owl status (empty board)", ["status"])):
                walls, cpus = _cli_times(cmd, env, args.runs)
                print(f"{name:<34} wall best {min(walls):.3f} s  median "
                      f"{statistics.median(walls):.3f} s   cpu median "
                      f"{statistics.median(cpus):.3f} s")
            _fill(board, args.datasets)
            walls, cpus = _cli_times(["status"], env, args.runs)
            print(f"{'owl status (' + format(args.datasets, ',') + ' datasets)':<34} wall best "
                  f"{min(walls):.3f} s  median {statistics.median(walls):.3f} s   cpu median "
                  f"{statistics.median(cpus):.3f} s")
            source, grid = Source(board), Grid(board)
            snap_best, snap_med = _ms(source.snapshot)
            page_best, page_med = _ms(lambda: grid.page(0, PAGE))
            print(f"watch refresh board time (median of 5): counters+queues+agents+dead "
                  f"{snap_med:.1f} ms (best {snap_best:.1f}) + grid page of {PAGE} "
                  f"{page_med:.1f} ms (best {page_best:.1f}) = {snap_med + page_med:.1f} ms")
            deep = args.datasets - 2 * PAGE
            print(f"grid page of {PAGE} at offset {deep:,}: "
                  f"{_ms(lambda: grid.page(deep, PAGE))[1]:.1f} ms")
            for text in ("b00012", "s:held"):
                start = time.perf_counter()
                n = grid.set_filter(parse_filter(text))
                took = (time.perf_counter() - start) * 1000
                print(f"grid filter {text!r}: {n:,} matches resolved in {took:.0f} ms; "
                      f"a page then {_ms(lambda: grid.page(0, PAGE))[1]:.1f} ms")
            page = args.datasets // 200
            walls, _ = _cli_times(["status", "--grid", "--page", str(page)], env, 3)
            print(f"owl status --grid --page {page:,}: wall median "
                  f"{statistics.median(walls):.3f} s")
        finally:
            stop_server(home)


if __name__ == "__main__":
    main()
