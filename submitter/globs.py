"""Outputs declared as glob patterns (`results/*.txt`, `plots/**/*.png`).

The host's wrapper expands them (bash: nullglob, globstar) and lists what each matched in the
task's status file; this side only checks that a pattern is well formed and finds where a
reported match goes.
"""

from __future__ import annotations

import posixpath
import re

_GLOB_CHARACTER = re.compile(r"[*?\[]")


def is_pattern(path: str) -> bool:
    return _GLOB_CHARACTER.search(path) is not None


def pattern_problem(pattern: str) -> str | None:
    """Why a pattern cannot be used, or None."""
    parts = pattern.split("/")
    if ".." in parts:
        return f"{pattern!r}: a glob pattern may not contain '..'"
    if any("**" in part and part != "**" for part in parts):
        return f"{pattern!r}: '**' must be a whole path component, as in 'plots/**/*.png'"
    return None


def glob_depth(pattern: str) -> int:
    """How many trailing components of a normalized pattern are its glob part: those from the
    first one holding a glob character on."""
    parts = pattern.rstrip("/").split("/")
    for index, part in enumerate(parts):
        if is_pattern(part):
            return len(parts) - index
    return 0


def strip_components(path: str, count: int) -> str:
    """`path` without its last `count` components ('' for a relative path left with none)."""
    for _ in range(count):
        path = posixpath.dirname(path.rstrip("/")) if path not in ("", "/") else path
    return path
