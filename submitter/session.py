"""A host's session: its run state, its connection and its step scripts, with the verbs the
engine drives every host by: start, poll, retrieve, cancel, remove and close.

One remote command per step, however many tasks: a start step starts a batch, a poll looks
at every active task, a retrieval brings back every ended task's files in one copy. What
spans hosts (the order of a pipeline, whether an ended attempt is retried) is the engine's:
the session hands each ending to its `SessionHooks`."""

from __future__ import annotations

import posixpath
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from submitter import lane_logs, start_step, task_logs, task_staging
from submitter.config.models import HostConfig
from submitter.errors import HostError, SchedulerUnavailable
from submitter.host_link import HostLink
from submitter.hostops import ArrayStart, HostOps, PollResult, Resolution, Running
from submitter.identity import SignatureCache, file_signature
from submitter.paths import Transfer
from submitter.poll_verdict import (
    judge_ending,
    note_pool,
    spare_pool_jobs,
    status_began,
    stuck_reasons,
)
from submitter.prepare import PreparedTask
from submitter.run_context import RunContext
from submitter.run_state import (
    FIRST_POLL_REMOTE,
    Ending,
    HostRun,
    Tracked,
    default_max_running,
)
from submitter.schedulers.base import is_packed, pool_of, scheduler_jobs
from submitter.scratch import Scratch
from submitter.states import ACTIVE, Cause, TaskState
from submitter.store.db import Store
from submitter.task_files import produced, write_new
from submitter.task_layout import (
    LOG_FILES,
    on_host,
)

RECONNECT_FOR = 600.0  # default of the host key reconnect_for
IDLE_POOLS = 3  # pools in a row that took nothing: their tasks fail (a driver that fails)


class SessionHooks(Protocol):
    """What the engine does with what a session finds, across hosts."""

    def finish(self, session: HostSession, ending: Ending) -> None:
        """An attempt ended: retried, or the task ends and what waits for it may start."""

    def blocked_in_queue(self, endings: list[Ending], vanished: list[Tracked]) -> None:
        """Tasks whose jobs left the queue with no status, their upstream having failed."""


@dataclass
class Polled:
    """What one poll found: the attempts that ended, and the starts it settled; whether a
    task moved on (started, or its job left without a word), and whether ends wait for the
    scheduler's word."""

    endings: list[Ending] = field(default_factory=list)
    settled: list[Tracked] = field(default_factory=list)
    moved: bool = False
    held: bool = False

    @property
    def changed(self) -> bool:
        settled = any(t.state != TaskState.STARTING for t in self.settled)  # not still asked
        return bool(self.endings or self.moved or settled)


