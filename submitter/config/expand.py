"""`for_each` expansion and `{{ var }}` substitution in a task's string fields."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

from submitter.errors import ConfigError, Location

# Only `{{ name }}` is substituted: run scripts keep `${#x}`, `{%`, `{{.ID}}` and the like intact.
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

Locator = Callable[[tuple[str | int, ...]], Location]


def combinations(for_each: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """The cartesian product of the lists, in key order; one empty combination if none."""
    names = list(for_each)
    for values in itertools.product(*(for_each[name] for name in names)):
        yield dict(zip(names, values, strict=True))


def substitute(node: Any, variables: dict[str, Any], locate: Locator) -> Any:
    """A copy of `node` with `{{ var }}` replaced in every string, keys included."""
    return _walk(node, variables, locate, ())


def _walk(node: Any, variables: dict[str, Any], locate: Locator, loc: tuple[str | int, ...]) -> Any:
    if isinstance(node, str):
        return _replace(node, variables, locate, loc)
    if isinstance(node, dict):
        return {
            _replace(str(key), variables, locate, (*loc, key)): _walk(
                value, variables, locate, (*loc, key)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_walk(item, variables, locate, (*loc, i)) for i, item in enumerate(node)]
    return node


def _replace(
    text: str, variables: dict[str, Any], locate: Locator, loc: tuple[str | int, ...]
) -> str:
    if "{{" not in text:  # most keys and many values
        return text
    parts: list[str] = []
    for piece in _pieces(text):
        if isinstance(piece, str):
            parts.append(piece)
            continue
        name, written = piece
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none (add a for_each mapping)"
            raise ConfigError(
                f"unknown variable '{name}' in {written}; variables defined: {known}",
                locate(loc),
            )
        parts.append(str(variables[name]))
    return "".join(parts)


@functools.lru_cache(maxsize=1024)
def _pieces(text: str) -> tuple[str | tuple[str, str], ...]:
    """The text cut once into its literal parts and its `{{ var }}`s, each as (name, as
    written): a product's tasks substitute the same few strings a million times."""
    pieces: list[str | tuple[str, str]] = []
    at = 0
    for match in _VARIABLE.finditer(text):
        pieces += [text[at : match.start()], (match.group(1), match.group(0))]
        at = match.end()
    pieces.append(text[at:])
    return tuple(pieces)
