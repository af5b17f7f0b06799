"""A table for a person on a terminal (rich), or for a program: tab-separated lines under a
header line, every cell whole, no styles."""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence

from rich.table import Table

from submitter.terminal import console, plain_tables


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    plain: bool = False,
    whole: Collection[str] = (),
) -> None:
    """Print `rows` under `columns`; plain (`plain`, or stdout not a terminal) leaves out the
    title, which would not be a row, and keeps every column."""
    if plain_tables(plain):
        sys.stdout.write(plain_text(columns, rows))
        return
    console().print(rich_table(columns, rows, title=title, whole=whole))


def rich_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    whole: Collection[str] = (),
) -> Table:
    """The table for a terminal. The width goes to what has content: a column empty in every
    row is left out; the columns in `whole` (ids, states, short words) stay on one line and are
    cut only when nothing else can give way; the others wrap, folding a word too long for
    the column rather than cutting it."""
    shown = [i for i in range(len(columns)) if not rows or any(row[i] for row in rows)]
    table = Table(title=title, show_header=True, header_style="bold")
    for i in shown:
        if columns[i] in whole:
            table.add_column(columns[i], no_wrap=True)
        else:
            table.add_column(columns[i], overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


def plain_text(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [columns, *rows]
    return "".join("\t".join(_cell(c) for c in line) + "\n" for line in lines)


def _cell(text: str) -> str:
    """A tab or a line break inside a cell would split it: written as \\t and \\n, as in
    PostgreSQL's text format (and a backslash as \\\\, so that nothing is ambiguous)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
