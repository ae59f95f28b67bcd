"""``owl watch`` in textual's headless pilot, at 80x24, on a real board: keys change it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from owl import queries
from owl.board import Board
from owl.model import FailureClass
from owl.template import RetryPolicy, Stage, Template
from owl.watch.app import ConfirmScreen, WatchApp
from owl.watch.grid import Grid, parse_filter

pytestmark = pytest.mark.timeout(120)

TWO = Template(name="two", version="1", stages=(
    Stage("a", retry=RetryPolicy(max_attempts=1)), Stage("b", after=("a",))))


def _state(board: Board, ds: str, stage: str) -> str:
    return next(i.state for i in queries.dataset(board, ds).items if i.stage == stage)


async def _until(pilot: Pilot[None], ok: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if ok():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"watch never showed: {what}")


def _rows(app: WatchApp, table_id: str) -> list[list[str]]:
    table = app.query_one(table_id, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def _drive(board: Board) -> None:
    app = WatchApp(board, who="operator:pilot", lease=30, idle_refresh=0.5, block_ms=500,
                   page_size=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(pilot, lambda: _rows(app, "#counts-table")[0][:3] == ["two:a", "", "3"]
                     if _rows(app, "#counts-table") else False, "3 ready items of two:a")
        await pilot.press("2")
        await _until(pilot, lambda: len(_rows(app, "#grid-table")) == 2, "a page of 2")
        first = _rows(app, "#grid-table")[0][0]
        await pilot.press("h")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.lines() == [f"hold {first} a: ready -> held",
                                           f"hold {first} b: waiting -> held"]
        await pilot.press("n")  # cancelled: nothing changes
        assert _state(board, first, "a") == "ready"
        await pilot.press("h", "y")
        await _until(pilot, lambda: _state(board, first, "a") == "held", "the hold applied")
        assert _state(board, first, "b") == "held"
        await _until(pilot, lambda: _rows(app, "#grid-table")[0][1:] == ["h", "h"],
                     "the grid row turned h h")
        await _until(pilot, lambda: any(r[0] == "two:a" and r[7] == "1"
                                        for r in _rows(app, "#counts-table")), "held count")
        await _until(pilot, lambda: any(first in line and "ready->held" in line
                                        for line in app.tail), "the held events in the tail")
        await pilot.press("l")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.lines() == [f"release {first} a: held -> ready",
                                           f"release {first} b: held -> waiting"]
        await pilot.press("y")
        await _until(pilot, lambda: _state(board, first, "a") == "ready", "the release")

        claim = board.claim("pilot", "two", ["a"], 30, 1)[0]
        board.fail(claim, FailureClass.ERROR, "boom: the frame is empty", "", 1, "pilot")
        await pilot.press("5")
        await _until(pilot, lambda: _rows(app, "#dead-table")[:1] != []
                     and _rows(app, "#dead-table")[0][0] == claim.dataset, "the dead item")
        assert "boom: the frame is empty" in _rows(app, "#dead-table")[0][3]
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.lines() == [f"retry {claim.dataset} a: dead -> ready"]
        await pilot.press("y")
        await _until(pilot, lambda: _state(board, claim.dataset, "a") == "ready", "the retry")

        await pilot.press("1", "P")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.lines() == [
            "pause stage two:a: active -> paused (nothing new is claimed there; running items "
            "finish)"]
        await pilot.press("y")
        pauses = board.keys.ctl_key("pauses")
        await _until(pilot, lambda: board.redis.hexists(pauses, "stage:two:a"), "the pause")
        await _until(pilot, lambda: _rows(app, "#counts-table")[0][0].startswith("‖"),
                     "the paused stage marked")
        await pilot.press("P")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.action == "resume"
        await pilot.press("y")
        await _until(pilot, lambda: not board.redis.hexists(pauses, "stage:two:a"), "resume")

        await pilot.press("2", "slash")
        await pilot.press(*"s:running", "enter")
        await _until(pilot, lambda: _rows(app, "#grid-table") == [], "an empty filter")
        await pilot.press("n", "p", "q")


def test_watch_keys_change_the_board(board: Board) -> None:
    board.register_many(TWO, [(f"w{i}", "") for i in range(3)])
    asyncio.run(_drive(board))


def test_grid_pages_and_filters_on_the_server(board: Board) -> None:
    board.register_many(TWO, [(f"g{i:03d}", "") for i in range(25)])
    grid = Grid(board)
    seen = []
    for offset in range(0, 25, 10):
        page = grid.page(offset, 10)
        assert page.total == 25
        seen += [d.dataset for d in page.rows]
    assert sorted(seen) == [f"g{i:03d}" for i in range(25)]
    assert grid.set_filter(parse_filter("g01")) == 10
    board.hold([("g007", "a")], "test")
    assert grid.set_filter(parse_filter("s:held")) == 1
    assert [d.dataset for d in grid.page(0, 5).rows] == ["g007"]
    assert grid.set_filter(parse_filter("t:two s:waiting g00")) == 10
    assert grid.set_filter(parse_filter("t:nosuch")) == 0
