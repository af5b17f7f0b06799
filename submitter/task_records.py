"""What the store keeps of a task, and reading it back: its spec, whether its outputs here
are still those of its run, its next attempt's number, the tasks a command names."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from typing import Any

from submitter.errors import UsageError
from submitter.identity import SignatureCache, file_signature, fingerprint
from submitter.paths import Transfer
from submitter.prepare import PreparedTask
from submitter.retry import RetryPolicy
from submitter.states import TaskState
from submitter.store.db import Store, TaskRecord
from submitter.store.host_record import host_record


def spec_of(task: PreparedTask) -> dict[str, Any]:
    """What the store keeps so status, logs, kill and purge work without the tasks file."""
    return {
        "host_config": host_record(task.host.config),
        "outputs": [[o.local.as_posix(), o.remote] for o in task.output_files],
        "output_patterns": [
            [p.key, p.base, p.local_base.as_posix(), p.remote_base] for p in task.output_patterns
        ],
        "walltime": task.definition.resources.walltime,
        "identity": fingerprint(task.identity),
        "upstream": list(task.definition.upstream),
        "retry": task.definition.retry.to_record(),
    }


def outputs_changed(
    record: TaskRecord, outputs: list[Transfer], signatures: SignatureCache
) -> str | None:
    """Why a completed task's outputs here are not the ones its run produced, if so: the
    declared files, and every file its patterns matched (recorded when it completed)."""
    digests = record.outputs  # parsed once here
    declared = [str(o.local) for o in outputs]
    expected = {local: digests.get(local) for local in declared}
    expected.update(digests)
    for local, recorded in expected.items():
        try:
            info = os.stat(local)
        except OSError:
            return f"declared output {local} is missing here"
        if recorded is None:
            continue
        if file_signature(local, signatures, info) != recorded:
            return f"declared output {local} changed here since the task completed"
    return None


def retry_policy(record: TaskRecord) -> RetryPolicy:
    """The retry policy the task was declared with, as the store keeps it."""
    return RetryPolicy.from_record(record.spec.get("retry"))


def series_number(record: TaskRecord | None) -> int:
    """The number of a task's next attempt: a retry left waiting by an earlier run continues
    its series; a task run again after it ended (failed, killed, changed) starts anew."""
    if record is not None and record.state == TaskState.PENDING:
        return record.next_attempt
    return 1


def records_for(store: Store, references: Iterable[str]) -> list[TaskRecord]:
    """The task each reference names: an exact name or id, else a unique id prefix."""
    found: list[TaskRecord] = []
    for reference in references:
        record = store.resolve(reference)
        if record is None:
            raise UsageError(f"no task named or with an id starting with '{reference}'")
        found.append(record)
    return found


def blocked_by_purged(
    store: Store, purged: Iterable[TaskRecord]
) -> list[tuple[TaskRecord, list[str]]]:
    """The blocked tasks that purging these would leave naming a task that is gone: those an
    upstream task of which is purged (with no other task of its name left), each with those
    names. They never ran; each one that goes may take its own blocked downstream along."""
    going = {record.id: record for record in purged}
    left = Counter(record.name for record in store.tasks() if record.id not in going)
    gone = {record.name for record in going.values() if not left[record.name]}
    found: list[tuple[TaskRecord, list[str]]] = []
    blocked = [r for r in store.tasks((TaskState.BLOCKED,)) if r.id not in going]
    while wave := [
        (record, upstream)
        for record in blocked
        if record.id not in going
        and (upstream := [name for name in record.spec.get("upstream", []) if name in gone])
    ]:
        for record, _ in wave:
            going[record.id] = record
            left[record.name] -= 1
        gone.update(record.name for record, _ in wave if not left[record.name])
        found += wave
    return found
