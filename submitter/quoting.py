"""Quoting helpers, used as the templates' filters and by the schedulers' probe directives:
every user value is data, never code."""

from __future__ import annotations

import shlex
from typing import Any

from submitter.errors import TemplateError


def shell_quote(value: Any) -> str:
    """One shell word that bash reads back as exactly `value`."""
    return shlex.quote(str(value))


def shell_quote_line(value: Any) -> str:
    """`shell_quote` on one line: a value with control characters (a line break) as a
    `$'...'` word with each of them escaped, so one line holds a whole task's values."""
    text = str(value)
    if not any(ch < " " or ch == "\x7f" for ch in text):
        return shlex.quote(text)
    escaped = "".join(_ANSI_C.get(ch) or _escape_control(ch) for ch in text)
    return f"$'{escaped}'"


_ANSI_C = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape_control(ch: str) -> str:
    return f"\\x{ord(ch):02x}" if ch < " " or ch == "\x7f" else ch


def directive_value(value: Any) -> str:
    """A value for a `#SBATCH`/`#PBS`/`#BSUB` line: one line, double-quoted if it has spaces."""
    text = str(value)
    if any(ch in text for ch in "\n\r\0"):
        raise TemplateError(f"directive value {text!r} contains a line break")
    if any(ch.isspace() or ch in "\"'" for ch in text):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return text


def directive_line(value: Any) -> str:
    """A whole user-supplied directive line: kept as written, but never a line break."""
    text = str(value)
    if any(ch in text for ch in "\n\r\0"):
        raise TemplateError(f"directive {text!r} contains a line break")
    return text
