"""A table for a person on a terminal (rich), or for a program: tab-separated lines under a
header line, every cell whole, no styles."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.table import Table

from submitter.terminal import console, plain_tables


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    plain: bool = False,
) -> None:
    """Print `rows` under `columns`; plain (`plain`, or stdout not a terminal) leaves out the
    title, which would not be a row."""
    if plain_tables(plain):
        sys.stdout.write(plain_text(columns, rows))
        return
    console().print(rich_table(columns, rows, title=title))


def rich_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None
) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def plain_text(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [columns, *rows]
    return "".join("\t".join(_cell(c) for c in line) + "\n" for line in lines)


def _cell(text: str) -> str:
    """A tab or a line break inside a cell would split it: written as \\t and \\n, as in
    PostgreSQL's text format (and a backslash as \\\\, so that nothing is ambiguous)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
