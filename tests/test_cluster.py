"""Scale-out pieces on every backend (embedded, server, cluster): per-template wake-ups,
reaping shares, index-only operator filters, board metadata; and cluster-only behaviour:
the client chosen from the URL, a master killed in the middle of a run."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from redis_cluster import LocalCluster, find_binary, free_port_block

from owl import queries
from owl.board import Board
from owl.connect import connect
from owl.errors import ConfigError
from owl.reapers import my_shards, owner
from owl.scripts import Batch, is_cluster
from owl.template import Stage, Template
from owl.template_loader import load_template
from owl.wakeup import Wakeup

CHAIN = Template(name="chain", version="1",
                 stages=(Stage("a"), Stage("b", after=("a",)), Stage("c", after=("b",))))
OTHER = Template(name="other", version="1", stages=(Stage("x"),))


def _readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_an_agent_is_woken_only_by_its_own_template(board: Board) -> None:
    wake = Wakeup(board, "chain")
    try:
        time.sleep(0.3)  # the listeners subscribe in their threads
        board.register(OTHER, "o1")
        assert not _readable(wake.fileno(), 0.5)
        board.register(CHAIN, "c1")
        assert _readable(wake.fileno(), 5)
        assert wake.drain()
    finally:
        wake.close()


def test_sharded_wakeups_on_a_redis_7_cluster_only(board: Board) -> None:
    channels = board.wake_channels("chain")
    if board.sharded_pubsub:
        assert is_cluster(board.redis)
        assert channels == [board.keys.wake(s) + "chain" for s in range(board.shards)]
        assert all("{s" in ch for ch in channels)  # each in its shard's slot
    else:
        assert channels == [board.keys.notify + "chain"]


def test_every_shard_has_one_reaper_and_a_stopped_agent_hands_on_only_its_own() -> None:
    live = [f"host-{i}" for i in range(5)]
    shares = {a: my_shards(a, live, 64) for a in live}
    assert sorted(s for mine in shares.values() for s in mine) == list(range(64))
    assert all(shares.values())  # 64 shards over 5 agents: everyone reaps some
    gone = live.pop(2)
    after = {a: my_shards(a, live, 64) for a in live}
    for a in live:  # the survivors keep their shards and split the stopped agent's share
        assert set(shares[a]) <= set(after[a])
    assert sorted(s for a in live for s in set(after[a]) - set(shares[a])) == shares[gone]
    assert my_shards("alone", [], 8) == list(range(8))
    assert owner(["b", "a"], 3) == owner(["a", "b"], 3)


def test_reap_on_a_share_of_the_shards(board: Board) -> None:
    board.register_many(OTHER, [(f"o{i}", "") for i in range(20)])
    claims = board.claim("w", "other", ["x"], 0.001, 20)
    assert len(claims) == 20
    time.sleep(0.05)
    mine = [0]
    reaped = board.reap("w", shards=mine)
    assert {d for d, _, _ in reaped} == {c.dataset for c in claims if board.shard(c.dataset) == 0}
    rest = board.reap("w")
    assert len(reaped) + len(rest) == 20


def test_operator_filters_walk_the_indexes_and_agree_with_a_full_walk(board: Board) -> None:
    board.register_many(CHAIN, [(f"c{i:02d}", "") for i in range(30)])
    board.register_many(OTHER, [(f"o{i:02d}", "") for i in range(10)])
    for c in board.claim("w", "chain", ["a"], 30, 12)[:8]:
        board.complete(c, {}, "w")  # b ready for 8 datasets, a running for 4
    board.hold([("c20", "a"), ("c21", "c")], "op")
    for sel in (queries.Selector(template="chain", stages=("b",)),
                queries.Selector(template="chain", states=("waiting",)),
                queries.Selector(stages=("a",), states=("running", "ready", "held")),
                queries.Selector(template="other"),
                queries.Selector(states=("held",))):
        fast = sorted((d.dataset, i.stage, i.state) for d, i in queries.select(board, sel))
        slow = sorted((d.dataset, i.stage, i.state) for d in queries.datasets(board)
                      for i in d.items if sel.matches(d, i))
        assert fast == slow and fast, sel


def test_a_script_batch_spans_every_node_and_keeps_call_order(board: Board) -> None:
    """One batch, calls on every shard (so on every cluster node), replies in order."""
    names = [f"d{i:03d}" for i in range(40)]
    batch = Batch()
    for d in names:
        s = board.shard(d)
        board.scripts["register"](
            keys=[board.keys.dataset(s, d), *board._common(s), board.keys.datasets(s)],
            args=[board.keys.prefix(s), d, "other", "1", "", '{"order":["x"],"stages":'
                  '{"x":{"a":[],"n":[],"m":1,"b":1,"f":1,"x":1,"j":0}}}', "dg", "t", 100, ""],
            client=batch)
    batch.command("HGET", board.keys.meta, "shards")
    replies = board.scripts.execute(batch, board.redis)
    assert replies[:-1] == [[1, 1]] * 40 and replies[-1] == str(board.shards)


def test_connect_picks_the_cluster_client(redis_url: str) -> None:
    if not redis_url.startswith("redis+cluster://"):
        conn = connect(redis_url)
        assert not is_cluster(conn)
        conn.close()
        return
    node = redis_url.replace("redis+cluster://", "redis://")
    conn = connect(node)  # a plain URL of a cluster node: detected
    assert is_cluster(conn)
    conn.close()
    with pytest.raises(ConfigError, match="database 0 only"):
        connect(redis_url + "/3")


def test_a_shard_moved_to_another_node_is_followed(redis_cluster: LocalCluster,
                                                  board_name: str) -> None:
    """Resharding a live board: one shard's slot moves to another primary; the board's
    client, still holding the old slot map, meets MOVED, refreshes and carries on."""
    board = Board(connect(redis_cluster.url), board_name, shards=4)
    try:
        board.register_many(CHAIN, [(f"m{i:02d}", "") for i in range(20)])
        key = board.keys.counts(0)
        slot = int(redis_cluster.node(redis_cluster.port).execute_command(
            "CLUSTER", "KEYSLOT", key))
        src = redis_cluster.master_of(key)
        masters = {redis_cluster.master_of(board.keys.counts(s)) for s in range(4)}
        dst = next(p for p in [*masters, *redis_cluster.ports[:3]] if p != src)
        redis_cluster.move_slot(slot, src, dst)
        assert redis_cluster.master_of(key) == dst
        done = 0
        for stage in CHAIN.stage_names:
            claims = board.claim("w", "chain", [stage], 30, 100)
            results, _ = board.complete_many([(c, {}) for c in claims], "w")
            done += sum(r.ok for r in results)
        assert done == 60
        assert queries.counts(board) == {("chain", st, "done"): 20 for st in ("a", "b", "c")}
    finally:
        board.destroy()


# -- failover ---------------------------------------------------------------------------

N = 40


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_killed_master_fails_over_and_every_item_runs_exactly_once(
        tmp_path: Path, board_name: str) -> None:
    """3 masters + 3 replicas; a master is SIGKILLed mid-run; its replica takes over; the
    agents (transitions acknowledged by a replica: OWL_WAIT_REPLICAS=1) finish the run with
    every item done and every task executed exactly once."""
    binary = find_binary()
    if binary is None:
        pytest.skip("no redis-server >= 6.2 (cluster mode) found")
    cluster = LocalCluster(tmp_path / "cluster", binary, free_port_block(6, 21000)).start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pipelines = tmp_path / "pipelines"
        pipelines.mkdir()
        tally = tmp_path / "tally.txt"
        (pipelines / "fo.yaml").write_text(
            "name: fo\nversion: '1'\nstages:\n" + "".join(
                f"  s{i}:\n    task: owl_testtasks:tally\n"
                f"    params: {{tally: '{tally}', sleep: 0.05}}\n"
                + (f"    after: s{i - 1}\n" if i else "") for i in range(3)))
        template = load_template(pipelines / "fo.yaml")
        board = Board(connect(cluster.url), board_name, shards=6, wait_replicas=1)
        board.register_many(template, [(f"f{i:03d}", "") for i in range(N)])
        env = {**os.environ, "OWL_REDIS_URL": cluster.url, "OWL_BOARD": board_name,
               "OWL_HOME": str(tmp_path / "home"), "OWL_PIPELINES": str(pipelines),
               "OWL_RESCAN": "0.5", "OWL_LEASE": "10", "OWL_WAIT_REPLICAS": "1",
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).with_name("helpers")),
                                              str(Path(__file__).parents[1])])}
        for j in range(2):
            log = open(tmp_path / f"agent{j}.log", "wb")  # noqa: SIM115  # closed below
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "owl", "agent", "-t", "fo", "-c", "3", "--burst"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            log.close()

        def done() -> int:
            return sum(n for (_, _, st), n in queries.counts(board).items() if st == "done")

        end = time.monotonic() + 60
        while done() < N:
            assert time.monotonic() < end, "the run did not get going"
            time.sleep(0.05)
        victim = cluster.master_of(board.keys.counts(0))
        cluster.kill(victim)
        cluster.wait_failover(victim)
        for p in procs:
            assert p.wait(150) == 0, (tmp_path / "agent0.log").read_text()[-3000:]
        board = Board(connect(cluster.url), board_name)
        assert done() == 3 * N
        runs = Counter(tuple(line.split()[:2]) for line in tally.read_text().splitlines())
        assert len(runs) == 3 * N and set(runs.values()) == {1}, runs.most_common(3)
        assert cluster.master_of(board.keys.counts(0)) != victim
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        cluster.stop()
