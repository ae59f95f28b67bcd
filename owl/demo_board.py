"""The demo's own board: ``owl demo`` deletes and recreates it, so it must never be a board
that holds real work.

A board made by the demo carries ``demo=1`` in its meta hash. An existing board without that
mark (``OWL_BOARD=prod owl demo``) is refused before anything on it is touched.
"""

from __future__ import annotations

from owl.board import Board
from owl.config import Settings
from owl.connect import client
from owl.errors import ConfigError
from owl.keys import Keys

#: The meta-hash field that marks a board as the demo's (deleted by every demo run).
DEMO_MARK = "demo"


def fresh_demo_board(settings: Settings) -> Board:
    """An empty demo board under ``settings.board``: the old demo board is deleted first.

    Raises
    ------
    ConfigError
        When a board of that name exists and was not made by the demo.
    """
    conn = client(settings)
    meta = Keys(settings.board).meta
    if conn.exists(meta) and conn.hget(meta, DEMO_MARK) != "1":
        raise ConfigError(
            f"board {settings.board!r} already exists and was not made by 'owl demo'; the demo "
            "deletes its board before each run, so it refuses to touch this one: run it on "
            "its own board (unset OWL_BOARD, or --board demo)")
    board = Board(conn, settings.board, shards=settings.shards, event_cap=settings.event_cap)
    board.destroy()
    board = Board(conn, settings.board, shards=settings.shards, event_cap=settings.event_cap)
    conn.hset(meta, DEMO_MARK, "1")
    return board
