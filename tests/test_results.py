"""What a failed attempt may put on the board, whatever the executor reported."""

from __future__ import annotations

from owl import queries
from owl.board import Board
from owl.model import FailureClass
from owl.tasklog import MAX_ERROR_CHARS, MAX_TRACEBACK_CHARS, TAIL_BYTES
from owl.template import Stage, Template

ONE = Template(name="res", version="1", stages=(Stage("s"),))


def test_a_5_mb_error_is_cut_to_the_boards_limits(board: Board) -> None:
    board.register(ONE, "ds1")
    [claim] = board.claim("w", "res", ["s"], 30, 1)
    huge = "e" * 5_000_000
    assert board.fail(claim, FailureClass.ERROR, huge, "t" * 5_000_000, 0.0, "w",
                      log_tail="o" * 5_000_000).ok
    [record] = queries.failures(board, "ds1", "s")
    assert len(record["message"]) < MAX_ERROR_CHARS + 600
    assert "error message of 5000000 characters cut" in record["message"]
    assert len(record["traceback"]) < MAX_TRACEBACK_CHARS + 600
    assert len(record["log_tail"]) < TAIL_BYTES + 100
