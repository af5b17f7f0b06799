"""`shell_quote_line`: one line of bash that reads back as the value, whatever it holds."""

from __future__ import annotations

import subprocess

import pytest

from submitter.quoting import shell_quote_line

VALUES = [
    "plain",
    "",
    "two words",
    "it's",
    "line one\nline two\n",
    "tab\there\r\n",
    "back\\slash\\n not a newline",
    "$HOME `date` $(id) \\x41",
    "ünïcödé ✓",
    "\x01\x1f\x7fz\x01a",
    "'\n'",
]


@pytest.mark.parametrize("value", VALUES)
def test_a_quoted_value_is_one_line_that_bash_reads_back_as_it_was(value: str) -> None:
    word = shell_quote_line(value)
    assert "\n" not in word and "\r" not in word
    shown = subprocess.run(
        ["bash", "-c", f"value={word}; printf '%s' \"$value\""],
        capture_output=True,
        check=True,
    ).stdout
    assert shown.decode() == value
