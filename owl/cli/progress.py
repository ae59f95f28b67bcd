"""Progress bars with rate and ETA for long CLI work, on a terminal only.

Piped or redirected output gets no bar (and no control characters): the per-item lines, or
the JSON Lines of ``--json``, are the whole output there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from owl.cli.output import is_terminal

#: Work smaller than this finishes before a bar would help.
MIN_ITEMS = 20

Advance = Callable[[int], None]
Say = Callable[[str], None]


@contextmanager
def progress(label: str, total: int, *, enabled: bool = True) -> Iterator[tuple[Advance, Say]]:
    """A bar for `total` steps, as ``(advance, say)``: ``advance(n)`` moves it, ``say(line)``
    prints a line above it. Without a terminal (or below :data:`MIN_ITEMS`, or when not
    `enabled`) there is no bar and ``say`` prints plainly.

    Parameters
    ----------
    label : str
        What is being done ("ingest", "hold").
    total : int
        The number of steps.
    enabled : bool
        False for machine output (``--json``), which must stay free of bars.
    """
    import click

    if not (enabled and total >= MIN_ITEMS and is_terminal()):
        yield (lambda _n: None), (lambda line: click.echo(line))
        return
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(label, total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f}/s" if speed else "")

        yield advance, (lambda line: bar.console.print(escape(line), highlight=False))
