"""Entry point of the ``owl`` command and the options every command shares."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from owl import __version__
from owl.config import Settings
from owl.errors import OwlError
from owl.logs import configure

#: Commands imported only when used (the calibration library loads numba and astropy).
LAZY = {"calib": ("owl.calib.cli", "calib",
                  "CALACS-like calibration of ACS/WFC frames (hstcal's executables).")}


class OwlGroup(click.Group):
    """Turns owl's own errors into one clear line on stderr and exit status 1, and imports
    heavy commands only when they are run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                rows.append((name, LAZY[name][2]))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 20)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY and cmd_name not in self.commands:
            module, attr, _ = LAZY[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OwlError as exc:
            click.echo(f"owl: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=OwlGroup)
@click.version_option(__version__, prog_name="owl")
@click.option("--redis", "redis_url", metavar="URL", envvar="OWL_REDIS_URL",
              help="Redis server URL (default: the embedded board under --home).")
@click.option("--home", type=click.Path(path_type=Path), envvar="OWL_HOME",
              help="Where the embedded board and task outputs live (default ./.owl).")
@click.option("--board", metavar="NAME", envvar="OWL_BOARD",
              help="Board name (key prefix); several boards can share one Redis.")
@click.option("--log-json", is_flag=True, help="Log JSON lines instead of the console format.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug events too.")
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None, home: Path | None, board: str | None,
        log_json: bool, verbose: bool) -> None:
    """owl: a blackboard workflow engine for astronomy data processing."""
    configure(json_lines=log_json, level="debug" if verbose else "info")
    ctx.obj = {
        "settings": Settings.from_env(redis_url=redis_url, home=home, board=board),
        "log_json": log_json,
    }


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def build_cli() -> click.Group:
    """The ``owl`` group with every command attached (idempotent)."""
    from owl.cli import boardcmd, calibcmd, ops, run

    for group in (ops, run, boardcmd, calibcmd):
        for command in group.COMMANDS:
            cli.add_command(command)
    return cli


def main() -> None:
    build_cli()(prog_name="owl")
