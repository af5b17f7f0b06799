"""`logs -f` on this machine: lines as they are written, in order, until the task ends."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from submitter.follow import Streams, follow
from submitter.store.db import Store
from tests.conftest import write


def _detached(cli, project: Path, run: str) -> None:  # type: ignore[no-untyped-def]
    tasks = write(project / "tasks.yml", f"tasks:\n  - name: slow one\n    run: |\n{run}")
    result = cli("apply", tasks, "--detach")
    assert result.code == 0, result.err


def _follow_process(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "submitter", "logs", "-f", "slow one", "-C", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_follow_shows_lines_as_written_and_returns_when_the_task_ends(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The task writes its second line only once this test has read the first from
    `logs -f`: the first line was shown as it was written, not at the task's end."""
    go = tmp_path / "go"
    _detached(
        cli,
        tmp_path,
        "      echo first\n      echo to-stderr >&2\n"
        f"      until [ -e '{go}' ]; do sleep 0.1; done\n      echo second\n",
    )
    process = _follow_process(tmp_path)
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if lines[-1] == "first":
            go.touch()
    assert process.wait(timeout=30) == 0
    assert process.stderr is not None and "to-stderr" in process.stderr.read()
    assert lines[0].startswith("# slow one (") and "running" in lines[0]
    assert lines[1:3] == ["first", "second"]
    assert lines[3].startswith("# slow one (") and lines[3].endswith(": completed")
    status = cli("status", "slow one", "-C", tmp_path)
    assert "completed" in status.out, "the follow recorded the outcome"


def test_follow_exits_1_when_the_task_fails_and_keeps_partial_lines(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _detached(cli, tmp_path, "      sleep 1\n      printf 'no newline'\n      exit 4\n")
    result = cli("logs", "-f", "slow one", "-C", tmp_path)
    assert result.code == 1
    assert "no newline\n" in result.out
    assert result.out.rstrip().endswith("failed - exit code 4")


def test_follow_of_a_finished_task_prints_its_logs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: slow one\n    run: echo done\n")
    assert cli("apply", tasks).code == 0
    result = cli("logs", "-f", "slow one", "-C", tmp_path)
    assert result.code == 0
    assert "--- stdout\ndone\n" in result.out


def test_follow_ends_when_the_task_dies_without_a_status(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _detached(cli, tmp_path, "      echo started\n      sleep 60\n")
    time.sleep(0.3)
    status = json.loads(cli("status", "--json", "-C", tmp_path).out)[0]
    job_id = status["attempts"][-1]["job_id"]  # the wrapper's pid, leading its process group
    assert job_id and job_id.isdigit(), status
    os.killpg(int(job_id), signal.SIGKILL)  # no trap runs: no final status is written
    store = Store(tmp_path / ".submitter")
    record = store.tasks()[0]
    out, err = io.StringIO(), io.StringIO()
    code = follow(store, record, Streams(out, err), check_every=0.5)
    assert code == 1
    assert "started" in out.getvalue()
    assert ": lost" in out.getvalue().splitlines()[-1]


def test_ctrl_c_ends_the_follow_not_the_task(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _detached(cli, tmp_path, "      echo first\n      sleep 3\n      echo second\n")
    process = _follow_process(tmp_path)
    assert process.stdout is not None
    assert "slow one" in process.stdout.readline()
    assert process.stdout.readline() == "first\n"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 130
    time.sleep(3.5)
    status = cli("status", "slow one", "-C", tmp_path)
    assert "completed" in status.out, status.out
