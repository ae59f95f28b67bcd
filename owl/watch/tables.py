"""Filling ``owl watch``'s tables."""

from __future__ import annotations

import weakref

from textual.widgets import DataTable

#: What each table shows now (rows, keys), so an unchanged refresh re-renders nothing.
_SHOWN: weakref.WeakKeyDictionary[DataTable[str], tuple[list[tuple[str, ...]],
                                                         list[str] | None]] = (
    weakref.WeakKeyDictionary())


def refill(table: DataTable[str], rows: list[tuple[str, ...]],
           keys: list[str] | None = None) -> None:
    """Replace a table's rows, keeping the cursor on the same line; rows the table already
    shows are left alone (a refresh of an unchanged board re-renders nothing)."""
    if _SHOWN.get(table) == (rows, keys) and table.row_count == len(rows):
        return
    _SHOWN[table] = (rows, keys)
    row = table.cursor_row
    table.clear()
    for i, cells in enumerate(rows):
        table.add_row(*cells, key=keys[i] if keys else None)
    if rows:
        table.move_cursor(row=min(row, len(rows) - 1))