class HostSession(HostLink):
    """A host reached through a transport: an ssh host running processes, or a batch host."""

    first_poll = FIRST_POLL_REMOTE  # seconds from a start to the first look at it
    change_poll = 1.0  # from a look that saw tasks start or end: each reads every status file
    rests_after_polls = True  # a look costs the host: it is left alone a while after each
    durable_starts = True  # attempts reach the disk itself before the host is asked
    ahead = 0  # tasks it may hold beyond max_running, not started yet (a launcher's queue)

    def __init__(
        self,
        name: str,
        config: HostConfig,
        ctx: RunContext,
        hooks: SessionHooks,
        max_running: int | None = None,
    ) -> None:
        super().__init__(name, config, ctx.seams)
        self.ctx, self.hooks = ctx, hooks
        self.run = HostRun(
            max_running=max_running or default_max_running(config),
            poll_interval=ctx.seams.poll_interval(config),
        )

    @property
    def reconnect_for(self) -> float:
        return float(self.config.reconnect_for or RECONNECT_FOR)

    # start ---------------------------------------------------------------------------------
    def start(self) -> None:
        start_step.start(self)

    def stage(
        self,
        task: PreparedTask,
        after_tasks: Sequence[tuple[str, str]],
        scratch: Scratch,
        shared_wrapper: bool = False,
    ) -> list[Transfer]:
        """Write the task's files into `scratch` and list what goes to the host before it
        starts (`task_staging`). Earlier logs kept here go."""
        task_logs.remove(self.ctx.store.state_dir, task.task_id)
        shared = shared_wrapper or self._shares_wrapper(task)
        sent = self._write_files(task, task_staging.task_files(task, after_tasks, shared), scratch)
        return sent + task_staging.inputs_to_send(task, self.ctx.up_to_date)

    def _shares_wrapper(self, task: PreparedTask) -> bool:
        """The host runs the task in a wrapper shared with others: it needs no script."""
        return False

    def _write_files(
        self, task: PreparedTask, files: dict[str, str], scratch: Scratch
    ) -> list[Transfer]:
        """Into `scratch`, named by task and file (a directory each would cost as much)."""
        return [
            _written(scratch.path / f"{task.task_id}-{n}", on_host(task.task_dir, n), text)
            for n, text in files.items()
        ]

    @property
    def has_launcher(self) -> bool:
        """Tasks handed to its launcher are as good as running."""
        return False

    def launch(self, running: list[Running], starts: list[ArrayStart]) -> bool:
        """Start these without a step script, if this host can: True if so."""
        return False

    def take_launched(self) -> None:
        """Record the starts a launcher has answered for since the last time."""

    def exits_to_watch(self) -> set[int]:
        """Process ids of this machine's wrappers whose end the engine may wait on."""
        return set()

    def readable(self) -> int | None:
        """A file descriptor that becomes readable when the host has news."""
        return None

    # poll ----------------------------------------------------------------------------------
    def look(self, now: float) -> bool:
        """One poll of the active tasks and retrieval of what ended. True when it settled
        starts an earlier run never heard answered: those have a pid or job now, but their
        state comes with the next poll."""
        polled = self.poll(now)
        if polled.endings:
            self.retrieve(polled.endings)
        return any(t.job_id is not None and t.id in self.run.active for t in polled.settled)

    def poll(self, now: float, *, ask_scheduler: bool = True) -> Polled:
        """The status files read and, with `ask_scheduler`, the scheduler asked of the jobs."""
        watched = self._watched()
        poll, failure = self._query(watched, ask_scheduler)
        unanswered = [t for t in watched if t.job_id is None]
        # durable as a start step's answers are: the next poll removes the claims of these
        with self.ctx.store.transaction(durable=bool(unanswered) and self.ops.batch is not None):
            for tracked in unanswered:
                self._settle(tracked, poll.resolved.get(tracked.id))
        if poll.scheduler_error is not None:
            raise SchedulerUnavailable(f"the status query failed: {poll.scheduler_error}")
        if failure is not None:
            raise HostError(f"the status query failed: {failure}")
        polled = Polled(settled=unanswered)
        with self.ctx.store.transaction():
            self._judge(watched, poll, now, polled)
        spare = set(spare_pool_jobs(watched, poll, self.ops.batch)) - self.run.spare_jobs
        if spare:
            self.run.spare_jobs |= spare
            self.connection().run_script(self.ops.cancel_script([], sorted(spare)))
        return polled

    def _watched(self) -> list[Tracked]:
        leaves = self.ctx.leaves_starts
        return [t for t in self.run.active.values() if not leaves or t.job_id is not None]

    def _query(self, watched: list[Tracked], asking: bool) -> tuple[PollResult, str | None]:
        """What the host says of the watched tasks (its scheduler's view if `asking`); what
        its poll script said if it failed."""
        running = [t.as_running() for t in watched]
        recorded = [t for t in watched if t.claim_to_remove] if self.ops.batch else []
        forget = [t.as_running() for t in recorded]
        script = self.ops.poll_script(
            running, bool(self.run.pending), scheduler=asking, forget_claims=forget
        )
        result = self.connection().run_script(script)
        for tracked in recorded:
            tracked.claim_removed = tracked.token
        poll = self.ops.parse_poll(result.stdout, status_only=not asking)
        if poll.free_cores is not None:
            self.run.free_cores = poll.free_cores
        return poll, None if result.ok else result.stderr.strip()

    def _settle(self, tracked: Tracked, resolution: Resolution | None) -> None:
        """Conclude a start whose answer an earlier run (or this one) never read."""
        if resolution is None or resolution.outcome == "pending":  # ask at the next poll
            start_step.settled_elsewhere(self, tracked)  # unless another client settled it
            return
        if resolution.start is not None:
            if again := start_step.started(self, tracked, resolution.start, "re-attached"):
                self.ctx.progress.say(f"{tracked.name}: {again}")
            return
        if start_step.recorded_elsewhere(self.ctx.store, self.run, tracked):
            return
        if resolution.outcome == "stale":
            reason = "its start on the host was interrupted; whether it ran is unknown"
            self.finish(tracked, "lost", reason, Cause.LOST)
            return
        # never: the host had not started it, and now never will under that attempt
        self._not_started(tracked, "not started: the client stopped before the host started it")

    def _unstarted(self, tracked: Tracked) -> None:
        """A pool member none of the pool's jobs took, with none of them left: it never ran,
        so it goes back to pending for the next start (killed, if the user killed it)."""
        if tracked.cancelled:
            self.finish(tracked, "killed", "killed by the user before it started", Cause.KILLED)
            return
        pool = pool_of(tracked.job_id or "")
        tracked.idle_pools = 0 if pool in self.run.pools_taken else tracked.idle_pools + 1
        if tracked.idle_pools >= IDLE_POOLS:
            reason = (
                f"not started: the jobs of {IDLE_POOLS} pools in a row ended without taking "
                f"any task (see job.err in {posixpath.dirname(tracked.task_dir)}/.groups)"
            )
            self.finish(tracked, "failed", reason, Cause.SUBMIT_ERROR)
            return
        self._not_started(tracked, "not started: its pool's jobs ended before one took it")

    def _not_started(self, tracked: Tracked, reason: str) -> None:
        self.run.active.pop(tracked.id, None)
        if tracked.attempt_id is not None:
            self.ctx.store.update_attempt(
                tracked.attempt_id, state="failed", reason=reason, cause=Cause.NOT_STARTED
            )
        tracked.job_id = None
        self.ctx.move(tracked, TaskState.PENDING, "", event="not-started")
        if self.ctx.may_start and tracked.prepared is not None:
            self.run.pending.appendleft(tracked)

    def _judge(self, watched: list[Tracked], poll: PollResult, now: float, polled: Polled) -> None:
        """Record what changed of the watched tasks; list those that ended in `polled`."""
        vanished: list[Tracked] = []
        for tracked in watched:
            if tracked.id not in self.run.active or tracked.id not in poll.tasks:
                continue  # settled above, or started since: judged at the next poll
            status = poll.tasks[tracked.id].status
            tracked.began = status_began(status, tracked.began, now)
            seen = judge_ending(tracked, poll, self.ops.batch, self.config.lost_after, now)
            note_pool(self.run, tracked, status, seen)
            if seen.unstarted:
                self._unstarted(tracked)
                continue
            # a grace period that begins ends soon: polled for as quickly as a change
            polled.moved |= tracked.waiting_since is None and seen.waiting_since is not None
            tracked.waiting_since = seen.waiting_since
            polled.held |= seen.confirm
            if seen.vanished and tracked.upstream:
                vanished.append(tracked)
            if seen.ending is not None:
                polled.endings.append(seen.ending)
            elif seen.state and (seen.state, seen.reason) != (tracked.state, tracked.reason):
                polled.moved |= seen.state != tracked.state
                self.ctx.move(tracked, seen.state, seen.reason, attempt=True, last_seen=now)
        if vanished:
            self.hooks.blocked_in_queue(polled.endings, vanished)
        self.run.stuck = stuck_reasons(watched, polled.endings)

    # retrieve ------------------------------------------------------------------------------
    def retrieve(self, finished: list[Ending]) -> None:
        """Bring back the ended tasks' logs, and the outputs of those that completed, in one
        copy; then record how each ended (a completed task whose outputs are not all there
        failed)."""
        state_dir = self.ctx.store.state_dir
        transfers: list[Transfer] = []
        made: dict[str, tuple[list[Transfer], list[str]]] = {}
        in_lanes = lane_logs.keep_from_lanes(self.connection(), state_dir, finished)
        with Scratch(".incoming-", state_dir) as incoming:
            logs = {
                e.tracked.id: self._log_transfers(e.tracked, incoming)
                for e in finished
                if e.tracked.id not in in_lanes
            }
            for ending in finished:
                transfers += logs.get(ending.tracked.id, [])
                if ending.state == "completed":
                    made[ending.tracked.id] = produced(ending.tracked, ending.status)
                    transfers += made[ending.tracked.id][0]
            missing = {m.remote for m in self.connection().get(transfers)}
            task_logs.keep_all(state_dir, logs)
        ended: list[tuple[Tracked, str]] = []
        with self.ctx.store.transaction():  # committed before anything is tidied away
            for ending in finished:
                tracked, state, reason, cause = (e := ending).tracked, e.state, e.reason, e.cause
                if state == "completed":
                    outputs, unmatched = made[tracked.id]
                    lost = [o.remote for o in outputs if o.remote in missing] + unmatched
                    if lost:
                        state, cause = "failed", Cause.MISSING_OUTPUT
                        reason = "declared output not found on the host: " + ", ".join(lost)
                    else:
                        self.ctx.store.set_outputs(
                            tracked.id, _digests(outputs, self.ctx.signatures)
                        )
                self.finish(tracked, state, reason, cause, ending.status)
                ended.append((tracked, state))
        for tracked, state in ended:
            self.tidy(tracked, state)

    def _log_transfers(self, tracked: Tracked, incoming: Scratch) -> list[Transfer]:
        """The task's logs, brought into `incoming` to be kept in its logs file."""
        return [
            Transfer(incoming.path / f"{tracked.id}-{name}", on_host(tracked.task_dir, name))
            for name in LOG_FILES
        ]

    # What is left on the host of a finished task stays there (purge removes it).
    def tidy(self, tracked: Tracked, state: str) -> None: ...

    def finish(
        self,
        tracked: Tracked,
        state: str,
        reason: str,
        cause: Cause = Cause.NONE,
        status: dict[str, Any] | None = None,
    ) -> None:
        self.hooks.finish(self, Ending(tracked, state, reason, status or {}, cause))

    # cancel, remove, close -----------------------------------------------------------------
    def cancel(self, wait: float) -> None:
        """Cancel every active task, wait up to `wait` seconds (at least the wrapper's grace)
        for each to record its end, and record those that did not as killed."""
        run, ctx = self.run, self.ctx
        targets = [t.as_running() for t in run.active.values()]
        cancel = self.ops.cancel_script(targets, packed_jobs_ending(run.active, ctx.store))
        result = self.connection().run_script(cancel)
        if not result.ok and self.ops.batch is not None:
            ctx.progress.say(f"{self.name}: cancel said: {result.stdout.strip()}")
        for tracked in run.active.values():
            tracked.cancelled = True
            ctx.store.event(tracked.id, "kill", f"cancel sent for job {tracked.job_id}")
        deadline = ctx.seams.clock() + max(wait, kill_grace(self.config) + 5.0)
        while run.active and ctx.seams.clock() < deadline:
            time.sleep(0.5)
            self.look(ctx.seams.clock())
        for tracked in list(run.active.values()):
            self.finish(tracked, "killed", "killed by the user (no status file yet)", Cause.KILLED)

    def remove(self, directories: list[str]) -> None:
        """Delete task directories on the host (`purge`)."""
        result = self.connection().run_script(HostOps.remove_script(directories))
        if not result.ok:
            raise HostError(
                f"{self.name}: removing task directories failed: {result.stderr.strip()}"
            )


