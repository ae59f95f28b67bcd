"""Tasks of the benchmark pipeline (``pipelines/noop.yaml``): they import nothing.

A condor job starts a fresh interpreter for every item, so a benchmark task that imported
numpy and astropy (as the demo's tasks do) would time those imports, not owl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from owl.task import TaskContext


def noop(ctx: TaskContext) -> None:
    """Does nothing: the benchmark pipeline measures the engine alone."""
    return None
