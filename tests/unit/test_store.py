"""The state store: schema versions and migrations, transitions, references, host records."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from submitter.config.models import HostConfig
from submitter.errors import SubmitterError
from submitter.schedulers.registry import batch_scheduler
from submitter.states import ACTIVE, TRANSITIONS, IllegalTransition, TaskState
from submitter.store.db import MIGRATIONS, SCHEMA_VERSION, AmbiguousReference, Store
from submitter.store.host_record import host_config, host_record


def _version_one_store(state_dir: Path) -> None:
    """A state.db as the first released schema wrote it, with one finished task."""
    state_dir.mkdir(parents=True)
    db = sqlite3.connect(state_dir / "state.db")
    db.executescript(MIGRATIONS[0])
    spec = {"host_config": {"address": "a@b", "scheduler": "slurm", "limits": {"mem": 1024}}}
    db.execute(
        "INSERT INTO tasks VALUES ('abc123', 'old', 'hpc', 'completed', '', '/w/abc123', "
        "'/w/abc123', ?, 1.0, 2.0)",
        (json.dumps(spec),),
    )
    db.execute(
        "INSERT INTO attempts (task_id, host, job_id, pack, script_sha256, state, submitted) "
        "VALUES ('abc123', 'hpc', '42', 'slurm@1.0', 'f00', 'completed', 1.0)"
    )
    db.commit()
    db.close()


def test_an_older_store_is_migrated_without_losing_records(tmp_path: Path) -> None:
    state_dir = tmp_path / ".submitter"
    _version_one_store(state_dir)
    store = Store(state_dir)
    assert store.schema_version == SCHEMA_VERSION
    record = store.task("abc123")
    assert record is not None and record.name == "old" and record.state == "completed"
    assert record.outputs == {} and not record.retired
    attempt = store.latest_attempt("abc123")
    assert attempt is not None and attempt.job_id == "42" and attempt.cause == ""
    config = host_config(record.spec["host_config"])
    assert config.kind == "slurm" and config.address == "a@b"
    store.close()
    assert Store(state_dir).schema_version == SCHEMA_VERSION, "opening again changes nothing"


def test_a_store_from_a_newer_submitter_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / ".submitter"
    Store(state_dir).close()
    db = sqlite3.connect(state_dir / "state.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(SubmitterError, match="newer submitter"):
        Store(state_dir)


def test_a_transition_moves_task_attempt_and_history_together(tmp_path: Path) -> None:
    store = Store(tmp_path / ".submitter")
    store.upsert_task("t1", "one", "local", "/w/t1", "/w/t1", {})
    attempt, token = store.start_attempt("t1", "local", "wrapper@1.0", "sha")
    assert token and store.task("t1").state == "starting"  # type: ignore[union-attr]
    store.transition("t1", "failed", "exit code 3", attempt_id=attempt, cause="exit_code")
    assert store.task("t1").reason == "exit code 3"  # type: ignore[union-attr]
    latest = store.latest_attempt("t1")
    assert latest is not None and (latest.state, latest.cause) == ("failed", "exit_code")
    assert [kind for _, kind, _ in store.events("t1")] == ["starting", "failed"]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        (["starting", "running", "completed"], "running"),  # an ended task, running again
        ([], "submitted"),  # a job without an attempt
        (["starting", "failed"], "queued"),
        (["pending", "blocked"], "running"),
    ],
)
def test_a_move_the_life_cycle_does_not_allow_raises_and_changes_nothing(
    tmp_path: Path, path: list[str], illegal: str
) -> None:
    store = Store(tmp_path / ".submitter")
    store.upsert_task("t1", "one", "local", "/w/t1", "/w/t1", {})
    for state in path:
        store.transition("t1", state, f"now {state}")
    before = store.task("t1")
    with pytest.raises(IllegalTransition, match=f"-> {illegal}"):
        store.transition("t1", illegal, "no")
    after = store.task("t1")
    assert after is not None and before is not None
    assert (after.state, after.reason) == (before.state, before.reason)


def test_every_state_may_be_left_for_a_new_attempt_and_no_ended_task_starts_one() -> None:
    """An attempt starts from pending (or, for a start left unsure, from an active state)."""
    for state in TaskState:
        assert TaskState.PENDING in TRANSITIONS[state], state
        assert (TaskState.STARTING in TRANSITIONS[state]) == (state in ACTIVE_OR_PENDING), state


ACTIVE_OR_PENDING = {TaskState.PENDING, *(TaskState(s) for s in ACTIVE)}


def test_references_exact_first_then_a_unique_prefix(tmp_path: Path) -> None:
    store = Store(tmp_path / ".submitter")
    for task_id, name in (("ab12", "x"), ("ab34", "y"), ("cd56", "ab12")):
        store.upsert_task(task_id, name, "local", "/w", "/w", {})
    assert store.resolve("ab12").id == "cd56"  # type: ignore[union-attr]  # a name wins
    assert store.resolve("ab3").id == "ab34"  # type: ignore[union-attr]
    assert store.resolve("zz") is None
    with pytest.raises(AmbiguousReference, match="ab34"):
        store.resolve("ab")


def test_host_records_are_the_projects_own_shape() -> None:
    config = HostConfig(
        address="u@h", port=2222, scheduler="pbs", pbs_flavor="pro", reconnect_for=30
    )
    record = host_record(config)
    assert record["version"] == 1 and "limits" not in record
    again = host_config(json.loads(json.dumps(record)))
    assert (again.kind, again.address, again.port, again.reconnect_for) == ("pbs", "u@h", 2222, 30)
    assert again.pbs_flavor == "pro"  # status and kill query the host as apply did


@pytest.mark.parametrize(
    ("scheduler", "output", "transient"),
    [
        (
            "slurm",
            "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
            True,
        ),
        (
            "slurm",
            "sbatch: error: Batch job submission failed: Resource temporarily unavailable",
            True,
        ),
        (
            "slurm",
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
            True,
        ),
        (
            "slurm",
            "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified",
            False,
        ),
        ("pbs", "qsub: cannot connect to server pbs01 (errno=111) Connection refused", True),
        ("pbs", "qsub: Unknown queue", False),
        ("lsf", "LSF is down. Please wait ...", True),
        ("lsf", "Cannot connect to LSF. Please wait...", True),
        ("lsf", "batch system daemon not responding ... still trying", True),
        ("lsf", "Bad user ID. Job not submitted.", False),
        # SLURM's words, which only the test shim over SLURM ever printed: not LSF's
        (
            "lsf",
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller",
            False,
        ),
        ("sge", 'error: unable to contact qmaster using port 6444 on host "login"', True),
        ("sge", "Unable to run job: job rejected: the requested project does not exist.", False),
    ],
)
def test_transient_submission_errors(scheduler: str, output: str, transient: bool) -> None:
    assert batch_scheduler(scheduler).is_transient(output) is transient


def test_the_attempts_and_retry_records_of_many_tasks_are_read_together(tmp_path: Path) -> None:
    store = Store(tmp_path / ".submitter")
    retry = {"retries": 2, "retry_on": ["timeout"]}
    store.upsert_task("a1", "a", "local", "/w/a1", "/w/a1", {"retry": retry, "outputs": []})
    store.upsert_task("b2", "b", "local", "/w/b2", "/w/b2", {"outputs": []})
    first, _ = store.start_attempt("a1", "local", "p@1", "0")
    store.start_attempt("b2", "local", "p@1", "0")
    second, _ = store.start_attempt("a1", "local", "p@1", "0", number=2)
    attempts = store.attempts_of(["a1", "b2", "none"])
    assert [a.id for a in attempts["a1"]] == [first, second]
    assert [a.task_id for a in attempts["b2"]] == ["b2"]
    assert attempts["none"] == []
    records = store.retry_records(["a1", "b2"])
    assert json.loads(records["a1"] or "") == retry
    assert records["b2"] is None
