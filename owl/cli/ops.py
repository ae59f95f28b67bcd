"""Operator commands: status, agents, dead, events, and retry/hold/release/skip
(``owl show`` is in owl.cli.showcmd)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import click

from owl import queries
from owl.board import Board, OpResult
from owl.cli import complete
from owl.cli.main import emit_json, settings_of
from owl.connect import open_board
from owl.errors import BoardError
from owl.model import LETTERS, State
from owl.names import board_stages, check_selection, check_template

STATE_ORDER = [State.WAITING, State.READY, State.RUNNING, State.RETRY, State.DONE,
               State.SKIPPED, State.HELD, State.DEAD]


def _board(ctx: click.Context) -> Board:
    return open_board(settings_of(ctx), create=False)  # reading writes nothing


def _ms(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


@click.command()
@click.option("--template", "-t", help="Only this template.", shell_complete=complete.templates)
@click.option("--grid", is_flag=True, help="One line per dataset, one letter per stage.")
@click.option("--page", default=1, show_default=True, help="Grid page to show (1 = first).")
@click.option("--limit", "--page-size", "limit", default=200, show_default=True,
              help="Datasets per grid page.")
@click.option("--filter", "grid_filter", metavar="FILTER", default="",
              help="Grid filter: s:STATE (a stage in that state) and/or text in the name.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, template: str | None, grid: bool, page: int, limit: int,
           grid_filter: str, as_json: bool) -> None:
    """Counts of items per template, stage and state (or the OPUS-style grid)."""
    if page < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--page")
    if limit < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--limit")
    board = _board(ctx)
    check_template(board, template)
    if grid:
        print_grid(board, template, limit, as_json, page=page, text=grid_filter)
    else:
        print_counts(board, template, as_json)


def print_counts(board: Board, template: str | None, as_json: bool) -> None:
    """The counts table: one row per stage, one column per state."""
    from owl.cli.output import is_terminal, print_table

    table: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for (tpl, stage, state), n in sorted(queries.counts(board).items()):
        if template is None or tpl == template:
            table[tpl][stage][state] = n
    if as_json:
        emit_json(table)
        return
    if not table:
        click.echo(f"board {board.name!r} has no datasets")
        _print_pauses(board)
        return
    for tpl, stages in table.items():
        order = _stage_order(board, tpl, stages)
        if is_terminal():
            print_table(f"template {tpl}", ["stage", *STATE_ORDER],
                        [[stage, *(stages.get(stage, {}).get(s, 0) for s in STATE_ORDER)]
                         for stage in order], right=STATE_ORDER)
            continue
        click.echo(f"template {tpl}")
        click.echo("  " + f"{'stage':<16}" + "".join(f"{s:>9}" for s in STATE_ORDER))
        for stage in order:
            row = stages.get(stage, {})
            click.echo("  " + f"{stage:<16}" + "".join(f"{row.get(s, 0):>9}"
                                                     for s in STATE_ORDER))
    _print_pauses(board)


def _print_pauses(board: Board) -> None:
    """What is paused (and why), and campaigns that are not active."""
    from owl.control.view import read_view

    view = read_view(board)
    for what, p in sorted(view.pauses.items()):
        kind, _, name = what.partition(":")
        label = "draining agent" if kind == "drain" else f"paused {kind}"
        click.echo(f"{label} {name}: {p.get('why') or 'no reason given'} (by {p.get('by')}, "
                   f"{_ms(int(p.get('t', 0)))})")
    for name, state in sorted(view.states.items()):
        if state != "active":
            click.echo(f"campaign {name} is {state}")


def _stage_order(board: Board, tpl: str, stages: dict[str, Any]) -> list[str]:
    """Stages in template order (of every pinned version), then any others."""
    names = list(board_stages(board, tpl).get(tpl, ()))
    return [s for s in names if s in stages] + sorted(s for s in stages if s not in names)


def print_grid(board: Board, template: str | None, limit: int, as_json: bool, *,
               page: int = 1, text: str = "") -> None:
    """One page of the grid (server-side paging: see owl.watch.grid), and which page of
    how many it is."""
    from owl.watch.grid import Grid, parse_filter

    grid = Grid(board)
    flt = parse_filter(text)
    if template:
        flt = type(flt)(template=template, state=flt.state, text=flt.text)
    if not flt.empty:
        grid.set_filter(flt)
    total = grid.total()
    pages = max(1, -(-total // limit))
    if page > pages:
        raise click.BadParameter(f"the grid ({flt.describe()}) has {pages} page(s) of {limit} "
                                 f"({total} datasets)", param_hint="--page")
    got = grid.page((page - 1) * limit, limit)
    rows = sorted(got.rows, key=lambda d: (d.template, d.dataset))
    first = got.offset + 1 if rows else 0
    last = got.offset + len(rows)
    if as_json:
        emit_json({"datasets": [{"dataset": d.dataset, "template": d.template,
                                 "stages": {i.stage: i.state for i in d.items}} for d in rows],
                   "first": first, "last": last, "total": got.total, "page": page,
                   "pages": pages, "filter": flt.describe()})
        return
    legend = "  ".join(f"{LETTERS[s]}={s}" for s in STATE_ORDER)
    last_tpl = None
    for d in rows:
        if d.template != last_tpl:
            click.echo(f"{d.template}: " + " ".join(i.stage for i in d.items))
            last_tpl = d.template
        letters = " ".join(LETTERS[State(i.state)] for i in d.items)
        click.echo(f"  {d.dataset:<20} {letters}")
    click.echo(legend)
    more = f"; --page {page + 1} for the next" if last < got.total else ""
    click.echo(f"datasets {first}-{last} of {got.total} ({flt.describe()}), "
               f"page {page} of {pages}{more}")


#: Items listed per agent by ``owl agents`` without ``--items``.
AGENT_EXAMPLES = 3


def item_summary(items: Sequence[dict[str, Any]]) -> list[str]:
    """Counts of an agent's items per stage and state, e.g. ``calib: 4980 running, 20 held``."""
    by_stage: dict[str, Counter[str]] = {}
    for it in items:
        state = "held" if it.get("paused") else "running"
        by_stage.setdefault(str(it["stage"]), Counter())[state] += 1
    return [f"{stage}: " + ", ".join(f"{n} {state}" for state, n in sorted(c.items()))
            for stage, c in sorted(by_stage.items())]


