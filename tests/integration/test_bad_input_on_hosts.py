"""Bad input to the host commands, answered by asking the host (this machine): they start processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_bad_input import _tasks_file_here


def test_check_host_finds_hosts_of_the_tasks_file_here(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tasks_file_here(
        tmp_path,
        monkeypatch,
        "hosts:\n  far: {address: alice@127.0.0.1, port: 1}\ntasks:\n  - {name: a, run: echo}\n",
    )
    result = cli("check-host", "far", "--json")
    assert "unknown host" not in result.err
    report = json.loads(result.out)
    assert report["host"] == "far"
    assert report["ok"] is False, "nothing listens on port 1"


def test_host_commands_ignore_task_mistakes(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tasks_file_here(
        tmp_path,
        monkeypatch,
        "hosts:\n  here: {scheduler: local, work_dir: WORK}\ntasks:\n  - {name: a, rnu: echo}\n".replace(
            "WORK", str(tmp_path / "work")
        ),
    )
    result = cli("check-host", "here", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["ok"] is True
