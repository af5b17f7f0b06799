"""`render`: what would be sent, for the tasks asked for only."""

from __future__ import annotations

from pathlib import Path

import pytest

from submitter import prepare
from tests.conftest import write


def test_render_task_renders_only_that_task(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - {name: 't-{{ i }}', for_each: {i: [1, 2, 3, 4]}, run: 'echo {{ i }}'}\n",
    )
    rendered: list[str] = []
    real = prepare.prepare_task

    def counting(definition, *args, **kwargs):  # type: ignore[no-untyped-def]
        rendered.append(definition.name)
        return real(definition, *args, **kwargs)

    monkeypatch.setattr(prepare, "prepare_task", counting)
    result = cli("render", tasks, "--dry-run", "--task", "t-3")
    assert result.code == 0, result.err
    assert "# task t-3 " in result.out and "# task t-1 " not in result.out
    assert rendered == ["t-3"]


def test_render_unknown_task_is_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: a, run: 'echo'}\n")
    result = cli("render", tasks, "--dry-run", "--task", "b")
    assert result.code == 2 and "no task named b" in result.err


def test_render_has_one_mode(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`render` only ever prints: `--dry-run` is still accepted, changes nothing, and is not
    offered as an option."""
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: a, run: 'echo'}\n")
    plain = cli("render", tasks)
    assert plain.code == 0, plain.err
    assert cli("render", tasks, "--dry-run").out == plain.out
    helped = cli("render", "--help")
    assert helped.code == 0 and "--dry-run" not in helped.out
