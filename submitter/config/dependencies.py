"""Which tasks run after which: `after:` as written, and what inputs and outputs imply.

A task runs after every task it names in `after` (a name or a glob over names), and after
every task whose declared output its input is, lies under, or contains: a task reading
`counts/` waits for all the tasks writing files there. Unknown names and cycles are
configuration errors, with the place they were written.
"""

from __future__ import annotations

import bisect
import dataclasses
import fnmatch
import itertools
import os
import posixpath
from collections.abc import Sequence
from pathlib import Path

from submitter.config.diagnostics import closest_key
from submitter.errors import ConfigError, Location

_GLOB = frozenset("*?[")


def is_glob(text: str) -> bool:
    return any(c in _GLOB for c in text)


@dataclasses.dataclass(frozen=True)
class After:
    """One `after` entry as written, and where."""

    pattern: str
    location: Location


@dataclasses.dataclass(frozen=True)
class Links:
    upstream: tuple[str, ...]  # names of the tasks it runs after, in declaration order
    derived_inputs: tuple[str, ...]  # its inputs as declared that upstream tasks produce


def link(
    names: Sequence[str],
    after: Sequence[Sequence[After]],
    inputs: Sequence[Sequence[str]],
    outputs: Sequence[Sequence[str]],
    locations: Sequence[Location],
    directory: Path,
) -> tuple[dict[int, Links], list[ConfigError]]:
    """The upstream tasks of each task that has some, and the inputs they produce, by the
    task's index; and the errors found. The i-th entry of every argument belongs to the i-th
    task. A task that runs after none has no entry: 100,000 independent tasks take none."""
    errors: list[ConfigError] = []
    index = {name: i for i, name in enumerate(names)} if any(after) else {}
    upstream: dict[int, set[int]] = {}
    why: dict[tuple[int, int], str] = {}
    for i, entries in enumerate(after):
        for entry in entries:
            for j in _named(entry, names, index, i, errors):
                upstream.setdefault(i, set()).add(j)
                why.setdefault((i, j), f"after: {entry.pattern}")
    derived: dict[int, list[str]] = {}
    if any(inputs):  # else no output is anyone's input: no producers to look up
        producers = _Producers(
            [[_here(directory, o) for o in task_outputs] for task_outputs in outputs]
        )
        for i, task_inputs in enumerate(inputs):
            for declared in task_inputs:
                makers = producers.of(_here(directory, declared)) - {i}
                if makers:
                    derived.setdefault(i, []).append(declared)
                for j in makers:
                    upstream.setdefault(i, set()).add(j)
                    why.setdefault((i, j), f"its input '{declared}' is an output of '{names[j]}'")
    cycle = _cycle(upstream)
    if cycle:
        steps = " → ".join(names[k] for k in cycle)
        reasons = "; ".join(
            f"'{names[a]}' runs after '{names[b]}' ({why[(a, b)]})"
            for a, b in itertools.pairwise(cycle)
        )
        errors.append(ConfigError(f"dependency cycle: {steps}: {reasons}", locations[cycle[0]]))
    links = {
        i: Links(tuple(names[j] for j in sorted(up)), tuple(derived.get(i, ())))
        for i, up in upstream.items()
    }
    return links, errors


def _named(
    entry: After, names: Sequence[str], index: dict[str, int], me: int, errors: list[ConfigError]
) -> list[int]:
    if is_glob(entry.pattern):
        matched = [j for j, name in enumerate(names) if fnmatch.fnmatchcase(name, entry.pattern)]
        matched = [j for j in matched if j != me]
        if not matched:
            errors.append(
                ConfigError(
                    f"task '{names[me]}': after: '{entry.pattern}' matches no other task",
                    entry.location,
                )
            )
        return matched
    found = index.get(entry.pattern)
    if found is None:
        hint = closest_key(entry.pattern, list(names))
        suggestion = f"; did you mean '{hint}'?" if hint else ""
        errors.append(
            ConfigError(
                f"task '{names[me]}': after: no task named '{entry.pattern}'{suggestion}",
                entry.location,
            )
        )
        return []
    if found == me:
        errors.append(
            ConfigError(
                f"task '{names[me]}': after: a task cannot run after itself", entry.location
            )
        )
        return []
    return [found]


def _here(directory: Path, path: str) -> str:
    """A declared path as an absolute, normalised path of this machine."""
    return posixpath.normpath(posixpath.join(str(directory), os.path.expanduser(path)))


class _Producers:
    """Which tasks declare an output that an input path is, lies under, or contains; looked
    up by path, not by comparing every input with every output (10,000 tasks). A glob
    pattern is filed under its fixed leading directories."""

    def __init__(self, outputs: Sequence[Sequence[str]]) -> None:
        self._at: dict[str, list[tuple[str, int]]] = {}  # path or fixed prefix -> outputs
        for task, paths in enumerate(outputs):
            for path in paths:
                key = _fixed_prefix(path) if is_glob(path) else path
                self._at.setdefault(key, []).append((path, task))
        self._sorted = sorted(self._at)

    def of(self, wanted: str) -> set[int]:
        found: set[int] = set()
        ancestor = wanted
        while True:  # the input itself, or an output it lies under
            for path, task in self._at.get(ancestor, ()):
                if not is_glob(path) or fnmatch.fnmatchcase(wanted, path) or ancestor == wanted:
                    found.add(task)
            parent = posixpath.dirname(ancestor)
            if parent == ancestor:
                break
            ancestor = parent
        prefix = wanted.rstrip("/") + "/"  # outputs inside an input directory
        for key in self._sorted[bisect.bisect_left(self._sorted, prefix) :]:
            if not key.startswith(prefix):
                break
            found.update(task for _, task in self._at[key])
        return found


def _fixed_prefix(pattern: str) -> str:
    """The directories of a glob pattern before its first wildcard."""
    parts: list[str] = []
    for part in pattern.split("/"):
        if is_glob(part):
            break
        parts.append(part)
    return "/".join(parts) or "/"


def _cycle(upstream: dict[int, set[int]]) -> list[int]:
    """A dependency cycle as a closed walk (first == last), or [] when there is none; the
    tasks that run after none are left out of `upstream`."""
    white, grey, black = 0, 1, 2
    colour: dict[int, int] = {}
    for start in sorted(upstream):
        if colour.get(start, white) != white:
            continue
        path: list[int] = []
        stack: list[tuple[int, list[int]]] = [(start, sorted(upstream[start]))]
        colour[start] = grey
        path.append(start)
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = black
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if colour.get(nxt, white) == grey:
                return [*path[path.index(nxt) :], nxt]
            if colour.get(nxt, white) == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append((nxt, sorted(upstream.get(nxt, ()))))
    return []


def order(upstream: dict[str, tuple[str, ...]]) -> list[str]:
    """Names with every task after all of its upstream tasks (the graph has no cycle)."""
    done: set[str] = set()
    result: list[str] = []
    for name in upstream:
        stack = [(name, iter(upstream[name]))]
        if name in done:
            continue
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c not in done), None)
            if child is None:
                stack.pop()
                if node not in done:
                    done.add(node)
                    result.append(node)
            else:
                stack.append((child, iter(upstream[child])))
    return result
