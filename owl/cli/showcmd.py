"""``owl show DATASET``: every stage and attempt of one dataset, its generations, errors,
pool jobs and history."""

from __future__ import annotations

import json
from typing import Any

import click

from owl import queries
from owl.board import Board
from owl.cli import complete
from owl.cli.main import emit_json
from owl.cli.ops import _board, _ms
from owl.history import history as dataset_history
from owl.model import State


@click.command()
@click.argument("dataset", shell_complete=complete.datasets)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")
@click.option("--yaml", "as_yaml", is_flag=True, help="The same document as YAML.")
@click.pass_context
def show(ctx: click.Context, dataset: str, as_json: bool, as_yaml: bool) -> None:
    """A dataset: its stages, attempts, outputs, errors and history."""
    from owl.cli.output import is_terminal, print_table, to_json

    board = _board(ctx)
    ds = queries.dataset(board, dataset)
    history = dataset_history(board, dataset, ds.created_ms)
    fails = queries.failures_of(board, dataset, [i.stage for i in ds.items])
    jobs = _condor_jobs(board, ds)
    from owl.control.rerun import generations

    gens = generations(board, dataset)
    if as_json or as_yaml:
        doc = {"dataset": ds.dataset, "template": ds.template, "version": ds.version,
               "path": ds.path, "created_ms": ds.created_ms,
               "items": [vars(i) for i in ds.items], "failures": fails,
               "condor": jobs, "history": history, "generations": gens}
        if as_yaml:
            from owl.cli.output import to_yaml

            click.echo(to_yaml(doc), nl=False)
        else:
            emit_json(doc)
        return
    if is_terminal():
        print_table(f"dataset {ds.dataset}  template {ds.template} ({ds.version})  input "
                    f"{ds.path or '-'}  registered {_ms(ds.created_ms)}",
                    ["stage", "state", "attempts", "token", "owner", "at"],
                    [[i.stage, i.state, i.attempts, i.token or "-", i.owner or "-",
                      _ms(i.updated_ms)] for i in ds.items], right=["attempts"])
    else:
        click.echo(f"dataset {ds.dataset}  template {ds.template} ({ds.version})")
        click.echo(f"  input {ds.path or '-'}  registered {_ms(ds.created_ms)}")
    for i in ds.items:
        if is_terminal():
            if _has_details(i, jobs, fails):
                click.echo(f"  {i.stage}:")
        else:
            click.echo(f"  {i.stage:<16} {i.state:<8} attempts {i.attempts}  token "
                       f"{i.token or '-'}  owner {i.owner or '-'}  at {_ms(i.updated_ms)}")
        if i.state == State.RETRY:
            click.echo(f"    retry due {_ms(i.due_ms)}")
        if i.memory_mb:
            click.echo(f"    memory request escalated to {i.memory_mb} MB")
        job = jobs.get(i.stage)
        if job:
            hold = f", held: {job['hold_reason']}" if job.get("hold_reason") else ""
            where = job.get("job") or job.get("error", "")
            click.echo(f"    condor job {where} {job.get('state', '')}{hold}")
        if i.outputs:
            click.echo(f"    outputs {to_json(i.outputs)}")
        for f in fails[i.stage]:
            click.echo(f"    attempt {f.get('attempt')} failed ({f.get('class')}): "
                       f"{f.get('message')}")
        if i.state == State.DEAD and fails[i.stage]:
            tb = fails[i.stage][-1].get("traceback") or ""
            for line in tb.rstrip().splitlines():
                click.echo(f"      | {line}")
    _print_generations(gens)
    click.echo("  history:")
    for e in history:
        why = f"  ({e['why']})" if e.get("why") else ""
        tok = f" token {e['tk']}" if e.get("tk") else ""
        when = _ms(int(e["t"]) // 1000)
        click.echo(f"    {when} {e['st']:<16} {e['fr'] or '-':>8} -> {e['to']:<8}"
                   f" by {e['by']}{tok}{why}")


def _print_generations(gens: dict[str, Any]) -> None:
    click.echo(f"  generation {gens['generation']} (campaign {gens['campaign']})"
               + (f"; a rerun from {gens['pending_rerun']['from']} waits for its running items"
                  if gens["pending_rerun"] else ""))
    for rec in gens["previous"]:
        click.echo(f"    generation {rec['g']} (campaign {rec['cp']}, version {rec['v']}), "
                   f"ended {_ms(int(rec['t']))} by {rec.get('by', '')}: rerun from "
                   f"{rec.get('from', '')}" + (f" ({rec['why']})" if rec.get("why") else ""))
        for stage, st in rec["stages"].items():
            click.echo(f"      {stage:<16} {st['s']:<8} attempts {st['a']}  token "
                       f"{st['k'] or '-'}  outputs {json.dumps(st['out'], sort_keys=True)}")


def _has_details(i: queries.Item, jobs: dict[str, Any], fails: dict[str, Any]) -> bool:
    """Whether ``owl show`` has more to say about an item than its table row."""
    return bool(i.state == State.RETRY or i.memory_mb or jobs.get(i.stage) or i.outputs
                or fails[i.stage])


def _condor_jobs(board: Board, ds: queries.Dataset) -> dict[str, dict[str, Any]]:
    """Per condor stage of the dataset, what the schedd knows of its latest job."""
    return queries.condor_jobs(board, ds, "cli")


COMMANDS = [show]
