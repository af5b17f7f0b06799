"""A start's claim file (`.attempt-TOKEN`) on a batch host lives only until the client has
recorded what the start did: sites count inodes, and a task directory keeps its directory
and status file, not one claim per attempt."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from submitter import task_layout as files
from submitter.hostops import ArrayStart, HostOps, Running


def _start(kind: str, task_dir: Path, token: str, grouped: bool) -> str:
    ops = HostOps.for_kind(kind)
    running = Running("t", str(task_dir), token, None)
    if not grouped:
        return ops.start_script([running])
    group = task_dir.parent / "group"
    group.mkdir()
    return ops.start_script([], [ArrayStart(str(group), str(group / "job.sh"), (running,))])


@pytest.mark.parametrize(
    ("kind", "grouped"),
    [("slurm", False), ("slurm", True), ("local", False)],
    ids=["single", "array", "process"],
)
def test_a_new_start_removes_the_recorded_claims_of_earlier_attempts(
    tmp_path: Path, kind: str, grouped: bool
) -> None:
    """A claim with a record is an attempt whose start is over: nothing claims its token
    again. An empty claim may be a resolve's (`never`) that a late start of that attempt must
    still lose: it stays."""
    task_dir = tmp_path / "t"
    task_dir.mkdir()
    (task_dir / files.JOB_SCRIPT).write_text("true\n")
    (task_dir / f"{files.ATTEMPT}failed").write_text("error\texit 1: refused\n")
    (task_dir / f"{files.ATTEMPT}ran").write_text("ok\tSubmitted batch job 4\n")
    (task_dir / f"{files.ATTEMPT}never").touch()
    script = _start(kind, task_dir, "new", grouped)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert "START\tt\t" in done.stdout, done.stdout + done.stderr
    left = sorted(p.name for p in task_dir.glob(f"{files.ATTEMPT}*"))
    assert left == [f"{files.ATTEMPT}never", f"{files.ATTEMPT}new"]
