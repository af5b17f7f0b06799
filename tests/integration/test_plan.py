"""`apply --plan`: what would run, wait or be skipped, and why, with no host touched."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write

TASKS = """\
tasks:
  - name: count
    inputs: [data/a.txt]
    outputs: [counts/a.txt]
    run: mkdir -p counts && wc -l < data/a.txt > counts/a.txt
  - name: summary
    inputs: [counts/]
    outputs: [summary.txt]
    run: cat counts/* > summary.txt
  - name: other
    run: %(other)s
"""


def _project(tmp_path: Path, other: str = "'true'") -> Path:
    write(tmp_path / "data" / "a.txt", "one\ntwo\n")
    return write(tmp_path / "tasks.yml", TASKS % {"other": other})


def _plan(cli, tasks: Path, *flags: str) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    result = cli("apply", tasks, "--plan", "--json", *flags)
    assert result.code == 0, result.err
    return {step["name"]: (step["action"], step["why"]) for step in json.loads(result.out)}


def test_a_new_project_runs_everything_and_touches_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _project(tmp_path)
    assert _plan(cli, tasks) == {
        "count": ("run", "new"),
        "summary": ("wait", "for count; then runs: new"),
        "other": ("run", "new"),
    }
    assert not (tmp_path / ".submitter").exists()
    assert not (tmp_path / "counts").exists()


def test_each_reason_to_run_or_skip(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _project(tmp_path)
    assert cli("apply", tasks).code == 0
    assert _plan(cli, tasks) == {
        "count": ("skip", "up to date"),
        "summary": ("skip", "up to date"),
        "other": ("skip", "up to date"),
    }
    tasks = _project(tmp_path, other="'echo changed'")
    write(tmp_path / "data" / "a.txt", "one\ntwo\nthree\n")
    planned = _plan(cli, tasks)
    assert planned["count"] == ("run", "input data/a.txt changed")
    assert planned["summary"] == ("wait", "for count; then runs: upstream changed")
    assert planned["other"] == ("run", "command changed")
    assert _plan(cli, _project(tmp_path), "--force")["count"] == ("run", "forced")


def test_an_output_missing_here(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _project(tmp_path)
    assert cli("apply", tasks).code == 0
    (tmp_path / "summary.txt").unlink()
    assert _plan(cli, tasks)["summary"] == (
        "run",
        f"declared output {tmp_path}/summary.txt is missing here",
    )


def test_a_running_task_is_re_attached_to(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: slow, run: 'sleep 30'}\n")
    assert cli("apply", tasks, "--detach").code == 0
    try:
        action, why = _plan(cli, tasks)["slow"]
        assert action == "attach" and "re-attaches" in why
    finally:
        cli("kill", "--all", "-C", tmp_path)


def test_the_summary_comes_first_and_skipped_tasks_only_with_v(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _project(tmp_path)
    assert cli("apply", tasks).code == 0
    tasks = _project(tmp_path, other="'echo changed'")
    plain = cli("apply", tasks, "--plan").out.splitlines()
    assert plain[0] == "plan: 1 to run, 0 to wait, 0 to re-attach to, 2 up to date"
    assert plain[1:] == [
        f"run    other ({_id(cli, tasks, 'other')}) on local: command changed",
    ]
    verbose = cli("apply", tasks, "--plan", "-v").out.splitlines()
    assert len(verbose) == 4 and verbose[1].startswith("skip   count (")


def _id(cli, tasks: Path, name: str) -> str:  # type: ignore[no-untyped-def]
    steps = json.loads(cli("apply", tasks, "--plan", "--json").out)
    return next(step["id"] for step in steps if step["name"] == name)
