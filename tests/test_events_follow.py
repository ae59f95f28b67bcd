"""`owl events`: a follower loses nothing under a burst; --since and -n select by time."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import textwrap
import time

import pytest
from redis import Redis

from owl import eventlog
from owl.board import Board
from owl.errors import ConfigError
from owl.template import Stage, Template

pytestmark = pytest.mark.timeout(120)

ONE = Template(name="one", version="1", stages=(Stage("only"),))

#: Registers 2,000 datasets of a one-stage template in small batches: 2,000 events spread
#: over every shard, as fast as one client can make them.
PRODUCER = textwrap.dedent("""
    import sys
    from owl.board import Board
    from owl.connect import connect
    from owl.template import Stage, Template
    url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    board = Board(connect(url), name, shards=4)
    one = Template(name="one", version="1", stages=(Stage("only"),))
    for start in range(0, n, 20):
        board.register_many(one, [(f"b{i:05d}", "") for i in range(start, start + 20)])
""")


def _all_events(board: Board) -> set[tuple[int, str]]:
    return {(s, entry_id) for s in range(board.shards)
            for entry_id, _ in board.redis.xrange(board.keys.events(s))}


def test_follow_prints_every_event_of_a_burst_exactly_once(
        owl_env: dict[str, str], board: Board, redis_url: str) -> None:
    board.register_many(ONE, [("before1", ""), ("before2", "")])
    follower = subprocess.Popen(
        [sys.executable, "-m", "owl", "events", "-f", "--json", "-n", "1"],
        env=owl_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())  # the follower is reading now
        assert first["ds"] in {"before1", "before2"}
        producer = subprocess.run([sys.executable, "-c", PRODUCER, redis_url, board.name,
                                   "2000"], env=owl_env, timeout=90, capture_output=True)
        assert producer.returncode == 0, producer.stderr
        lines = [follower.stdout.readline() for _ in range(2000)]
    finally:
        follower.terminate()
        rest, err = follower.communicate(timeout=10)
    got = [json.loads(line) for line in lines]
    assert rest.strip() == "", f"events beyond the burst: {rest[:300]} {err[:300]}"
    keys = [(e["shard"], e["id"]) for e in got]
    assert len(set(keys)) == 2000, "an event was printed twice"
    assert {e["ds"] for e in got} == {f"b{i:05d}" for i in range(2000)}
    assert set(keys) | {(first["shard"], first["id"])} <= _all_events(board)


def test_recent_and_since_select_by_time(client: Redis[str], board: Board) -> None:
    board.register_many(ONE, [(f"old{i}", "") for i in range(5)])
    time.sleep(0.05)
    cut = int(client.time()[0]) * 1000 + int(client.time()[1]) // 1000
    time.sleep(0.05)
    board.register_many(ONE, [(f"new{i}", "") for i in range(7)])
    since, _ = eventlog.recent(board, count=None, since_ms=cut)
    assert sorted(e["ds"] for e in since) == sorted(f"new{i}" for i in range(7))
    last3, cursor = eventlog.recent(board, count=3)
    assert len(last3) == 3
    assert {e["ds"] for e in last3} <= {f"new{i}" for i in range(7)}
    none, cursor0 = eventlog.recent(board, count=0)
    assert none == []
    assert eventlog.follow(board, cursor0, block_ms=10) == []
    board.register_many(ONE, [("later", "")])
    assert [e["ds"] for e in eventlog.follow(board, cursor, block_ms=10)] == ["later"]
    mine, _ = eventlog.recent(board, count=10, dataset="old3")
    assert [(e["ds"], e["to"]) for e in mine] == [("old3", "ready")]


def test_parse_since_forms() -> None:
    now = datetime.datetime(2026, 12, 2, 14, 0, tzinfo=datetime.UTC)
    at = int(now.timestamp() * 1000)
    assert eventlog.parse_since("10m", now=now) == at - 600_000
    assert eventlog.parse_since("2h", now=now) == at - 7_200_000
    assert eventlog.parse_since("1.5s", now=now) == at - 1500
    assert eventlog.parse_since("2026-12-02T13:00Z", now=now) == at - 3_600_000
    with pytest.raises(ConfigError, match="--since 'yesterday': give a span"):
        eventlog.parse_since("yesterday")


def test_recent_reads_past_one_batch_and_keeps_equal_ids_of_two_shards(
        client: Redis[str], board_name: str) -> None:
    one = Board(client, board_name + "x", shards=1)
    try:
        for start in range(0, 1500, 250):
            one.register_many(ONE, [(f"d{i:05d}", "") for i in range(start, start + 250)])
        got, _ = eventlog.recent(one, count=1400)
        assert len({e["id"] for e in got}) == 1400
        assert got[-1]["ds"] == "d01499"
    finally:
        one.destroy()
    two = Board(client, board_name + "y", shards=2)
    try:
        for s in (0, 1):  # the same entry id in both shards' streams: two events, not one
            client.xadd(two.keys.events(s), {"ds": f"s{s}", "st": "a", "fr": "", "to": "ready",
                                             "by": "test", "t": "1"}, id="5-1")
        got, _ = eventlog.recent(two, count=10)
        assert sorted((e["shard"], e["ds"]) for e in got) == [(0, "s0"), (1, "s1")]
    finally:
        two.destroy()
