"""Control commands: rerun, campaign, pause/resume, drain, limit, sched."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from owl.board import Board
from owl.cli.main import emit_json, settings_of
from owl.connect import open_board
from owl.control import actions
from owl.control import campaigns as camps
from owl.control.model import Band, CampaignState, parse_band
from owl.control.rerun import RerunReport
from owl.control.select import Selector, check_filters, parse_filter, read_list
from owl.errors import BoardError
from owl.names import check_selection, check_template
from owl.template import Template


def _who() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator:unknown"


def _board(ctx: click.Context) -> Board:
    return open_board(settings_of(ctx))


def _target(ctx: click.Context, board: Board, template: str, version: str | None,
            ) -> Template | None:
    """The template version to move datasets to: a loaded file of that version, or the copy
    already on the board."""
    if not version:
        return None
    from owl.template_loader import load_templates

    for t in load_templates(settings_of(ctx).template_dirs()):
        if t.name == template and t.version == version:
            return t
    try:
        return board.stored_template(template, version)
    except BoardError:
        raise BoardError(f"template {template!r} version {version!r} is neither in the "
                         "template directories nor on the board") from None


def _progress(total_hint: str) -> Any:
    """A progress callback (a line on stderr per batch, when stderr is a terminal)."""
    import sys

    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if sys.stderr.isatty():
            click.echo(f"\r{total_hint}: {done[0]} datasets", err=True, nl=False)

    return step


def _report(report: RerunReport, dry_run: bool, as_json: bool, extra: dict[str, Any]) -> None:
    verb = "would rerun" if dry_run else "rerun"
    if as_json:
        emit_json({**extra, "dry_run": dry_run, "started": report.started,
                   "pending": report.pending, "missing": report.missing,
                   "datasets": [{"dataset": p.dataset, "from_stage": p.from_stage,
                                 "stages": list(p.reset), "version": p.version,
                                 "waits_for_running": p.busy}
                                for p in report.planned[:1000]]})
        return
    for p in report.planned[:50]:
        wait = " (after its running items finish)" if p.busy else ""
        click.echo(f"{verb} {p.dataset} from {p.from_stage}: {', '.join(p.reset)}"
                   f" on {p.version}{wait}")
    if len(report.planned) > 50:
        click.echo(f"... and {len(report.planned) - 50} more")
    click.echo(f"{verb}: {report.started} now, {report.pending} after their running items")
    for ds in report.missing[:20]:
        click.echo(f"not rerun: {ds} (not on the board, or changed version meanwhile)", err=True)


def _selector(board: Board, template: str | None, datasets: Sequence[str],
              datasets_file: Path | None, where: Sequence[str]) -> Selector:
    named = tuple((d, "") for d in datasets)
    source = ""
    if datasets_file is not None:
        named += read_list(datasets_file)
        source = str(datasets_file)
    filters = tuple(parse_filter(w) for w in where)
    check_filters(filters)
    if not template and not named:
        raise BoardError("say which datasets: name them, or give --template (with --where "
                         "filters), or --datasets-file")
    if template:
        check_template(board, template)
    return Selector(template=template or "", filters=filters, datasets=named, source=source)


@click.command()
@click.argument("datasets", nargs=-1)
@click.option("--template", "-t", help="Datasets of this template (with --where filters).")
@click.option("--where", multiple=True, metavar="KEY<OP>VALUE",
              help="Header filter, e.g. INSTRUME=ACS or DATE-OBS>=2012-01-01 (repeatable).")
@click.option("--datasets-file", type=click.Path(path_type=Path, dir_okay=False),
              help="A file of dataset ids, one per line (optionally 'DATASET STAGE').")
@click.option("--from-stage", "-s", default="", help="Rerun from this stage onward "
              "(default: the first stages).")
@click.option("--template-version", help="Move the datasets to this template version.")
@click.option("--dry-run", is_flag=True, help="Show exactly what would be rerun.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def rerun(ctx: click.Context, datasets: tuple[str, ...], template: str | None,
          where: tuple[str, ...], datasets_file: Path | None, from_stage: str,
          template_version: str | None, dry_run: bool, as_json: bool) -> None:
    """Reprocess datasets from a stage onward as a new generation (production band).

    The previous generation's outputs and history are kept; the current outputs switch when
    the new generation's stage completes. Datasets with a running item are rerun once it
    finishes. For a whole selection with its own band and share, use `owl campaign create`.
    """
    from owl.control.rerun import rerun as do_rerun
    from owl.control.select import Walk, matching

    board = _board(ctx)
    sel = _selector(board, template, datasets, datasets_file, where)
    target = None
    if template_version:
        tpl = template or _template_of(board, sel)
        target = _target(ctx, board, tpl, template_version)
    walk = Walk()
    report = do_rerun(board, matching(board, sel, from_stage, walk), who=_who(),
                      why="owl rerun", target=target, dry_run=dry_run,
                      progress=_progress("rerun"))
    _report(report, dry_run, as_json, {"selected": walk.selected})
    if walk.selected == 0:
        raise BoardError("nothing matches: " + _nothing(sel, walk))


def _template_of(board: Board, sel: Selector) -> str:
    ds = sel.datasets[0][0]
    raw = board.redis.hget(board.keys.dataset(board.shard(ds), ds), "t")
    if raw is None:
        raise BoardError(f"dataset {ds!r} is not on board {board.name!r}")
    return str(raw)


def _nothing(sel: Selector, walk: Any) -> str:
    if walk.other_template:
        return (f"{len(walk.other_template)} named dataset(s) are of another template than "
                f"{sel.template!r}, e.g. {walk.other_template[0]}")
    if sel.filters:
        return (f"{walk.seen} dataset(s) looked at, none passes "
                + " and ".join(str(f) for f in sel.filters))
    return "the selection is empty"


@click.group()
def campaign() -> None:
    """Campaigns: reprocessing with a band, a fair share, limits and a schedule."""


@campaign.command("create")
@click.argument("name")
@click.option("--template", "-t", help="Datasets of this template.")
@click.option("--where", multiple=True, metavar="KEY<OP>VALUE",
              help="Header filter, e.g. INSTRUME=ACS or DATE-OBS>=2012-01-01 (repeatable).")
@click.option("--datasets-file", type=click.Path(path_type=Path, dir_okay=False),
              help="A file of dataset ids, one per line (optionally 'DATASET STAGE').")
@click.option("--from-stage", "-s", default="", help="Rerun from this stage onward.")
@click.option("--template-version", help="Move the datasets to this template version.")
@click.option("--band", default="reprocessing", show_default=True,
              type=click.Choice([b.value for b in Band]))
@click.option("--weight", default=1.0, show_default=True, help="Share within its band.")
@click.option("--max-running", type=int, help="At most this many of its items run at once.")
@click.option("--schedule", metavar="CRON", help="Rerun the selection at each cron tick.")
@click.option("--dry-run", is_flag=True, help="Show exactly what would be rerun.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def create(ctx: click.Context, name: str, template: str | None, where: tuple[str, ...],
           datasets_file: Path | None, from_stage: str, template_version: str | None,
           band: str, weight: float, max_running: int | None, schedule: str | None,
           dry_run: bool, as_json: bool) -> None:
    """Create a campaign and rerun its selection, in batches (agents go on meanwhile)."""
    board = _board(ctx)
    sel = _selector(board, template, (), datasets_file, where)
    target = None
    if template_version:
        target = _target(ctx, board, template or _template_of(board, sel), template_version)
    made = camps.create(board, name=name, selector=sel, who=_who(), band=parse_band(band),
                        weight=weight, from_stage=from_stage, target=target,
                        max_running=max_running, schedule=schedule, dry_run=dry_run,
                        progress=_progress(f"campaign {name}"))
    _report(made.report, dry_run, as_json, {"campaign": name, "selected": made.walk.selected})
    if made.walk.selected == 0 and not schedule:
        raise BoardError(f"campaign {name}: nothing matches: " + _nothing(sel, made.walk))


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every campaign: state, band, weight, progress."""
    rows = camps.progress(_board(ctx))
    if as_json:
        emit_json([r.to_json() for r in rows])
        return
    click.echo(f"{'CAMPAIGN':<20} {'STATE':<10} {'BAND':<13} {'WEIGHT':>6} {'DONE':>9} "
               f"{'LEFT':>9} {'DEAD':>6}")
    for r in rows:
        done, left, dead = _totals(r.stages)
        click.echo(f"{r.campaign.name:<20} {r.state:<10} {r.campaign.band.value:<13} "
                   f"{r.campaign.weight:>6g} {done:>9} {left:>9} {dead:>6}")


