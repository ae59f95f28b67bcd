"""Time the web board's pages and /metrics on a big board (default 1,000,000 datasets).

Registers the datasets with Board.register_many in large batches on a Redis server (a
database of its own, default redis://127.0.0.1:6379/9), moves a slice of them along (done,
dead, running), then times each page through the ASGI app in-process (Starlette's
TestClient: no network, the figure is the server's work plus one loopback Redis client).
The board is deleted afterwards.

    python3 tools/bench_web.py --datasets 1000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis import Redis
from starlette.testclient import TestClient

from owl.board import Board
from owl.model import FailureClass
from owl.template import RetryPolicy, Stage, Template
from owl.web.app import create_app

ONCE = RetryPolicy(max_attempts=1, base=0.01, factor=1.0, max_delay=0.01, jitter=0.0)
PIPE = Template(name="bench", version="1", stages=(
    Stage("check", retry=ONCE), Stage("calib", after=("check",), retry=ONCE),
    Stage("measure", after=("calib",), retry=ONCE), Stage("combine", after=("measure",),
                                                          retry=ONCE)))


def _fill(board: Board, n: int, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, n, batch):
        board.register_many(PIPE, [(f"j{j:08d}", "") for j in range(i, min(n, i + batch))],
                            who="bench")
        if (i // batch) % 20 == 0:
            print(f"  registered {min(n, i + batch):>9,} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    return time.perf_counter() - start


def _move(board: Board, n: int) -> None:
    """Some items done, some dead, some running, so every page has something to show."""
    claims = board.claim("bench-agent", "bench", ["check"], 3600, n)
    board.complete_many([(c, {}) for c in claims[: n // 2]], "bench-agent")
    for c in claims[n // 2: n // 2 + n // 10]:
        board.fail(c, FailureClass.ERROR, "bench failure", "Traceback: bench", 0.0,
                   "bench-agent")


def _time(client: TestClient, path: str, repeat: int) -> tuple[float, float]:
    client.get(path)  # warm: template orders, script cache
    laps = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path)
        laps.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return statistics.median(laps), max(laps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=1_000_000)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--moved", type=int, default=2000, help="items moved past ready")
    args = ap.parse_args()
    conn: Redis[str] = Redis.from_url(args.redis, decode_responses=True)
    board = Board(conn, f"bench-web-{uuid.uuid4().hex[:8]}", shards=8)
    try:
        print(f"board {board.name} on {args.redis}: registering {args.datasets:,} datasets")
        took = _fill(board, args.datasets, args.batch)
        print(f"registered {args.datasets:,} in {took:.0f} s "
              f"({args.datasets / took:,.0f}/s)")
        _move(board, args.moved)
        with TestClient(create_app(board), base_url="http://127.0.0.1") as client:
            pages = [("overview", "/", 200), ("overview fragment", "/fragment/overview", 200),
                     ("/metrics", "/metrics", 200), ("grid page 1", "/grid", 300),
                     ("grid, 3rd page", None, 300), ("grid state=dead", "/grid?state=dead", 300),
                     ("grid stage=check state=done", "/grid?stage=check&state=done", 300),
                     ("grid name=j0099*", "/grid?name=j0099*", 300),
                     ("/api/status", "/api/status", 200), ("/api/grid", "/api/grid", 300),
                     ("dataset page", "/dataset/j00000007", 300), ("dead letters", "/dead", 300)]
            first = client.get("/api/grid").json()
            second = client.get("/api/grid", params={"cursor": first["next"]}).json()
            third = f"/grid?cursor={second['next']}"
            print(f"\n{'page':<30} {'median ms':>10} {'max ms':>8}  goal")
            for label, path, goal in pages:
                med, worst = _time(client, path or third, args.repeat)
                ok = "ok" if med <= goal else "OVER"
                print(f"{label:<30} {med:>10.1f} {worst:>8.1f}  <= {goal} ms {ok}")
    finally:
        t0 = time.perf_counter()
        n = board.destroy()
        print(f"\ndeleted {n:,} keys in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
