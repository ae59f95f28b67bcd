"""``owl watch``: the live terminal board (textual is imported only by this command)."""

from __future__ import annotations

import click

from owl.cli.main import settings_of


@click.command()
@click.option("--refresh", default=2.0, show_default=True,
              help="Seconds between refreshes when no event arrives (events refresh at once).")
@click.option("--page-size", default=100, show_default=True, help="Grid rows per page.")
@click.pass_context
def watch(ctx: click.Context, refresh: float, page_size: int) -> None:
    """A live terminal board: counts, grid, agents, events, dead items; act on them.

    Keys: 1-5 switch tabs (counts, grid, agents, events, dead); / filters the grid
    (t:TEMPLATE s:STATE NAME); n/p page; h hold, l release, r retry the selected dataset or
    dead item; P pauses or resumes the selected stage, dataset or agent; each after a
    confirmation listing exactly what will change; q quits.
    """
    from owl.cli.ops import _board, _user
    from owl.watch.app import WatchApp

    if refresh <= 0:
        raise click.BadParameter("must be positive", param_hint="--refresh")
    if page_size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--page-size")
    app = WatchApp(_board(ctx), who=f"operator:{_user()}", lease=settings_of(ctx).lease,
                   idle_refresh=refresh, page_size=page_size)
    app.run()


COMMANDS = [watch]
