"""A host's polls in a run's loop: each when poll_timing says one is due, reading the status
files, and asking the scheduler too only when poll_timing says so."""

from __future__ import annotations

from collections.abc import Iterable

from submitter.poll_timing import Cadence, WatchedTask, after_poll, asks_scheduler, next_poll
from submitter.run_state import Tracked
from submitter.session import HostSession, kill_grace
from submitter.states import TaskState

# Past a task's walltime, what its wrapper may take to stop it (beyond the kill grace) and say
# so, before its job may be gone without a word.
END_MARGIN = 5.0
# A remote host is left alone this many times as long as its last poll took (the status files
# read; not the copy of what ended): polls that read thousands of status files take the
# login node's CPU from the tasks no more than a fifth of the time.
POLL_REST = 4.0


def poll_in_turn(session: HostSession, now: float) -> None:
    """One poll of the session's tasks and retrieval of what ended; the next one planned
    from what it saw."""
    run, cadence = session.run, cadence_of(session)
    batch = session.ops.batch is not None
    asking = not batch or asks_scheduler(now, timings(run.active.values()), run.queries, cadence)
    polled = session.poll(now, ask_scheduler=asking)
    took = session.ctx.seams.clock() - now
    if polled.endings:
        session.retrieve(polled.endings)
    if batch:
        run.queries = after_poll(
            run.queries, now, asked=asking, ended=bool(polled.endings), held=polled.held
        )
    plan = next_poll(
        now, run.polled_at, timings(run.active.values()), run.queries, cadence,
        delay=run.poll_delay, changed=polled.changed,
    )  # fmt: skip
    rest = POLL_REST * took if session.rests_after_polls else 0.0
    done = session.ctx.seams.clock()
    run.polled_at, run.next_poll, run.poll_delay = now, max(plan.at, done + rest), plan.delay


def cadence_of(session: HostSession) -> Cadence:
    interval = session.run.poll_interval
    end_grace = kill_grace(session.config) + END_MARGIN
    first = min(session.first_poll, interval)
    return Cadence(first, interval, end_grace, max(first, min(session.change_poll, interval)))


def timings(active: Iterable[Tracked]) -> list[WatchedTask]:
    """The watched tasks, as the timing of polls sees them."""
    return [
        WatchedTask(
            began=t.began,
            walltime=t.walltime,
            unseen=t.state == TaskState.SUBMITTED,
            awaiting_end=t.waiting_since is not None,
            cancelled=t.cancelled,
            started_unwritten=t.state == TaskState.RUNNING and t.began is None,
        )
        for t in active
    ]
