"""YAML loading that can tell the line and column of every key and value.

The data comes from ruamel's C parser (libyaml, through ruamel.yaml.clib): a 10,000-value
`for_each` list parses about four times faster than with the round-trip parser. Positions
are needed only to report a mistake, so the round-trip parse that knows them runs when the
first position is actually read.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from submitter.errors import ConfigError, Location, PendingLocation


class YamlDocument:
    """A parsed YAML file: its plain data (dicts, lists, scalars) and where it came from."""

    def __init__(self, path: Path, text: str, root: Any) -> None:
        self.path = path
        self.text = text
        self.root = root

    def locate(self, loc: Sequence[str | int], *, key: bool = False) -> Location:
        """Where `loc` is; worked out only when read (see the module's docstring)."""
        steps = tuple(loc)
        return PendingLocation(lambda: locate(self.path, self._tree, steps, key=key))

    @cached_property
    def _tree(self) -> Any:
        return _parse_round_trip(self.text, self.path)


def load_yaml(path: Path) -> YamlDocument:
    """Parse `path`; syntax errors become ConfigError at the offending line."""
    return parse_yaml(read_text(path), path)


def read_text(path: Path) -> str:
    """The file's UTF-8 text; an unreadable file or byte becomes a ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be read); "
            "save it as UTF-8",
            _byte_location(path, data, exc.start),
        ) from None


def _byte_location(path: Path, data: bytes, offset: int) -> Location:
    line_start = data.rfind(b"\n", 0, offset) + 1
    before = data[line_start:offset].decode("utf-8", errors="replace")
    return Location(path, data.count(b"\n", 0, offset) + 1, len(before) + 1)


def parse_yaml(text: str, path: Path) -> YamlDocument:
    try:
        root = YAML(typ="safe", pure=False).load(text)
    except YAMLError:
        root = to_plain(_parse_round_trip(text, path))  # raises the located error
    return YamlDocument(path, text, {} if root is None else root)


def _parse_round_trip(text: str, path: Path) -> Any:
    """The round-trip tree, which knows positions; a syntax error becomes a ConfigError."""
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = Location(path, mark.line + 1, mark.column + 1) if mark else None
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            start = exc.context_mark
            problem += (
                f" ({exc.context} started at line {start.line + 1}, column {start.column + 1})"
            )
        problem += _template_hint(exc, text)
        raise ConfigError(f"YAML syntax error: {problem}", where) from None
    except ReaderError as exc:
        raise ConfigError(
            f"YAML syntax error: character U+{exc.character:04X} is not allowed in YAML "
            "(a control character: remove it)",
            _text_location(path, text, exc.position),
        ) from None
    except YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {exc}", Location(path, 1, 1)) from None
    return CommentedMap() if root is None else root


def _template_hint(exc: MarkedYAMLError, text: str) -> str:
    """What to do where a `{{ }}` on the failing line is the likely cause: YAML reads `{` as
    a mapping where a value starts with it, and anywhere inside `[ ]` or `{ }`."""
    problem = exc.problem or ""
    mark = exc.problem_mark
    line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
    if "{{" not in line or not ("found character" in problem or "expected" in problem):
        return ""
    if "flow" in (exc.context or ""):
        return "; inside [ ] or { }, a value holding {{ }} must be quoted: ['out/{{ i }}.txt']"
    return '; a value starting with {{ must be quoted, as "{{ var }}.txt"'


def _text_location(path: Path, text: str, offset: int) -> Location:
    line_start = text.rfind("\n", 0, offset) + 1
    return Location(path, text.count("\n", 0, offset) + 1, offset - line_start + 1)


def locate(path: Path, root: Any, loc: Sequence[str | int], *, key: bool = False) -> Location:
    """The position of the node at `loc`, or of its nearest existing ancestor.

    With `key=True` the position of the last mapping key itself is returned (used for
    "unknown key" errors); otherwise the position of its value.
    """
    node = root
    line, column = _start(node)
    for index, step in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and step in node:
            line, column = node.lc.key(step) if (key and last) else node.lc.value(step)
            node = node[step]
        elif isinstance(node, CommentedSeq) and isinstance(step, int) and 0 <= step < len(node):
            line, column = node.lc.item(step)
            node = node[step]
        else:
            break
    return Location(path, line + 1, column + 1)


def _start(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None:
        return int(lc.line), int(lc.col)
    return 0, 0


def to_plain(node: Any) -> Any:
    """Round-trip containers to plain dicts and lists (scalars keep their Python type)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node
