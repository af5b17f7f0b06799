"""The most tasks a tasks file may declare (`max_tasks`), counted before any is expanded."""

from __future__ import annotations

import math
from typing import Any

from submitter.config.yamlfile import YamlDocument
from submitter.errors import ConfigError

_RAISE_IT = "set a larger max_tasks at the top level of the tasks file to allow more"


def check_task_count(doc: YamlDocument, tasks: list[Any], max_tasks: int) -> None:
    """ConfigError at the first task whose `for_each` product takes the file's task count past
    `max_tasks`. Only the lists' lengths are multiplied: a product of a billion is refused at
    once. A `for_each` that is not a mapping of lists counts one here; expanding it says why."""
    declared = 0
    for index, raw in enumerate(tasks):
        lengths = _list_lengths(raw)
        count = math.prod(lengths)
        if declared + count > max_tasks:
            where = ("tasks", index, "for_each") if lengths else ("tasks", index)
            raise ConfigError(
                _too_many(raw, index, lengths, declared, max_tasks), doc.locate(where)
            )
        declared += count


def _list_lengths(raw: Any) -> list[int]:
    for_each = raw.get("for_each") if isinstance(raw, dict) else None
    if not isinstance(for_each, dict):
        return []
    return [len(values) if isinstance(values, list) else 1 for values in for_each.values()]


def _too_many(raw: Any, index: int, lengths: list[int], declared: int, max_tasks: int) -> str:
    count = math.prod(lengths)
    name = raw.get("name") if isinstance(raw, dict) else None
    label = name if isinstance(name, str) and name.strip() else f"#{index + 1}"
    if not lengths:
        return f"task '{label}' is task {declared + 1:,} of the file, more than max_tasks: {max_tasks:,} ({_RAISE_IT})"
    made = f"for_each makes {count:,} tasks"
    if len(lengths) > 1:
        made += f" ({' x '.join(str(n) for n in lengths)})"
    made += f", {declared + count:,} with the {declared:,} declared before it:" if declared else ","
    return f"task '{label}': {made} more than max_tasks: {max_tasks:,} ({_RAISE_IT})"
