"""Board and template housekeeping: owl board status|stop|destroy, owl template validate."""

from __future__ import annotations

from pathlib import Path

import click

from owl.cli.main import emit_json, settings_of
from owl.connect import open_board
from owl.redact import redact
from owl.server import server_info, stop_server
from owl.template_loader import validate_files


@click.group()
def board() -> None:
    """The board itself: the embedded server and the keys of a board."""


@board.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def board_status(ctx: click.Context, as_json: bool) -> None:
    """Where the board lives and how big it is."""
    settings = settings_of(ctx)
    b = open_board(settings, create=False)
    info = b.redis.info()
    data = {"board": b.name, "shards": b.shards,
            "redis": redact(settings.redis_url) if settings.redis_url else "embedded",
            "home": str(settings.home.resolve()),
            "redis_version": info.get("redis_version"), "used_memory": info.get("used_memory"),
            "aof_enabled": info.get("aof_enabled"),
            "embedded_server": server_info(settings.home) if not settings.redis_url else None}
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:<16} {value}")


@board.command("stop")
@click.pass_context
def board_stop(ctx: click.Context) -> None:
    """Stop the embedded Redis server (its data stays in OWL_HOME)."""
    settings = settings_of(ctx)
    if settings.redis_url:
        raise click.UsageError("the board is on an external Redis (--redis/OWL_REDIS_URL); "
                               "owl only stops its embedded server")
    stopped = stop_server(settings.home)
    click.echo("embedded Redis stopped" if stopped else "no embedded Redis was running")


@board.command("destroy")
@click.option("--yes", is_flag=True, help="Really delete every key of the board.")
@click.pass_context
def board_destroy(ctx: click.Context, yes: bool) -> None:
    """Delete every key of this board (datasets, items, events)."""
    b = open_board(settings_of(ctx), create=False)
    if not yes:
        raise click.UsageError(f"this deletes everything on board {b.name!r}; add --yes")
    click.echo(f"deleted {b.destroy()} keys of board {b.name!r}")


@click.group()
def template() -> None:
    """Pipeline template files."""


@template.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def template_validate(files: tuple[Path, ...]) -> None:
    """Check template files; every problem is printed as file:line: path: problem."""
    problems = validate_files(files)
    for p in problems:
        click.echo(p, err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{len(files)} file(s) valid")


@template.command("migrate")
@click.option("--from-version", "old_version", required=True, help="Version to move from.")
@click.option("--to-version", "new_version", required=True,
              help="Version to move to: on the board already, or the version of the template "
                   "file (which is then pinned).")
@click.option("--template", "-t", "name", help="Template name (default: the one template "
                                                "on the board with --from-version).")
@click.option("--dry-run", is_flag=True, help="Show what each dataset would do; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def template_migrate(ctx: click.Context, old_version: str, new_version: str, name: str | None,
                     dry_run: bool, as_json: bool) -> None:
    """Move in-flight datasets to another version of their template: finished stages are
    kept, the others start afresh under the new version; running datasets are left alone."""
    import getpass

    from owl import migrate, pins
    from owl.errors import BoardError
    from owl.template_loader import find_template

    settings = settings_of(ctx)
    b = open_board(settings)
    on_board = pins.pinned(b.redis, b.keys)
    names = sorted({p.name for p in on_board if p.version == old_version
                    and (name is None or p.name == name)})
    if len(names) != 1:
        what = f"template {name!r} version {old_version!r}" if name else \
            f"version {old_version!r}"
        have = ", ".join(f"{p.name} {p.version}" for p in on_board) or "none"
        where = ("not on board" if not names
                 else f"a version of several templates ({', '.join(names)}) on board")
        raise BoardError(f"{what} is {where} {b.name!r}; pinned versions: {have}"
                         + ("; name one with --template" if len(names) > 1 else ""))
    tpl = names[0]
    old = b.stored_template(tpl, old_version)
    if any(p.name == tpl and p.version == new_version for p in on_board):
        new = b.stored_template(tpl, new_version)
    else:
        new = find_template(tpl, settings.template_dirs())
        if new.version != new_version:
            raise BoardError(f"version {new_version!r} of template {tpl!r} is neither on board "
                             f"{b.name!r} nor in {new.source} (which has version "
                             f"{new.version!r})")
    moves = migrate.plan(b, old, new)
    if not moves:
        raise BoardError(f"no dataset of board {b.name!r} is pinned to template {tpl!r} "
                         f"version {old_version!r}")
    if dry_run:
        rows = [(m, m.skip or "would move") for m in moves]
    else:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        rows = migrate.apply(b, new, moves, old_version, f"operator:{user}")
    if as_json:
        emit_json([{"dataset": m.dataset, "keep": m.keep, "reset": m.reset, "drop": m.drop,
                    "outcome": outcome} for m, outcome in rows])
        return
    for m, outcome in rows:
        detail = "" if m.skip else (f": keep {', '.join(m.keep) or '-'}; start "
                                    f"{', '.join(m.reset) or '-'}; drop {', '.join(m.drop) or '-'}")
        click.echo(f"{m.dataset} {old_version} -> {new_version}: {outcome}{detail}")
    moved = sum(1 for m, o in rows if not m.skip and (dry_run or o.startswith("moved")))
    click.echo(f"{moved} of {len(rows)} dataset(s) " + ("would move (dry run: nothing changed)"
                                                        if dry_run else "moved"))


COMMANDS = [board, template]
