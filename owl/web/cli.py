"""``owl web``: serve the web board (and ``/metrics``) of the board the settings point at."""

from __future__ import annotations

import os

import click

from owl.cli.main import settings_of
from owl.connect import open_board


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the default is this machine only).")
@click.option("--port", default=8250, show_default=True, help="Port to listen on.")
@click.pass_context
def web(ctx: click.Context, host: str, port: int) -> None:
    """The web board: overview, grid, datasets, agents, dead letters, JSON API, /metrics.

    Read-only unless OWL_WEB_TOKEN is set in the environment: operators then sign in with
    that token (scripts send it as a bearer token) to retry, hold, release or skip, and
    every action is recorded on the board as web:NAME.
    """
    import uvicorn

    from owl.web.app import create_app

    settings = settings_of(ctx)
    token = os.environ.get("OWL_WEB_TOKEN", "")
    if token and len(token) < 16:
        raise click.BadParameter("OWL_WEB_TOKEN must be at least 16 characters",
                                 param_hint="OWL_WEB_TOKEN")
    board = open_board(settings)
    app = create_app(board, token=token, lease=settings.lease)
    mode = "actions need OWL_WEB_TOKEN" if token else "read-only (OWL_WEB_TOKEN not set)"
    click.echo(f"owl web: board {board.name!r} on http://{host}:{port}/ ({mode})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")

COMMANDS = [web]
