"""A host's start step: from its pending tasks, as many as it has room for, grouped into job
arrays or packed jobs where the scheduler allows, staged, and started in one remote command.

The attempts are recorded before the host is asked: if the answer never arrives, the next
poll asks the host what became of them, so a start is never repeated while the first may have
happened."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping, Sequence
from typing import Protocol

from submitter.config.models import HostConfig
from submitter.errors import HostError
from submitter.grouping import Group, group_driver, plan_jobs, size_pool
from submitter.hostops import ArrayStart, HostOps, Running, StartResult
from submitter.interrupts import deferred_interrupts
from submitter.paths import Transfer
from submitter.prepare import PreparedTask, escalated_task
from submitter.retry import resource_caps
from submitter.run_context import RunContext
from submitter.run_state import HostRun, Tracked
from submitter.schedulers.base import BatchScheduler, SiteLimits, scheduler_jobs
from submitter.schedulers.registry import batch_scheduler
from submitter.scratch import Scratch
from submitter.states import ACTIVE, Cause, TaskState
from submitter.store.db import Store
from submitter.transport.base import Transport

RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 30.0, 60.0)  # between tries to reach a host again
SUBMIT_RETRIES = 5  # transient submission errors, each after a longer pause

Submission = tuple[list[Tracked], Group]  # the members of one job array or packed job
_FREE = "SUBMITTER-FREE"  # after the site's limits: what the scheduler says is free


class StartingHost(Protocol):
    """What a start step needs of its host's session."""

    name: str
    config: HostConfig
    ops: HostOps
    run: HostRun
    ctx: RunContext
    first_poll: float
    durable_starts: bool
    ahead: int

    def connection(self) -> Transport: ...

    def stage(
        self,
        task: PreparedTask,
        after_tasks: Sequence[tuple[str, str]],
        scratch: Scratch,
        shared_wrapper: bool = False,
    ) -> list[Transfer]: ...

    def launch(self, running: list[Running], starts: list[ArrayStart]) -> bool: ...

    def finish(
        self, tracked: Tracked, state: str, reason: str, cause: Cause = Cause.NONE
    ) -> None: ...


def start(host: StartingHost) -> None:
    """One start step of `host`: its pending tasks, as many as it has room for."""
    run = host.run
    slots = run.max_running + host.ahead - len(run.active)
    if slots <= 0 or not run.pending:
        return
    batch = [run.pending.popleft() for _ in range(min(slots, len(run.pending)))]
    try:
        _escalate(host, batch)
        batch = _refuse_oversized(host, batch)
        singles, groups = jobs_to_submit(host, batch)
    except HostError:
        run.pending.extendleft(reversed(batch))
        raise
    chosen = {t.id for t in singles} | {t.id for members, _ in groups for t in members}
    run.pending.extendleft(reversed([t for t in batch if t.id not in chosen]))
    if not chosen:
        return
    with Scratch("submitter-start-") as scratch:
        made = [group_driver(group, scratch.path) for _, group in groups]
        drivers = [driver for driver, _ in made]
        pooled = {t.id for members, group in groups if group.packing for t in members}
        try:
            sends = [
                s
                for t in batch
                if t.id in chosen and t.prepared is not None
                for s in host.stage(t.prepared, t.after_tasks, scratch, t.id in pooled)
            ]
            host.connection().put(sends + drivers + [e for _, extras in made for e in extras])
        except (HostError, OSError):
            run.pending.extendleft(reversed([t for t in batch if t.id in chosen]))
            raise
    arrays = [
        (members, driver.remote, group)
        for (members, group), driver in zip(groups, drivers, strict=True)
    ]
    with deferred_interrupts():
        _submit(host, singles, arrays)
    # What was just started is first looked at soon, then less and less often.
    run.poll_delay = min(host.first_poll, run.poll_interval)
    run.next_poll = min(run.next_poll, host.ctx.seams.clock() + run.poll_delay)


