"""Decide a task's state, reason and cause from its status file (the truth) and the scheduler
(a liveness hint; where it keeps accounting, as SLURM's sacct, also how a job that left the
queue ended: what kills the wrapper before it can write, a time limit, a dead node, is then
known rather than called lost). Only an output that does not come back can still fail it
afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from submitter.schedulers.base import JobState, JobStatus
from submitter.states import STATUS_FILE_FINAL, Cause
from submitter.units import format_clock

# A job gone from the scheduler (or a dead wrapper) with no final status file yet may be
# waiting on a slow shared filesystem; after this long it is called lost.
LOST_GRACE_BATCH = 60.0
LOST_GRACE_PROCESS = 5.0

_SCHEDULER_REASONS = {
    JobState.TIMEOUT: "walltime exceeded: killed by the scheduler",
    JobState.OUT_OF_MEMORY: "out of memory: killed by the scheduler",
    JobState.NODE_FAIL: "node failure",
    JobState.PREEMPTED: "preempted by the scheduler for another job",
    JobState.CANCELLED: "cancelled by the scheduler or an administrator",
    JobState.FAILED: "the scheduler reports the job failed",
}
_SCHEDULER_CAUSES = {
    JobState.TIMEOUT: Cause.TIMEOUT,
    JobState.OUT_OF_MEMORY: Cause.OUT_OF_MEMORY,
    JobState.NODE_FAIL: Cause.NODE_FAIL,
    JobState.PREEMPTED: Cause.PREEMPTED,
    JobState.CANCELLED: Cause.CANCELLED,
    JobState.FAILED: Cause.NONE,
}
# The reason of a queued task whose job waits for what waiting will not bring.
CANNOT_START = "cannot start: "


def cause_of_status_file(status_file: dict[str, Any]) -> Cause:
    """The cause of an attempt the wrapper concluded, from what its status file says."""
    state = status_file.get("state")
    reason = str(status_file.get("reason") or "")
    if state == "completed":
        return Cause.NONE
    if state == "killed":
        return Cause.KILLED
    if reason.startswith("walltime exceeded"):
        return Cause.TIMEOUT
    if reason.startswith("missing declared output"):
        return Cause.MISSING_OUTPUT
    if reason.startswith("exit code"):
        return Cause.EXIT_CODE
    return Cause.NONE


def scheduler_may_explain(status_file: dict[str, Any] | None) -> bool:
    """Whether the scheduler may know better than a final status file why its task ended: a
    failure of the task's command (killed for its memory?) or a kill from outside (preempted?),
    not a completion, nor an end the wrapper itself decided (the walltime, a missing output,
    the user's kill)."""
    status = status_file or {}
    if status.get("state") == "killed":
        return status.get("reason") != "killed by the user"
    return status.get("state") == "failed" and cause_of_status_file(status) in (
        Cause.EXIT_CODE,
        Cause.NONE,
    )


def status_time(status_file: dict[str, Any] | None, key: str) -> float | None:
    """A status file's `start` or `end`, in seconds since the epoch, if it says one."""
    try:
        stamp = datetime.fromisoformat(str((status_file or {})[key]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return stamp.timestamp()


def packed_task_view(
    scheduler: JobStatus | None, status_file: dict[str, Any] | None
) -> JobStatus | None:
    """What the scheduler's view of a packed job says of one task in it. The task's own
    final status stands whatever became of the job later (a job that timed out after this
    task completed did not fail it); a running job whose task has not begun holds it queued."""
    file_state = (status_file or {}).get("state")
    if file_state in STATUS_FILE_FINAL:
        return None
    if scheduler is not None and scheduler.state is JobState.RUNNING and file_state is None:
        return JobStatus(JobState.QUEUED, "waiting in its packed job")
    return scheduler


@dataclass(frozen=True)
class Verdict:
    state: str  # queued | held | running | completed | failed | killed | lost | (unchanged)
    reason: str = ""
    final: bool = False
    waiting_since: float | None = None  # set while inside the grace period
    cause: Cause = Cause.NONE


def judge(
    status_file: dict[str, Any] | None,
    scheduler: JobStatus | None,
    alive: bool | None,
    *,
    batch: bool,
    now: float,
    waiting_since: float | None,
    current: str,
    lost_after: float | None = None,
) -> Verdict:
    """The task's new state. `scheduler` is None when the job is absent from the queue and,
    where the scheduler keeps accounting, from its records too."""
    file_state = (status_file or {}).get("state")
    if file_state in STATUS_FILE_FINAL:
        return _by_status_file(status_file or {}, scheduler)
    if batch:
        return _by_queue(scheduler, file_state, now, waiting_since, current, lost_after)
    if alive:
        return Verdict("running")
    return _after_grace(
        now,
        waiting_since,
        LOST_GRACE_PROCESS if lost_after is None else lost_after,
        Verdict(
            "lost", f"the task's process ended {_unfinished(file_state)}", True, cause=Cause.LOST
        ),
    )


def _by_status_file(status_file: dict[str, Any], scheduler: JobStatus | None) -> Verdict:
    """A final status file is the truth, unless the scheduler says it ended the job itself."""
    reason = str(status_file.get("reason") or "")
    if scheduler is not None and scheduler.state in (
        JobState.TIMEOUT,
        JobState.OUT_OF_MEMORY,
        JobState.NODE_FAIL,
        JobState.PREEMPTED,
    ):
        return Verdict(
            "failed",
            f"{_SCHEDULER_REASONS[scheduler.state]} ({scheduler.code})",
            True,
            cause=_SCHEDULER_CAUSES[scheduler.state],
        )
    if (
        scheduler is not None
        and scheduler.state is JobState.CANCELLED
        and ended_by_signal(status_file)
    ):  # the cancel's signal reached the task's command before its wrapper
        return Verdict(
            "killed",
            f"{_SCHEDULER_REASONS[scheduler.state]} ({scheduler.code})",
            True,
            cause=Cause.CANCELLED,
        )
    file_state = str(status_file.get("state"))
    if file_state == "blocked":
        return Verdict(file_state, f"blocked: {reason}", True)
    return Verdict(file_state, reason, True, cause=cause_of_status_file(status_file))


def _by_queue(
    scheduler: JobStatus | None,
    file_state: Any,
    now: float,
    waiting_since: float | None,
    current: str,
    lost_after: float | None,
) -> Verdict:
    """A batch task without a final status: the queue's view, with a grace period for a
    status file still on its way."""
    if scheduler is not None and scheduler.state.active:
        if scheduler.state is JobState.RUNNING or file_state == "running":
            return Verdict("running")
        if scheduler.state is JobState.HELD:
            return Verdict("held", scheduler.code)
        stuck = f"{CANNOT_START}{scheduler.cannot_start}" if scheduler.cannot_start else ""
        return Verdict("queued" if current in ("submitted", "queued") else current, stuck)
    if scheduler is not None and scheduler.state in _SCHEDULER_REASONS:
        # The scheduler ended the job itself; the wrapper may not have had the chance to
        # write (SIGKILL after the grace time). Short wait for the file, then fail.
        return _after_grace(
            now,
            waiting_since,
            10.0 if lost_after is None else min(10.0, lost_after),
            Verdict(
                "killed" if scheduler.state is JobState.CANCELLED else "failed",
                f"{_SCHEDULER_REASONS[scheduler.state]} ({scheduler.code})",
                True,
                cause=_SCHEDULER_CAUSES[scheduler.state],
            ),
        )
    return _after_grace(
        now,
        waiting_since,
        LOST_GRACE_BATCH if lost_after is None else lost_after,
        Verdict(
            "lost", f"the job left the scheduler {_unfinished(file_state)}", True, cause=Cause.LOST
        ),
    )


def _unfinished(file_state: Any) -> str:
    """How a task that vanished left its status file: never written, or not final."""
    if file_state is None:
        return "without writing a status file"
    return f"while its status file still said '{file_state}' (no final status was written)"


def _after_grace(now: float, since: float | None, grace: float, verdict: Verdict) -> Verdict:
    if since is None:
        return Verdict("", waiting_since=now)
    if now - since < grace:
        return Verdict("", waiting_since=since)
    return verdict


def ended_by_signal(status_file: dict[str, Any] | None) -> bool:
    """Whether the wrapper recorded a failure of a command ended by a signal (exit code 128
    plus the signal's number: 143 for TERM, 137 for KILL)."""
    status = status_file or {}
    code = status.get("exit_code")
    return status.get("state") == "failed" and isinstance(code, int) and 128 < code < 160


def overran_walltime(
    state: str, reason: str, cause: Cause, status: dict[str, Any] | None, walltime: int | None
) -> tuple[str, str, Cause]:
    """A kill at the walltime is the scheduler's timeout, even when the queue has forgotten
    the job (or, as Torque's qstat, never says why it ended)."""
    if state != "killed" or not walltime or not status:
        return state, reason, cause
    start, end = status_time(status, "start"), status_time(status, "end")
    if start is None or end is None:
        return state, reason, cause
    if end - start >= walltime - 1:
        return (
            "failed",
            f"walltime exceeded: killed after {format_clock(walltime)} by the scheduler",
            Cause.TIMEOUT,
        )
    return state, reason, cause
