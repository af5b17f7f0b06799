"""The most tasks a tasks file may declare: `for_each` products counted, never expanded."""

from __future__ import annotations

from pathlib import Path

import pytest

from submitter.config.project import load_project
from submitter.errors import ConfigErrors
from tests.conftest import write


def _load_error(path: Path) -> str:
    with pytest.raises(ConfigErrors) as raised:
        load_project(path)
    return str(raised.value)


def test_a_product_past_the_default_cap_is_refused_without_expanding_it(tmp_path: Path) -> None:
    values = list(range(1000))
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 'a-{{ i }}-{{ j }}-{{ k }}'\n"
        f"    for_each: {{i: {values}, j: {values}, k: {values}}}\n    run: echo\n",
    )
    assert _load_error(tasks) == (
        f"{tasks}:3:15: task 'a-{{{{ i }}}}-{{{{ j }}}}-{{{{ k }}}}': for_each makes "
        "1,000,000,000 tasks (1000 x 1000 x 1000), more than max_tasks: 1,000,000 "
        "(set a larger max_tasks at the top level of the tasks file to allow more)"
    )


def test_the_tasks_declared_before_a_product_count_toward_the_cap(tmp_path: Path) -> None:
    tasks = write(
        tmp_path / "tasks.yml",
        "max_tasks: 6\ntasks:\n  - {name: prep, run: echo}\n"
        "  - name: 'a-{{ i }}'\n    for_each: {i: [1, 2, 3]}\n    run: echo\n"
        "  - name: 'b-{{ i }}'\n    for_each: {i: [1, 2, 3]}\n    run: echo\n",
    )
    assert _load_error(tasks) == (
        f"{tasks}:8:15: task 'b-{{{{ i }}}}': for_each makes 3 tasks, 7 with the 4 declared "
        "before it: more than max_tasks: 6 "
        "(set a larger max_tasks at the top level of the tasks file to allow more)"
    )


def test_as_many_tasks_as_the_cap_load(tmp_path: Path) -> None:
    tasks = write(
        tmp_path / "tasks.yml",
        "max_tasks: 6\ntasks:\n  - name: 'a-{{ i }}-{{ j }}'\n"
        "    for_each: {i: [1, 2, 3], j: [x, y]}\n    run: echo\n",
    )
    assert len(load_project(tasks).tasks) == 6


@pytest.mark.parametrize("cap", ["0", "-1", "true", "2.5"])
def test_max_tasks_is_a_positive_whole_number(tmp_path: Path, cap: str) -> None:
    tasks = write(tmp_path / "tasks.yml", f"max_tasks: {cap}\ntasks:\n  - {{name: a, run: echo}}\n")
    assert f"{tasks}:1:12: max_tasks: expected " in _load_error(tasks)


def test_the_cap_holds_while_other_mistakes_are_reported(tmp_path: Path) -> None:
    tasks = write(
        tmp_path / "tasks.yml",
        "max_tasks: 3\ndefaults: {cores: 2}\ntasks:\n  - name: 'a-{{ i }}-{{ j }}'\n"
        "    for_each: {i: [1, 2], j: [1, 2]}\n    run: echo\n",
    )
    message = _load_error(tasks)
    assert "unknown key 'cores' in defaults" in message
    assert "for_each makes 4 tasks (2 x 2), more than max_tasks: 3" in message
