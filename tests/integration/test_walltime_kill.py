"""Walltime and kill on the built-in local host take the whole task down: real processes.

Every task runs with the project directory as its working directory, so any process whose
cwd is inside the project belongs to the task (wrapper, watchdog, command, children); the
`sleep` calls also carry a marker unique to the test in their command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write

GRACE = 2  # seconds between TERM and KILL, set through the host var kill_grace


def _processes_of(project: Path, marker: str) -> list[str]:
    """`pid: command line` of every live process started in `project` or naming `marker`."""
    project = project.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue  # gone, a zombie, or not ours
        if marker.encode() in cmdline or cwd == project or project in cwd.parents:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def _sleeps(project: Path, marker: str) -> list[str]:
    return [p for p in _processes_of(project, marker) if marker in p]


def _survivors(project: Path, marker: str, within: float = 3.0) -> list[str]:
    """What is still running after `within` seconds (the wrapper may take a moment to exit)."""
    deadline = time.monotonic() + within
    while True:
        left = _processes_of(project, marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[str]:
    """A unique `sleep` argument; whatever the test leaves behind is killed afterwards."""
    value = f"600.{secrets.randbelow(900000) + 100000}"
    yield value
    for line in _processes_of(tmp_path, value):
        with contextlib.suppress(OSError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


def _tasks(project: Path, name: str, run: str, walltime: str | None = None) -> Path:
    resources = f"    resources: {{walltime: '{walltime}'}}\n" if walltime else ""
    return write(
        project / "tasks.yml",
        "hosts:\n"
        f"  local: {{scheduler: local, poll_interval: 1, vars: {{kill_grace: {GRACE}}}}}\n"
        f"tasks:\n  - name: {name}\n{resources}    run: |\n"
        + "".join(f"      {line}\n" for line in run.splitlines()),
    )


def _apply(tasks: Path, timeout: float = 40) -> tuple[subprocess.CompletedProcess[str], float]:
    """apply in a child process, so a wrapper that never ends fails the test, not hangs it."""
    began = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "submitter", "apply", str(tasks)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"apply still waiting after {timeout} s: the task outlived its walltime")
    return result, time.monotonic() - began


def _record(cli: Any, project: Path, name: str) -> dict[str, Any]:
    return dict(json.loads(cli("status", name, "--json", "-C", project).out)[0])


def _status_file(record: dict[str, Any]) -> dict[str, Any]:
    """The status file the wrapper wrote in the task directory."""
    return dict(json.loads((Path(record["task_dir"]) / "status").read_text()))


def test_walltime_kills_a_task_that_ignores_term(cli: Any, tmp_path: Path, marker: str) -> None:
    tasks = _tasks(tmp_path, "stubborn", f"trap '' TERM\nsleep {marker}", walltime="00:00:03")
    result, elapsed = _apply(tasks)
    assert result.returncode == 1, result.stderr
    record = _record(cli, tmp_path, "stubborn")
    assert record["state"] == "failed"
    assert record["reason"].startswith("walltime exceeded: killed after 00:00:03"), record
    # the walltime, then TERM ignored for the grace time, then KILL; a poll to notice
    assert 3 + GRACE <= elapsed < 3 + GRACE + 1 + 6, elapsed
    assert _sleeps(tmp_path, marker) == [], (
        "the task was still running when its final status was written"
    )
    assert _survivors(tmp_path, marker) == []
    status = _status_file(record)
    assert (status["state"], status["exit_code"]) == ("failed", 143)
    assert (
        f"still running {GRACE} s after SIGTERM: sent SIGKILL"
        in cli("logs", "stubborn", "-C", tmp_path).out
    )


def test_walltime_kills_background_children(cli: Any, tmp_path: Path, marker: str) -> None:
    run = (
        f"sleep {marker} &\n"
        f"(sleep {marker} &)\n"
        f"nohup sleep {marker} >/dev/null 2>&1 &\n"
        "echo children started\n"
        "wait\n"
    )
    tasks = _tasks(tmp_path, "parent", run, walltime="00:00:03")
    result, elapsed = _apply(tasks)
    assert result.returncode == 1, result.stderr
    record = _record(cli, tmp_path, "parent")
    assert record["state"] == "failed"
    assert "walltime exceeded" in record["reason"]
    assert elapsed < 3 + 1 + 6, "children that honour TERM end without waiting for the grace"
    assert _sleeps(tmp_path, marker) == []
    assert _survivors(tmp_path, marker) == []
    assert "children started" in cli("logs", "parent", "-C", tmp_path).out


def test_kill_takes_down_children_and_a_term_ignoring_task(
    cli: Any, tmp_path: Path, marker: str
) -> None:
    tasks = write(
        tmp_path / "tasks.yml",  # the default grace time: the kill must fit in its wait
        "tasks:\n  - name: daemonish\n    run: |\n"
        f"      sleep {marker} &\n"
        f"      (sleep {marker} &)\n"
        "      trap '' TERM\n"
        "      echo started\n"
        f"      sleep {marker}\n",
    )
    assert cli("apply", tasks, "--detach").code == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(_sleeps(tmp_path, marker)) < 3:
        time.sleep(0.2)
    assert len(_sleeps(tmp_path, marker)) == 3

    began = time.monotonic()
    killed = cli("kill", "daemonish", "-C", tmp_path)
    took = time.monotonic() - began
    assert killed.code == 0, killed.err
    record = _record(cli, tmp_path, "daemonish")
    assert record["state"] == "killed", record
    assert record["reason"] == "killed by SIGTERM", "the wrapper wrote the status, not the kill"
    assert record["attempts"][-1]["exit_code"] == 143
    assert took < 15, took
    assert _survivors(tmp_path, marker) == []
    assert (
        "still running 10 s after SIGTERM: sent SIGKILL"
        in cli("logs", "daemonish", "-C", tmp_path).out
    )


def test_a_finished_task_leaves_no_watchdog(cli: Any, tmp_path: Path, marker: str) -> None:
    # it fails, so that its directory (and status file) stays on this machine to be read
    tasks = _tasks(tmp_path, "quick", "echo done; exit 3", walltime="00:10:00")
    result, elapsed = _apply(tasks)
    assert result.returncode == 1, result.stderr
    assert elapsed < 10
    assert _survivors(tmp_path, marker) == []
    status = _status_file(_record(cli, tmp_path, "quick"))
    assert set(status) == {
        "state",
        "exit_code",
        "hostname",
        "pid",
        "job_id",
        "start",
        "end",
        "reason",
        "matched",
    }
    assert (status["state"], status["exit_code"], status["reason"]) == ("failed", 3, "exit code 3")


def test_term_to_the_wrapper_alone_stops_the_task_and_the_watchdog(
    cli: Any, tmp_path: Path, marker: str
) -> None:
    """As a scheduler signalling only the job's top process: the wrapper passes it on."""
    tasks = _tasks(tmp_path, "signalled", f"sleep {marker} &\nsleep {marker}", walltime="00:10:00")
    assert cli("apply", tasks, "--detach").code == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(_sleeps(tmp_path, marker)) < 2:
        time.sleep(0.2)
    wrapper = _status_file(_record(cli, tmp_path, "signalled"))["pid"]
    os.kill(wrapper, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and _status_file(_record(cli, tmp_path, "signalled"))["state"] == "running"
    ):
        time.sleep(0.2)
    status = _status_file(_record(cli, tmp_path, "signalled"))
    assert (status["state"], status["exit_code"], status["reason"]) == (
        "killed",
        143,
        "killed by SIGTERM",
    )
    assert _sleeps(tmp_path, marker) == []
    assert _survivors(tmp_path, marker) == [], "the watchdog ends with the wrapper"
    cli("status", "-C", tmp_path)  # let the detached task be recorded as ended