def _totals(stages: dict[str, dict[str, int]]) -> tuple[int, int, int]:
    done = sum(d.get("done", 0) + d.get("skipped", 0) for d in stages.values())
    dead = sum(d.get("dead", 0) for d in stages.values())
    left = sum(v for d in stages.values() for k, v in d.items()
               if k not in ("done", "skipped", "dead"))
    return done, left, dead


@campaign.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """A campaign's definition, progress per stage, rate, ETA and failures."""
    board = _board(ctx)
    camps.get(board, name)
    row = next(r for r in camps.progress(board) if r.campaign.name == name)
    if as_json:
        emit_json(row.to_json())
        return
    c = row.campaign
    click.echo(f"campaign {c.name}: {row.state}, band {c.band.value}, weight {c.weight:g}"
               + (f", at most {c.max_running} running" if c.max_running else "")
               + (f", schedule {c.schedule!r}" if c.schedule else ""))
    if c.created_ms:
        click.echo(f"  created by {c.by}; selected {row.selected} datasets of "
                   f"{c.template or 'any template'}"
                   + (f" ({', '.join(c.selector.get('filters', []))})"
                      if c.selector.get("filters") else "")
                   + (f", from stage {c.from_stage}" if c.from_stage else "")
                   + (f", to version {c.version}" if c.version else ""))
    for stage, states in row.stages.items():
        parts = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
        click.echo(f"  {stage:<16} {parts}")
    done, left, dead = _totals(row.stages)
    eta = "-" if row.eta_s is None else f"{row.eta_s:.0f} s"
    click.echo(f"  done {done}, left {left}, dead {dead}; {row.done_per_s:.2f} items/s, "
               f"ETA {eta}")


