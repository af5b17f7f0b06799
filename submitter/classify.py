"""Where each declared task stands when a run begins: up to date (skipped), started earlier
(re-attached), or to be run; and a task of the store seen again by `status` or `kill`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from submitter.config.models import Limits
from submitter.identity import SignatureCache
from submitter.paths import OutputPattern, Transfer
from submitter.prepare import PreparedTask
from submitter.progress import Progress
from submitter.retry import attempt_walltime
from submitter.run_state import Tracked
from submitter.states import TaskState
from submitter.store.db import Store, TaskRecord
from submitter.task_records import outputs_changed, retry_policy, series_number, spec_of


def classify(
    store: Store,
    progress: Progress,
    signatures: SignatureCache,
    task: PreparedTask,
    record: TaskRecord | None,
    *,
    force: bool,
    tasks_file: str,
) -> Tracked:
    tracked = Tracked(
        task.task_id,
        task.name,
        task.host.name,
        task.task_dir,
        task.output_files,
        walltime=task.definition.resources.walltime,
        patterns=task.output_patterns,
        upstream=task.definition.upstream,
        policy=task.definition.retry,
    )
    if record is not None and record.active:
        _reattach(store, tracked, task, record, tasks_file)
        return tracked
    rerun = None
    if record is not None and record.state == TaskState.COMPLETED:
        rerun = "forced" if force else outputs_changed(record, tracked.outputs, signatures)
        if rerun is None:
            tracked.state = "skipped"
            if record.name != task.name or record.retired or record.tasks_file != tasks_file:
                store.upsert_task(*record_fields(task), tasks_file)
            return tracked
    tracked.ready(task)
    tracked.number = series_number(record)
    with store.transaction():
        store.upsert_task(*record_fields(task), tasks_file)
        store.set_task_state(task.task_id, TaskState.PENDING)
        store.set_next_attempt(task.task_id, tracked.number)
        if rerun is not None:
            store.event(task.task_id, "rerun", rerun)
    if rerun is not None:
        progress.say(f"rerun: {task.name} ({task.task_id}): {rerun}")
    return tracked


def _reattach(
    store: Store, tracked: Tracked, task: PreparedTask, record: TaskRecord, tasks_file: str
) -> None:
    """A task an earlier run started: watched again from its latest attempt, and ready to
    start again (its start may not have happened, or it may be retried)."""
    attempt = store.latest_attempt(task.task_id)
    tracked.state = record.state
    tracked.attempt_id = attempt.id if attempt else None
    tracked.token = attempt.token if attempt else ""
    tracked.job_id = attempt.job_id if attempt else None
    tracked.number = attempt.number if attempt else 1
    tracked.walltime = attempt_walltime(
        tracked.walltime, tracked.policy, tracked.number, task.host.config.limits
    )
    tracked.ready(task)
    if record.name != task.name:
        store.upsert_task(*record_fields(task), tasks_file)


def record_fields(task: PreparedTask) -> tuple[str, str, str, str, str, dict[str, Any]]:
    return (task.task_id, task.name, task.host.name, task.task_dir, task.run_dir, spec_of(task))


def tracked_from_record(store: Store, record: TaskRecord) -> Tracked:
    """A task of the store, watched by `status` or `kill` (nothing to start it with)."""
    attempt = store.latest_attempt(record.id)
    outputs = [Transfer(Path(local), remote) for local, remote in record.spec.get("outputs", [])]
    patterns = [
        OutputPattern(key, base, Path(local), remote)
        for key, base, local, remote in record.spec.get("output_patterns", [])
    ]
    policy = retry_policy(record)
    number = attempt.number if attempt else 1
    limits = Limits()  # the store keeps no host limits: the walltime uncapped
    return Tracked(
        record.id,
        record.name,
        record.host,
        record.task_dir,
        outputs,
        record.state,
        attempt_id=attempt.id if attempt else None,
        token=attempt.token if attempt else "",
        job_id=attempt.job_id if attempt else None,
        patterns=patterns,
        upstream=tuple(record.spec.get("upstream", ())),
        walltime=attempt_walltime(record.spec.get("walltime"), policy, number, limits),
        number=number,
        policy=policy,
    )
