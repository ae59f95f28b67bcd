"""The ``owl watch`` terminal board (textual).

A reader thread waits on the event streams (``XREAD BLOCK`` from the last id of every
shard, :mod:`owl.eventlog`): each batch of events goes to the event tail and triggers a
refresh of the counters, agents, dead items and the visible grid page; with no events, a
refresh every ``idle_refresh`` seconds keeps heartbeat ages current. Actions (hold, release,
retry) are planned, shown on a confirmation screen item by item, and applied only on ``y``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from typing import Any, ClassVar, TypeVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, RichLog, Static, TabbedContent, TabPane

from owl import eventlog
from owl.board import Board
from owl.errors import OwlError
from owl.model import LETTERS, State
from owl.watch import actions
from owl.watch.grid import Grid, Page, parse_filter
from owl.watch.source import Snapshot, Source
from owl.watch.tables import refill

W = TypeVar("W", bound=Widget)

#: Events kept in the tail.
TAIL = 2000

STATES = [State.WAITING, State.READY, State.RUNNING, State.RETRY, State.DONE, State.SKIPPED,
          State.HELD, State.DEAD]
SHORT = {State.WAITING: "wait", State.READY: "ready", State.RUNNING: "run",
         State.RETRY: "retry", State.DONE: "done", State.SKIPPED: "skip", State.HELD: "held",
         State.DEAD: "dead"}


def age(seconds: float | None) -> str:
    """A short age for narrow columns: 42s, 7m, 3h, 2d."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def tail_line(e: eventlog.Event) -> str:
    """An event in 80 columns: time, dataset, stage, transition, actor, reason."""
    t_us = int(e.get("t") or 0)
    when = time.strftime("%H:%M:%S", time.localtime(t_us / 1e6)) if t_us else "-"
    why = f" ({e['why']})" if e.get("why") else ""
    return (f"{when} {e.get('ds', '')} {e.get('st', '')} {e.get('fr') or '-'}->"
            f"{e.get('to', '')} {e.get('by', '')}{why}")


