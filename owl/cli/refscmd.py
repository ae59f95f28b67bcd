"""Reference deliveries: ``owl refs diff`` and ``owl refs apply``; and ``owl explain``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from owl.cli.main import emit_json, settings_of
from owl.errors import BoardError


def _board(ctx: click.Context) -> Any:
    from owl.connect import open_board

    return open_board(settings_of(ctx))


def _who() -> str:
    import getpass

    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator:unknown"


def _summary(report: Any) -> dict[str, Any]:
    from_stage: dict[str, int] = {}
    for a in report.affected:
        key = a.from_stage or "(no stage used it)"
        from_stage[key] = from_stage.get(key, 0) + 1
    changes = [{"reftype": ch.reftype, "old": ch.old, "new": ch.new, "datasets": n,
                "stages": sorted({st for (_, rt), sts in report.stages.items()
                                  if rt == ch.reftype for st in sts})}
               for ch, n in sorted(report.counts.items(), key=lambda kv: str(kv[0]))]
    return {"scanned": report.scanned, "affected": len(report.affected),
            "seconds": round(report.seconds, 3), "changes": changes, "from_stage": from_stage}


def _print(summary: dict[str, Any], report: Any, listing: bool) -> None:
    click.echo(f"{summary['affected']} of {summary['scanned']} datasets with recorded "
               f"reference selections are affected ({summary['seconds']:.2f} s)")
    for ch in summary["changes"]:
        stages = ", ".join(ch["stages"]) or "no stage has used it"
        click.echo(f"  {ch['reftype']} {ch['old'] or '-'} → {ch['new'] or '-'}: "
                   f"{ch['datasets']} datasets; stages {stages}")
    for stage, n in sorted(summary["from_stage"].items()):
        click.echo(f"  rerun from {stage}: {n} datasets")
    if listing:
        for a in report.affected:
            click.echo(f"{a.dataset}  from {a.from_stage or '-'}  "
                       + "; ".join(str(c) for c in a.changes))


@click.group()
def refs() -> None:
    """Reference rules and deliveries: what a change moves, and reprocessing it."""


@refs.command()
@click.argument("old", type=click.Path(path_type=Path, exists=True))
@click.argument("new", type=click.Path(path_type=Path, exists=True))
@click.option("--rules", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="For two directories: the rules in force (default: the board's).")
@click.option("--list", "listing", is_flag=True, help="List every affected dataset.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def diff(ctx: click.Context, old: Path, new: Path, rules: Path | None, listing: bool,
         as_json: bool) -> None:
    """Which datasets and stages a change moves: two rules files, or two directories of
    reference files (a file whose content differs). Read from the board's records only."""
    from owl import refs as R
    from owl.calib.bestrefs import load_rules

    board = _board(ctx)
    report = R.diff(board, R.Side.read(old), R.Side.read(new),
                    current=load_rules(rules) if rules else None)
    summary = _summary(report)
    if as_json:
        if listing:
            summary["datasets"] = [{"dataset": a.dataset, "template": a.template,
                                    "from_stage": a.from_stage,
                                    "changes": [str(c) for c in a.changes]}
                                   for a in report.affected]
        emit_json(summary)
        return
    _print(summary, report, listing)


@refs.command()
@click.argument("new", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--campaign", "-c", "campaign", required=True, help="Name of the campaign.")
@click.option("--old", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The rules NEW replaces (default: the board's current, else shipped).")
@click.option("--band", default="reprocessing", show_default=True)
@click.option("--weight", default=1.0, show_default=True)
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def apply(ctx: click.Context, new: Path, campaign: str, old: Path | None, band: str,
          weight: float, dry_run: bool, as_json: bool) -> None:
    """Record NEW as the rules in force and reprocess each affected dataset from its first
    affected stage only, as campaign NAME."""
    from owl import refs as R
    from owl.calib.bestrefs import load_rules

    board = _board(ctx)
    before = R.Side(old, rules=load_rules(old)) if old else R.Side(
        Path("<board>"), rules=R.current_rules(board))
    report = R.diff(board, before, R.Side.read(new))
    summary = _summary(report)
    plan = [(a.dataset, a.from_stage) for a in report.affected if a.from_stage]
    summary.update(campaign=campaign, rerun=len(plan), dry_run=dry_run)
    if not plan:
        raise BoardError(f"no dataset needs reprocessing for {new}: {summary['affected']} of "
                         f"{summary['scanned']} datasets with recorded reference selections "
                         "change their choice, and no stage of theirs used what changes")
    if not dry_run:
        who = _who()
        summary["rules_version"] = R.record_rules(board, new, who, campaign)
        R.set_overrides(board, report.affected, who, f"refs apply {new.name} ({campaign})")
        summary["created"] = start_campaign(board, campaign, plan, band=band, weight=weight,
                                            who=who, why=f"refs apply {new.name}")
    if as_json:
        emit_json(summary)
        return
    _print(summary, report, False)
    if dry_run:
        click.echo(f"would create campaign {campaign!r} rerunning {len(plan)} datasets "
                   "(dry run: nothing changed)")
    else:
        click.echo(f"rules {new} recorded as version {summary['rules_version']}; campaign "
                   f"{campaign!r} reruns {len(plan)} datasets from their first affected stage")


def start_campaign(board: Any, name: str, plan: list[tuple[str, str]], *, band: str,
                   weight: float, who: str, why: str) -> dict[str, Any]:
    """Create the reprocessing campaign (owl.control): each dataset reruns from its own
    first affected stage, in batches, without blocking the board."""
    from owl.control.campaigns import create
    from owl.control.model import parse_band
    from owl.control.select import Selector

    made = create(board, name=name, selector=Selector(datasets=tuple(plan), source=why),
                  who=who, band=parse_band(band), weight=weight)
    return {"campaign": made.campaign.name, "selected": made.walk.selected,
            "started": made.report.started, "pending": made.report.pending}


@click.command()
@click.argument("dataset")
@click.argument("stage", required=False)
@click.option("--rehash", is_flag=True,
              help="Hash files even when their size and mtime are unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def explain(ctx: click.Context, dataset: str, stage: str | None, rehash: bool,
            as_json: bool) -> None:
    """Why an item would run, rerun or was reused, and why it is not running now."""
    from owl.explain import explain as explain_items

    found = explain_items(_board(ctx), dataset, stage, rehash=rehash)
    if as_json:
        emit_json([vars(e) for e in found])
        return
    click.echo(f"dataset {dataset}")
    for e in found:
        click.echo(f"  {e.stage:<14} {e.state or '-':<8} {e.verdict}")
        for d in e.differences:
            click.echo(f"      differs: {d}")
        for b in e.blocked:
            click.echo(f"      not running: {b}")
        if e.last:
            job = f" job {e.last['job']}" if e.last.get("job") else ""
            click.echo(f"      last completion {e.last['at']} on {e.last['host']} "
                       f"({e.last['executor']}{job}), {e.last['seconds']} s, "
                       f"cpu {e.last['cpu']} s, peak {e.last['peak_kb']} kB"
                       + (", reused" if e.last["reused"] else ""))


COMMANDS = [refs, explain]
