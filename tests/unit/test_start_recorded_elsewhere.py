"""A client with a stale view of a start (a `status` that read the store while an apply was
starting the task) finds the host saying the attempt never started, because that apply's
poll removed the claim file once it had recorded the start: the store's record wins."""

from __future__ import annotations

from pathlib import Path

from submitter.run_state import HostRun, Tracked
from submitter.start_step import recorded_elsewhere
from submitter.store.db import Store


def _stale(store: Store, token: str) -> tuple[Tracked, HostRun]:
    tracked = Tracked("t1", "one", "slurm", "/w/t1", [], state="starting", token=token)
    run = HostRun(max_running=10, poll_interval=1.0)
    run.active[tracked.id] = tracked
    return tracked, run


def test_a_start_another_client_recorded_is_taken_from_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / ".submitter")
    store.upsert_task("t1", "one", "slurm", "/w/t1", "/w/t1", {})
    attempt, token = store.start_attempt("t1", "slurm", "slurm@1.2", "sha")
    tracked, run = _stale(store, token)  # read before the start was recorded
    store.update_attempt(attempt, job_id="pool:1..2/0")
    store.transition("t1", "queued", "queued", attempt_id=attempt)
    assert recorded_elsewhere(store, run, tracked)
    assert (tracked.job_id, tracked.state) == ("pool:1..2/0", "queued")
    assert "t1" in run.active
    assert store.task("t1").state == "queued"  # type: ignore[union-attr]


def test_a_start_nobody_recorded_is_left_to_the_verdict(tmp_path: Path) -> None:
    store = Store(tmp_path / ".submitter")
    store.upsert_task("t1", "one", "slurm", "/w/t1", "/w/t1", {})
    _, token = store.start_attempt("t1", "slurm", "slurm@1.2", "sha")
    tracked, run = _stale(store, token)
    assert not recorded_elsewhere(store, run, tracked)
    other, _ = _stale(store, "another-token")
    assert not recorded_elsewhere(store, run, other)
    assert tracked.job_id is None
