"""The local launcher: as many wrappers at once as its slots, the next task started as soon as
one ends, whatever the engine is doing meanwhile."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

from submitter.config.project import load_project
from submitter.hostops import HostOps, Running, TaskReport, read_status_file
from submitter.local_steps import LocalSteps
from submitter.prepare import PreparedTask, prepare_tasks
from tests.conftest import write


def _tasks(tmp_path: Path, run: str, count: int) -> list[PreparedTask]:
    tasks = write(
        tmp_path / "tasks.yml",
        f"tasks:\n  - name: 't-{{{{ i }}}}'\n    for_each: {{i: {list(range(count))}}}\n"
        f"    env: {{TOP: '{tmp_path}'}}\n    run: |\n"
        + "".join(f"      {line}\n" for line in run.splitlines()),
    )
    prepared = prepare_tasks(load_project(tasks), {})
    for task in prepared:
        Path(task.task_dir).mkdir(parents=True)
    return prepared


def _launch_all(steps: LocalSteps, tasks: list[PreparedTask]) -> float:
    """Hand every task to the launcher at once; the seconds until the last one ended."""
    began = time.monotonic()
    steps.launch(
        [(Running(t.task_id, t.task_dir, secrets.token_hex(8), None), t.wrapped) for t in tasks]
    )
    deadline = began + 30
    ended: set[str] = set()
    while len(ended) < len(tasks) and time.monotonic() < deadline:
        steps.answers()
        ended |= {t.task_id for t in tasks if _state(t.task_dir) not in (None, "running")}
        time.sleep(0.01)
    assert len(ended) == len(tasks), "every task ended"
    return time.monotonic() - began


def test_the_launcher_runs_as_many_as_its_slots_and_fills_a_freed_slot_at_once(
    tmp_path: Path,
) -> None:
    tasks = _tasks(
        tmp_path,
        'mkdir -p "$TOP/now"; touch "$TOP/now/$SUBMITTER_TASK_NAME"\n'
        'ls "$TOP/now" | wc -l >> "$TOP/peaks"\n'
        'sleep 0.3; rm "$TOP/now/$SUBMITTER_TASK_NAME"',
        6,
    )
    steps = LocalSteps(HostOps.for_kind("local"), slots=2)
    try:
        took = _launch_all(steps, tasks)
    finally:
        steps.close()
    peaks = [int(line) for line in (tmp_path / "peaks").read_text().split()]
    assert len(peaks) == 6 and max(peaks) <= 2, peaks
    # three rounds of 0.3 s: a freed slot waits for no poll (the launcher's own look at its
    # wrappers, for those that could not say they ended, comes a second later)
    assert took < 2.0, took


def test_a_wrapper_killed_with_sigkill_frees_its_slot(tmp_path: Path) -> None:
    """A wrapper killed before it could say it ended is found gone by its pid's stamp."""
    tasks = _tasks(tmp_path, 'if [ "$SUBMITTER_TASK_NAME" = t-0 ]; then kill -KILL "$PPID"; fi', 2)
    steps = LocalSteps(HostOps.for_kind("local"), slots=1)
    began = time.monotonic()
    try:
        steps.launch(
            [(Running(t.task_id, t.task_dir, secrets.token_hex(8), None), t.wrapped) for t in tasks]
        )
        second = tasks[1].task_dir
        while _state(second) in (None, "running") and time.monotonic() < began + 30:
            steps.answers()
            time.sleep(0.05)
    finally:
        steps.close()
    assert _state(second) == "completed"
    assert time.monotonic() - began < 10


def _state(task_dir: str) -> str | None:
    return (read_status_file(task_dir) or {}).get("state")


def test_a_poll_reads_a_running_wrappers_files_once_and_its_end_once_it_ended(
    tmp_path: Path,
) -> None:
    """The claim's stamp and a `running` status are read once while the wrapper runs; the
    status is read again when the wrapper is gone (it writes its end before it ends)."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with open(f"/proc/{sleeper.pid}/stat") as handle:
            stamp = handle.read().rsplit(") ", 1)[1].split()[19]
        task_dir = tmp_path / "t"
        task_dir.mkdir()
        (task_dir / ".attempt-a").write_text(f"ok\t{sleeper.pid}\t{stamp}\n")
        (task_dir / "status").write_text('{"state": "running"}\n')
        steps = LocalSteps(HostOps.for_kind("local"), 1)
        task = Running("t", str(task_dir), "a", str(sleeper.pid))
        assert steps.poll([task]).tasks["t"] == TaskReport(True, {"state": "running"})
        (task_dir / ".attempt-a").unlink()
        (task_dir / "status").write_text('{"state": "completed"}\n')
        assert steps.poll([task]).tasks["t"] == TaskReport(True, {"state": "running"})
    finally:
        sleeper.kill()
        sleeper.wait()
    assert steps.poll([task]).tasks["t"] == TaskReport(False, {"state": "completed"})