def jobs_to_submit(
    host: StartingHost, batch: list[Tracked]
) -> tuple[list[Tracked], list[Submission]]:
    """The tasks of `batch` that go now as jobs of their own, and those that go in job
    arrays or packed jobs, as many jobs as the host's queue has room for (`max_queued`),
    in the order the tasks were declared. The rest wait for the next start step."""
    scheduler = host.ops.batch
    if scheduler is None:
        return batch, []
    limits = site_limits(host)
    _render_for_flavor(scheduler.flavor, batch)
    by_id = {t.id: t for t in batch}
    position = {t.id: n for n, t in enumerate(batch)}
    units: list[tuple[int, list[Tracked], Group | None]] = [
        (position[t.id], [t], None) for t in batch if t.prepared is None
    ]
    prepared = [t for t in batch if t.prepared is not None]
    for job in plan_chained(
        [t.prepared for t in prepared],  # type: ignore[misc]
        {t.id: frozenset(scheduler.submission_of(j) for j in t.after_jobs) for t in prepared},
        host.config,
        limits,
        largest_array(host, limits),
    ):
        members = [by_id[m.task_id] for m in (job.members if isinstance(job, Group) else job)]
        units.append((position[members[0].id], members, job if isinstance(job, Group) else None))
    units.sort(key=lambda unit: unit[0])
    room = max(0, max_queued(host, limits) - jobs_in_queue(host.run, scheduler))
    singles: list[Tracked] = []
    groups: list[Submission] = []
    for _, members, group in units:
        if group is not None and group.packing is not None and room > 0:
            group = size_pool(group, host.run.free_cores, room, host.ctx.detached)
        places = queue_places(scheduler, group)
        if places > room:
            break
        room -= places
        if group is None:
            singles.append(members[0])
        else:
            groups.append((members, group))
    return singles, groups


def queue_places(scheduler: BatchScheduler, group: Group | None) -> int:
    """The places in the queue limit a submission takes: a job array's members each where
    the scheduler counts them apart, else one; a pool one for each of its jobs."""
    if group is None:
        return 1
    if group.kind == "array" and scheduler.array_members_queued:
        return len(group.members)
    return group.jobs


def plan_chained(
    tasks: list[PreparedTask],
    waits_for: Mapping[str, frozenset[str]],
    config: HostConfig,
    limits: SiteLimits,
    largest: int,
) -> list[list[PreparedTask] | Group]:
    """Group tasks into jobs as `grouping.plan_jobs` does, sharing a job only among tasks
    chained after the same submissions (`waits_for`, by task id): a job waits for all its
    members' upstream jobs."""
    chains: dict[frozenset[str], list[PreparedTask]] = {}
    for task in tasks:
        chains.setdefault(waits_for[task.task_id], []).append(task)
    return plan_jobs(list(chains.values()), config, limits, largest)


def site_limits(host: StartingHost) -> SiteLimits:
    """What the scheduler says of the site's limits, read once per run and host, with
    its flavour where the host does not name it."""
    run, scheduler = host.run, host.ops.batch
    if run.limits is None:
        run.limits = SiteLimits()
        if scheduler is not None and scheduler.limits_command:
            free = f"printf '\\n{_FREE}\\n'; {scheduler.free_command}\n"
            script = scheduler.limits_command + "\n" + (free if scheduler.free_command else "")
            result = host.connection().run_script(script)
            limits, _, free_output = result.stdout.partition(f"\n{_FREE}\n")
            run.limits = scheduler.parse_limits(limits)
            if scheduler.free_command and run.free_cores is None:
                run.free_cores = scheduler.parse_free(free_output)
            if scheduler.flavor is None:
                scheduler.flavor = run.limits.flavor
    return run.limits


def max_queued(host: StartingHost, limits: SiteLimits) -> int:
    if host.config.max_queued:
        return host.config.max_queued
    default = batch_scheduler(host.config.kind).default_max_queued
    return min(default, limits.max_jobs) if limits.max_jobs else default


def largest_array(host: StartingHost, limits: SiteLimits) -> int:
    """The most tasks one job array of the host's may hold: where each member takes a place
    in the queue limit, no more than it (a larger array would never fit)."""
    scheduler = host.ops.batch
    assert scheduler is not None
    queued = max_queued(host, limits) if scheduler.array_members_queued else None
    return min(
        n
        for n in (scheduler.max_array_size, limits.max_array_size, host.config.max_array, queued)
        if n is not None
    )


def jobs_in_queue(run: HostRun, scheduler: BatchScheduler) -> int:
    """Places this host's active tasks take in the queue limit: a packed job or each of a
    pool's jobs once, a job array once or each member (queued_job_of), a start not yet
    answered as one job."""
    jobs = {
        scheduler.queued_job_of(job) if t.job_id else t.id
        for t in run.active.values()
        for job in (scheduler_jobs(t.job_id) if t.job_id else [t.id])
    }
    return len(jobs)


