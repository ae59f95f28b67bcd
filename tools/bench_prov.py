"""Provenance figures for the engine benchmark (run by tools/bench_engine.py, or alone).

- completion cost with provenance vs without: the fenced completion script on the board
  (1,000-item batches, the agent's own path), and the worker's side (building the record
  around a no-op task, in process);
- Redis bytes per dataset with provenance and history at N datasets (every stage completed
  with the record a worker would send: a no-op record, or one with input/output files);
- ``owl refs diff`` at N datasets, from selection records as the bestrefs stage writes them.

    python tools/bench_prov.py --cost 20000 --memory 100000 --refs 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from redis import Redis

from owl.board import Board
from owl.model import Provenance, TaskSpec
from owl.server import ensure_server, stop_server
from owl.template import Stage, Template


def _record(i: int, files: bool) -> Provenance:
    """The record a worker sends for a no-op task, or for a calibration-like stage."""
    item: dict[str, Any] = {"k": f"{i:016x}", "od": f"/data/work/t/j{i:08d}q/g1/s.t{i}",
                            "in": [], "out": [], "t0": 1764680000000 + i, "du": 0.0021,
                            "cpu": 0.0019, "mem": 61240}
    if files:
        item["in"] = [[f"/data/raw/j{i:08d}q_raw.fits", 168_000_000 + i, 1764680000123456789,
                       f"{i:032x}"]]
        item["out"] = [[f"j{i:08d}q_blv_tmp.fits", 201_000_000, 1764680000223456789,
                        f"{i + 1:032x}"]]
    env = {"ov": "0.1.0", "task": "owl.demo_tasks:noop", "cv": "0123456789abcdef",
           "th": "fedcba9876543210", "pm": {}, "rf": [["DARKFILE", "jref$d_drk.fits",
                                                       "/refs/d_drk.fits", 1, 2, "ab" * 16]],
           "h": "node01", "x": "local"}
    return Provenance(item=item, env_id="e0123456789a", env=env)


def _server_cpu(client: Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _complete_all(board: Board, template: Template, provenance: str) -> tuple[float, float]:
    """Claim and complete every item, stage by stage. Returns the CPU seconds spent around
    the completions only: this process's (building and sending the scripts, reading the
    replies) and the Redis server's (INFO cpu, the bench's own server). CPU time, not wall
    time: on a shared machine it is the steadier figure."""
    client_cpu = server_cpu = 0.0
    for stage in template.stage_names:
        while True:
            claims = board.claim("bench", template.name, [stage], 600, 1000)
            if not claims:
                break
            recs = ([None] * len(claims) if provenance == "none"
                    else [_record(i, provenance == "files") for i, _ in enumerate(claims)])
            s0, c0 = _server_cpu(board.redis), time.process_time()
            board.complete_many([(c, {}) for c in claims], "bench", provenance=recs)
            c1, s1 = time.process_time(), _server_cpu(board.redis)
            client_cpu, server_cpu = client_cpu + c1 - c0, server_cpu + s1 - s0
    return client_cpu, server_cpu


def completion_cost(client: Redis, n: int, rounds: int = 5) -> dict[str, float]:
    """CPU per fenced completion without and with a provenance record (no-op, or with
    input/output file records): the Redis server's and the agent side's (batches of 1000,
    the agent's own path), in interleaved rounds, medians."""
    template = Template(name="pvcost", version="1", stages=(Stage("a", task="x:y"),))
    agent: dict[str, list[float]] = {}
    server: dict[str, list[float]] = {}
    for mode in ("none", "noop", "files") * rounds:  # interleaved: the host is shared
        board = Board(client, f"pv{uuid.uuid4().hex[:8]}", shards=8)
        board.register_many(template, [(f"d{j:07d}", "") for j in range(n)])
        agent_s, server_s = _complete_all(board, template, mode)
        agent.setdefault(mode, []).append(agent_s / n * 1e6)
        server.setdefault(mode, []).append(server_s / n * 1e6)
        board.destroy()
    med = {k: {m: statistics.median(v) for m, v in d.items()}
           for k, d in (("server", server), ("agent", agent))}
    total = {m: med["server"][m] + med["agent"][m] for m in ("none", "noop", "files")}
    med["both"] = total

    def line(name: str, m: dict[str, float]) -> str:
        return (f"{name:<22} {m['none']:6.1f} us without provenance, {m['noop']:6.1f} us with "
                f"a no-op record ({(m['noop'] / m['none'] - 1) * 100:+.0f} %), "
                f"{m['files']:6.1f} us with file records "
                f"({(m['files'] / m['none'] - 1) * 100:+.0f} %)")

    print(f"  completion CPU (medians of {rounds} interleaved rounds x {n} completions)")
    print("    " + line("Redis server:", med["server"]))
    print("    " + line("agent side:", med["agent"]))
    print("    " + line("both:", med["both"]))
    return total


def worker_cost(n: int) -> tuple[float, float]:
    """Worker side: a no-op task through run_task alone vs through run_attempt (timing,
    peak memory, code version, input/output records, environment digest)."""
    from owl.attempt import run_attempt
    from owl.task import run_task

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "in.fits"
        raw.write_bytes(b"\0" * 2880 * 100)
        def spec(token: int) -> TaskSpec:  # a fresh token-specific output dir, as in use
            return TaskSpec(dataset="d", stage="s", template="t", token=token, attempt=1,
                            task="owl.demo_tasks:noop", argv=None, input_path=str(raw),
                            inputs={}, output_dir=str(Path(tmp) / f"s.t{token}"))

        for i, fn in enumerate((run_task, run_attempt) * 2):  # warm imports, caches
            fn(spec(-1 - i))
        took: dict[str, list[float]] = {"plain": [], "recorded": []}
        for i in range(n):  # alternate item by item: the shared disk's noise hits both
            for label, fn in (("plain", run_task), ("recorded", run_attempt)):
                sp = spec(2 * i + (label == "recorded"))
                t0 = time.perf_counter()
                fn(sp)
                took[label].append(time.perf_counter() - t0)
        plain, recorded = (statistics.median(took[k]) * 1e6 for k in ("plain", "recorded"))
    print(f"  attempt (worker)    {plain:7.1f} us run_task alone, {recorded:.1f} us with its "
          f"provenance record ({recorded - plain:+.1f} us per attempt, medians of {n}; "
          "a 288 kB input)")
    return plain, recorded


def memory(client: Redis, n: int, provenance: str) -> None:
    """Bytes per dataset, every stage of a 3-stage template completed with provenance."""
    template = Template(name="pvmem", version="1", stages=(
        Stage("a", task="x:y"), Stage("b", task="x:y", after=("a",)),
        Stage("c", task="x:y", after=("b",))))
    board = Board(client, f"pm{uuid.uuid4().hex[:8]}", shards=8)
    before = int(client.info("memory")["used_memory"])
    for i in range(0, n, 2000):
        board.register_many(template, [(f"j{j:08d}q", "") for j in range(i, min(n, i + 2000))])
    _complete_all(board, template, provenance)
    after = int(client.info("memory")["used_memory"])
    sample = [f"j{j:08d}q" for j in range(0, n, max(1, n // 200))]
    per_key = {
        "dataset hash": [client.memory_usage(board.keys.dataset(board.shard(d), d)) or 0
                         for d in sample],
        "history list": [client.memory_usage(board.keys.history(board.shard(d), d)) or 0
                         for d in sample]}
    parts = ", ".join(f"{k} {statistics.mean(v):.0f}" for k, v in per_key.items())
    print(f"  memory at {n:>7}    {(after - before) / n:7.0f} bytes/dataset, 3 stages done, "
          f"provenance {provenance!r} ({parts}; event cap {board.event_cap}/shard x "
          f"{board.shards} shards)")
    board.destroy()


def refs_diff(client: Redis, n: int) -> None:
    """`owl refs diff` at n datasets: selection records as bestrefs writes them, six header
    configurations, exposure starts over 2003-2024; a new DARKFILE rule from 2014 on."""
    from owl import refs
    from owl.resources import data_path

    board = Board(client, f"rd{uuid.uuid4().hex[:8]}", shards=8)
    template = Template(name="acs_wfc", version="1", stages=(
        Stage("bestrefs", task="x:y"), Stage("acsccd", task="x:y", after=("bestrefs",)),
        Stage("acs2d", task="x:y", after=("acsccd",))))
    board.register(template, "seed")  # stores the template (stage order)
    configs = {f"c{f}{g}": json.dumps({"CCDAMP": "ABCD", "CCDGAIN": g, "DETECTOR": "WFC",
                                       "FILTER1": f, "FILTER2": "CLEAR2L"})
               for f in ("F435W", "F606W", "F814W") for g in (2.0, 1.0)}
    rng = random.Random(1)
    t0 = time.perf_counter()
    for s in range(board.shards):
        pipe = board.redis.pipeline(transaction=False)
        pipe.hset(board.keys.selcfg(s), mapping={f"acs_wfc|{c}": v for c, v in configs.items()})
        pipe.hset(board.keys.refuse(s), mapping={"acs_wfc|acs2d|DARKFILE": 1,
                                                 "acs_wfc|acsccd|BIASFILE": 1})
        pipe.execute()
    # What complete.lua writes for a bestrefs completion: the dataset in its config's zset,
    # scored by exposure start (here 2003-2024, uniform).
    batch: dict[str, dict[str, int]] = {}
    names = list(configs)
    lo, hi = 1041379200, 1735689600
    for i in range(n):
        ds = f"j{i:08d}q"
        key = board.keys.refsel(board.shard(ds), "acs_wfc", rng.choice(names))
        batch.setdefault(key, {})[ds] = rng.randrange(lo, hi)
        if (i + 1) % 50000 == 0 or i == n - 1:
            pipe = board.redis.pipeline(transaction=False)
            for key, mapping in batch.items():
                pipe.zadd(key, mapping)
            pipe.execute()
            batch = {}
    filled = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        old = data_path("pipelines", "refs/acs_refs.yaml")
        new = Path(tmp) / "new.yaml"
        new.write_text(old.read_text() + """
  - reftype: DARKFILE
    match: {DETECTOR: WFC, CCDAMP: ABCD, CCDGAIN: 2.0}
    useafter: "2014-01-01 00:00:00"
    file: jref$new_drk.fits
""")
        mem = int(client.info("memory")["used_memory"])
        report = refs.diff(board, refs.Side.read(old), refs.Side.read(new))
    print(f"  refs diff at {n:>7} {report.seconds:7.2f} s: {len(report.affected)} datasets "
          f"affected (DARKFILE, from acs2d: "
          f"{sum(a.from_stage == 'acs2d' for a in report.affected)}); index filled in "
          f"{filled:.1f} s; board {mem / 1e6:.0f} MB")
    board.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost", type=int, default=20000, help="completions to time")
    parser.add_argument("--memory", type=int, nargs="*", default=[100000],
                        help="dataset counts to measure memory at")
    parser.add_argument("--memory-modes", nargs="*", default=["none", "noop", "files"],
                        choices=["none", "noop", "files"],
                        help="provenance records to measure memory with")
    parser.add_argument("--refs", type=int, default=0, help="datasets for refs diff")
    parser.add_argument("--redis", help="a Redis URL instead of the embedded server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "embedded"
        url = args.redis or ensure_server(home)
        client = Redis.from_url(url, decode_responses=True)
        try:
            run(client, args)
        finally:
            client.close()
            if not args.redis:
                stop_server(home)


def run(client: Redis, args: argparse.Namespace) -> None:
    print(f"provenance ({sys.executable})")
    if args.cost:
        board_us = completion_cost(client, args.cost)
        plain, recorded = worker_cost(min(args.cost, 2000))
        without = board_us["none"] + plain
        for mode, label in (("noop", "no-op records"), ("files", "file records")):
            with_ = board_us[mode] + recorded
            print(f"  completion, all parts (board + agent + worker attempt): {without:.1f} us "
                  f"without provenance, {with_:.1f} us with {label} "
                  f"({(with_ / without - 1) * 100:+.1f} %)")
    for n in args.memory:
        for mode in args.memory_modes:
            memory(client, n, mode)
    if args.refs:
        refs_diff(client, args.refs)


if __name__ == "__main__":
    main()
