"""appendfsync ``always`` against ``everysec`` on the embedded server, side by side.

For each policy a fresh embedded server (its own OWL_HOME under a temporary directory) gets
N datasets of a one-stage template; one client then claims and completes them the way an
agent does (``claim`` then ``complete_many``), B items per round trip. Printed per policy and
batch size: stage completions per second (each completion is one claim script and one
complete script, i.e. two fsyncs with ``always`` when B is 1), and ``aof_delayed_fsync``
(times Redis postponed an AOF write because a background fsync was still running: with
``everysec`` the window in which a SIGKILL loses acknowledged writes, see owl/server.py).

    python tools/bench_fsync.py --datasets 3000 --batch 1 --batch 16 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from owl.board import Board
from owl.connect import connect
from owl.server import ensure_server, server_info, stop_server
from owl.template_loader import load_template


def run_once(root: Path, policy: str, datasets: int, batch: int) -> tuple[float, int]:
    """Completions per second and aof_delayed_fsync for one fresh server."""
    home = root / f"{policy}-{batch}-{time.monotonic_ns()}"
    url = ensure_server(home, appendfsync=policy)
    try:
        tpl = root / "fsyncbench.yaml"
        tpl.write_text("name: fsyncbench\nversion: '1'\nstages:\n  s:\n"
                       "    task: owl.demo_tasks:noop\n")
        template = load_template(tpl)
        board = Board(connect(url), "fsyncbench", shards=8)
        ids = [(f"ds{i:06d}", "") for i in range(datasets)]
        for i in range(0, len(ids), 500):
            board.register_many(template, ids[i:i + 500])
        done = 0
        start = time.perf_counter()
        while done < datasets:
            claims = board.claim("bench", "fsyncbench", ["s"], 60.0, batch)
            if not claims:
                break
            results, _ = board.complete_many([(c, {}) for c in claims], "bench")
            done += sum(r.ok for r in results)
        elapsed = time.perf_counter() - start
        info = server_info(home)
        delayed = info["aof_delayed_fsync"] if info else -1
        return done / elapsed, delayed
    finally:
        stop_server(home)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--batch", type=int, action="append",
                        help="items per claim/complete round trip (repeatable; default 1, 16)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs per policy and batch, interleaved; the median is printed")
    args = parser.parse_args()
    batches = args.batch or [1, 16]
    with tempfile.TemporaryDirectory(prefix="owl-fsync-") as tmp:
        root = Path(tmp)
        print(f"{args.datasets} completions per run, {args.rounds} run(s) each, embedded "
              f"server under {root}")
        print(f"{'batch':>5}  {'always (completions/s)':>24}  {'everysec (completions/s)':>25}"
              f"  {'always/everysec':>15}  delayed fsyncs (always, everysec)")
        for batch in batches:
            got: dict[str, list[tuple[float, int]]] = {"always": [], "everysec": []}
            for _ in range(args.rounds):
                for policy in ("always", "everysec"):
                    got[policy].append(run_once(root, policy, args.datasets, batch))
            rate = {p: statistics.median(r for r, _ in v) for p, v in got.items()}
            delayed = {p: sum(d for _, d in v) for p, v in got.items()}
            print(f"{batch:>5}  {rate['always']:>24.0f}  {rate['everysec']:>25.0f}  "
                  f"{rate['always'] / rate['everysec']:>15.2f}  "
                  f"{delayed['always']}, {delayed['everysec']}")


if __name__ == "__main__":
    main()
