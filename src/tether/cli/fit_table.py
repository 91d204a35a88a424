"""A table that fits the terminal by leaving columns out, never by cutting the ones it keeps.

rich squeezes a table wider than the console by truncating every column (``01a24e80d8…``) and
collapsing some to nothing, so on a narrow terminal ``tether runs list`` showed neither a run
id that could be copied nor a status. Here each column has a rank: the columns that must be
whole (a run id, a status) are never dropped, and the others go, least useful first, until what
is left fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

GAP = 3
"""Columns of space between two columns of a ``box.SIMPLE_HEAD`` table without edge padding."""


@dataclass(slots=True)
class Column:
    header: str
    cells: Sequence[Text | str]
    drop: int | None = None
    """Rank of a column that may be left out when the table is too wide (1 goes first);
    None: always kept."""
    options: dict[str, Any] = field(default_factory=dict)
    """More ``Table.add_column`` options (``justify``...)."""

    def width(self) -> int:
        cells = (Text(c) if isinstance(c, str) else c for c in self.cells)
        return max([len(self.header), *(c.cell_len for c in cells)])  # wide characters: 2


def fitted_table(columns: Sequence[Column], width: int) -> Table:
    """A table of ``columns``, without the droppable ones that would make it wider than ``width``.
    The kept columns do not wrap: a value is shown whole or the column is left out."""
    keep = {id(c) for c in columns if c.drop is None}
    used = _total([c for c in columns if id(c) in keep])
    for col in sorted((c for c in columns if c.drop is not None), key=lambda c: -(c.drop or 0)):
        if used + GAP + col.width() <= width:  # the most useful first, each where it fits
            keep.add(id(col))
            used += GAP + col.width()
    kept = [c for c in columns if id(c) in keep]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in kept:
        table.add_column(col.header, no_wrap=True, min_width=col.width(), **col.options)
    rows = len(kept[0].cells) if kept else 0
    for i in range(rows):
        table.add_row(*(col.cells[i] for col in kept))
    return table


def _total(columns: Sequence[Column]) -> int:
    return sum(c.width() for c in columns) + GAP * max(0, len(columns) - 1)
