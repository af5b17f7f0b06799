"""Outputs declared as glob patterns (`results/*.txt`, `plots/**/*.png`).

The host's wrapper expands them (bash: nullglob, globstar) and lists what each matched in the
task's status file; this side only checks that a pattern is well formed and finds where a
reported match goes.
"""

from __future__ import annotations

import posixpath
import re
from fnmatch import fnmatchcase

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


def covers(output: str, path: str) -> bool:
    """Whether an output (an absolute path, or an absolute pattern as the wrapper's bash
    expands it: `*` within one directory, `**` for zero or more, a leading dot matched only
    by a dot) names `path` or a directory that holds it."""
    return _covers(output.strip("/").split("/"), path.strip("/").split("/"))


def _covers(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return True  # all of the pattern matched: the path, or a directory holding it
    if not parts:
        return False
    if pattern[0] == "**":
        return _covers(pattern[1:], parts) or (
            not parts[0].startswith(".") and _covers(pattern, parts[1:])
        )
    return _component(parts[0], pattern[0]) and _covers(pattern[1:], parts[1:])


def _component(name: str, pattern: str) -> bool:
    if not is_pattern(pattern):
        return name == pattern
    return fnmatchcase(name, pattern) and (pattern.startswith(".") or not name.startswith("."))