def _render_for_flavor(flavor: str | None, batch: list[Tracked]) -> None:
    """Tasks prepared before the scheduler's flavour was known are rendered again for it
    (their ids do not depend on it)."""
    for tracked in batch:
        task = tracked.prepared
        if flavor is None or task is None or task.spec.flavor == flavor:
            continue
        spec = dataclasses.replace(task.spec, flavor=flavor)
        tracked.ready(dataclasses.replace(task, spec=spec))


def _escalate(host: StartingHost, batch: list[Tracked]) -> None:
    """A retry of a task with `escalate` asks more, within the host's `limits` and what
    its scheduler says: rendered again for this attempt, under the same task id."""
    growing = [t for t in batch if t.number > 1 and t.policy.escalate and t.prepared]
    if not growing:
        return
    site = site_limits(host) if host.ops.batch else SiteLimits()
    caps = resource_caps(host.config.limits, site)
    for tracked in growing:
        assert tracked.prepared is not None
        task = escalated_task(tracked.prepared, tracked.policy, tracked.number, caps)
        tracked.ready(task)
        tracked.walltime = task.spec.resources.walltime


def _refuse_oversized(host: StartingHost, batch: list[Tracked]) -> list[Tracked]:
    """The tasks of `batch` that fit the largest node the scheduler says it has; one that
    asks more cores would pend for ever: it fails here, not submitted, and says why."""
    if host.ops.batch is None:
        return batch
    largest = site_limits(host).max_node_cores
    fitting = []
    for tracked in batch:
        cores = tracked.prepared.spec.resources.cores if tracked.prepared else None
        if largest is None or cores is None or cores <= largest:
            fitting.append(tracked)
            continue
        reason = (
            f"not submitted: it asks {cores} cores and the largest node of host "
            f"'{host.name}' has {largest} (the scheduler's site limits)"
        )
        host.finish(tracked, TaskState.FAILED, reason, Cause.SUBMIT_ERROR)
    return fitting


def _submit(
    host: StartingHost, singles: list[Tracked], arrays: list[tuple[list[Tracked], str, Group]]
) -> None:
    """Record every attempt, then start them all, single jobs and job arrays, in one
    remote step."""
    store, run = host.ctx.store, host.run
    everyone = singles + [t for members, _, _ in arrays for t in members]
    # Committed before the host is asked; on the disk itself where the tasks run elsewhere
    # (a power cut here kills local tasks along with the client).
    with store.transaction(durable=host.durable_starts):
        for tracked in everyone:
            tracked.attempt_id, tracked.token = store.start_attempt(
                tracked.id, host.name, tracked.pack, tracked.script_sha256, tracked.number
            )
            tracked.state, tracked.job_id = TaskState.STARTING, None
            run.active[tracked.id] = tracked
    starts = [
        ArrayStart(
            posixpath.dirname(driver),
            driver,
            tuple(t.as_running() for t in members),
            group.kind,
            tuple(dict.fromkeys(job for t in members for job in t.after_jobs)),
            group.jobs,
        )
        for members, driver, group in arrays
    ]
    running = [t.as_running() for t in singles]
    if host.launch(running, starts):
        return  # answered as the launcher goes
    over = sorted(host.run.over_marks)
    result = host.connection().run_script(host.ops.start_script(running, starts, over))
    if result.ok:
        host.run.over_marks.difference_update(over)
    started_now = host.ops.parse_start(result.stdout)
    submissions = [([t], t.name) for t in singles] + [
        (members, _group_label(members, group)) for members, _, group in arrays
    ]
    # On the disk itself where a poll then removes the claim files (batch hosts): after a
    # power cut the store still has the answer the host no longer keeps.
    with store.transaction(durable=host.ops.batch is not None):
        for members, label in submissions:
            again = None
            for tracked in members:
                outcome = started_now.get(tracked.id)
                if outcome is not None:  # unanswered: settled by the next poll
                    again = started(host, tracked, outcome, "started") or again
            if again:  # one line for one submission, however many tasks it held
                host.ctx.progress.say(f"{label}: {again}")


