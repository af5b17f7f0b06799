"""A client with a stale view of a start (a `status` that read the store while an apply was
starting the task) finds the host saying the attempt never started, because that apply's
poll removed the claim file once it had recorded the start: the store's record wins."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from submitter.hostops import HostOps
from submitter.run_state import HostRun, Tracked
from submitter.start_step import recorded_elsewhere, settled_elsewhere
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


def test_a_start_the_host_says_another_client_settled_is_left_to_the_store() -> None:
    """The host answers a late start of a claimed attempt as superseded: not an error of this
    start (the task is not failed), what became of it is the store's to say."""
    started = HostOps.for_kind("local").parse_start(
        "START\tt1\tsuperseded\tattempt x was given up before it started\n"
    )
    assert started["t1"].superseded and started["t1"].job_id is None


class _Host:
    """What settled_elsewhere uses of a host's session."""

    def __init__(self, store: Store, run: HostRun) -> None:
        self.ctx = SimpleNamespace(store=store, may_start=True)
        self.run = run
        self.finished: list[tuple[str, str]] = []

    def finish(self, tracked: Tracked, state: str, reason: str, cause: object = None) -> None:
        self.finished.append((tracked.id, state))


def test_an_attempt_another_client_settled_takes_the_stores_word(tmp_path: Path) -> None:
    store = Store(tmp_path / ".submitter")
    store.upsert_task("t1", "one", "local", "/w/t1", "/w/t1", {})
    _, token = store.start_attempt("t1", "local", "wrapper@1", "sha")
    tracked, run = _stale(store, token)
    host = _Host(store, run)
    settled_elsewhere(host, tracked)  # type: ignore[arg-type]
    assert "t1" in run.active and not host.finished, "still starting: asked again later"
    store.transition("t1", "pending", "not started")  # a `status` found it not started
    tracked.prepared = object()  # type: ignore[assignment]
    settled_elsewhere(host, tracked)  # type: ignore[arg-type]
    assert "t1" not in run.active and list(run.pending) == [tracked], "started again"
    store.transition("t1", "killed", "killed before it started")  # a `kill`
    run.active["t1"] = tracked
    settled_elsewhere(host, tracked)  # type: ignore[arg-type]
    assert host.finished == [("t1", "killed")]
