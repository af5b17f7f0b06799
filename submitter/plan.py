"""`apply --plan`: what an apply would do with each task, and why, touching no host."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from submitter.identity import SignatureCache, fingerprint, what_changed
from submitter.prepare import PreparedTask
from submitter.states import TaskState
from submitter.store.db import Store, TaskRecord
from submitter.task_records import outputs_changed

RUN, WAIT, SKIP, ATTACH = "run", "wait", "skip", "attach"
ORDER = (RUN, WAIT, ATTACH, SKIP)


@dataclass(frozen=True)
class Step:
    name: str
    id: str
    host: str
    action: str  # run | wait | attach | skip
    why: str


def plan(
    prepared: Iterable[PreparedTask],
    store: Store | None,
    *,
    force: bool,
    signatures: SignatureCache,
    declared: Sequence[str],
) -> list[Step]:
    """One step per task, in the order of `declared` (the tasks' names as declared); the
    tasks come upstream first (prepare.iter_prepared), each let go once decided."""
    steps: dict[str, Step] = {}
    for batch in _batches(prepared):
        _decide_batch(batch, store, force, signatures, steps)
    return [steps[name] for name in declared if name in steps]


_BATCH = 250  # tasks whose records are read together (and are kept meanwhile)


def _batches(tasks: Iterable[PreparedTask]) -> Iterator[list[PreparedTask]]:
    batch: list[PreparedTask] = []
    for task in tasks:
        batch.append(task)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _decide_batch(
    batch: list[PreparedTask],
    store: Store | None,
    force: bool,
    signatures: SignatureCache,
    steps: dict[str, Step],
) -> None:
    """The steps of a batch of tasks (their upstream tasks decided before them)."""
    records = store.tasks_by_id([t.task_id for t in batch], with_spec=False) if store else {}
    # what changed is said of the tasks whose id the store does not know
    new = [t.name for t in batch if t.task_id not in records]
    previous = store.latest_by_name(new) if store and new else {}
    for task in batch:
        action, why = _decide(
            task, records.get(task.task_id), previous.get(task.name), force, signatures
        )
        moving = [
            up
            for up in task.definition.upstream
            if up in steps and steps[up].action in (RUN, WAIT, ATTACH)
        ]
        if action == RUN and moving:
            action, why = WAIT, f"for {', '.join(moving)}; then runs: {why}"
        steps[task.name] = Step(task.name, task.task_id, task.host.name, action, why)


def _decide(
    task: PreparedTask,
    record: TaskRecord | None,
    previous: TaskRecord | None,
    force: bool,
    signatures: SignatureCache,
) -> tuple[str, str]:
    if record is not None and record.active:
        return ATTACH, f"{record.state} since an earlier apply, which this one re-attaches to"
    if record is not None and record.state == TaskState.COMPLETED:
        if force:
            return RUN, "forced"
        changed = outputs_changed(record, task.output_files, signatures)
        return (RUN, changed) if changed else (SKIP, "up to date")
    if record is not None:
        return RUN, f"its last run {record.state}" + (f": {record.reason}" if record.reason else "")
    if previous is None:
        return RUN, "new"
    before = previous.spec.get("identity")
    if not isinstance(before, dict):
        return RUN, "its definition changed"
    return RUN, ", ".join(what_changed(before, fingerprint(task.identity))) or "its id changed"


def summary(steps: Sequence[Step]) -> str:
    counts = {action: sum(1 for s in steps if s.action == action) for action in ORDER}
    return (
        f"plan: {counts[RUN]} to run, {counts[WAIT]} to wait, "
        f"{counts[ATTACH]} to re-attach to, {counts[SKIP]} up to date"
    )


def lines(steps: Sequence[Step], *, verbose: bool) -> list[str]:
    shown = [s for s in steps if verbose or s.action in (RUN, WAIT)]
    return [f"{s.action:<6} {s.name} ({s.id}) on {s.host}: {s.why}" for s in shown]