def _slots(a: dict[str, Any]) -> str:
    """``local x4``, or ``local x2 +4 prefetch`` for an agent that queues items."""
    prefetch = int(a.get("prefetch") or 0)
    return f"{a['executor']} x{a['concurrency']}" + (f" +{prefetch} prefetch" if prefetch else "")


def _agent_items(a: dict[str, Any], every: bool) -> list[str]:
    items = a["items"]
    shown = items if every else items[:AGENT_EXAMPLES]
    lines = [f"{i['dataset']}:{i['stage']} token {i['token']}"
             + (" (paused: held by an operator)" if i.get("paused") else "") for i in shown]
    if len(shown) < len(items):
        lines.append(f"... {len(items) - len(shown)} more (owl agents --items)")
    return lines


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output (every item of every agent).")
@click.option("--items", "every", is_flag=True,
              help=f"List every item an agent holds (default: counts and {AGENT_EXAMPLES}).")
@click.pass_context
def agents(ctx: click.Context, as_json: bool, every: bool) -> None:
    """Agents serving this board (OPUS PSTAT-like): host, pid, stages, items, heartbeat.

    An agent's items are summarised (counts per stage and state, a few examples); --items
    lists them all, --json gives everything.
    """
    from owl.cli.output import is_terminal, print_table

    found = queries.agents(_board(ctx))
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no agents are running")
        return
    if is_terminal():
        print_table("agents", ["agent", "host", "pid", "serves", "executor", "items", "jobs",
                               "done", "failed", "heartbeat"],
                    [[a["id"], a["host"], a["pid"], f"{a['template']}:{','.join(a['stages'])}",
                      _slots(a),
                      "\n".join([*item_summary(a["items"]), *_agent_items(a, every)]) or "-",
                      a.get("jobs", 0), a["done"], a["failed"],
                      f"{time.time() - float(a['heartbeat']):.0f}s ago"] for a in found],
                    right=["pid", "jobs", "done", "failed"])
        return
    for a in found:
        age = time.time() - float(a["heartbeat"])
        summary = "; ".join(item_summary(a["items"]))
        click.echo(f"{a['id']}  {a['host']} pid {a['pid']}  {a['template']}:"
                   f"{','.join(a['stages'])}  {_slots(a)}  "
                   f"holding {len(a['items'])}{' (' + summary + ')' if summary else ''}  "
                   f"jobs {a.get('jobs', 0)}  done {a['done']} failed {a['failed']}  "
                   f"heartbeat {age:.0f}s ago")
        for line in _agent_items(a, every):
            click.echo(f"    {line}")