def test_what_a_finished_task_left_running_ends_with_it(
    cli: Any, tmp_path: Path, marker: str
) -> None:
    tasks = _tasks(
        tmp_path, "leaver", f"(sleep {marker} &)\nnohup sleep {marker} >/dev/null 2>&1 &\necho done"
    )
    done, _ = _apply(tasks)
    assert done.returncode == 0, done.stderr
    assert _record(cli, tmp_path, "leaver")["state"] == "completed"
    assert _survivors(tmp_path, marker) == []


def test_a_task_frozen_longer_than_its_walltime_completes_on_the_thaw(
    tmp_path: Path, marker: str
) -> None:
    """A node frozen (its processes stopped, as `docker pause` does) for longer than the
    walltime, mid-command: the frozen time is not the task's. On the thaw its command runs
    its last seconds and completes; the watchdog counts the seconds the node ran."""
    tasks = _tasks(tmp_path, "thawed", "sleep 1\nsleep 1\nsleep 1", walltime="00:00:06")
    began = time.monotonic()
    apply = subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(tasks)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not any(" sleep 1" in p for p in _processes_of(tmp_path, marker)):
            assert time.monotonic() - began < 20, "the task never started"
            time.sleep(0.05)
        time.sleep(0.5)
        frozen = [int(p.split(":", 1)[0]) for p in _processes_of(tmp_path, marker)]
        for pid in frozen:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        time.sleep(8)
        for pid in frozen:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
        _, err = apply.communicate(timeout=40)
    finally:
        apply.kill()
    assert apply.returncode == 0, err
