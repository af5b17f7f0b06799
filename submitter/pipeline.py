"""Who runs after whom in one run: tasks wait here for their upstream tasks to complete, then
join their host's queue; a task whose upstream did not complete is blocked, and so is what
waits for it. With --detach, waiting tasks are chained after their upstream jobs instead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from submitter.errors import HostError, UsageError
from submitter.grouping import Group, whole_pool_jobs
from submitter.run_context import RunContext
from submitter.run_state import Ending, Tracked
from submitter.schedulers.base import scheduler_jobs
from submitter.session import HostSession
from submitter.start_step import (
    jobs_in_queue,
    largest_array,
    max_queued,
    plan_chained,
    queue_places,
    site_limits,
)
from submitter.states import ACTIVE, FAILED, TaskState

NOT_DONE = frozenset((*FAILED, TaskState.BLOCKED.value))  # ended without completing


class Pipeline:
    def __init__(self, ctx: RunContext, sessions: Mapping[str, HostSession]) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.waiting: dict[str, Tracked] = {}  # tasks of this run held back, by id
        self.by_name: dict[str, Tracked] = {}  # the tasks of this run
        self.downstream: dict[str, list[Tracked]] = {}  # by upstream name: who runs after it

    def waits(self, tracked: Tracked) -> bool:
        """Hold a task back while tasks it runs after have yet to complete in this run."""
        if not tracked.upstream:
            return False
        for name in tracked.upstream:
            self.downstream.setdefault(name, []).append(tracked)
        tracked.waiting_for = {n for n in tracked.upstream if n not in self.ctx.up_to_date}
        if not tracked.waiting_for:
            return False
        self.waiting[tracked.id] = tracked
        waiting = "waiting for " + ", ".join(sorted(tracked.waiting_for))
        self.ctx.move(tracked, TaskState.PENDING, waiting, event="waiting")
        return True

    def release_downstream(self, tracked: Tracked) -> None:
        """A task ended: what waited for it starts once nothing else holds it back, or is
        blocked if it did not complete."""
        for waiter in self.downstream.get(tracked.name, []):
            if waiter.id not in self.waiting:
                continue
            if tracked.state == TaskState.BLOCKED:  # name the task that did not complete
                self._block(waiter, tracked.reason.removeprefix("blocked: "))
                continue
            if tracked.state != TaskState.COMPLETED:
                self._block(waiter, f"upstream task '{tracked.name}' {tracked.state}")
                continue
            waiter.waiting_for.discard(tracked.name)
            if not waiter.waiting_for:
                del self.waiting[waiter.id]
                self.ctx.move(waiter, TaskState.PENDING, "", event="ready")
                self.sessions[waiter.host].run.pending.append(waiter)

    def _block(self, tracked: Tracked, why: str) -> None:
        self.waiting.pop(tracked.id, None)
        self.ctx.move(tracked, TaskState.BLOCKED, f"blocked: {why}", event="blocked")
        self.release_downstream(tracked)

    def block_waiting(self, why: str) -> None:
        """Tasks still waiting when the run ends: an upstream task never ended here."""
        with self.ctx.store.transaction():
            for tracked in list(self.waiting.values()):
                if tracked.id in self.waiting:
                    names = ", ".join(f"'{n}'" for n in sorted(tracked.waiting_for))
                    self._block(tracked, f"upstream task {names} {why}")

    def blocked_in_queue(self, finished: list[Ending], vanished: list[Tracked]) -> None:
        """Tasks whose job left the queue without a status file, because a task they were
        chained after did not complete (the scheduler removes a job whose afterok can no
        longer be met), are blocked, not lost."""
        ended = {e.tracked.name: e.state for e in finished}
        remaining = list(vanished)
        while remaining:
            for tracked in remaining:
                upstream = self._not_done(tracked.upstream, ended)
                if upstream is not None:
                    reason = f"blocked: upstream task '{upstream}' {ended.get(upstream)}"
                    finished[:] = [f for f in finished if f.tracked is not tracked]
                    finished.append(Ending(tracked, TaskState.BLOCKED, reason))
                    ended[tracked.name] = TaskState.BLOCKED
                    remaining.remove(tracked)
                    break
            else:
                return

    def _not_done(self, names: Sequence[str], ended: dict[str, str]) -> str | None:
        """The first of these tasks that ended without completing: in `ended`, this run, or
        the store. Records its state in `ended`."""
        for name in names:
            if name not in ended and name in self.by_name:
                ended[name] = self.by_name[name].state
        unknown = [name for name in names if name not in ended]
        if unknown:
            ended.update((n, r.state) for n, r in self.ctx.store.latest_by_name(unknown).items())
        return next((name for name in names if ended.get(name) in NOT_DONE), None)

    # --detach: chains handed to the scheduler ----------------------------------------------
    def chain_waiting(self) -> bool:
        """Queue the waiting tasks whose upstream tasks are all jobs on the same batch host,
        to be submitted with the scheduler's own dependencies on those jobs, so the chain
        goes on with the client gone. True if any was queued."""
        queued = False
        for tracked in list(self.waiting.values()):
            session = self.sessions[tracked.host]
            upstream = [self.by_name.get(name) for name in sorted(tracked.waiting_for)]
            if session.ops.batch is None or not all(
                up is not None and up.host == tracked.host and up.job_id and up.state in ACTIVE
                for up in upstream
            ):
                continue
            del self.waiting[tracked.id]
            # after a pool member: after all of its pool's jobs (any of them may run it)
            tracked.after_jobs = tuple(
                dict.fromkeys(
                    job for up in upstream if up and up.job_id for job in scheduler_jobs(up.job_id)
                )
            )
            tracked.after_tasks = tuple((up.name, up.task_dir) for up in upstream if up)
            tracked.waiting_for.clear()
            self.ctx.move(tracked, TaskState.PENDING, "")
            after = ", ".join(tracked.after_jobs)
            self.ctx.store.event(tracked.id, "chained", f"after jobs {after}")
            session.run.pending.append(tracked)
            queued = True
        return queued

    def refuse_what_does_not_fit(self) -> None:
        """Every job of a detached run, chained steps included, goes into the queue now: a
        run that needs more jobs on a batch host than its queue has room for is refused
        before anything is submitted (an attached run feeds the queue as it drains)."""
        for session in self.sessions.values():
            scheduler = session.ops.batch
            if scheduler is None or not (session.run.pending or self.waiting):
                continue
            try:
                limits = site_limits(session)
            except HostError:
                continue  # the run says the host cannot be reached
            needed = self._jobs_needed(session)
            room = max(0, max_queued(session, limits) - jobs_in_queue(session.run, scheduler))
            if needed > room:
                limit = session.config.max_queued
                why = f"max_queued: {limit}" if limit else "the site's or submitter's limit"
                raise UsageError(
                    f"apply --detach: host {session.name} would need {needed} jobs for this "
                    f"run, and its queue has room for {room} ({why}). Nothing was submitted: "
                    "run without --detach (the queue is fed as it drains), or raise "
                    "max_queued, or pack more tasks per job (max_per_job, pack_under)"
                )

    def _jobs_needed(self, session: HostSession) -> int:
        """How many jobs the host's pending tasks, and the tasks chained after them on it,
        go in: grouped as a start step groups them, wave after wave of the chain; a job
        array's members each where the scheduler counts them apart."""
        scheduler = session.ops.batch
        assert scheduler is not None
        limits = site_limits(session)
        largest = largest_array(session, limits)
        job_of = {t.name: t.job_id or t.id for t in session.run.active.values()}
        wave = [t for t in session.run.pending if t.prepared is not None]
        later = [t for t in self.waiting.values() if t.host == session.name and t.prepared]
        needed = 0
        while wave:
            for job in plan_chained(
                [t.prepared for t in wave],  # type: ignore[misc]
                {t.id: frozenset(job_of[up] for up in t.waiting_for) for t in wave},
                session.config,
                limits,
                largest,
            ):
                group = job if isinstance(job, Group) else None
                members = job.members if isinstance(job, Group) else job
                job_of.update((m.name, f"job {needed}") for m in members)
                if group is not None and group.packing is not None:
                    needed += whole_pool_jobs(group)  # as a detached start sizes it
                else:
                    needed += queue_places(scheduler, group)
            wave = [t for t in later if all(up in job_of for up in t.waiting_for)]
            taken = {t.id for t in wave}
            later = [t for t in later if t.id not in taken]
        return needed