class ConfirmScreen(ModalScreen[bool]):
    """Exactly what an action will change; ``y`` applies it, ``n``/Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "apply"), Binding("n", "answer(False)", "cancel"),
        Binding("escape", "answer(False)", "cancel", show=False)]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 76; height: auto; max-height: 20; border: thick $warning;
                               background: $surface; padding: 0 1; }
    ConfirmScreen RichLog { height: auto; max-height: 14; }
    """

    def __init__(self, plan: actions.Plan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        n = len(self.plan.lines())
        what = "item(s)" if self.plan.pause is None else "pause"
        with Vertical():
            yield Static(f"[b]{self.plan.action}[/b]: {n} {what} will change:")
            log = RichLog(id="changes", wrap=False, markup=False)
            yield log
            yield Static("[b]y[/b] apply   [b]n[/b] cancel")

    def on_mount(self) -> None:
        log = self.query_one("#changes", RichLog)
        for line in self.plan.lines():
            log.write(line)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class WatchApp(App[None]):
    """The live board of one owl board."""

    TITLE = "owl watch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("1", "tab('counts')", "counts", show=False),
        Binding("2", "tab('grid')", "grid", show=False),
        Binding("3", "tab('agents')", "agents", show=False),
        Binding("4", "tab('events')", "events", show=False),
        Binding("5", "tab('dead')", "dead", show=False),
        Binding("slash", "search", "filter"),
        Binding("n", "page(1)", "next page", show=False),
        Binding("p", "page(-1)", "prev page", show=False),
        Binding("h", "act('hold')", "hold"),
        Binding("l", "act('release')", "release"),
        Binding("r", "act('retry')", "retry"),
        Binding("P", "pause", "pause/resume"),
    ]
    DEFAULT_CSS = """
    #summary { height: 1; background: $boost; }
    #filter { display: none; }
    #filter.shown { display: block; }
    DataTable { height: 1fr; }
    """

    def __init__(self, board: Board, *, who: str, lease: float, idle_refresh: float = 2.0,
                 block_ms: int = 500, page_size: int = 100) -> None:
        super().__init__()
        self.board = board
        self.who = who
        self.lease = lease
        self.idle_refresh = idle_refresh
        self.block_ms = block_ms
        self.page_size = page_size
        self.source = Source(board)
        self.grid = Grid(board)
        self.offset = 0
        self.snapshot: Snapshot | None = None
        self.page_shown: Page | None = None
        self.refreshes = 0
        self.events_seen = 0
        self.message = ""
        self._grid_ms = 0.0
        #: The event tail as text (the log widget renders only while its tab is shown).
        self.tail: deque[str] = deque(maxlen=TAIL)
        self._wake = threading.Event()
        self._lock = threading.Lock()

    # -- layout ----------------------------------------------------------------------------

    def _w(self, selector: str, kind: type[W] = Widget) -> W:  # type: ignore[assignment]
        """A widget of the board screen, also while a confirmation screen is on top."""
        return self.screen_stack[0].query_one(selector, kind)

    def compose(self) -> ComposeResult:
        yield Static("connecting...", id="summary")
        with TabbedContent(initial="counts", id="tabs"):
            with TabPane("1 counts", id="counts"):
                yield DataTable(id="counts-table", cursor_type="row", zebra_stripes=True)
            with TabPane("2 grid", id="grid"):
                yield Input(placeholder="filter: t:TEMPLATE s:STATE name  (Enter)", id="filter")
                yield DataTable(id="grid-table", cursor_type="row")
            with TabPane("3 agents", id="agents"):
                yield DataTable(id="agents-table", cursor_type="row")
            with TabPane("4 events", id="events"):
                yield RichLog(id="events-log", max_lines=TAIL, wrap=False, markup=False)
            with TabPane("5 dead", id="dead"):
                yield DataTable(id="dead-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self._w("#counts-table", DataTable).add_columns(
            "template:stage", *(SHORT[s] for s in STATES), "/s", "old")
        self._w("#agents-table", DataTable).add_columns(
            "agent", "host", "pid", "stages", "items", "beat", "cpu", "mem", "mode")
        self._w("#dead-table", DataTable).add_columns(
            "dataset", "stage", "died", "reason")
        self.feed()

    # -- the reader thread -----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="feed")
    def feed(self) -> None:
        """Wait on the streams; refresh on every batch of events, or when idle too long."""
        from textual.worker import get_current_worker

        worker = get_current_worker()
        recent, cursor = eventlog.recent(self.board, count=100)
        self.call_from_thread(self._show_events, recent)
        last = 0.0
        while not worker.is_cancelled:
            try:
                batch = eventlog.follow(self.board, cursor, block_ms=self.block_ms)
            except Exception as exc:  # the board is unreachable: say so and keep trying
                self.call_from_thread(self._say, f"board error: {exc}")
                time.sleep(1.0)
                continue
            if batch:
                self.call_from_thread(self._show_events, batch)
            if batch or self._wake.is_set() or time.monotonic() - last >= self.idle_refresh:
                self._wake.clear()
                try:
                    self._refresh_board()
                except Exception as exc:  # a failed refresh is shown, the next one retried
                    self.call_from_thread(self._say, f"refresh failed: {exc}")
                last = time.monotonic()

    def _refresh_board(self) -> None:
        with self._lock:
            snap = self.source.snapshot()
            started = time.perf_counter()
            page = self.grid.page(self.offset, self.page_size)
            grid_ms = (time.perf_counter() - started) * 1000
        self.call_from_thread(self._show, snap, page, grid_ms)

    def wake(self) -> None:
        """Refresh at the next turn of the reader (after an action or a page change)."""
        self._wake.set()

    # -- showing ---------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.message = text
        with contextlib.suppress(NoMatches):  # NoMatches: the app is closing
            self._summary()

    def _summary(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        totals = {s: sum(r.counts.get(s, 0) for r in snap.stages) for s in STATES}
        board_ms = snap.board_ms + self._grid_ms
        text = (f"{self.board.name}: " + " ".join(f"{SHORT[s]} {totals[s]}" for s in STATES
                                                  if totals[s])
                + f" | {board_ms:.0f} ms" + (f" | {self.message}" if self.message else ""))
        self._w("#summary", Static).update(text)

    def _show_events(self, batch: list[eventlog.Event]) -> None:
        lines = [tail_line(e) for e in batch]
        self.tail.extend(lines)
        with contextlib.suppress(NoMatches):  # NoMatches: the app is closing
            log = self._w("#events-log", RichLog)
            for line in lines:
                log.write(line)
        self.events_seen += len(batch)

    def _show(self, snap: Snapshot, page: Page, grid_ms: float) -> None:
        try:
            self._show_board(snap, page, grid_ms)
        except NoMatches:  # the app is closing: its widgets are gone
            return

    def _show_board(self, snap: Snapshot, page: Page, grid_ms: float) -> None:
        self.snapshot = snap
        self.page_shown = page
        self._grid_ms = grid_ms
        self.refreshes += 1
        counts = self._w("#counts-table", DataTable)
        paused = {k.split(":", 1)[1] for k in snap.pauses if k.startswith("stage:")}
        refill(counts, [
            (("‖" if f"{r.template}:{r.stage}" in paused else "")
             + f"{r.template}:{r.stage}"[:18], *(str(r.counts.get(s, 0) or "") for s in STATES),
             f"{r.done_per_s:.1f}", age(r.oldest_ready_s)) for r in snap.stages],
            keys=[f"{r.template}:{r.stage}" for r in snap.stages])
        agents = self._w("#agents-table", DataTable)
        refill(agents, [
            (a.id, a.host, str(a.pid), f"{a.template}:{','.join(a.stages)}",
             ", ".join(a.items) or "-", age(a.heartbeat_age_s), a.cpu, a.memory, a.mode)
            for a in snap.agents], keys=[a.id for a in snap.agents])
        dead = self._w("#dead-table", DataTable)
        refill(dead, [(d.dataset, d.stage, time.strftime("%m-%d %H:%M",
                                                           time.localtime(d.died_ms / 1000)),
                        d.reason[:200]) for d in snap.dead],
                keys=[f"{d.dataset}|{d.stage}" for d in snap.dead])
        self._show_grid(page)
        self._summary()

    def _show_grid(self, page: Page) -> None:
        table = self._w("#grid-table", DataTable)
        width = max((len(d.items) for d in page.rows), default=1)
        names = [i.stage[:5] for i in page.rows[0].items] if page.rows else []
        header = ["dataset", *names, *(f"{i + 1}" for i in range(len(names), width))]
        if [str(c.label) for c in table.columns.values()] != header:
            table.clear(columns=True)
            table.add_columns(*header)
        rows = [(d.dataset, *(LETTERS[State(i.state)] for i in d.items),
                 *([""] * (width - len(d.items)))) for d in page.rows]
        refill(table, rows, keys=[d.dataset for d in page.rows])
        end = page.offset + len(page.rows)
        pane = self._w("#tabs", TabbedContent).get_pane("grid")
        pane_label = (f"2 grid {page.offset + 1 if page.rows else 0}-{end}/{page.total}")
        tab = self._w("#tabs", TabbedContent).get_tab(pane)
        tab.label = pane_label

    # -- actions ---------------------------------------------------------------------------

    def action_tab(self, name: str) -> None:
        self._w("#tabs", TabbedContent).active = name
        self._w(f"#{name}-table" if name != "events" else "#events-log").focus()

    def action_search(self) -> None:
        self.action_tab("grid")
        box = self._w("#filter", Input)
        box.add_class("shown")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            flt = parse_filter(event.value)
        except OwlError as exc:
            self._say(str(exc))
            return
        self._apply_filter(flt)
        self._w("#grid-table", DataTable).focus()

    @work(thread=True, exclusive=True, group="filter")
    def _apply_filter(self, flt: Any) -> None:
        with self._lock:
            n = self.grid.set_filter(flt)
            self.offset = 0
        self.call_from_thread(self._say, f"grid: {flt.describe()} ({n} datasets)")
        self.wake()

    def action_page(self, step: int) -> None:
        total = self.page_shown.total if self.page_shown else 0
        self.offset = max(0, min(self.offset + step * self.page_size,
                                 max(0, total - 1) // self.page_size * self.page_size))
        self.wake()

    def _targets(self) -> list[tuple[str, str | None]]:
        tabs = self._w("#tabs", TabbedContent)
        if tabs.active == "dead":
            table = self._w("#dead-table", DataTable)
            if not table.row_count:
                return []
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
            ds, _, stage = key.rpartition("|")
            return [(ds, stage)]
        if tabs.active == "grid":
            table = self._w("#grid-table", DataTable)
            if not table.row_count:
                return []
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
            return [(key, None)]
        return []

    def _selected(self, table_id: str) -> str:
        table = self._w(table_id, DataTable)
        if not table.row_count:
            return ""
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or "")

    def action_act(self, action: str) -> None:
        targets = self._targets()
        if not targets:
            self._say(f"{action}: select a dataset on the grid (2) or a dead item (5)")
            return
        plan = actions.plan(self.board, action, targets)
        if plan.empty:
            self._say(plan.why_empty)
            return
        self._confirm(plan)

    def action_pause(self) -> None:
        """Pause (or resume) what is selected: a stage (counts), a dataset (grid, dead) or an
        agent (agents)."""
        tab = self._w("#tabs", TabbedContent).active
        kind = {"counts": "stage", "grid": "dataset", "dead": "dataset",
                "agents": "agent"}.get(tab, "")
        name = self._selected(f"#{tab}-table") if kind else ""
        if tab == "dead":
            name = name.rpartition("|")[0]
        if not name:
            self._say("pause: select a stage (1), a dataset (2, 5) or an agent (3)")
            return
        self._confirm(actions.plan_pause(kind, name, self.snapshot.pauses
                                         if self.snapshot else {}))

    def _confirm(self, plan: actions.Plan) -> None:
        def done(yes: bool | None) -> None:
            if not yes:
                self._say(f"{plan.action}: cancelled, nothing changed")
                return
            try:
                changed, planned = actions.apply(self.board, plan, self.who, self.lease)
            except OwlError as exc:
                self._say(f"{plan.action}: {exc}")
                return
            self._say(f"{plan.action}: {changed} of {planned} change(s) made")
            self.wake()

        self.push_screen(ConfirmScreen(plan), done)
