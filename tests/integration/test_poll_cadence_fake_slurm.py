"""How often a batch host is polled, and its scheduler asked, on the fake SLURM of
tests/fakes/slurm: status files are read quickly while tasks start and end, the scheduler at
most once a `poll_interval` unless an end is due or a job may have left without one."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.test_engine_fake_slurm import (  # noqa: F401 (fixtures)
    _status,
    _tasks,
    _wait_for,
    fake_slurm,
    recorded,
    seams,
)
from tests.integration.test_pool_fake_slurm import _pool

SLACK = 3.0  # seconds a poll, a query and the fake's own start may take on a busy machine


def _squeue_calls(project: Path) -> list[float]:
    """When the fake's squeue was called, as its `calls` file says."""
    calls = project / "slurm-state" / "calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [float(line.split()[1]) for line in lines if line.startswith("squeue ")]


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _statuses(project: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (project / "cluster-work").glob("*/status")]


def _single(project: Path, walltime: int, run: str, host: str) -> Path:
    return _tasks(
        project,
        f"  - name: one\n    resources: {{walltime: {walltime}}}\n    run: '{run}'\n",
        host,
    )


@pytest.mark.usefixtures("fake_slurm")
def test_200_pooled_tasks_end_the_run_soon_after_the_last_with_few_scheduler_queries(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Their status files say when each starts and ends: the run ends within about 2 s of
    the last end, and squeue is asked about once a poll_interval, not at every poll."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "8")
    tasks = _pool(tmp_path, 200, 300, "      sleep 0.2\n", ", poll_interval: 30")
    began = time.time()
    result = cli("apply", tasks)
    ended = time.time()
    assert result.code == 0, result.err
    queries = len([t for t in _squeue_calls(tmp_path) if began <= t <= ended])
    statuses = _statuses(tmp_path)
    assert len(statuses) == 200 and {s["state"] for s in statuses} == {"completed"}
    last_end = max(_epoch(s["end"]) for s in statuses)
    assert ended - last_end < 2.5, f"the run ended {ended - last_end:.1f} s after its last task"
    assert queries <= (ended - began) / 30 + 3, f"{queries} squeue calls in {ended - began:.0f} s"


@pytest.mark.usefixtures("fake_slurm")
def test_a_job_cancelled_while_queued_is_seen_ended_within_a_poll_interval(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """No status file will ever say it ended: only the scheduler can, at its next query."""
    state = tmp_path / "slurm-state"
    (state / "hold-1").touch()
    tasks = _single(tmp_path, 60, "true", ", poll_interval: 10, lost_after: 1s")
    cancelled: list[float] = []

    def cancel_once_queued() -> None:
        _wait_for(lambda: (state / "jobs" / "1.json").exists(), "the job")
        time.sleep(2.0)  # past the first queries after its start
        subprocess.run(["scancel", "1"], check=True)
        cancelled.append(time.time())

    canceller = threading.Thread(target=cancel_once_queued)
    canceller.start()
    result = cli("apply", tasks)
    ended = time.time()
    canceller.join()
    assert result.code == 1, result.err
    assert ended - cancelled[0] < 10 + 1 + SLACK, f"seen {ended - cancelled[0]:.1f} s after"
    row = _status(cli, tmp_path)["one"]
    assert (row["state"], row["attempts"][-1]["cause"]) == ("killed", "cancelled"), row


@pytest.mark.usefixtures("fake_slurm")
def test_an_end_long_before_the_walltime_is_seen_within_a_poll_interval(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Its end was not due: its status file says it, the scheduler is not asked for it."""
    began = time.time()
    result = cli("apply", _single(tmp_path, 3600, "sleep 3", ", poll_interval: 30"))
    ended = time.time()
    assert result.code == 0, result.err
    (status,) = _statuses(tmp_path)
    assert ended - _epoch(status["end"]) < 30 + SLACK
    assert ended - began < 3 + 30 + SLACK
    queries = [t for t in _squeue_calls(tmp_path) if began <= t <= ended]
    assert len(queries) <= 2, f"{len(queries)} squeue calls for one task of {ended - began:.0f} s"


@pytest.mark.usefixtures("fake_slurm")
def test_a_failure_waits_for_the_schedulers_word_only_briefly(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The scheduler may say why a command failed (out of memory, preempted): it is asked
    about 2 s after the status file said so, not at the next poll_interval."""
    result = cli("apply", _single(tmp_path, 3600, "sleep 2; exit 3", ", poll_interval: 30"))
    ended = time.time()
    assert result.code == 1, result.err
    (status,) = _statuses(tmp_path)
    assert ended - _epoch(status["end"]) < 2 + SLACK
    row = _status(cli, tmp_path)["one"]
    assert (row["state"], row["attempts"][-1]["cause"]) == ("failed", "exit_code"), row


@pytest.mark.parametrize("walltime", [5, 9])
@pytest.mark.usefixtures("fake_slurm")
def test_an_end_at_the_walltime_is_seen_within_2_s(cli, tmp_path: Path, walltime: int) -> None:  # type: ignore[no-untyped-def]
    """The wrapper stops the task at its walltime: the end was due, and polled for (polls
    growing from the start alone would come 0.5 s after 5 s, but 3 s after 9 s)."""
    result = cli("apply", _single(tmp_path, walltime, "sleep 60", ", poll_interval: 30"))
    ended = time.time()
    assert result.code == 1, result.err
    (status,) = _statuses(tmp_path)
    assert status["reason"].startswith("walltime exceeded"), status
    start, end = _epoch(status["start"]), _epoch(status["end"])
    # The wrapper's watchdog counts the seconds the node ran: a busy machine delays its ticks.
    assert walltime - 0.5 < end - start < walltime + SLACK
    assert ended - end < 2.5, f"seen {ended - end:.1f} s after its end"
    row = _status(cli, tmp_path)["one"]
    assert (row["state"], row["attempts"][-1]["cause"]) == ("failed", "timeout"), row
