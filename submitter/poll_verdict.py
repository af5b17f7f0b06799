"""What one poll's answer means for one watched task: still where it was, moved on, or ended
(and how), with the user's cancel taken into account."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

from submitter.hostops import PollResult
from submitter.poll_timing import began
from submitter.run_state import Ending, HostRun, Tracked
from submitter.schedulers.base import (
    BatchScheduler,
    JobState,
    JobStatus,
    is_packed,
    is_pool,
    pool_jobs,
    pool_of,
)
from submitter.states import STATUS_FILE_FINAL, Cause, TaskState
from submitter.task_layout import over_marker
from submitter.verdict import (
    CANNOT_START,
    Verdict,
    ended_by_signal,
    judge,
    overran_walltime,
    packed_task_view,
    scheduler_may_explain,
    status_time,
)


@dataclass(frozen=True)
class Seen:
    """A watched task as the poll saw it."""

    state: str | None  # its state now, if the poll says one
    reason: str
    waiting_since: float | None  # since when its end is awaited (a grace period runs)
    ending: Ending | None  # set when its attempt ended
    vanished: bool  # gone from the queue, or ended there, without ever writing a status
    unstarted: bool = False  # a pool member no job took, and none of its jobs is left to
    # a final status the scheduler may explain, read without asking it: judged when it is asked
    confirm: bool = False
    # a pool member's attempt over without completing: its pool's jobs the queue has lost,
    # which must take no member should they come back (pool_over)
    over: tuple[str, ...] = ()


def judge_ending(
    tracked: Tracked,
    poll: PollResult,
    batch: BatchScheduler | None,
    lost_after: float | None,
    now: float,
) -> Seen:
    report = poll.tasks.get(tracked.id)
    pool = pool_jobs(tracked.job_id)
    status = _attempts_own(report.status if report else None, pool)
    if poll.status_only:
        return _by_status_file_only(tracked, status, now)
    scheduler = None
    if poll.scheduler is not None and batch is not None and tracked.job_id:
        if pool is not None and not (status or {}).get("job_id"):
            scheduler = _pool_view(batch, poll.scheduler, pool)
            if scheduler is None:
                return Seen(None, "", None, None, False, unstarted=True, over=tuple(pool))
        else:
            job = str((status or {}).get("job_id") or "") if pool is not None else ""
            scheduler = batch.find_status(poll.scheduler, job or tracked.job_id)
        if is_packed(tracked.job_id):
            scheduler = packed_task_view(scheduler, status)
    verdict = judge(
        status,
        scheduler,
        report.alive if report else None,
        batch=batch is not None,
        now=now,
        waiting_since=tracked.waiting_since,
        lost_after=lost_after,
        current=tracked.state,
    )
    gone = poll.scheduler is not None and (scheduler is None or not scheduler.state.active)
    ending = _ending(tracked, verdict, status, scheduler) if verdict.final else None
    over = pool is not None and gone and ending is not None and ending.state != "completed"
    return Seen(
        verdict.state,
        verdict.reason,
        verdict.waiting_since,
        ending,
        gone and status is None,
        over=(str((status or {}).get("job_id") or ""),) if over and status else (),
    )


def _attempts_own(status: dict[str, Any] | None, pool: list[str] | None) -> dict[str, Any] | None:
    """A pool member's status, unless a job outside its pool wrote it: a job of an earlier
    attempt, whose node failed and then thawed, may still end what it had started."""
    job = str((status or {}).get("job_id") or "")
    return None if pool is not None and job and job not in pool else status


def _ending(
    tracked: Tracked, verdict: Verdict, status: dict[str, Any] | None, scheduler: JobStatus | None
) -> Ending:
    state, reason, cause = overran_walltime(
        verdict.state, verdict.reason, verdict.cause, status, tracked.walltime
    )
    if tracked.cancelled:
        state, reason, cause = _after_cancel(state, reason, cause, status, scheduler)
    return Ending(tracked, state, reason, status or {}, cause)


def _by_status_file_only(tracked: Tracked, status: dict[str, Any] | None, now: float) -> Seen:
    """A poll that did not ask the scheduler: what the status file says, and where it says
    nothing new, the scheduler's last word kept (the task's state and reason, a grace period
    running). An end the scheduler may explain waits for the next poll that asks it."""
    unchanged = Seen(None, tracked.reason, tracked.waiting_since, None, False)
    file_state = (status or {}).get("state")
    if file_state == "running":
        return dataclasses.replace(unchanged, state=TaskState.RUNNING.value, reason="")
    if file_state not in STATUS_FILE_FINAL:
        return unchanged
    if scheduler_may_explain(status):
        return dataclasses.replace(unchanged, confirm=True)
    verdict = judge(
        status, None, None, batch=True, now=now, waiting_since=None, current=tracked.state
    )
    return dataclasses.replace(unchanged, ending=_ending(tracked, verdict, status, None))


def note_pool(run: HostRun, tracked: Tracked, status: dict[str, Any] | None, seen: Seen) -> None:
    """What a poll of a pool member tells of its pool: a job took a member of it; jobs of it
    are over (each marked on the host at the next start, before anything starts again)."""
    pool = tracked.job_id or ""
    if is_pool(pool) and (status or {}).get("job_id"):
        run.pools_taken.add(pool_of(pool))
    run.over_marks.update(over_marker(tracked.task_dir, job) for job in seen.over if job)


def stuck_reasons(watched: list[Tracked], endings: list[Ending]) -> Counter[str]:
    """Why the watched tasks still queued cannot start, as the scheduler says, by reason
    (those whose end this poll saw are no longer queued)."""
    ended = {ending.tracked.id for ending in endings}
    return Counter(
        t.reason
        for t in watched
        if t.state == TaskState.QUEUED and t.reason.startswith(CANNOT_START) and t.id not in ended
    )


def status_began(status: dict[str, Any] | None, known: float | None, now: float) -> float | None:
    """When the attempt whose status file says `status` began, as the timing of polls takes
    it (poll_timing.began); None while it has no status file."""
    return None if status is None else began(status_time(status, "start"), known, now)


def _pool_view(
    batch: BatchScheduler, statuses: dict[str, JobStatus], jobs: list[str]
) -> JobStatus | None:
    """What the scheduler says of a pool member no job has taken yet: queued while one of
    the pool's jobs runs or waits to; None when none is left that could take it."""
    views = [batch.find_status(statuses, job) for job in jobs]
    active = [v for v in views if v is not None and v.state.active]
    if not active:
        return None
    running = [v for v in active if v.state is JobState.RUNNING]
    if running:
        return JobStatus(JobState.QUEUED, "waiting in its pool")
    return next((v for v in active if v.state is not JobState.HELD), active[0])