@click.command()
@click.option("--template", "-t", help="Only this template.", shell_complete=complete.templates)
@click.option("--since", metavar="WHEN",
              help="Only items that died since WHEN (30s, 10m, 2h, 1d, or an ISO time).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def dead(ctx: click.Context, template: str | None, since: str | None, as_json: bool) -> None:
    """Dead items with the reason of their last failure."""
    from owl.eventlog import parse_since

    since_ms = parse_since(since) if since else 0
    board = _board(ctx)
    check_template(board, template)
    sel = queries.Selector(template=template, states=(State.DEAD,))
    rows = []
    for ds, item in queries.select(board, sel):
        if item.updated_ms < since_ms:  # updated when it died (the dead index's time too)
            continue
        fails = queries.failures(board, ds.dataset, item.stage)
        last = fails[-1] if fails else {}
        rows.append({"dataset": ds.dataset, "template": ds.template, "stage": item.stage,
                     "attempts": item.attempts, "class": last.get("class", ""),
                     "message": last.get("message", item.error),
                     "traceback": last.get("traceback", "")})
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no dead items")
        return
    from owl.cli.output import is_terminal, print_table

    if is_terminal():
        print_table(f"{len(rows)} dead item(s)", ["dataset", "stage", "attempts", "class",
                                                 "reason"],
                    [[r["dataset"], f"{r['template']}:{r['stage']}", r["attempts"], r["class"],
                      r["message"]] for r in rows], right=["attempts"])
        return
    for r in rows:
        click.echo(f"{r['dataset']:<20} {r['template']}:{r['stage']:<14} after {r['attempts']} "
                   f"attempt(s), {r['class']}: {r['message']}")


@click.command()
@click.option("--dataset", "-d", "dataset_id", help="Only this dataset.",
              shell_complete=complete.datasets)
@click.option("--count", "-n", type=int, default=None,
              help="The last N events (default 50; with --since: every event since then).")
@click.option("--since", metavar="WHEN",
              help="Only events since WHEN: a span back from now (30s, 10m, 2h, 1d) or an "
                   "ISO time (2026-12-02T13:00, ...Z).")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new events as they happen (none is lost or repeated).")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one event object per line.")
@click.pass_context
def events(ctx: click.Context, dataset_id: str | None, count: int | None, since: str | None,
           follow: bool, as_json: bool) -> None:
    """The audit trail of transitions (newest last)."""
    from owl import eventlog
    from owl.cli.output import emit_line

    if count is not None and count < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--count")
    since_ms = eventlog.parse_since(since) if since else None
    board = _board(ctx)
    if dataset_id:
        queries.dataset(board, dataset_id)  # a typo is an error, not an empty trail
    found, cursor = eventlog.recent(board, count=count if count is not None or since_ms
                                    else 50, dataset=dataset_id, since_ms=since_ms)

    def emit(batch: list[eventlog.Event]) -> None:
        for e in batch:
            if as_json:
                emit_line(e)
            else:
                click.echo(eventlog.describe(e))

    emit(found)
    while follow:
        try:
            emit(eventlog.follow(board, cursor, block_ms=1000, dataset=dataset_id))
        except KeyboardInterrupt:
            return


#: Items per call of an operator action (each is its own script; the bar moves per batch).
OP_BATCH = 500

#: The states each operator action can change; items in other states are left alone.
ACTS_ON: dict[str, tuple[str, ...]] = {
    "retry": (State.DEAD, State.RETRY),
    "hold": (State.WAITING, State.READY, State.RUNNING, State.RETRY, State.DEAD),
    "release": (State.HELD,),
    "skip": (State.WAITING, State.READY, State.RUNNING, State.RETRY, State.DEAD, State.HELD),
}


