"""Bytes read on a host in one script: each read prints a line `KEY<tab><base64>`, so any
byte comes back through a text channel, and a read that fails prints an empty value."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable


def script(reads: Iterable[tuple[str, str]]) -> str:
    """One script for `reads`: (key, shell command printing the bytes wanted). Keys are the
    caller's own words (no tab, no newline, nothing the shell would read)."""
    return "".join(
        f"printf '%s\\t' {key}; {{ {command}; }} 2>/dev/null | base64 | tr -d '\\n'; printf '\\n'\n"
        for key, command in reads
    )


def parse(output: str) -> dict[str, bytes]:
    """What `script` printed, by key; a line that is not a read's is left out."""
    read: dict[str, bytes] = {}
    for line in output.splitlines():
        key, tab, encoded = line.partition("\t")
        if not tab:
            continue
        try:
            read[key] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
    return read
