"""`apply --plan`: what an apply would do with each task, and why, touching no host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from submitter.config.dependencies import order
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
    prepared: Sequence[PreparedTask],
    store: Store | None,
    *,
    force: bool,
    signatures: SignatureCache,
) -> list[Step]:
    """One step per task, in the order the tasks were declared."""
    records = store.tasks_by_id([t.task_id for t in prepared], with_spec=False) if store else {}
    # what changed is said of the tasks whose id the store does not know
    new = [t.name for t in prepared if t.task_id not in records]
    previous = store.latest_by_name(new) if store and new else {}
    steps: dict[str, Step] = {}
    by_name = {t.name: t for t in prepared}
    for name in order({t.name: t.definition.upstream for t in prepared}):
        task = by_name[name]
        action, why = _decide(
            task, records.get(task.task_id), previous.get(name), force, signatures
        )
        moving = [
            up
            for up in task.definition.upstream
            if up in steps and steps[up].action in (RUN, WAIT, ATTACH)
        ]
        if action == RUN and moving:
            action, why = WAIT, f"for {', '.join(moving)}; then runs: {why}"
        steps[name] = Step(name, task.task_id, task.host.name, action, why)
    return [steps[t.name] for t in prepared]


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
