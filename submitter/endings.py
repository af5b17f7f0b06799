"""What becomes of an ended attempt, for every host alike: retried after its backoff when its
task's retry policy says so, else the task ends and the pipeline moves on."""

from __future__ import annotations

import time
from typing import Any

from submitter.pipeline import Pipeline
from submitter.run_context import RunContext
from submitter.run_state import Ending, Tracked
from submitter.session import HostSession
from submitter.states import FAILED, Cause, TaskState
from submitter.units import format_span


class Endings:
    """The engine's side of every session's endings (session.SessionHooks)."""

    def __init__(self, ctx: RunContext, pipeline: Pipeline) -> None:
        self.ctx = ctx
        self.pipeline = pipeline

    def finish(self, session: HostSession, ending: Ending) -> None:
        if self._maybe_retry(session, ending):
            return
        tracked, state = ending.tracked, ending.state
        fields = _ended(ending.status, ending.cause)
        reason = _with_attempt(tracked, state, ending.reason, ending.cause, fields["exit_code"])
        session.run.active.pop(tracked.id, None)
        self.ctx.move(tracked, state, reason, attempt=True, **fields)
        self.pipeline.release_downstream(tracked)

    def blocked_in_queue(self, endings: list[Ending], vanished: list[Tracked]) -> None:
        self.pipeline.blocked_in_queue(endings, vanished)

    def _maybe_retry(self, session: HostSession, ending: Ending) -> bool:
        """An attempt that ended for a cause its task's `retry_on` lists, with retries left,
        does not end the task: the task waits its backoff, then rejoins the host's pending
        queue (started with the others at the next start step). Without a start in this run
        (`status`) it stays pending, and the next `apply` continues its attempts."""
        ctx = self.ctx
        tracked, state, reason = ending.tracked, ending.state, ending.reason
        ended = _ended(ending.status, ending.cause)
        if not ctx.may_retry or not tracked.policy.retries_after(
            tracked.number, ending.cause, ended["exit_code"]
        ):
            return False
        delay = tracked.policy.delay_before(tracked.number + 1)
        again = ctx.may_start and tracked.prepared is not None
        then = f"retry in {format_span(delay)}" if again else "the next apply retries it"
        message = f"attempt {tracked.number} of {tracked.policy.attempts} {state}: {reason}; {then}"
        session.run.active.pop(tracked.id, None)
        with ctx.store.transaction():
            if tracked.attempt_id is not None:
                ctx.store.update_attempt(tracked.attempt_id, state=state, reason=reason, **ended)
            ctx.move(tracked, TaskState.PENDING, message, event="retry")
            ctx.store.set_next_attempt(tracked.id, tracked.number + 1)
        tracked.number += 1
        tracked.job_id = None
        if again:
            session.run.retrying.append((ctx.seams.clock() + delay, tracked))
        ctx.progress.say(f"{tracked.name}: {message}")
        return True


def _ended(status: dict[str, Any], cause: Cause) -> dict[str, Any]:
    """What an ended attempt records of its status file, and why it ended."""
    exit_code = status.get("exit_code")
    return {
        "cause": cause,
        "exit_code": exit_code if isinstance(exit_code, int) else None,
        "exec_host": status.get("hostname"),
        "started": status.get("start") or None,
        "ended": status.get("end") or None,
        "last_seen": time.time(),
    }


def _with_attempt(
    tracked: Tracked, state: str, reason: str, cause: Cause, exit_code: int | None
) -> str:
    """A failure's reason says which attempt it was, or why it is not retried, for a task
    that may be retried."""
    if tracked.policy.retries == 0 or state not in FAILED:
        return reason
    return f"{reason} ({tracked.policy.attempt_note(tracked.number, cause, exit_code)})"


def release_retries(session: HostSession, now: float) -> None:
    """Retries whose backoff has passed rejoin the host's pending queue, ahead of the rest;
    one killed meanwhile (`submitter kill` from another terminal) stays killed."""
    run = session.run
    due = [t for when, t in run.retrying if when <= now]
    if not due:
        return
    run.retrying = [(when, t) for when, t in run.retrying if when > now]
    for tracked in reversed(due):
        record = session.ctx.store.task(tracked.id)
        if record is not None and record.state != TaskState.PENDING:
            tracked.state, tracked.reason = record.state, record.reason
            continue
        run.pending.appendleft(tracked)