def _state_command(verb: str, state: CampaignState, help_text: str) -> click.Command:
    @campaign.command(verb, help=help_text)
    @click.argument("name")
    @click.option("--reason", default="", help="Why (kept in the audit stream).")
    @click.option("--dry-run", is_flag=True, help="Say what would change, change nothing.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def command(ctx: click.Context, name: str, reason: str, dry_run: bool,
                as_json: bool) -> None:
        board = _board(ctx)
        c = camps.get(board, name)
        row = next(r for r in camps.progress(board) if r.campaign.name == c.name)
        _, left, _ = _totals(row.stages)
        if dry_run:
            out = {"campaign": name, "state": row.state, "would_become": state.value,
                   "unfinished_items": left}
            if as_json:
                emit_json(out)
            else:
                click.echo(f"campaign {name}: {row.state} -> {state.value}"
                           + (f"; {left} unfinished items would become dead"
                              if state is CampaignState.CANCELLED else ""))
            return
        before = camps.set_state(board, name, state, _who(), reason)
        if as_json:
            emit_json({"campaign": name, "from": before, "to": state.value})
        else:
            click.echo(f"campaign {name}: {before} -> {state.value}")

    return command


_state_command("pause", CampaignState.PAUSED, "Nothing of the campaign is claimed; running "
               "items finish.")
_state_command("resume", CampaignState.ACTIVE, "The campaign is claimed again (parked items "
               "of a drain go back to the queues).")
_state_command("drain", CampaignState.DRAINING, "Datasets the campaign started run to the "
               "end; the others are not started.")
_state_command("cancel", CampaignState.CANCELLED, "Withdraw the campaign's unfinished items "
               "(they become dead with the reason; running ones are stopped).")


KIND = click.Choice(list(actions.KINDS))


def _pause(resume: bool) -> click.Command:
    @click.command("resume" if resume else "pause")
    @click.argument("kind", type=KIND)
    @click.argument("name")
    @click.option("--reason", default="", help="Why (shown by owl status, kept in the audit).")
    @click.pass_context
    def command(ctx: click.Context, kind: str, name: str, reason: str) -> None:
        board = _board(ctx)
        _check_pause_target(board, kind, name)
        res = actions.pause(board, kind, name, _who(), reason, resume=resume)
        if not res.changed:
            raise BoardError(f"{kind} {name}: {res.detail}")
        click.echo(f"{'resumed' if resume else 'paused'} {kind} {name}")

    command.help = ("Lift a pause." if resume else
                    "Pause a stage (TEMPLATE:STAGE), template, campaign, dataset or agent: "
                    "nothing new is claimed there, including datasets registered later; "
                    "running items finish.")
    return command


def _check_pause_target(board: Board, kind: str, name: str) -> None:
    if kind == "stage":
        tpl, _, stage = name.partition(":")
        if not stage:
            raise BoardError(f"stage {name!r}: write TEMPLATE:STAGE, e.g. demo:calibrate")
        check_selection(board, tpl, [stage], [])
    elif kind == "template":
        check_template(board, name)
    elif kind == "campaign":
        camps.get(board, name)
    elif kind == "agent":
        from owl import queries

        ids = [a["id"] for a in queries.agents(board)]
        if name not in ids:
            raise BoardError(f"no agent {name!r} is heartbeating on board {board.name!r}"
                             + (f" (agents: {', '.join(ids)})" if ids else ""))


