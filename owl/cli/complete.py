"""Shell completion of dataset, template and stage names (click's completion protocol).

Enable it once per shell (README "Command-line conventions")::

    eval "$(_OWL_COMPLETE=bash_source owl)"     # bash; zsh_source / fish_source likewise

Completion reads the board the command line (or the environment) points at, and only
when it is already reachable: pressing Tab never starts the embedded server. Dataset names
are matched by the server (``ZSCAN ... MATCH prefix*`` over the per-shard dataset indexes),
templates and stages come from the counters; at most :data:`LIMIT` names are offered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

#: Names offered at most per Tab press.
LIMIT = 200


def _board(ctx: click.Context) -> Any:
    """The board of the command line being completed, or None if it is not reachable."""
    from owl.board import Board
    from owl.config import Settings
    from owl.connect import client
    from owl.server import server_info

    root = ctx.find_root().params
    try:
        settings = Settings.from_env(redis_url=root.get("redis_url"), home=root.get("home"),
                                     board=root.get("board"))
        if settings.redis_url is None and server_info(Path(settings.home)) is None:
            return None
        return Board(client(settings), settings.board, shards=settings.shards)
    except Exception:  # completion must never print a traceback into the shell
        return None


def datasets(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Dataset ids on the board starting with `incomplete`."""
    from owl.watch.grid import glob_escape

    board = _board(ctx)
    if board is None:
        return []
    found: list[str] = []
    for s in range(board.shards):
        for ds, _ in board.redis.zscan_iter(board.keys.datasets(s),
                                            match=glob_escape(incomplete) + "*", count=1000):
            found.append(ds)
            if len(found) >= LIMIT:
                return [CompletionItem(d) for d in sorted(found)]
    return [CompletionItem(d) for d in sorted(found)]


def _counted(board: Any) -> set[tuple[str, str]]:
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.hkeys(board.keys.counts(s))
    return {tuple(f.split("|")[:2]) for fields in pipe.execute() for f in fields}


def templates(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Template names that have items on the board."""
    board = _board(ctx)
    if board is None:
        return []
    names = sorted({t for t, _ in _counted(board) if t.startswith(incomplete)})
    return [CompletionItem(n) for n in names[:LIMIT]]


def stages(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Stage names on the board (of the ``--template`` given, if any)."""
    board = _board(ctx)
    if board is None:
        return []
    template = ctx.params.get("template") or ctx.params.get("template_name")
    names = sorted({s for t, s in _counted(board)
                    if s.startswith(incomplete) and template in (None, t)})
    return [CompletionItem(n) for n in names[:LIMIT]]
