"""A start step its client gave up on, that reaches a task after a later run started the task
again, leaves that run's attempt alone: it loses the claim and clears nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from submitter import task_layout as files
from submitter.hostops import ArrayStart, HostOps, Running


def _new_attempt_running(task_dir: Path) -> None:
    """What the later run left: its attempt's claim and files, and the given-up attempt's
    claim taken by that run's resolve ("never started")."""
    task_dir.mkdir()
    for name in (files.COMMAND, files.STATUS, files.STDOUT, files.JOB_SCRIPT):
        (task_dir / name).write_text(f"{name} of the new attempt\n")
    (task_dir / f"{files.ATTEMPT}new").write_text("ok\t123\n")
    (task_dir / f"{files.ATTEMPT}old").touch()


@pytest.mark.parametrize("kind", ["local", "slurm"])
def test_a_late_start_of_a_given_up_attempt_clears_nothing(tmp_path: Path, kind: str) -> None:
    task_dir = tmp_path / "t"
    _new_attempt_running(task_dir)
    script = HostOps.for_kind(kind).start_script([Running("t", str(task_dir), "old", None)])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert "START\tt\tsuperseded\tattempt old was given up" in done.stdout, (
        done.stdout + done.stderr
    )
    for name in (files.COMMAND, files.STATUS, files.STDOUT):
        assert (task_dir / name).read_text() == f"{name} of the new attempt\n"


def test_a_late_group_start_clears_nothing_of_a_member_started_again(tmp_path: Path) -> None:
    task_dir = tmp_path / "t"
    _new_attempt_running(task_dir)
    group = tmp_path / "group"
    group.mkdir()
    member = Running("t", str(task_dir), "old", None)
    start = ArrayStart(str(group), str(group / "job.sh"), (member,), "pool", jobs=1)
    script = HostOps.for_kind("slurm").start_script([], [start])
    subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    for name in (files.COMMAND, files.STATUS, files.STDOUT):
        assert (task_dir / name).read_text() == f"{name} of the new attempt\n"
