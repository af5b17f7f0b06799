"""When a host is polled next, and whether that poll asks its scheduler too.

Every poll reads the watched tasks' status files, which the wrapper writes when a task starts
and when it ends: they say most of what happens, and reading them costs the scheduler nothing.
Asking the scheduler (squeue, qstat, bjobs: a request to its controller each) is needed only
for what no status file says: a job that left, or failed, without writing one; why a job
waits; what killed a task (memory, preemption). So polls come quickly after a start and while
tasks start and end, and back off to the host's `poll_interval` while nothing changes; the
scheduler is asked at most once a `poll_interval`, sooner only when a poll's findings or a
task's declared walltime call for it. Pure: the session hands in what it knows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Each wait between polls is this much longer than the last while nothing changes: an end
# seconds after a start is seen within about a third of its run time.
GROWTH = 1.5
# The longest wait for an answer a poll's findings ask the scheduler for (a job that may have
# left without a status): what every poll waited at most before polls backed off further.
QUICK_CAP = 10.0
# The shortest wait between two queries asked for to confirm ends the status files already
# show (a failure the scheduler may explain: out of memory, preempted).
CONFIRM_GAP = 2.0


@dataclass(frozen=True)
class Cadence:
    """A host's timings, in seconds."""

    first: float  # from a start, or an end falling due, to the next poll
    longest: float  # the host's poll_interval: between polls, and between scheduler queries
    end_grace: float = 15.0  # past a walltime, for the wrapper to stop its task and say so
    # from a poll that saw tasks start or end to the next (None: `first`); longer than
    # `first` where each poll reads every watched task's status file over ssh
    after_change: float | None = None

    @property
    def quick_cap(self) -> float:
        return min(QUICK_CAP, self.longest)


@dataclass(frozen=True)
class WatchedTask:
    """A watched task, as far as the timing of polls goes."""

    began: float | None = None  # when it started, as its status file says; None: no status yet
    walltime: float | None = None  # declared, in seconds
    unseen: bool = False  # submitted, and no scheduler query has seen its job yet
    awaiting_end: bool = False  # its job left without a final status: a grace period runs
    cancelled: bool = False  # a kill waits for its end
    started_unwritten: bool = False  # the scheduler saw its job run; its status file is not there

    @property
    def end_due(self) -> float | None:
        """When its declared walltime runs out: its wrapper stops it then."""
        if self.began is None or not self.walltime:
            return None
        return self.began + self.walltime


@dataclass(frozen=True)
class Queries:
    """What a host's polls found since its scheduler was last asked."""

    last: float | None = None  # when it last answered; None: not in this run
    ends_seen: bool = False  # tasks ended since (a pool's jobs may have left with others)
    ends_to_confirm: bool = False  # final statuses held back for the scheduler's word


@dataclass(frozen=True)
class NextPoll:
    at: float
    delay: float  # the wait after that poll, if it sees no change


def query_due(tasks: Sequence[WatchedTask], queries: Queries, cadence: Cadence) -> float:
    """When the scheduler is to be asked next: -inf for the next poll, whenever that is."""
    if queries.last is None or any(t.unseen or t.awaiting_end or t.cancelled for t in tasks):
        return -math.inf
    last = queries.last
    due = last + cadence.longest
    if queries.ends_to_confirm:
        due = min(due, last + min(CONFIRM_GAP, cadence.longest))
    waiting = any(t.began is None for t in tasks)
    if any(t.started_unwritten for t in tasks) or (queries.ends_seen and waiting):
        due = min(due, last + cadence.quick_cap)
    for task in tasks:
        overdue = _overdue(task, cadence)
        if overdue is not None:  # at the moment its job may have gone, then now and then
            due = min(due, overdue if last < overdue else last + cadence.quick_cap)
    return due


def asks_scheduler(
    now: float, tasks: Sequence[WatchedTask], queries: Queries, cadence: Cadence
) -> bool:
    """Whether a poll at `now` asks the scheduler too, or reads the status files only."""
    return now >= query_due(tasks, queries, cadence)


def next_poll(
    now: float,
    previous: float,
    tasks: Sequence[WatchedTask],
    queries: Queries,
    cadence: Cadence,
    *,
    delay: float,
    changed: bool,
) -> NextPoll:
    """When to poll after the poll at `now` (the one before was at `previous`): after `delay`,
    `cadence.first` when an end fell due since the last one, `cadence.after_change` when this
    poll saw a change; no
    later than just after the next end due, nor than the next query due (one due already,
    this poll having read the status files only: soon)."""
    ends = [e for t in tasks if (e := t.end_due) is not None]
    if any(previous < end <= now for end in ends):
        delay = cadence.first
    elif changed:
        delay = cadence.first if cadence.after_change is None else cadence.after_change
    at = now + delay
    at = min([at] + [end + cadence.first for end in ends if end + cadence.first > now])
    query = query_due(tasks, queries, cadence)
    if query > -math.inf:  # not merely "at the next poll, whenever that is"
        at = min(at, max(query, now + cadence.first))
    return NextPoll(at, min(delay * GROWTH, cadence.longest))


def after_poll(queries: Queries, now: float, *, asked: bool, ended: bool, held: bool) -> Queries:
    """What is known of a host's queries after a poll at `now` that `asked` its scheduler, or
    read the status files only: whether it saw tasks end, whether it `held` ends back."""
    if asked:
        return Queries(last=now)
    return Queries(queries.last, queries.ends_seen or ended, queries.ends_to_confirm or held)


def began(stated: float | None, known: float | None, now: float) -> float:
    """When a task whose status file was just read began: as the file says (`stated`), but no
    later than when it was first seen begun (`known`, or `now`): a host whose clock runs ahead
    of this one's would otherwise put its end due late."""
    return min(t for t in (stated, known, now) if t is not None)


def _overdue(task: WatchedTask, cadence: Cadence) -> float | None:
    """When its status file should have said it ended, whatever its command did."""
    end = task.end_due
    return None if end is None else end + cadence.end_grace
