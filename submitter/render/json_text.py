"""JSON text as `json.dumps(value, indent=2, sort_keys=True)` writes it, several times faster.

With `indent`, the standard library encodes in pure Python, value by value; a task file of
100,000 tasks is written that way. Here each scalar and each container without members is
encoded by the C encoder and only the layout is done in Python. Values of other types than
JSON's (with keys other than text) are left to `json.dumps` itself.
"""

from __future__ import annotations

import json
from typing import Any

_SCALARS = (str, int, float, bool, type(None))
_CONTAINERS = (dict, list, tuple)
_compact = json.JSONEncoder(sort_keys=True).encode
_text = json.encoder.encode_basestring_ascii  # what json.dumps writes text as


def indented_json(value: Any) -> str:
    """`json.dumps(value, indent=2, sort_keys=True)`, the same text."""
    try:
        return _layout(value, "\n")
    except _Unusual:
        return json.dumps(value, indent=2, sort_keys=True)


class _Unusual(Exception):
    """A value this layout does not write as `json.dumps` would."""


def _layout(value: Any, newline: str) -> str:
    if isinstance(value, _SCALARS) or (not value and isinstance(value, _CONTAINERS)):
        return _scalar(value)
    inner = newline + "  "
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise _Unusual
        members = [f"{_scalar(key)}: {_member(value[key], inner)}" for key in sorted(value)]
        return "{" + inner + ("," + inner).join(members) + newline + "}"
    if isinstance(value, list | tuple):
        items = [_member(item, inner) for item in value]
        return "[" + inner + ("," + inner).join(items) + newline + "]"
    raise _Unusual


def _member(value: Any, newline: str) -> str:
    """A member of a container: most are text or whole numbers, written at once."""
    kind = type(value)
    if kind is str:
        return _text(value)
    if kind is int:
        return int.__repr__(value)
    return _layout(value, newline)


def _scalar(value: Any) -> str:
    return _text(value) if type(value) is str else _compact(value)
