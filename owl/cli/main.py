"""Entry point of the ``owl`` command and the options every command shares."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from owl import __version__
from owl.config import Settings
from owl.errors import OwlError
from owl.redact import redact

#: Every command, imported only when it is run (or its help is asked for), so that
#: ``owl --help`` and ``owl status`` stay fast: name -> (module, attribute, one-line help).
#: The modules' ``COMMANDS`` lists are the source of truth; tests/test_cli_output.py checks
#: that this table names each of them once.
LAZY: dict[str, tuple[str, str, str]] = {
    "agent": ("owl.cli.run", "agent", "Claim and run the items of a template's stages."),
    "agents": ("owl.cli.ops", "agents",
               "Agents serving this board (OPUS PSTAT-like): host, pid, stages, items."),
    "bestrefs": ("owl.cli.calibcmd", "bestrefs",
                 "Choose reference files for exposures by the selection rules."),
    "board": ("owl.cli.boardcmd", "board",
              "The board itself: the embedded server and the keys of a board."),
    "calib": ("owl.calib.cli", "calib",
              "CALACS-like calibration of ACS/WFC frames (hstcal's executables)."),
    "dead": ("owl.cli.ops", "dead", "Dead items with the reason of their last failure."),
    "demo": ("owl.cli.run", "demo",
             "Run the demo pipeline on generated datasets, with progress, then print the board."),
    "events": ("owl.cli.ops", "events", "The audit trail of transitions (newest last)."),
    "explain": ("owl.cli.refscmd", "explain",
                "Why an item would run, rerun or was reused, and why it is not running now."),
    "hold": ("owl.cli.ops", "hold", "Hold items so they do not run; a running task is paused."),
    "ingest": ("owl.cli.run", "ingest", "Register datasets from files (or directories of files)."),
    "logs": ("owl.cli.logscmd", "logs", "What a task printed (stdout/stderr of one attempt)."),
    "preview": ("owl.cli.calibcmd", "preview",
                "Render a frame's SCI arrays (both chips, zscale) as a PNG."),
    "refs": ("owl.cli.refscmd", "refs",
             "Reference rules and deliveries: what a change moves, and reprocessing it."),
    "release": ("owl.cli.ops", "release", "Release held items."),
    "retry": ("owl.cli.ops", "retry", "Retry dead items (or cut short a retry's backoff)."),
    "show": ("owl.cli.showcmd", "show",
             "A dataset: its stages, attempts, outputs, errors and history."),
    "skip": ("owl.cli.ops", "skip", "Skip items: they count as done for their successors."),
    "status": ("owl.cli.ops", "status",
               "Counts of items per template, stage and state (or the OPUS-style grid)."),
    "template": ("owl.cli.boardcmd", "template", "Pipeline template files."),
    "watch": ("owl.cli.watchcmd", "watch",
              "A live terminal board: counts, grid, agents, events, dead items; act on them."),
    "web": ("owl.web.cli", "web",
            "The web board: overview, grid, datasets, agents, dead letters, /metrics."),
    "rerun": ("owl.cli.ctlcmd", "rerun",
              "Reprocess datasets from a stage onward as a new generation (production band)."),
    "campaign": ("owl.cli.ctlcmd", "campaign",
                 "Campaigns: reprocessing with a band, a fair share, limits and a schedule."),
    "pause": ("owl.cli.ctlcmd", "pause",
              "Pause a stage (TEMPLATE:STAGE), template, campaign, dataset or agent: nothing "
              "new is claimed there, including datasets registered later; running items "
              "finish."),
    "resume": ("owl.cli.ctlcmd", "resume", "Lift a pause."),
    "drain": ("owl.cli.ctlcmd", "drain",
              "Make an agent finish its running items and exit (it stops claiming at once)."),
    "limit": ("owl.cli.ctlcmd", "limit",
              "Board-wide limits of running items: pool:NAME, stage:TEMPLATE:STAGE, "
              "campaign:NAME."),
    "sched": ("owl.cli.ctlcmd", "sched", "Board-wide scheduling settings (see docs/control.md)."),
    "actions": ("owl.cli.ctlcmd", "actions_",
                "Control actions, oldest first: pauses, drains, limits, campaign changes, "
                "schedule ticks, each with who, what and why (item transitions are in `owl "
                "events`)."),
}

#: Commands that never log: they skip the logging set-up (importing structlog is a third of
#: ``owl status``'s time). tests/test_cli_output.py checks they import no structlog at all,
#: so nothing can log unconfigured.
QUIET = frozenset({"status", "agents", "dead", "events", "retry", "hold", "release", "skip",
                   "board", "template", "watch", "logs"})

#: Modules whose ``COMMANDS`` are searched for a command missing from LAZY.
MODULES = ("owl.cli.ops", "owl.cli.showcmd", "owl.cli.run", "owl.cli.boardcmd",
           "owl.cli.calibcmd",
           "owl.cli.watchcmd", "owl.cli.logscmd", "owl.web.cli", "owl.cli.ctlcmd",
           "owl.cli.refscmd")


class OwlGroup(click.Group):
    """Turns owl's own errors into one clear line on stderr and exit status 1, and imports
    heavy commands only when they are run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})  # a loaded command is in both

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
        elif cmd_name not in self.commands:
            # A command a module lists but LAZY does not name yet: slower, never missing.
            for module in MODULES:
                for command in importlib.import_module(module).COMMANDS:
                    if command.name == cmd_name:
                        self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OwlError as exc:
            click.echo(redact(f"owl: error: {exc}"), err=True)
            sys.exit(1)
        except Exception as exc:
            from redis.exceptions import NoPermissionError

            from owl.faults import explain, passing

            if isinstance(exc, NoPermissionError):  # an ACL user without this right
                click.echo(redact(f"owl: error: the Redis user may not do this (see "
                                  f"'Redis users and TLS' in the README): {exc}"), err=True)
                sys.exit(1)
            if not passing(exc):
                raise
            # a full disk or a server lost mid-command: one line, not a traceback
            click.echo(redact(f"owl: error: {explain(exc)}"), err=True)
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
    if ctx.invoked_subcommand not in QUIET:
        from owl.logs import configure

        configure(json_lines=log_json, level="debug" if verbose else "info")
    ctx.obj = {
        "settings": Settings.from_env(redis_url=redis_url, home=home, board=board),
        "log_json": log_json,
    }


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


def emit_json(data: Any) -> None:
    """One JSON document on stdout (see :func:`owl.cli.output.to_json`: NaN becomes null)."""
    from owl.cli.output import to_json

    click.echo(to_json(data, indent=2))


def build_cli() -> click.Group:
    """The ``owl`` group; its commands are imported when first used."""
    return cli


def main() -> None:
    build_cli()(prog_name="owl")
