"""One table style for every command: no vertical rules, so wide tables fit 80 columns. Written to a
pipe or a file (no terminal), a table is never cut to 80 columns: ids and dates are copied whole."""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


def render_table(console: Console, title: str, columns: Iterable[str], rows: Iterable[Iterable[object]]) -> None:
    """Print the table on *console*; a cell that is a `rich.text.Text` keeps its colours."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else str(cell) for cell in row))
    console.print(table)


def print_table(title: str, columns: Iterable[str], rows: Iterable[Iterable[object]]) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=240)
    render_table(console, title, columns, rows)