def _operate(ctx: click.Context, action: str, datasets: Sequence[str], template: str | None,
             stages: Sequence[str], states: Sequence[str], dry_run: bool,
             as_json: bool) -> None:
    if not (datasets or template or stages or states):
        raise click.UsageError(f"'owl {action}' needs a filter: DATASET..., --template, "
                               "--stage or --state (use --state to act on every item in it)")
    useless = [s for s in states if s not in ACTS_ON[action]]
    if useless:
        raise click.UsageError(f"'owl {action}' cannot change items in state "
                               f"{', '.join(useless)}; it acts on {', '.join(ACTS_ON[action])}")
    board = _board(ctx)
    check_selection(board, template, stages, datasets)
    sel = queries.Selector(datasets=tuple(datasets), template=template, stages=tuple(stages),
                           states=tuple(states) or ACTS_ON[action])
    items = [(ds.dataset, item.stage, item.state) for ds, item in queries.select(board, sel)]
    if not items:
        raise BoardError(f"'owl {action}' matched no item: nothing selected is in state "
                         f"{', '.join(states or ACTS_ON[action])}")
    who = f"operator:{_user()}"
    if dry_run:
        target = {"hold": "held", "release": "running/ready/waiting/dead", "retry": "ready",
                  "skip": "skipped"}[action]
        if as_json:
            emit_json([{"dataset": d, "stage": s, "before": st, "after": target}
                       for d, s, st in items])
        else:
            for d, s, st in items:
                click.echo(f"would {action} {d} {s}: {st} -> {target}")
            click.echo(f"{len(items)} item(s) would change (dry run: nothing changed)")
        return
    pairs = [(d, s) for d, s, _ in items]
    results: list[OpResult] = []
    from owl.cli.progress import progress

    with progress(action, len(pairs), enabled=not as_json) as (advance, _):
        for start in range(0, len(pairs), OP_BATCH):
            chunk = pairs[start:start + OP_BATCH]
            if action == "release":
                results += board.release(chunk, who, lease=settings_of(ctx).lease)
            else:
                results += getattr(board, action)(chunk, who)
            advance(len(chunk))
    if as_json:
        emit_json([vars(r) for r in results])
        return
    unchanged: dict[str, int] = {}
    for r in results:
        if r.changed:
            click.echo(f"{action}: {r.dataset} {r.stage}: {r.before} -> {r.after}")
        else:
            unchanged[r.before] = unchanged.get(r.before, 0) + 1
    moved = ", ".join(f"{n} {state}" for state, n in sorted(unchanged.items()))
    click.echo(f"{sum(r.changed for r in results)} of {len(results)} item(s) changed"
               + (f" (unchanged, state changed meanwhile: {moved})" if moved else ""))


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _op_command(action: str, help_text: str) -> click.Command:
    @click.command(name=action, help=help_text)
    @click.argument("datasets", nargs=-1, shell_complete=complete.datasets)
    @click.option("--template", "-t", help="Only items of this template.",
                  shell_complete=complete.templates)
    @click.option("--stage", "-s", "stages", multiple=True, help="Only these stages.",
                  shell_complete=complete.stages)
    @click.option("--state", "states", multiple=True,
                  type=click.Choice([s.value for s in State]), help="Only items in these states.")
    @click.option("--dry-run", is_flag=True, help="Show exactly what would change; change nothing.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def command(ctx: click.Context, datasets: tuple[str, ...], template: str | None,
                stages: tuple[str, ...], states: tuple[str, ...], dry_run: bool,
                as_json: bool) -> None:
        _operate(ctx, action, datasets, template, stages, states, dry_run, as_json)

    return command


retry = _op_command("retry", "Retry dead items (or cut short a retry's backoff).")
hold = _op_command("hold", "Hold items so they do not run; a running task is paused "
                   "(SIGSTOP, or condor_hold) until released.")
release = _op_command("release", "Release held items.")
skip = _op_command("skip", "Skip items: they count as done for their successors.")

COMMANDS = [status, agents, dead, events, retry, hold, release, skip]
