"""A start's claim file (`.attempt-TOKEN`) on a batch host lives only until the client has
recorded what the start did: sites count inodes, and a task directory keeps its directory
and status file, not one claim per attempt."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from submitter import task_layout as files
from submitter.hostops import ArrayStart, HostOps, Running
from tests.fakes.slurm_host import Recorded
from tests.integration.test_engine_fake_slurm import (  # noqa: F401 (fixtures)
    _runs,
    _tasks,
    fake_slurm,
    recorded,
    seams,
)

# How the tasks go: one job array, a job each, or a pool (a short declared walltime).
HOW = {
    "array": ("", ""),
    "one-job-each": ("", ", max_array: 1"),
    "pool": ("    resources: {walltime: 300}\n", ""),
}


def _claims(work: Path) -> list[str]:
    return sorted(str(p.relative_to(work)) for p in work.rglob(f"{files.ATTEMPT}*"))


def _claims_removed(runs: Recorded) -> Counter[str]:
    """How many of the host's scripts named each claim file (only a removal names one)."""
    named = Counter[str]()
    for _, script in runs.runs.get("fake", []):
        named.update(re.findall(rf"[^ ']*/{re.escape(files.ATTEMPT)}[0-9a-f]+", script))
    return named


@pytest.mark.parametrize("how", sorted(HOW))
def test_no_claim_file_is_left_once_an_apply_has_recorded_every_start(
    cli,
    fake_slurm: Recorded,  # noqa: F811 (the fixture)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:  # type: ignore[no-untyped-def]
    """The first sbatch is refused (an attempt that records an error, started again under a
    new token) and task 0 fails its first run (retried): neither attempt leaves its claim.
    Each claim is removed by one poll, not by every poll after."""
    monkeypatch.setenv("FAKE_SLURM_SBATCH_FAILS", "1")
    keys, host = HOW[how]
    fails_first = (
        '      if [ {{ i }} = 0 ] && [ "$(wc -l < "$TOP/runs/0")" = 1 ]; then exit 3; fi\n'
    )
    tasks = _tasks(
        tmp_path,
        "  - name: 'c-{{ i }}'\n    for_each: {i: " + json.dumps(list(range(4))) + "}\n"
        f"    env: {{TOP: '{tmp_path}'}}\n    retries: 1\n    retry_on: [3]\n    retry_delay: 1\n"
        + keys
        + "    run: |\n"
        '      mkdir -p "$TOP/runs"; echo "$$" >> "$TOP/runs/{{ i }}"\n' + fails_first,
        host,
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert _runs(tmp_path) == {"0": 2, "1": 1, "2": 1, "3": 1}
    work = tmp_path / "cluster-work"
    assert len([p for p in work.iterdir() if p.name != files.GROUPS]) == 4, "the task dirs"
    assert _claims(work) == []
    removed = _claims_removed(fake_slurm)
    assert len(removed) >= 5 and set(removed.values()) == {1}, removed


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
