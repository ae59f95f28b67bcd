"""Lease renewal answers per token: a newer claim of an item never masks a stale one."""

from __future__ import annotations

import time

from owl.board import Board
from owl.template import RetryPolicy, Stage, Template

ONE = Template(name="one", version="1", stages=(
    Stage("a", retry=RetryPolicy(max_attempts=3, base=0.01, factor=1.0, max_delay=0.01,
                                 jitter=0.0)),
))


def test_stale_and_newer_claims_of_one_item_get_their_own_answers(board: Board) -> None:
    board.register(ONE, "ds1")
    stale = board.claim("agent", "one", ["a"], 0.001, 1)[0]
    time.sleep(0.01)
    assert board.reap("agent") == [("ds1", "a", "retry")]
    time.sleep(0.02)
    newer = board.claim("agent", "one", ["a"], 30, 1)[0]
    assert newer.token != stale.token
    for order in ([stale, newer], [newer, stale]):  # the answer does not depend on order
        assert board.renew(order, 30) == {("ds1", "a", stale.token): 0,
                                          ("ds1", "a", newer.token): 1}
