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


COMMANDS = [board, template]
