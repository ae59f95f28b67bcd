"""Fencing tokens stay unique when the board is rolled back (a restart that lost writes)."""

from __future__ import annotations

import time

from owl.board import Board
from owl.template import RetryPolicy, Stage, Template

ONCE = Template(name="tok", version="1", stages=(
    Stage("s", retry=RetryPolicy(max_attempts=5, base=0.0, factor=1.0, max_delay=0.0,
                                 jitter=0.0)),))


def _claim_all(board: Board, n: int) -> list[tuple[int, int]]:
    """Claim n items and give them back (each can be claimed again under a new token):
    (shard, token) each, in claim order. Tokens are unique per shard's counter."""
    claims = board.claim("w", "tok", ["s"], 30, n)
    assert len(claims) == n
    for c in claims:
        assert board.giveback(c, "w").ok
    return [(board.shard(c.dataset), c.token) for c in claims]


def test_tokens_are_exact_integers_that_follow_the_clock(board: Board) -> None:
    board.register_many(ONCE, [(f"ds{i}", "") for i in range(20)])
    before = int(board.redis.time()[0]) * 1000
    got = _claim_all(board, 20)
    for shard in {s for s, _ in got}:
        tokens = [t for s, t in got if s == shard]
        assert tokens == sorted(set(tokens))  # unique and increasing in each shard
    assert all(before * 1000 <= t < 2**53 for _, t in got)
    stored = board.redis.hget(board.keys.dataset(board.shard("ds0"), "ds0"), "s.k")
    assert stored in {str(t) for _, t in got}  # the board compares the same digits


def test_a_rolled_back_counter_never_reissues_a_token(board: Board) -> None:
    board.register_many(ONCE, [(f"ds{i}", "") for i in range(12)])
    shards = {board.shard(f"ds{i}") for i in range(12)}
    oldest = {s: board.redis.get(board.keys.tokens(s)) for s in shards}  # None: never used
    issued = set(_claim_all(board, 12))
    for _ in range(3):
        # roll every counter back to before any of these claims, as a restart of a server
        # that lost its last writes would; the restart itself takes over a millisecond
        for s in shards:
            board.redis.set(board.keys.tokens(s), oldest[s] or "0")
        time.sleep(0.002)
        again = _claim_all(board, 12)
        assert not issued & set(again), "a rolled-back counter issued a token twice"
        issued |= set(again)
