"""A task's life cycle: its states, their groups, and the structured cause of a failure."""

from __future__ import annotations

import enum


class TaskState(str, enum.Enum):
    """Where a task stands. The value is what the store, `status` and `--json` show."""

    PENDING = "pending"  # declared, not started in this attempt
    STARTING = "starting"  # an attempt is recorded; its start on the host is not confirmed
    SUBMITTED = "submitted"  # the scheduler accepted the job
    QUEUED = "queued"
    HELD = "held"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"
    BLOCKED = "blocked"  # not started in this run: a task it runs after did not complete

    def __str__(self) -> str:
        return self.value


ACTIVE: frozenset[str] = frozenset(
    s.value
    for s in (
        TaskState.STARTING,
        TaskState.SUBMITTED,
        TaskState.QUEUED,
        TaskState.HELD,
        TaskState.RUNNING,
    )
)
FAILED: frozenset[str] = frozenset(
    s.value for s in (TaskState.FAILED, TaskState.KILLED, TaskState.LOST)
)
FINAL: frozenset[str] = FAILED | {TaskState.COMPLETED.value}
# The states a wrapper's status file ends with (`lost` is the client's verdict, never written;
# `blocked`: a chained task's wrapper found an upstream task that did not complete).
STATUS_FILE_FINAL: frozenset[str] = frozenset(
    s.value for s in (TaskState.COMPLETED, TaskState.FAILED, TaskState.KILLED, TaskState.BLOCKED)
)


_ACTIVE_STATES = frozenset(TaskState(s) for s in ACTIVE)
_ENDED_STATES = frozenset(TaskState(s) for s in FINAL) | {TaskState.BLOCKED}

# Where a task may go from each state. An attempt begins at `starting` (the store records it
# before the host is asked) and only from `pending`; an ended task goes back to `pending` for
# a new run or a retry. The same state again is a new reason. Anything else is a defect.
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset(
        {
            TaskState.PENDING,
            TaskState.STARTING,
            TaskState.BLOCKED,  # an upstream task did not complete
            TaskState.KILLED,  # killed before it started
            TaskState.FAILED,  # refused before submission (asks more than any node has)
        }
    ),
    **{
        state: _ACTIVE_STATES | _ENDED_STATES | {TaskState.PENDING}  # pending: a retry
        for state in _ACTIVE_STATES
    },
    **{state: _ENDED_STATES | {TaskState.PENDING} for state in _ENDED_STATES},
}


class IllegalTransition(RuntimeError):
    """A task moved from one state to another the life cycle does not allow."""


def check_transition(task_id: str, current: str, new: str) -> None:
    """Raise IllegalTransition unless a task may go from `current` to `new`."""
    if TaskState(new) not in TRANSITIONS[TaskState(current)]:
        raise IllegalTransition(f"task {task_id}: {current} -> {new} is not a transition")


class Cause(str, enum.Enum):
    """Why an attempt did not complete, for retry decisions; the human reason sits beside it."""

    NONE = ""
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "oom"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"  # ended by the scheduler to make room for another job
    CANCELLED = "cancelled"  # by the scheduler or an administrator
    KILLED = "killed"  # by the user, or a signal to the task
    LOST = "lost"
    EXIT_CODE = "exit_code"
    MISSING_OUTPUT = "missing_output"
    SUBMIT_ERROR = "submit_error"
    NOT_STARTED = "not_started"  # the client stopped before the host started it

    def __str__(self) -> str:
        return self.value
