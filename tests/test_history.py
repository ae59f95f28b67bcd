"""The per-dataset history list: kept past the capped event stream, capped per dataset."""

from __future__ import annotations

from redis import Redis

from owl import queries
from owl.board import Board
from owl.history import history
from owl.model import FailureClass
from owl.template import RetryPolicy, Stage, Template

FAST = RetryPolicy(max_attempts=2, base=0.0, factor=1.0, max_delay=0.0, jitter=0.0)
LINE = Template(name="line", version="1", stages=(Stage("a", retry=FAST),
                                                   Stage("b", after=("a",), retry=FAST)))


def test_history_outlives_the_capped_stream(client: Redis[str], board_name: str) -> None:
    board = Board(client, board_name, shards=1, event_cap=5)
    try:
        board.register(LINE, "ds1")
        board.register_many(LINE, [(f"x{i}", "") for i in range(200)])  # floods the stream
        claim = next(c for c in board.claim("w", "line", ["a"], 30, 300) if c.dataset == "ds1")
        assert board.complete(claim, {}, "w").ok
        # The stream kept only the latest few events; ds1's registration is long gone.
        assert not any(e["st"] == "b" and e["to"] == "waiting"
                       for e in queries.events(board, dataset_id="ds1", count=1000))
        created = queries.dataset(board, "ds1").created_ms
        trail = [(e["st"], e["fr"], e["to"], e["why"]) for e in history(board, "ds1", created)]
        # b waiting from registration, and ready after a: implied, so not kept
        assert trail == [("a", "", "ready", "registered"), ("a", "ready", "running", "claimed"),
                         ("a", "running", "done", "")]
        entries = history(board, "ds1", created)
        assert entries[1]["tk"] == str(claim.token) and entries[1]["by"] == "w"
        assert entries[0]["t"] >= created * 1000
    finally:
        board.destroy()


def test_history_is_capped_per_dataset(board: Board) -> None:
    board.register(LINE, "ds1")
    for _ in range(150):  # each round: ready -> running -> retry -> ready: 3 entries
        claim = board.claim("w", "line", ["a"], 30, 1)[0]
        assert board.fail(claim, FailureClass.ERROR, "boom", "", 0, "w", final=False).ok
        board.retry([("ds1", "a")], "op")
    kept = board.redis.llen(board.keys.history(board.shard("ds1"), "ds1"))
    assert 200 <= kept <= 220
    last = history(board, "ds1", queries.dataset(board, "ds1").created_ms)[-1]
    assert (last["st"], last["to"]) in {("a", "ready"), ("a", "dead")}
