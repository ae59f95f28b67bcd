"""owl against peer task queues on the same Redis, in one run: a 5-stage no-op chain.

Each peer (Dramatiq, Celery, arq, RQ; the ``bench`` extra installs them) runs the chain of
``tools/peers_tasks.py``: stage k does nothing, counts itself and enqueues stage k + 1 of
the same chain. Its workers (``--workers`` processes x ``--concurrency``, the peer's own
worker command) are started first; the figure is chains x stages over the time from the
first enqueue to the last stage counted. owl runs the same chain with ``--workers`` agents
x ``--concurrency`` (or ``--owl-concurrency``, with ``--owl-prefetch`` items queued per
agent: the peers' workers prefetch too) through tools/bench_engine.py (first claim to last
completion). The last line is ``ratio owl/best-peer R (owl X/s, best PEER Y/s)``.

    python3 -m pip install -e '.[bench]' && python3 -m pip install --no-deps arq
    python3 tools/bench_peers.py --redis redis://127.0.0.1:6379/15 --chains 1000

Give it a dedicated database: every peer's keys (``rq:*``, ``dramatiq:*``, Celery's
``celery``/``_kombu.*``, ``arq:*``, ``peers:*``) are deleted from it before and after each
peer (never FLUSHDB).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
PEERS = ("dramatiq", "celery", "arq", "rq")
PREFIXES = ("rq:*", "dramatiq:*", "celery*", "_kombu.*", "unacked*", "arq:*", "peers:*")


def clean(conn: redis.Redis) -> None:
    for pattern in PREFIXES:
        batch = list(conn.scan_iter(match=pattern, count=1000))
        for i in range(0, len(batch), 500):
            conn.delete(*batch[i:i + 500])


def workers(peer: str, n: int, c: int, env: dict[str, str], url: str) -> list[list[str]]:
    py = sys.executable
    if peer == "dramatiq":
        return [[py, "-m", "dramatiq", "peers_tasks", "--processes", str(n), "--threads",
                 str(c), "--queues", "peers"]]
    if peer == "celery":
        return [[py, "-m", "celery", "-A", "peers_tasks", "worker", "--concurrency",
                 str(n * c), "-P", "prefork", "--loglevel", "WARNING", "--without-gossip",
                 "--without-mingle", "--without-heartbeat"]]
    if peer == "arq":
        return [[py, "-m", "arq", "peers_tasks.WorkerSettings"] for _ in range(n)]
    return [[py, "-m", "rq.cli", "worker", "--url", url, "-w", "rq.worker.SimpleWorker",
             "peers"] for _ in range(n * c)]


def enqueue(peer: str, chains: int) -> None:
    sys.path.insert(0, str(TOOLS))
    import peers_tasks

    if peer == "dramatiq":
        actor = peers_tasks._dramatiq_actor()
        for i in range(chains):
            actor.send(i, 0)
    elif peer == "celery":
        app = peers_tasks._celery_app()
        task = app.tasks["peers.celery_stage"]
        for i in range(chains):
            task.delay(i, 0)
    elif peer == "arq":
        from arq import create_pool
        from arq.connections import RedisSettings

        async def go() -> None:
            pool = await create_pool(RedisSettings.from_dsn(peers_tasks.URL))
            for i in range(chains):
                await pool.enqueue_job("arq_stage", i, 0)
            await pool.aclose()

        asyncio.run(go())
    else:
        from rq import Queue

        q = Queue("peers", connection=redis.Redis.from_url(peers_tasks.URL))
        for i in range(chains):
            q.enqueue(peers_tasks.rq_stage, i, 0)


def run_peer(peer: str, args: argparse.Namespace, conn: redis.Redis) -> float:
    total = args.chains * args.stages
    env = {**os.environ, "PEERS_REDIS": args.redis, "PEERS_PEER": peer,
           "PEERS_STAGES": str(args.stages), "PEERS_CONCURRENCY": str(args.concurrency),
           "PYTHONPATH": os.pathsep.join([str(TOOLS), str(REPO)])}
    os.environ.update({k: env[k] for k in ("PEERS_REDIS", "PEERS_STAGES", "PEERS_PEER")})
    clean(conn)
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
             for cmd in workers(peer, args.workers, args.concurrency, env, args.redis)]
    try:
        time.sleep(args.warmup)  # the workers import and connect before the clock starts
        t0 = time.perf_counter()
        enqueue(peer, args.chains)
        deadline = t0 + args.timeout
        done = 0
        while time.perf_counter() < deadline:
            done = int(conn.get("peers:done") or 0)
            if done >= total:
                break
            time.sleep(0.01)
        span = time.perf_counter() - t0
        note = "" if done >= total else f"  (timed out: {done} of {total})"
        rate = done / span
        print(f"{peer:<9} {rate:10.0f} tasks/s   ({done} tasks in {span:.2f} s, "
              f"{len(procs)} worker process(es)){note}", flush=True)
        return rate
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        clean(conn)


def run_owl(args: argparse.Namespace) -> float:
    sys.path.insert(0, str(TOOLS))
    import bench_engine

    ns = argparse.Namespace(datasets=args.chains, stages=args.stages, agents=args.workers,
                            concurrency=args.owl_concurrency or args.concurrency,
                            prefetch=args.owl_prefetch, shards=8, memory_datasets=0)
    with tempfile.TemporaryDirectory() as tmp:
        rate: float = bench_engine.run_once(args.redis, "owl", ns, Path(tmp))
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/15",
                    help="a dedicated database of a Redis server")
    ap.add_argument("--chains", type=int, default=1000)
    ap.add_argument("--stages", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--owl-concurrency", type=int, default=0, metavar="N",
                    help="worker processes per owl agent (default: --concurrency)")
    ap.add_argument("--owl-prefetch", type=int, default=0, metavar="N",
                    help="items each owl agent queues in its workers (agent --prefetch), "
                         "as the peers' workers prefetch messages")
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    args = ap.parse_args()
    conn = redis.Redis.from_url(args.redis)
    rates: dict[str, float] = {}
    for peer in args.peers.split(","):
        rates[peer] = run_peer(peer, args, conn)
    owl = run_owl(args)
    best = max(rates, key=lambda p: rates[p])
    print(f"ratio owl/best-peer {owl / rates[best]:.2f} (owl {owl:.0f}/s, best {best} "
          f"{rates[best]:.0f}/s; owl {args.workers} agents x "
          f"{args.owl_concurrency or args.concurrency} workers, prefetch {args.owl_prefetch})")


if __name__ == "__main__":
    main()
