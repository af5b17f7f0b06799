"""A host that stops answering keeps its tasks: the engine tries again with backoff, and gives
up on it only when it has been silent for its `reconnect_for`."""

from __future__ import annotations

import time

from submitter.errors import HostError, SchedulerUnavailable
from submitter.progress import Progress
from submitter.session import HostSession
from submitter.start_step import RETRY_DELAYS
from submitter.units import format_span


def unreachable(
    session: HostSession, exc: HostError, now: float, progress: Progress, *, give_up: bool
) -> None:
    """Keep the host's tasks and try again with backoff, until `reconnect_for` has passed
    since the host last answered; a fresh connection is made for the next try, unless the
    host answered and only its scheduler did not."""
    run = session.run
    scheduler_only = isinstance(exc, SchedulerUnavailable)
    run.trouble = "its scheduler is not answering" if scheduler_only else "unreachable"
    if not scheduler_only:
        session.drop_connection()
    if run.unreachable_since is None:
        run.unreachable_since = now
        progress.say(
            f"host {session.name}: {run.trouble} since {clock_of(now)} ({exc}); keeps "
            f"trying for {format_span(session.reconnect_for)}"
        )
    waited = now - run.unreachable_since
    if give_up or waited >= session.reconnect_for:
        run.error = str(exc) if give_up else f"{run.trouble} for {format_span(waited)}: {exc}"
        return
    run.retry_at = now + RETRY_DELAYS[min(run.failures, len(RETRY_DELAYS) - 1)]
    run.failures += 1


def reachable(session: HostSession, now: float, progress: Progress) -> None:
    run = session.run
    if run.unreachable_since is not None:
        progress.say(
            f"host {session.name}: reachable again after {format_span(now - run.unreachable_since)}"
        )
    run.unreachable_since, run.failures, run.retry_at = None, 0, 0.0


def next_step(session: HostSession, now: float) -> float:
    """When the host has something to do next."""
    run = session.run
    if run.unreachable_since is not None:
        return run.retry_at
    if run.active:
        return min(run.next_poll, _retry_due(session))
    if run.pending:
        return max(now, run.start_after)
    return _retry_due(session)


def _retry_due(session: HostSession) -> float:
    """When the host's next waiting retry may start."""
    run = session.run
    if not run.retrying:
        return float("inf")
    return max(run.start_after, min(when for when, _ in run.retrying))


def notes(sessions: list[HostSession]) -> list[str]:
    """Hosts that do not answer; tasks whose jobs wait for what waiting will not bring (as
    the last poll saw them)."""
    troubled = [
        f"{s.name}: {s.run.trouble} since {clock_of(s.run.unreachable_since)}"
        for s in sessions
        if s.run.unreachable_since is not None and not s.run.error
    ]
    stuck = [
        f"{s.name}: {count} queued: {reason}"
        for s in sessions
        for reason, count in sorted(s.run.stuck.items())
    ]
    return troubled + stuck


def clock_of(timestamp: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp or 0))
