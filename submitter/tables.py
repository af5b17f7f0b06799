"""A table for a person on a terminal (rich), or for a program: tab-separated lines under a
header line, every cell whole, no styles."""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Sequence

from rich.table import Table

from submitter.terminal import console, plain_tables

# On a narrow terminal, the least width each wrapping column (names, reasons) is given before
# droppable columns are left out for it.
LEAST_WRAPPED_WIDTH = 16


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
    droppable: Sequence[str] = (),
    width: int | None = None,
) -> Table:
    """The table for a terminal. The width goes to what has content: a column empty in every
    row is left out; the columns in `whole` (ids, states, short words) stay on one line and are
    cut only when nothing else can give way; the others wrap, folding a word too long for
    the column rather than cutting it. Where `width` leaves the wrapping columns less than
    LEAST_WRAPPED_WIDTH each, the `droppable` columns are left out, in their order, until
    it does not (a caption says which)."""
    shown = [i for i in range(len(columns)) if not rows or any(row[i] for row in rows)]
    dropped: list[str] = []
    for name in droppable if width is not None else ():
        if _room_for_wrapped(columns, rows, shown, whole, width or 0):
            break
        if name in (columns[i] for i in shown):
            shown = [i for i in shown if columns[i] != name]
            dropped.append(name)
    caption = (
        f"left out for width: {', '.join(dropped)} (--plain shows every column)"
        if dropped
        else None
    )
    table = Table(title=title, caption=caption, show_header=True, header_style="bold")
    for i in shown:
        if columns[i] in whole:
            table.add_column(columns[i], no_wrap=True)
        else:
            table.add_column(columns[i], overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


def _room_for_wrapped(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    shown: Sequence[int],
    whole: Collection[str],
    width: int,
) -> bool:
    """Whether a boxed table of the `shown` columns in `width` leaves each wrapping column
    LEAST_WRAPPED_WIDTH, the whole ones at their widest cell (a cell costs its text, a space
    either side and a rule)."""
    wrapped = [i for i in shown if columns[i] not in whole]
    if not wrapped:
        return True
    taken = 1 + sum(
        max(len(columns[i]), *(len(row[i]) for row in rows)) + 3
        for i in shown
        if columns[i] in whole
    )
    return width - taken - 3 * len(wrapped) >= LEAST_WRAPPED_WIDTH * len(wrapped)


_ESCAPED = re.compile(r"[\\\t\n\r]")


def plain_text(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [columns, *rows]
    return "".join("\t".join(_cell(c) for c in line) + "\n" for line in lines)


def _cell(text: str) -> str:
    """A tab or a line break inside a cell would split it: written as \\t and \\n, as in
    PostgreSQL's text format (and a backslash as \\\\, so that nothing is ambiguous)."""
    if _ESCAPED.search(text) is None:  # most cells: 800,000 of them for 100,000 tasks
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
