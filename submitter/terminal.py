"""What the terminal may be sent: colour and styles only when NO_COLOR is unset, rich tables
only on a terminal. Every rich Console of the CLI is made here."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console


def no_color() -> bool:
    """NO_COLOR set to anything but the empty string (https://no-color.org)."""
    return os.environ.get("NO_COLOR", "") != ""


def console(file: TextIO | None = None) -> Console:
    """A console that sends no escape at all under NO_COLOR: rich's own `no_color` drops the
    colours but keeps bold and the other styles; no colour system drops them all."""
    stream = file or sys.stdout
    return Console(
        file=stream,
        highlight=False,
        color_system=None if no_color() else "auto",
        width=None if stream.isatty() else 200,
    )


def plain_tables(plain: bool = False) -> bool:
    """Tables as tab-separated lines: asked for, or stdout is not a terminal (a pipe, a file)."""
    return plain or not sys.stdout.isatty()