@click.command()
@click.argument("agent_id")
@click.option("--reason", default="", help="Why (kept in the audit stream).")
@click.pass_context
def drain(ctx: click.Context, agent_id: str, reason: str) -> None:
    """Make an agent finish its running items and exit (it stops claiming at once)."""
    board = _board(ctx)
    _check_pause_target(board, "agent", agent_id)
    res = actions.drain_agent(board, agent_id, _who(), reason)
    if not res.changed:
        raise BoardError(f"agent {agent_id}: {res.detail}")
    click.echo(f"draining agent {agent_id}")


@click.group()
def limit() -> None:
    """Board-wide limits of running items: pool:NAME, stage:TEMPLATE:STAGE, campaign:NAME."""


@limit.command("set")
@click.argument("name")
@click.argument("value", type=click.IntRange(min=0))
@click.pass_context
def limit_set(ctx: click.Context, name: str, value: int) -> None:
    """Set a limit live (it wins over the limit a template declares)."""
    name = name if ":" in name else f"pool:{name}"
    actions.set_limit(_board(ctx), name, value, _who())
    click.echo(f"limit {name} = {value}")


@limit.command("unset")
@click.argument("name")
@click.pass_context
def limit_unset(ctx: click.Context, name: str) -> None:
    """Remove a live limit (a template's declared limit applies again)."""
    name = name if ":" in name else f"pool:{name}"
    if not actions.set_limit(_board(ctx), name, None, _who()).changed:
        raise BoardError(f"no live limit {name!r} is set (owl limit list)")
    click.echo(f"limit {name} removed")


@limit.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def limit_list(ctx: click.Context, as_json: bool) -> None:
    """Every limit in force, where it comes from and the permits held now."""
    board = _board(ctx)
    live = board.redis.hgetall(board.keys.ctl_key("limits"))
    declared = board.redis.hgetall(board.keys.ctl_key("tlimits"))
    rows = [{"name": n, "limit": int(live.get(n, declared.get(n, 0))),
             "from": "live" if n in live else "template",
             "held": actions.permits_held(board, n)}
            for n in sorted(set(live) | set(declared))]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<40} {r['held']:>6} / {r['limit']:<6} ({r['from']})")


@click.command()
@click.option("--band-aging", type=float, metavar="SECONDS",
              help="A campaign waiting this long with work is promoted one band.")
@click.option("--priority-aging", type=float, metavar="SECONDS",
              help="One point of stage priority is worth this much waiting.")
@click.pass_context
def sched(ctx: click.Context, band_aging: float | None, priority_aging: float | None) -> None:
    """Board-wide scheduling settings (see docs/control.md)."""
    board = _board(ctx)
    if band_aging is None and priority_aging is None:
        from owl.control.view import BAND_AGING_S, PRIORITY_AGING_S

        got = board.redis.hgetall(board.keys.ctl_key("settings"))
        click.echo(f"band aging {got.get('band_aging', BAND_AGING_S)} s, priority aging "
                   f"{got.get('priority_aging', PRIORITY_AGING_S)} s")
        return
    actions.set_aging(board, band_aging_s=band_aging, priority_aging_s=priority_aging)
    click.echo("scheduling settings updated")


@click.command()
@click.option("-n", "count", default=50, show_default=True, help="Newest actions shown.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON Lines).")
@click.pass_context
def actions_(ctx: click.Context, count: int, as_json: bool) -> None:
    """Control actions, oldest first: pauses, drains, limits, campaign changes, schedule
    ticks, each with who, what and why (item transitions are in `owl events`)."""
    rows = actions.control_events(_board(ctx), count)
    if as_json:
        from owl.cli.output import emit_line

        for r in rows:
            emit_line(r)
        return
    if not rows:
        raise BoardError("no control actions on this board yet")
    for r in rows:
        when = int(r["id"].split("-")[0])
        import time as _time

        stamp = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(when / 1000))
        change = f" {r.get('fr', '')} -> {r['to']}" if r.get("to") else ""
        why = f"  ({r['why']})" if r.get("why") else ""
        click.echo(f"{stamp} {r.get('what', ''):<7} {r.get('kind', '')} {r.get('name', '')}"
                   f"{change} by {r.get('by', '')}{why}")


actions_.name = "actions"
pause = _pause(False)
resume = _pause(True)

COMMANDS = [rerun, campaign, pause, resume, drain, limit, sched, actions_]
