"""The task file's JSON text: the same as json.dumps(indent=2, sort_keys=True) writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from submitter.render.json_text import indented_json

VALUES: list[Any] = [
    {},
    [],
    "text",
    0,
    -1.5,
    1e400,
    None,
    True,
    {"b": [1, 2, {"z": [], "a": {}}], "a": 'caf\u00e9 "quoted" \\ \n\t\u2028'},
    {"env": {"A": "1"}, "interpreter": ["bash"], "resources": {"cores": 1, "mem": 2.0}},
    [[[]], [{}], [[1, [2, [3]]]]],
    ("tuple", ["of", ("lists",)]),
    {"outputs": ["out/1.txt"], "nested": {"deeper": {"deepest": [None, False, 3]}}},
    {1: "a key that is a number", "b": 2},
    {"a": {1.5: "float key"}},
    {"set": {1, 2}},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_same_text_as_json_dumps(value: Any) -> None:
    try:
        expected = json.dumps(value, indent=2, sort_keys=True)
    except TypeError:
        with pytest.raises(TypeError):
            indented_json(value)
        return
    assert indented_json(value) == expected