def recorded_elsewhere(store: Store, run: HostRun, tracked: Tracked) -> bool:
    """Another client process (the apply that started it, seen by a `status` that read the
    store before) recorded this attempt's start since this one read the store, and a poll of
    its removed the claim file, so the host now says the attempt never started: the store's
    record is the truth. Taken from there; True when it was."""
    attempt = store.latest_attempt(tracked.id)
    record = store.task(tracked.id)
    if attempt is None or record is None or attempt.token != tracked.token or not attempt.job_id:
        return False
    tracked.job_id, tracked.state = attempt.job_id, record.state
    tracked.claim_removed = tracked.token
    if record.state not in ACTIVE:  # it even ended meanwhile: nothing left to watch here
        run.active.pop(tracked.id, None)
    return True


def settled_elsewhere(host: StartingHost, tracked: Tracked) -> None:
    """Another client settled this attempt while its start was unanswered here (a `kill`, or
    a client that found it unanswered and claimed it as never started): the store's word
    stands. Back to pending, the task starts again; ended, it ends here too."""
    store, run = host.ctx.store, host.run
    record, attempt = store.task(tracked.id), store.latest_attempt(tracked.id)
    if record is None or record.state in ACTIVE or attempt is None:
        return  # not settled (yet): asked again at the next poll
    if attempt.token != tracked.token:
        return
    if record.state != TaskState.PENDING:
        cause = Cause.KILLED if record.state == TaskState.KILLED else Cause.NOT_STARTED
        host.finish(tracked, record.state, record.reason, cause)
        return
    run.active.pop(tracked.id, None)
    tracked.state, tracked.reason = record.state, record.reason
    if host.ctx.may_start and tracked.prepared is not None:
        run.pending.appendleft(tracked)


def started(host: StartingHost, tracked: Tracked, outcome: StartResult, how: str) -> str | None:
    """Record how the start of an attempt went; the reason, if it is to be submitted
    again after a pause."""
    if outcome.superseded:  # another client settled it: the next poll takes the store's word
        tracked.job_id = None
        return None
    if outcome.job_id is None:
        reason = f"submission failed: {outcome.error}"
        again = _retry_submission(host, tracked, outcome.error or "")
        if again is None:
            host.finish(tracked, "failed", reason, Cause.SUBMIT_ERROR)
        return again
    tracked.job_id = outcome.job_id
    process = host.ops.batch is None
    host.ctx.move(
        tracked,
        TaskState.RUNNING if process else TaskState.SUBMITTED,
        f"{'process' if process else 'job'} {outcome.job_id} on {host.name}",
        attempt=True,
        event=how,
        job_id=outcome.job_id,
    )
    host.run.active[tracked.id] = tracked
    return None


def _retry_submission(host: StartingHost, tracked: Tracked, error: str) -> str | None:
    """A scheduler that was briefly unavailable gets the same task again after a pause
    (longer each time), rather than the task failing: the reason, if so."""
    run, ctx = host.run, host.ctx
    tries = run.submit_retries.get(tracked.id, 0)
    batch = host.ops.batch
    if batch is None or not ctx.may_start or tries >= SUBMIT_RETRIES:
        return None
    if not batch.is_transient(error):
        return None
    run.submit_retries[tracked.id] = tries + 1
    delay = RETRY_DELAYS[min(tries, len(RETRY_DELAYS) - 1)]
    reason = f"submission failed, retrying in {delay:.0f}s: {error}"
    if tracked.attempt_id is not None:
        ctx.store.update_attempt(
            tracked.attempt_id, state="failed", reason=reason, cause=Cause.SUBMIT_ERROR
        )
    ctx.move(tracked, TaskState.PENDING, reason, event="submit-retry")
    run.active.pop(tracked.id, None)
    tracked.job_id = None
    run.pending.appendleft(tracked)
    run.start_after = max(run.start_after, ctx.seams.clock() + delay)
    return reason


def _group_label(members: list[Tracked], group: Group) -> str:
    """How a line names one job array or pool: by its size, its first and last task and, for
    a pool, its jobs."""
    tasks = f"{len(members)} task{'s' if len(members) != 1 else ''}"
    names = f"{members[0].name} … {members[-1].name}" if len(members) > 1 else members[0].name
    if group.packing is None:
        return f"job array of {tasks} ({names})"
    return f"pool of {tasks} in {group.jobs} job{'s' if group.jobs != 1 else ''} ({names})"