def _written(local: Path, remote: str, text: str) -> Transfer:
    write_new(str(local), text)
    return Transfer(local, remote)


def _digests(outputs: list[Transfer], signatures: SignatureCache) -> dict[str, str]:
    """What the completed run's outputs are here, so a later change to them is seen."""
    return {str(o.local): file_signature(o.local, signatures) for o in outputs}


def kill_grace(config: HostConfig) -> float:
    """How long the wrapper waits between TERM and KILL (the pack's `kill_grace` var)."""
    try:
        return float(config.vars.get("kill_grace", 10))
    except (TypeError, ValueError):
        return 10.0


def packed_jobs_ending(active: dict[str, Tracked], store: Store) -> list[str]:
    """The packed jobs (and pools' jobs) of the `active` tasks being cancelled that hold no
    other task still active: nothing in them is to go on, so the jobs themselves are
    cancelled."""
    killed = {
        job
        for t in active.values()
        if t.job_id and is_packed(t.job_id)
        for job in scheduler_jobs(t.job_id)
    }
    if not killed:
        return []
    for record in store.tasks(sorted(ACTIVE)):
        if record.id in active:
            continue
        attempt = store.latest_attempt(record.id)
        if attempt is not None and attempt.job_id and is_packed(attempt.job_id):
            killed.difference_update(scheduler_jobs(attempt.job_id))
    return sorted(killed)
