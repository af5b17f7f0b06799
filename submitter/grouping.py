"""Which tasks of one start step share a job array, and the array's driver script."""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from submitter.paths import Transfer
from submitter.prepare import PreparedTask
from submitter.render.compile import ArrayGroup, has_array_template, render_array

Item = TypeVar("Item")


def array_key(task: PreparedTask | None) -> str | None:
    """Tasks with equal keys render the same scheduler header, so one job array serves them;
    None for a task whose pack has no array driver."""
    if task is None or not has_array_template(task.chain):
        return None
    spec = task.spec
    return json.dumps(
        [
            task.rendered.pack,
            spec.resources.model_dump(exclude_none=True),
            list(spec.directives),
            spec.host_vars,
        ],
        sort_keys=True,
        default=str,
    )


def group_alike(
    items: Sequence[Item], key: Callable[[Item], str | None], largest: int
) -> tuple[list[Item], list[list[Item]]]:
    """Items with the same key in groups of at most `largest` (two or more each); the rest,
    and all of them when `largest` < 2, one by one."""
    singles: list[Item] = []
    by_key: dict[str, list[Item]] = {}
    for item in items:
        found = key(item) if largest > 1 else None
        if found is None:
            singles.append(item)
        else:
            by_key.setdefault(found, []).append(item)
    groups: list[list[Item]] = []
    for members in by_key.values():
        for start in range(0, len(members), largest):
            chunk = members[start : start + largest]
            if len(chunk) > 1:
                groups.append(chunk)
            else:
                singles += chunk
    return singles, groups


def array_driver(members: Sequence[PreparedTask], scratch: Path) -> Transfer:
    """The driver of one job array, rendered into `scratch`, and where it goes on the host:
    `<work_dir>/.arrays/<id>/array.sh`, beside the `members` file the start step writes."""
    first = members[0]
    ident = hashlib.sha256(
        (" ".join(m.task_id for m in members) + str(time.time())).encode()
    ).hexdigest()[:12]
    directory = posixpath.join(posixpath.dirname(first.task_dir), ".arrays", ident)
    group = ArrayGroup(
        ident,
        f"{first.spec.job_name[:48]}+{len(members) - 1}",
        len(members),
        directory,
        f"{directory}/members",
    )
    local = scratch / f"{ident}.sh"
    local.write_text(render_array(first.spec, first.chain, group), encoding="utf-8")
    return Transfer(local, f"{directory}/array.sh")