def spare_pool_jobs(
    watched: list[Tracked], poll: PollResult, batch: BatchScheduler | None
) -> list[str]:
    """The jobs of pools whose every watched member a job took, still waiting in the queue,
    that no member names as its taker: each would start, find nothing to take, and end. (The
    queue is asked before the status files are read: a job seen waiting may have started
    and taken a member in between.)"""
    if batch is None or poll.scheduler is None:
        return []
    pools: dict[str, list[Tracked]] = {}
    for tracked in watched:
        if tracked.job_id and pool_jobs(tracked.job_id) is not None:
            pools.setdefault(pool_of(tracked.job_id), []).append(tracked)
    spare: list[str] = []
    for members in pools.values():
        takers = [_taker(poll, m) for m in members]
        if all(takers):
            named = {batch.job_key(t) for t in takers}
            for job in pool_jobs(members[0].job_id or "") or []:
                view = batch.find_status(poll.scheduler, job)
                waiting = view is not None and view.state in (JobState.QUEUED, JobState.HELD)
                if waiting and batch.job_key(job) not in named:
                    spare.append(job)
    return spare


def _taker(poll: PollResult, tracked: Tracked) -> str:
    """The job its status names as the one that took it; empty: none yet."""
    report = poll.tasks.get(tracked.id)
    return str((report.status or {}).get("job_id") or "") if report is not None else ""


def _after_cancel(
    state: str,
    reason: str,
    cause: Cause,
    status: dict[str, Any] | None,
    scheduler: JobStatus | None,
) -> tuple[str, str, Cause]:
    """How a task the user cancelled ended."""
    if (status or {}).get("state") in (None, "running"):
        # the scheduler ended it for our cancel: its own words would blame others
        reason = "killed by the user before its wrapper could record it"
        if scheduler is not None:
            reason += f" (scheduler state {scheduler.code})"
        return TaskState.KILLED.value, reason, Cause.KILLED
    if ended_by_signal(status):
        # our cancel reached the task's command before its wrapper
        return TaskState.KILLED.value, "killed by the user", Cause.KILLED
    return state, reason, cause
