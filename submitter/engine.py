"""Runs tasks and follows them to their end: per host, in batches, stage -> start -> poll ->
retrieve, in pipeline order and with retries. `apply`, `status`, `logs`, `report`, `kill` and
`purge` go through it; `check-host --node` submits its probe job on its own (node_probe)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from submitter.config.models import HostConfig, Limits
from submitter.config.project import Project
from submitter.errors import HostError, SchedulerUnavailable, UsageError
from submitter.exits import ExitWatch
from submitter.grouping import Group, group_driver, plan_jobs
from submitter.hostops import ArrayStart, HostOps, PollResult, Resolution, Running, StartResult
from submitter.identity import SignatureCache, file_signature
from submitter.interrupts import deferred_interrupts
from submitter.local_steps import LocalSteps
from submitter.local_steps import supported as local_steps_supported
from submitter.paths import OutputPattern, Transfer
from submitter.prepare import PreparedTask, escalated_task, needs_home, prepare_tasks
from submitter.progress import Progress, Tally
from submitter.retry import attempt_walltime, resource_caps
from submitter.run_state import (
    FIRST_POLL_REMOTE,
    ApplyReport,
    Ending,
    HostRun,
    Tracked,
    default_max_running,
)
from submitter.schedulers.base import (
    BatchScheduler,
    SiteLimits,
    is_packed,
    scheduler_job,
)
from submitter.schedulers.registry import batch_scheduler
from submitter.seams import REAL, Seams
from submitter.states import ACTIVE, FAILED, Cause, IllegalTransition, TaskState
from submitter.store.db import FINAL_STATES, Store, TaskRecord
from submitter.store.host_record import host_config
from submitter.task_files import empty_or_absent, produced, remove_tree, write_new
from submitter.task_layout import (
    JOB_SCRIPT,
    LOG_FILES,
    SCHEDULER_LOGS,
    STAGED,
    STATUS,
    TASK_FILE,
    UPSTREAM,
    local_copy,
    on_host,
)
from submitter.task_records import (
    outputs_changed,
    retry_policy,
    series_number,
    spec_of,
)
from submitter.transport.base import Transport
from submitter.units import format_span
from submitter.verdict import (
    CANNOT_START,
    ended_by_signal,
    judge,
    overran_walltime,
    packed_task_view,
)

# states a task does not leave in a run
ENDED = frozenset((*FINAL_STATES, "skipped", TaskState.BLOCKED.value))
NOT_DONE = frozenset((*FAILED, TaskState.BLOCKED.value))  # ended without completing
# Seconds from a start to the first poll; each later poll waits POLL_GROWTH times longer, up to the
# host's interval. This machine is asked cheaply and often: a finished task frees its slot
# within a few hundredths of a second.
FIRST_POLL = {"local": 0.02}
# Each poll waits this much longer than the last, up to the host's interval: a job that ends
# seconds after its start is seen within about a third of its run time.
POLL_GROWTH = 1.5
# On this machine a task's end is known at once (exits.ExitWatch) and polled for then, but
# not more often than this: tasks that end together are polled for, and their slots filled,
# together (one poll and one start script for many, not for each).
EXIT_POLL_GAP = 0.01
RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 30.0, 60.0)  # between tries to reach a host again
SUBMIT_RETRIES = 5  # transient submission errors, each after a longer pause


def _running(tracked: Tracked) -> Running:
    return Running(tracked.id, tracked.task_dir, tracked.token, tracked.job_id, tracked.after_jobs)


class Engine:
    def __init__(
        self,
        store: Store,
        progress: Progress,
        signatures: SignatureCache | None = None,
        *,
        seams: Seams = REAL,
    ) -> None:
        self.store = store
        self.seams = seams
        self.progress = progress
        self.signatures = signatures if signatures is not None else SignatureCache()
        self.hosts: dict[str, HostRun] = {}
        self.may_start = False  # only `apply` starts tasks; status and kill only look
        # tasks of this run that wait for upstream tasks, and who runs after whom (by name)
        self.waiting: dict[str, Tracked] = {}
        self.up_to_date: set[str] = set()  # names of the tasks skipped in this run
        self.by_name: dict[str, Tracked] = {}  # the tasks of this run
        self.downstream: dict[str, list[Tracked]] = {}
        self.may_retry = True  # what `kill` stops is not retried, whatever it ends with
        self.exits: ExitWatch[tuple[str, str, int]] = ExitWatch()
        # Removing a finished local task's directory waits on the filesystem: a thread of its
        # own does it while the engine starts and polls.
        self.tidier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tidy")

    # public operations ---------------------------------------------------------------
    def apply(
        self,
        project: Project,
        prepared: list[PreparedTask],
        *,
        force: bool = False,
        detach: bool = False,
        max_running: int | None = None,
    ) -> ApplyReport:
        self.may_start = True
        prepared = self._with_remote_homes(project, prepared, max_running)
        runs: list[Tracked] = []
        skipped: list[Tracked] = []
        tasks_file = str(project.tasks_file)
        records = self.store.tasks_by_id([t.task_id for t in prepared])
        with self.store.transaction():  # one commit for all the tasks, not one each
            for task in prepared:
                tracked = self._classify(task, records.get(task.task_id), force, tasks_file)
                if tracked.state == "skipped":
                    skipped.append(tracked)
                    continue
                runs.append(tracked)
                host = self._host(task.host.name, task.host.config, max_running)
                if tracked.state in ACTIVE:
                    host.active[tracked.id] = tracked
            # once every task is classified: an upstream task may be declared after its own
            self.up_to_date = {t.name for t in skipped}
            self.by_name = {t.name: t for t in runs}
            for tracked in runs:
                if tracked.state not in ACTIVE and not self._waits(tracked):
                    self.hosts[tracked.host].pending.append(tracked)
            self.store.retire_undeclared(tasks_file, {t.task_id for t in prepared})
        for tracked in skipped:
            self.progress.detail(f"up to date: {tracked.name} ({tracked.id}), skipped")
        resumed = sum(1 for t in runs if t.state in ACTIVE)
        if resumed:
            self.progress.say(f"re-attached to {resumed} task(s) started earlier")
        report = ApplyReport(runs, skipped, {})
        if runs and detach:
            try:
                self._refuse_what_does_not_fit()
            except UsageError:
                self.close()
                raise
        if runs:
            self._run(detach=detach, all_tasks=runs + skipped)
            if not detach:
                self._block_waiting("did not complete in this run")
        report.detached = detach
        report.host_errors = {h.name: h.error for h in self.hosts.values() if h.error}
        report.stats = {
            name: vars(h.transport.stats) for name, h in self.hosts.items() if h.transport
        }
        self.close()
        return report

    def refresh(
        self,
        records: Sequence[TaskRecord],
        lent: Mapping[str, Transport] | None = None,
        *,
        close: bool = True,
    ) -> dict[str, str]:
        """One poll (and retrieval of what finished) for every active task: `status`. The
        transports `lent` (by host name) are used, and left open, rather than new ones.
        Without `close`, the engine may refresh again, its grace periods running on."""
        for record in records:
            if not record.active:
                continue
            host = self._host_for_record(record)
            if record.id not in host.active:
                host.active[record.id] = self._tracked_from_record(record)
        errors: dict[str, str] = {}
        for host in self.hosts.values():
            host.transport = (lent or {}).get(host.name, host.transport)
            if host.active:
                try:
                    if self._poll(host, self.seams.clock()):
                        self._poll(host, self.seams.clock())
                except HostError as exc:
                    errors[host.name] = str(exc)
            if host.name in (lent or {}):
                host.transport = None
        if close:
            self.close()
        return errors

    def kill(self, records: Sequence[TaskRecord], wait: float = 15.0) -> dict[str, str]:
        errors: dict[str, str] = {}
        unstarted = "killed before it started"
        self.may_retry = False
        for record in records:
            if record.state == TaskState.PENDING:
                self.store.transition(record.id, TaskState.KILLED, unstarted)
            elif record.active:
                tracked = self._tracked_from_record(record)
                self._host_for_record(record).active[tracked.id] = tracked
        for host in self.hosts.values():
            try:
                transport = self._transport(host)
                if any(t.job_id is None for t in host.active.values()):
                    self._poll(host, self.seams.clock())  # settle starts an earlier run left unsure
                for record in records:
                    current = self.store.task(record.id)
                    if current is not None and current.state == TaskState.PENDING:
                        self.store.transition(record.id, TaskState.KILLED, unstarted)
                targets = [_running(t) for t in host.active.values()]
                whole = self._packed_jobs_ending(host)
                result = transport.run_script(host.ops.cancel_script(targets, whole))
                if not result.ok and host.ops.batch is not None:
                    self.progress.say(f"{host.name}: cancel said: {result.stdout.strip()}")
                for tracked in host.active.values():
                    tracked.cancelled = True
                    self.store.event(tracked.id, "kill", f"cancel sent for job {tracked.job_id}")
                deadline = self.seams.clock() + max(wait, _kill_grace(host.config) + 5.0)
                while host.active and self.seams.clock() < deadline:
                    time.sleep(0.5)
                    self._poll(host, self.seams.clock())
                for tracked in list(host.active.values()):
                    self._finish(
                        host,
                        tracked,
                        "killed",
                        "killed by the user (no status file yet)",
                        {},
                        Cause.KILLED,
                    )
            except HostError as exc:
                errors[host.name] = str(exc)
        self.close()
        return errors

    def _packed_jobs_ending(self, host: HostRun) -> list[str]:
        """The packed jobs of the tasks being killed on `host` that hold no other task still
        active: nothing in them is to go on, so the jobs themselves are cancelled."""
        killed = {
            scheduler_job(t.job_id)
            for t in host.active.values()
            if t.job_id and is_packed(t.job_id)
        }
        if not killed:
            return []
        for record in self.store.tasks(sorted(ACTIVE)):
            if record.id in host.active:
                continue
            attempt = self.store.latest_attempt(record.id)
            if attempt is not None and attempt.job_id and is_packed(attempt.job_id):
                killed.discard(scheduler_job(attempt.job_id))
        return sorted(killed)

    def purge(self, records: Sequence[TaskRecord]) -> dict[str, str]:
        """Delete finished tasks: their remote task directories, local copies and records."""
        errors: dict[str, str] = {}
        by_host: dict[str, list[TaskRecord]] = {}
        for record in records:
            by_host.setdefault(record.host, []).append(record)
        for name, group in by_host.items():
            host = self._host_for_record(group[0])
            try:
                transport = self._transport(host)
                result = transport.run_script(HostOps.remove_script([r.task_dir for r in group]))
                if not result.ok:
                    raise HostError(
                        f"{name}: removing task directories failed: {result.stderr.strip()}"
                    )
            except HostError as exc:
                errors[name] = str(exc)
                continue
            for record in group:
                remove_tree(self.local_dir(record.id))
                self.store.delete_task(record.id)
        if records:
            self.store.vacuum()
        self.close()
        return errors

    def close(self) -> None:
        self.tidier.shutdown(wait=True)
        if self.signatures.added:
            self.store.save_signatures(self.signatures.added)
            self.signatures.known.update(self.signatures.added)
            self.signatures.added.clear()
        for host in self.hosts.values():
            if host.local_steps is not None:
                host.local_steps.close()
            if host.transport is not None:
                host.transport.close()

    def local_dir(self, task_id: str) -> Path:
        return local_copy(self.store.state_dir, task_id)

    # preparation -------------------------------------------------------------------------
    def _with_remote_homes(
        self, project: Project, prepared: list[PreparedTask], max_running: int | None
    ) -> list[PreparedTask]:
        """Hosts whose work_dir starts with ~ are asked for $HOME once; their tasks prepared
        again with it."""
        needing = sorted(
            name
            for name in {t.host.name for t in prepared}
            if needs_home(project.hosts[name].config, project.directory)
        )
        if not needing:
            return prepared
        homes: dict[str, str] = {}
        for name in needing:
            host = self._host(name, project.hosts[name].config, max_running)
            result = self._transport(host).run_script('printf "%s" "$HOME"\n')
            if not result.ok or not result.stdout.startswith("/"):
                raise HostError(
                    f"{name}: cannot read the remote home directory: {result.stderr.strip()}"
                )
            homes[name] = result.stdout.strip()
        # Only the tasks of those hosts are prepared again, now with their real paths.
        again = {t.name for t in prepared if t.host.name in homes}
        redone = {
            t.name: t for t in prepare_tasks(project, homes, signatures=self.signatures, only=again)
        }
        return [redone.get(t.name, t) for t in prepared]

    def _waits(self, tracked: Tracked) -> bool:
        """Hold a task back while tasks it runs after have yet to complete in this run."""
        if not tracked.upstream:
            return False
        for name in tracked.upstream:
            self.downstream.setdefault(name, []).append(tracked)
        tracked.waiting_for = {name for name in tracked.upstream if name not in self.up_to_date}
        if not tracked.waiting_for:
            return False
        self.waiting[tracked.id] = tracked
        waiting = "waiting for " + ", ".join(sorted(tracked.waiting_for))
        self._move(tracked, TaskState.PENDING, waiting, event="waiting")
        return True

    def _blocked_in_queue(self, finished: list[Ending], vanished: list[Tracked]) -> None:
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
            ended.update((n, r.state) for n, r in self.store.latest_by_name(unknown).items())
        return next((name for name in names if ended.get(name) in NOT_DONE), None)

    def _chain_waiting(self) -> bool:
        """With --detach: queue the waiting tasks whose upstream tasks are all jobs on the
        same batch host, to be submitted with the scheduler's own dependencies on those jobs,
        so the chain goes on with the client gone. True if any was queued."""
        queued = False
        for tracked in list(self.waiting.values()):
            host = self.hosts[tracked.host]
            upstream = [self.by_name.get(name) for name in sorted(tracked.waiting_for)]
            if host.ops.batch is None or not all(
                up is not None and up.host == tracked.host and up.job_id and up.state in ACTIVE
                for up in upstream
            ):
                continue
            del self.waiting[tracked.id]
            tracked.after_jobs = tuple(up.job_id for up in upstream if up and up.job_id)
            tracked.after_tasks = tuple((up.name, up.task_dir) for up in upstream if up)
            tracked.waiting_for.clear()
            self._move(tracked, TaskState.PENDING, "")
            self.store.event(tracked.id, "chained", f"after jobs {', '.join(tracked.after_jobs)}")
            host.pending.append(tracked)
            queued = True
        return queued

    def _refuse_what_does_not_fit(self) -> None:
        """With --detach every job of the run, chained steps included, goes into the queue
        now: a run that needs more jobs on a batch host than its queue has room for is
        refused before anything is submitted (an attached run feeds the queue as it drains)."""
        for host in self.hosts.values():
            scheduler = host.ops.batch
            if scheduler is None or not (host.pending or self.waiting):
                continue
            try:
                limits = self._site_limits(host, self._transport(host))
            except HostError:
                continue  # the run says the host cannot be reached
            needed = self._jobs_needed(host, limits)
            room = max(0, self._max_queued(host, limits) - _jobs_in_queue(host, scheduler))
            if needed > room:
                limit = host.config.max_queued
                why = f"max_queued: {limit}" if limit else "the site's or submitter's limit"
                raise UsageError(
                    f"apply --detach: host {host.name} would need {needed} jobs for this run, "
                    f"and its queue has room for {room} ({why}). Nothing was submitted: run "
                    "without --detach (the queue is fed as it drains), or raise max_queued, "
                    "or pack more tasks per job (max_per_job, pack_under)"
                )

    def _jobs_needed(self, host: HostRun, limits: SiteLimits) -> int:
        """How many jobs the host's pending tasks, and the tasks chained after them on it,
        go in: grouped as a start step groups them, wave after wave of the chain."""
        largest = _largest_array(host, limits)
        job_of = {t.name: t.job_id or t.id for t in host.active.values()}
        wave = [t for t in host.pending if t.prepared is not None]
        later = [t for t in self.waiting.values() if t.host == host.name and t.prepared]
        needed = 0
        while wave:
            chains: dict[frozenset[str], list[PreparedTask]] = {}
            for tracked in wave:
                key = frozenset(job_of[up] for up in tracked.waiting_for)
                chains.setdefault(key, []).append(tracked.prepared)  # type: ignore[arg-type]
            for job in plan_jobs(list(chains.values()), host.config, limits, largest):
                members = job.members if isinstance(job, Group) else job
                job_of.update((m.name, f"job {needed}") for m in members)
                needed += 1
            wave = [t for t in later if all(up in job_of for up in t.waiting_for)]
            taken = {t.id for t in wave}
            later = [t for t in later if t.id not in taken]
        return needed

    def _release_downstream(self, tracked: Tracked) -> None:
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
                self._move(waiter, TaskState.PENDING, "", event="ready")
                self.hosts[waiter.host].pending.append(waiter)

    def _move(
        self,
        tracked: Tracked,
        state: TaskState | str,
        reason: str,
        *,
        event: str | None = None,
        attempt: bool = False,
        **fields: Any,
    ) -> None:
        """Move a task to `state` in this run and in the store together (the store checks
        the move against the life cycle's table); with `attempt`, its current attempt too.
        Only `apply` moves its tasks on: a `status` or `kill` that meets a task an `apply`
        moved meanwhile leaves the apply's move standing."""
        try:
            self.store.transition(
                tracked.id,
                state,
                reason,
                attempt_id=tracked.attempt_id if attempt else None,
                event=event,
                **fields,
            )
        except IllegalTransition:
            record = None if self.may_start else self.store.task(tracked.id)
            if record is None:
                raise
            tracked.state, tracked.reason = record.state, record.reason
            return
        tracked.state, tracked.reason = str(state), reason

    def _block(self, tracked: Tracked, why: str) -> None:
        self.waiting.pop(tracked.id, None)
        self._move(tracked, TaskState.BLOCKED, f"blocked: {why}", event="blocked")
        self._release_downstream(tracked)

    def _block_waiting(self, why: str) -> None:
        """Tasks still waiting when the run ends: an upstream task never ended here."""
        with self.store.transaction():
            for tracked in list(self.waiting.values()):
                if tracked.id in self.waiting:
                    names = ", ".join(f"'{n}'" for n in sorted(tracked.waiting_for))
                    self._block(tracked, f"upstream task {names} {why}")

    def _classify(
        self, task: PreparedTask, record: TaskRecord | None, force: bool, tasks_file: str
    ) -> Tracked:
        tracked = Tracked(
            task.task_id,
            task.name,
            task.host.name,
            task.task_dir,
            task.output_files,
            walltime=task.definition.resources.walltime,
            patterns=task.output_patterns,
            upstream=task.definition.upstream,
            policy=task.definition.retry,
        )
        if record is not None and record.active:
            attempt = self.store.latest_attempt(task.task_id)
            tracked.state = record.state
            tracked.attempt_id = attempt.id if attempt else None
            tracked.token = attempt.token if attempt else ""
            tracked.job_id = attempt.job_id if attempt else None
            tracked.number = attempt.number if attempt else 1
            tracked.walltime = attempt_walltime(
                tracked.walltime, tracked.policy, tracked.number, task.host.config.limits
            )
            # ready to start again: its start may not have happened, or it may be retried
            self._ready(tracked, task)
            if record.name != task.name:
                self.store.upsert_task(*self._record_fields(task), tasks_file)
            return tracked
        rerun = None
        if record is not None and record.state == TaskState.COMPLETED:
            rerun = "forced" if force else outputs_changed(record, tracked.outputs, self.signatures)
            if rerun is None:
                tracked.state = "skipped"
                if record.name != task.name or record.retired or record.tasks_file != tasks_file:
                    self.store.upsert_task(*self._record_fields(task), tasks_file)
                return tracked
        self._ready(tracked, task)
        tracked.number = series_number(record)
        with self.store.transaction():
            self.store.upsert_task(*self._record_fields(task), tasks_file)
            self.store.set_task_state(task.task_id, TaskState.PENDING)
            self.store.set_next_attempt(task.task_id, tracked.number)
            if rerun is not None:
                self.store.event(task.task_id, "rerun", rerun)
        if rerun is not None:
            self.progress.say(f"rerun: {task.name} ({task.task_id}): {rerun}")
        return tracked

    @staticmethod
    def _record_fields(task: PreparedTask) -> tuple[str, str, str, str, str, dict[str, Any]]:
        return (
            task.task_id,
            task.name,
            task.host.name,
            task.task_dir,
            task.run_dir,
            spec_of(task),
        )

    def _ready(self, tracked: Tracked, task: PreparedTask) -> None:
        """Make a task ready to start in this run (rendering it, if not done yet). Its files
        are written when a start step takes it (_stage), not all before the first start."""
        tracked.pack, tracked.script_sha256 = task.rendered.pack, task.rendered.sha256
        tracked.prepared = task

    def _stage(
        self, host: HostRun, task: PreparedTask, after_tasks: Sequence[tuple[str, str]] = ()
    ) -> list[Transfer]:
        """Write the task's files and list what goes to the host before it starts. On this
        machine they are written straight into the task directory (nothing to send but the
        inputs); for another host, here, to be sent. A task chained after upstream tasks'
        jobs gets the list of them (`after_tasks`: name, task directory), which its wrapper
        checks before it runs anything."""
        local = self.local_dir(task.task_id)
        if os.path.isdir(local):  # an earlier run's: what it brought back goes
            for name in (*LOG_FILES, STATUS):
                (local / name).unlink(missing_ok=True)
        files = {JOB_SCRIPT: task.rendered.job_script, TASK_FILE: task.rendered.task_file}
        if after_tasks:
            files[UPSTREAM] = "".join(f"{d}\n{n}\n" for n, d in after_tasks)
        # Inputs upstream tasks make on the host are linked there, unless those tasks were
        # up to date: then their outputs are here, and the host may no longer have them.
        earlier = any(up in self.up_to_date for up in task.definition.upstream)
        inputs = [
            Transfer(i.local, i.remote)
            for i in task.inputs
            if i.copied and (i.declared not in task.linked_inputs or (earlier and i.local.exists()))
        ]
        if host.config.kind == "local":
            os.makedirs(task.task_dir, exist_ok=True)
            for name, text in files.items():
                write_new(on_host(task.task_dir, name), text)
            return inputs
        local.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            write_new(str(local / name), text)
        return [
            *(Transfer(local / name, on_host(task.task_dir, name)) for name in files),
            *inputs,
        ]

    def _host(self, name: str, config: HostConfig, max_running: int | None) -> HostRun:
        if name not in self.hosts:
            self.hosts[name] = HostRun(
                name,
                config,
                HostOps.for_kind(config.kind, config.pbs_flavor),
                max_running=max_running or default_max_running(config),
                poll_interval=self.seams.poll_interval(config),
            )
            if config.kind == "local" and local_steps_supported():
                self.hosts[name].local_steps = LocalSteps(self.hosts[name].ops)
        return self.hosts[name]

    def _host_for_record(self, record: TaskRecord) -> HostRun:
        config = host_config(record.spec["host_config"])
        return self._host(record.host, config, None)

    def _tracked_from_record(self, record: TaskRecord) -> Tracked:
        attempt = self.store.latest_attempt(record.id)
        outputs = [
            Transfer(Path(local), remote) for local, remote in record.spec.get("outputs", [])
        ]
        patterns = [
            OutputPattern(key, base, Path(local), remote)
            for key, base, local, remote in record.spec.get("output_patterns", [])
        ]
        policy = retry_policy(record)
        number = attempt.number if attempt else 1
        limits = Limits()  # the store keeps no host limits: the walltime uncapped
        return Tracked(
            record.id,
            record.name,
            record.host,
            record.task_dir,
            outputs,
            record.state,
            attempt_id=attempt.id if attempt else None,
            token=attempt.token if attempt else "",
            job_id=attempt.job_id if attempt else None,
            patterns=patterns,
            upstream=tuple(record.spec.get("upstream", ())),
            walltime=attempt_walltime(record.spec.get("walltime"), policy, number, limits),
            number=number,
            policy=policy,
        )

    def _transport(self, host: HostRun) -> Transport:
        if host.transport is None:
            host.transport = self.seams.connect(host.name, host.config)
        return host.transport

    # the loop ------------------------------------------------------------------------------
    def _run(self, *, detach: bool, all_tasks: list[Tracked]) -> None:
        self.progress.start()
        tally = Tally(all_tasks, ENDED)
        try:
            while True:
                now = self.seams.clock()
                for host in self.hosts.values():
                    if host.error or now < host.retry_at:
                        continue
                    try:
                        if host.local_steps is not None:
                            self._launched(host)
                        if host.active and now >= host.next_poll:
                            self._poll(host, now)
                            host.polled_at = now
                            host.next_poll = now + host.poll_delay
                            host.poll_delay = min(host.poll_delay * POLL_GROWTH, host.poll_interval)
                        self._release_retries(host, now)
                        if now >= host.start_after:
                            self._start(host)
                    except HostError as exc:
                        self._unreachable(host, exc, now, give_up=detach)
                    else:
                        self._reachable(host, now)
                busy = [
                    h
                    for h in self.hosts.values()
                    if not h.error and (h.active or h.pending or h.retrying)
                ]
                if detach or not busy or self.progress.due():  # counting 10,000 tasks costs
                    # a task handed to a process host's launcher is as good as running
                    launched = {h.name for h in self.hosts.values() if h.local_steps is not None}
                    counts, by_host = tally.take(launched)
                    self.progress.update(counts, self._host_notes(), by_host)
                if detach and self._chain_waiting():
                    continue  # submit them too, before leaving
                if detach or not busy:
                    break
                wake = min(self._next_step(h, now) for h in busy)
                self._watch_exits()
                answers = [
                    fd
                    for h in busy
                    if h.local_steps is not None and (fd := h.local_steps.readable()) is not None
                ]
                timeout = max(0.005, min(wake - self.seams.clock(), 1.0))
                for name, _, _ in self.exits.wait(timeout, answers):
                    host = self.hosts[name]
                    host.next_poll = min(host.next_poll, host.polled_at + EXIT_POLL_GAP)
        finally:
            self.progress.stop()
            self.exits.close()

    def _launched(self, host: HostRun) -> None:
        """Record the starts the host's launcher has answered for since the last time."""
        assert host.local_steps is not None
        answers = host.local_steps.answers()
        if not answers:
            return
        with self.store.transaction():
            for task_id, outcome in answers.items():
                tracked = host.active.get(task_id)
                if tracked is not None and tracked.job_id is None:
                    self._started(host, tracked, outcome, "started")

    def _watch_exits(self) -> None:
        """Watch the wrappers of this machine's running tasks for their end; forget those of
        tasks no longer watched."""
        current: set[tuple[str, str, int]] = set()
        for host in self.hosts.values():
            if host.config.kind != "local" or host.ops.batch is not None:
                continue
            for tracked in host.active.values():
                if tracked.job_id and tracked.job_id.isdigit():
                    key = (host.name, tracked.id, int(tracked.job_id))
                    current.add(key)
                    self.exits.watch(key, key[2])
        for key in self.exits.keys() - current:
            self.exits.forget(key)

    @staticmethod
    def _next_step(host: HostRun, now: float) -> float:
        if host.unreachable_since is not None:
            return host.retry_at
        if host.active:
            return min(host.next_poll, _retry_due(host))
        if host.pending:
            return max(now, host.start_after)
        return _retry_due(host)

    def _unreachable(self, host: HostRun, exc: HostError, now: float, *, give_up: bool) -> None:
        """Keep the host's tasks and try again with backoff, until `reconnect_for` has passed
        since the host last answered; a fresh connection is made for the next try, unless the
        host answered and only its scheduler did not."""
        host.trouble = (
            "its scheduler is not answering"
            if isinstance(exc, SchedulerUnavailable)
            else "unreachable"
        )
        if host.transport is not None and not isinstance(exc, SchedulerUnavailable):
            host.transport.close()
            host.transport = None
        if host.unreachable_since is None:
            host.unreachable_since = now
            self.progress.say(
                f"host {host.name}: {host.trouble} since {_clock_of(now)} ({exc}); keeps "
                f"trying for {format_span(host.reconnect_for)}"
            )
        waited = now - host.unreachable_since
        if give_up or waited >= host.reconnect_for:
            host.error = str(exc) if give_up else f"{host.trouble} for {format_span(waited)}: {exc}"
            return
        host.retry_at = now + RETRY_DELAYS[min(host.failures, len(RETRY_DELAYS) - 1)]
        host.failures += 1

    def _reachable(self, host: HostRun, now: float) -> None:
        if host.unreachable_since is not None:
            self.progress.say(
                f"host {host.name}: reachable again after "
                f"{format_span(now - host.unreachable_since)}"
            )
        host.unreachable_since, host.failures, host.retry_at = None, 0, 0.0

    def _host_notes(self) -> list[str]:
        """A host that does not answer; tasks whose jobs wait for what waiting will not
        bring (as the last poll saw them)."""
        troubled = [
            f"{h.name}: {h.trouble} since {_clock_of(h.unreachable_since)}"
            for h in self.hosts.values()
            if h.unreachable_since is not None and not h.error
        ]
        stuck = [
            f"{h.name}: {count} queued: {reason}"
            for h in self.hosts.values()
            for reason, count in sorted(h.stuck.items())
        ]
        return troubled + stuck

    def _start(self, host: HostRun) -> None:
        slots = host.max_running - len(host.active)
        if slots <= 0 or not host.pending:
            return
        batch = [host.pending.popleft() for _ in range(min(slots, len(host.pending)))]
        transport = self._transport(host)
        try:
            self._escalate(host, transport, batch)
            batch = self._refuse_oversized(host, transport, batch)
            singles, groups = self._jobs_to_submit(host, transport, batch)
        except HostError:
            host.pending.extendleft(reversed(batch))
            raise
        chosen = {t.id for t in singles} | {t.id for members, _ in groups for t in members}
        host.pending.extendleft(reversed([t for t in batch if t.id not in chosen]))
        if not chosen:
            return
        with contextlib.ExitStack() as stack:
            drivers: list[Transfer] = []
            if groups:
                scratch = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="submitter-groups-"))
                )
                drivers = [group_driver(group, scratch) for _, group in groups]
            try:
                sends = [
                    s
                    for t in batch
                    if t.id in chosen and t.prepared is not None
                    for s in self._stage(host, t.prepared, t.after_tasks)
                ]
                transport.put(sends + drivers)
            except (HostError, OSError):
                host.pending.extendleft(reversed([t for t in batch if t.id in chosen]))
                raise
        arrays = [
            (members, driver.remote, group.kind)
            for (members, group), driver in zip(groups, drivers, strict=True)
        ]
        with deferred_interrupts():
            self._submit(host, transport, singles, arrays)
        # What was just started is first looked at soon, then less and less often.
        host.poll_delay = min(
            FIRST_POLL.get(host.config.kind, FIRST_POLL_REMOTE), host.poll_interval
        )
        host.next_poll = min(host.next_poll, self.seams.clock() + host.poll_delay)

    def _jobs_to_submit(
        self, host: HostRun, transport: Transport, batch: list[Tracked]
    ) -> tuple[list[Tracked], list[tuple[list[Tracked], Group]]]:
        """The tasks of `batch` that go now as jobs of their own, and those that go in job
        arrays or packed jobs, as many jobs as the host's queue has room for (`max_queued`),
        in the order the tasks were declared. The rest wait for the next start step."""
        scheduler = host.ops.batch
        if scheduler is None:
            return batch, []
        limits = self._site_limits(host, transport)
        self._render_for_flavor(scheduler.flavor, batch)
        largest = _largest_array(host, limits)
        by_id = {t.id: t for t in batch}
        position = {t.id: n for n, t in enumerate(batch)}
        # Tasks chained after jobs (apply --detach) share a job only with tasks chained after
        # the same submissions: the job waits for all its members' upstream jobs to end.
        chains: dict[frozenset[str], list[PreparedTask]] = {}
        units: list[tuple[int, list[Tracked], Group | None]] = []
        for tracked in batch:
            if tracked.prepared is None:
                units.append((position[tracked.id], [tracked], None))
                continue
            key = frozenset(scheduler.submission_of(job) for job in tracked.after_jobs)
            chains.setdefault(key, []).append(tracked.prepared)
        for job in plan_jobs(list(chains.values()), host.config, limits, largest):
            if isinstance(job, Group):
                members = [by_id[m.task_id] for m in job.members]
                units.append((position[members[0].id], members, job))
            else:
                units.append((position[job[0].task_id], [by_id[job[0].task_id]], None))
        units.sort(key=lambda unit: unit[0])
        room = max(0, self._max_queued(host, limits) - _jobs_in_queue(host, scheduler))
        singles: list[Tracked] = []
        groups: list[tuple[list[Tracked], Group]] = []
        for _, members, group in units[:room]:
            if group is None:
                singles.append(members[0])
            else:
                groups.append((members, group))
        return singles, groups

    def _site_limits(self, host: HostRun, transport: Transport) -> SiteLimits:
        """What the scheduler says of the site's limits, read once per run and host, with
        its flavour where the host does not name it."""
        if host.limits is None:
            command = host.ops.batch.limits_command if host.ops.batch else ""
            host.limits = SiteLimits()
            if command and host.ops.batch is not None:
                result = transport.run_script(command + "\n")
                host.limits = host.ops.batch.parse_limits(result.stdout)
                if host.ops.batch.flavor is None:
                    host.ops.batch.flavor = host.limits.flavor
        return host.limits

    def _render_for_flavor(self, flavor: str | None, batch: list[Tracked]) -> None:
        """Tasks prepared before the scheduler's flavour was known are rendered again for it
        (their ids do not depend on it)."""
        for tracked in batch:
            task = tracked.prepared
            if flavor is None or task is None or task.spec.flavor == flavor:
                continue
            spec = dataclasses.replace(task.spec, flavor=flavor)
            self._ready(tracked, dataclasses.replace(task, spec=spec))

    @staticmethod
    def _max_queued(host: HostRun, limits: SiteLimits) -> int:
        if host.config.max_queued:
            return host.config.max_queued
        default = batch_scheduler(host.config.kind).default_max_queued
        return min(default, limits.max_jobs) if limits.max_jobs else default

    def _submit(
        self,
        host: HostRun,
        transport: Transport,
        singles: list[Tracked],
        arrays: list[tuple[list[Tracked], str, str]],
    ) -> None:
        """Record every attempt, then start them all, single jobs and job arrays, in one
        remote step. If the answer never arrives, the attempts stay `starting` and the next
        poll asks the host what became of them, so a start is never repeated while the first
        may have happened."""
        everyone = singles + [t for members, _, _ in arrays for t in members]
        # Committed before the host is asked; on the disk itself where the tasks run elsewhere
        # (a power cut here kills local tasks along with the client).
        with self.store.transaction(durable=host.config.kind != "local"):
            for tracked in everyone:
                tracked.attempt_id, tracked.token = self.store.start_attempt(
                    tracked.id, host.name, tracked.pack, tracked.script_sha256, tracked.number
                )
                tracked.state, tracked.job_id = TaskState.STARTING, None
                host.active[tracked.id] = tracked
        starts = [
            ArrayStart(
                posixpath.dirname(driver),
                driver,
                tuple(_running(t) for t in members),
                kind,
                tuple(dict.fromkeys(job for t in members for job in t.after_jobs)),
            )
            for members, driver, kind in arrays
        ]
        running = [_running(t) for t in singles]
        if host.local_steps is not None and not starts and host.local_steps.can_launch(running):
            host.local_steps.launch(running)
            return  # answered as the launcher goes: Engine._launched
        script = host.ops.start_script(running, starts)
        result = transport.run_script(script)
        started = host.ops.parse_start(result.stdout)
        submissions = [([t], t.name) for t in singles] + [
            (members, _group_label(members, kind)) for members, _, kind in arrays
        ]
        with self.store.transaction():
            for members, label in submissions:
                again = None
                for tracked in members:
                    outcome = started.get(tracked.id)
                    if outcome is not None:  # unanswered: settled by the next poll
                        again = self._started(host, tracked, outcome, "started") or again
                if again:  # one line for one submission, however many tasks it held
                    self.progress.say(f"{label}: {again}")

    def _started(
        self, host: HostRun, tracked: Tracked, outcome: StartResult, how: str
    ) -> str | None:
        """Record how the start of an attempt went; the reason, if it is to be submitted
        again after a pause."""
        if outcome.job_id is None:
            reason = f"submission failed: {outcome.error}"
            again = self._retry_submission(host, tracked, outcome.error or "")
            if again is None:
                self._finish(host, tracked, "failed", reason, {}, Cause.SUBMIT_ERROR)
            return again
        tracked.job_id = outcome.job_id
        started = TaskState.RUNNING if host.ops.batch is None else TaskState.SUBMITTED
        what = "process" if host.ops.batch is None else "job"
        self._move(
            tracked,
            started,
            f"{what} {outcome.job_id} on {host.name}",
            attempt=True,
            event=how,
            job_id=outcome.job_id,
        )
        host.active[tracked.id] = tracked
        return None

    def _retry_submission(self, host: HostRun, tracked: Tracked, error: str) -> str | None:
        """A scheduler that was briefly unavailable gets the same task again after a pause
        (longer each time), rather than the task failing: the reason, if so."""
        tries = host.submit_retries.get(tracked.id, 0)
        batch = host.ops.batch
        if batch is None or not self.may_start or tries >= SUBMIT_RETRIES:
            return None
        if not batch.is_transient(error):
            return None
        host.submit_retries[tracked.id] = tries + 1
        delay = RETRY_DELAYS[min(tries, len(RETRY_DELAYS) - 1)]
        reason = f"submission failed, retrying in {delay:.0f}s: {error}"
        if tracked.attempt_id is not None:
            self.store.update_attempt(
                tracked.attempt_id, state="failed", reason=reason, cause=Cause.SUBMIT_ERROR
            )
        self._move(tracked, TaskState.PENDING, reason, event="submit-retry")
        host.active.pop(tracked.id, None)
        tracked.job_id = None
        host.pending.appendleft(tracked)
        host.start_after = max(host.start_after, self.seams.clock() + delay)
        return reason

    def _settle(self, host: HostRun, tracked: Tracked, resolution: Resolution | None) -> None:
        """Conclude a start whose answer an earlier run (or this one) never read."""
        if resolution is None or resolution.outcome == "pending":
            return  # still being started on the host: ask again at the next poll
        if resolution.start is not None:
            if again := self._started(host, tracked, resolution.start, "re-attached"):
                self.progress.say(f"{tracked.name}: {again}")
            host.next_poll = 0.0
            return
        if resolution.outcome == "stale":
            reason = "its start on the host was interrupted; whether it ran is unknown"
            self._finish(host, tracked, "lost", reason, {}, Cause.LOST)
            return
        # never: the host had not started it, and now never will under that attempt
        host.active.pop(tracked.id, None)
        reason = "not started: the client stopped before the host started it"
        if tracked.attempt_id is not None:
            self.store.update_attempt(
                tracked.attempt_id, state="failed", reason=reason, cause=Cause.NOT_STARTED
            )
        tracked.job_id = None
        self._move(tracked, TaskState.PENDING, "", event="not-started")
        if self.may_start and tracked.prepared is not None:
            host.pending.appendleft(tracked)

    def _poll(self, host: HostRun, now: float) -> bool:
        """One poll of the host's active tasks (and retrieval of what finished). True when it
        re-attached to starts an earlier run never heard answered: those have a pid or job
        now, but their state comes with the next poll."""
        watched = list(host.active.values())
        steps = host.local_steps
        if steps is not None:
            watched = [t for t in watched if not steps.awaiting(t.id)]
        failure = None  # what the poll script said when it failed
        if steps is not None and all(t.job_id for t in watched):
            poll = steps.poll([_running(t) for t in watched])
        else:
            script = host.ops.poll_script([_running(t) for t in watched])
            result = self._transport(host).run_script(script)
            poll = host.ops.parse_poll(result.stdout)
            failure = None if result.ok else result.stderr.strip()
        unanswered = [t for t in watched if t.job_id is None]
        with self.store.transaction():
            for tracked in unanswered:
                self._settle(host, tracked, poll.resolved.get(tracked.id))
        if poll.scheduler_error is not None:
            raise SchedulerUnavailable(f"the status query failed: {poll.scheduler_error}")
        if failure is not None:
            raise HostError(f"the status query failed: {failure}")
        finished: list[Ending] = []
        with self.store.transaction():
            self._judge(host, watched, poll, now, finished)
        if finished:
            self._retrieve(host, finished)
        return any(t.job_id is not None and t.id in host.active for t in unanswered)

    def _judge(
        self,
        host: HostRun,
        watched: list[Tracked],
        poll: PollResult,
        now: float,
        finished: list[Ending],
    ) -> None:
        """Record what changed of the watched tasks; list those that ended in `finished`."""
        vanished: list[Tracked] = []
        for tracked in watched:
            if tracked.id not in host.active or tracked.id not in poll.tasks:
                continue  # settled above, or started since: judged at the next poll
            report = poll.tasks.get(tracked.id)
            status = report.status if report else None
            scheduler = None
            if poll.scheduler is not None and host.ops.batch is not None and tracked.job_id:
                scheduler = host.ops.batch.find_status(poll.scheduler, tracked.job_id)
                if is_packed(tracked.job_id):
                    scheduler = packed_task_view(scheduler, status)
            verdict = judge(
                status,
                scheduler,
                report.alive if report else None,
                batch=host.ops.batch is not None,
                now=now,
                waiting_since=tracked.waiting_since,
                lost_after=host.config.lost_after,
                current=tracked.state,
            )
            tracked.waiting_since = verdict.waiting_since
            # gone from the queue, or ended there (cancelled), without ever writing a status
            gone = poll.scheduler is not None and (scheduler is None or not scheduler.state.active)
            if gone and status is None and tracked.upstream:
                vanished.append(tracked)
            if verdict.final:
                state, reason, cause = overran_walltime(
                    verdict.state, verdict.reason, verdict.cause, status, tracked.walltime
                )
                if tracked.cancelled and (status or {}).get("state") in (None, "running"):
                    # the scheduler ended it for our cancel: its own words would blame others
                    state, cause = TaskState.KILLED.value, Cause.KILLED
                    reason = "killed by the user before its wrapper could record it"
                    if scheduler is not None:
                        reason += f" (scheduler state {scheduler.code})"
                elif tracked.cancelled and ended_by_signal(status):
                    # our cancel reached the task's command before its wrapper
                    state, cause = TaskState.KILLED.value, Cause.KILLED
                    reason = "killed by the user"
                finished.append(Ending(tracked, state, reason, status or {}, cause))
            elif verdict.state and (verdict.state, verdict.reason) != (
                tracked.state,
                tracked.reason,
            ):
                self._move(tracked, verdict.state, verdict.reason, attempt=True, last_seen=now)
        if vanished:
            self._blocked_in_queue(finished, vanished)
        host.stuck = Counter(
            t.reason
            for t in watched
            if t.state == TaskState.QUEUED and t.reason.startswith(CANNOT_START)
        )

    def _retrieve(self, host: HostRun, finished: list[Ending]) -> None:
        transfers: list[Transfer] = []
        here = host.config.kind == "local"
        made: dict[str, tuple[list[Transfer], list[str]]] = {}
        for ending in finished:
            tracked = ending.tracked
            local = self.local_dir(tracked.id)
            for name in LOG_FILES:
                remote = on_host(tracked.task_dir, name)
                # On this machine an empty scheduler file is seen here, and not brought back.
                if here and name in SCHEDULER_LOGS and empty_or_absent(remote):
                    continue
                transfers.append(Transfer(local / name, remote))
            if ending.state == "completed":
                made[tracked.id] = produced(tracked, ending.status)
                transfers += made[tracked.id][0]
        missing = {m.remote for m in self._transport(host).get(transfers)}
        ended: list[tuple[Tracked, str]] = []
        with self.store.transaction():  # committed before anything is tidied away
            for tracked, state, reason, status, cause in (
                (e.tracked, e.state, e.reason, e.status, e.cause) for e in finished
            ):
                if state == "completed":
                    outputs, unmatched = made[tracked.id]
                    lost = [o.remote for o in outputs if o.remote in missing] + unmatched
                    if lost:
                        state, reason = (
                            "failed",
                            "declared output not found on the host: " + ", ".join(lost),
                        )
                        cause = Cause.MISSING_OUTPUT
                    else:
                        self.store.set_outputs(tracked.id, self._digests(outputs))
                self._finish(host, tracked, state, reason, status, cause)
                ended.append((tracked, state))
        for tracked, state in ended:
            self._tidy(host, tracked, state)

    def _tidy(self, host: HostRun, tracked: Tracked, state: str) -> None:
        """Keep little of a finished task here: its stdout and stderr, and the scheduler's
        files when not empty. On this machine a completed task's directory under work_dir
        is removed too, its outputs and logs having been brought back."""
        if host.config.kind == "local":  # nothing was staged here, no empty file brought back
            if state == TaskState.COMPLETED:
                self.tidier.submit(remove_tree, tracked.task_dir)
            return
        local = self.local_dir(tracked.id)
        for name in (*STAGED, *SCHEDULER_LOGS):
            path = local / name
            if name in STAGED or (path.exists() and path.stat().st_size == 0):
                path.unlink(missing_ok=True)

    def _digests(self, outputs: list[Transfer]) -> dict[str, str]:
        """What the completed run's outputs are here, so a later change to them is seen."""
        return {str(o.local): file_signature(o.local, self.signatures) for o in outputs}

    def _finish(
        self,
        host: HostRun,
        tracked: Tracked,
        state: str,
        reason: str,
        status: dict[str, Any],
        cause: Cause = Cause.NONE,
    ) -> None:
        if self._maybe_retry(host, Ending(tracked, state, reason, status, cause)):
            return
        reason = _with_attempt(tracked, state, reason, cause, _ended(status, cause)["exit_code"])
        host.active.pop(tracked.id, None)
        self._move(tracked, state, reason, attempt=True, **_ended(status, cause))
        self._release_downstream(tracked)

    # retries -----------------------------------------------------------------------------
    def _maybe_retry(self, host: HostRun, ending: Ending) -> bool:
        """An attempt that ended for a cause its task's `retry_on` lists, with retries left,
        does not end the task: the task waits its backoff, then rejoins the host's pending
        queue (started with the others at the next start step). Without a start in this run
        (`status`) it stays pending, and the next `apply` continues its attempts."""
        tracked, state, reason = ending.tracked, ending.state, ending.reason
        ended = _ended(ending.status, ending.cause)
        if not self.may_retry or not tracked.policy.retries_after(
            tracked.number, ending.cause, ended["exit_code"]
        ):
            return False
        delay = tracked.policy.delay_before(tracked.number + 1)
        again = self.may_start and tracked.prepared is not None
        then = f"retry in {format_span(delay)}" if again else "the next apply retries it"
        message = f"attempt {tracked.number} of {tracked.policy.attempts} {state}: {reason}; {then}"
        host.active.pop(tracked.id, None)
        with self.store.transaction():
            if tracked.attempt_id is not None:
                self.store.update_attempt(tracked.attempt_id, state=state, reason=reason, **ended)
            self._move(tracked, TaskState.PENDING, message, event="retry")
            self.store.set_next_attempt(tracked.id, tracked.number + 1)
        tracked.number += 1
        tracked.job_id = None
        if again:
            host.retrying.append((self.seams.clock() + delay, tracked))
        self.progress.say(f"{tracked.name}: {message}")
        return True

    def _release_retries(self, host: HostRun, now: float) -> None:
        """Retries whose backoff has passed rejoin the pending queue, ahead of the rest;
        one killed meanwhile (`submitter kill` from another terminal) stays killed."""
        due = [t for when, t in host.retrying if when <= now]
        if not due:
            return
        host.retrying = [(when, t) for when, t in host.retrying if when > now]
        for tracked in reversed(due):
            record = self.store.task(tracked.id)
            if record is not None and record.state != TaskState.PENDING:
                tracked.state, tracked.reason = record.state, record.reason
                continue
            host.pending.appendleft(tracked)

    def _refuse_oversized(
        self, host: HostRun, transport: Transport, batch: list[Tracked]
    ) -> list[Tracked]:
        """The tasks of `batch` that fit the largest node the scheduler says it has; one that
        asks more cores would pend for ever: it fails here, not submitted, and says why."""
        if host.ops.batch is None:
            return batch
        largest = self._site_limits(host, transport).max_node_cores
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
            self._finish(host, tracked, TaskState.FAILED, reason, {}, Cause.SUBMIT_ERROR)
        return fitting

    def _escalate(self, host: HostRun, transport: Transport, batch: list[Tracked]) -> None:
        """A retry of a task with `escalate` asks more, within the host's `limits` and what
        its scheduler says: rendered again for this attempt, under the same task id."""
        growing = [t for t in batch if t.number > 1 and t.policy.escalate and t.prepared]
        if not growing:
            return
        site = self._site_limits(host, transport) if host.ops.batch else SiteLimits()
        caps = resource_caps(host.config.limits, site)
        for tracked in growing:
            assert tracked.prepared is not None
            task = escalated_task(tracked.prepared, tracked.policy, tracked.number, caps)
            self._ready(tracked, task)
            tracked.walltime = task.spec.resources.walltime


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


def _group_label(members: list[Tracked], kind: str) -> str:
    """How a line names one job array or packed job: by its size and its first and last task."""
    job = "packed job" if kind == "packed" else "job array"
    names = f"{members[0].name} … {members[-1].name}" if len(members) > 1 else members[0].name
    return f"{job} of {len(members)} task{'s' if len(members) != 1 else ''} ({names})"


def _retry_due(host: HostRun) -> float:
    """When the host's next waiting retry may start."""
    if not host.retrying:
        return float("inf")
    return max(host.start_after, min(when for when, _ in host.retrying))


def _largest_array(host: HostRun, limits: SiteLimits) -> int:
    """The most tasks one job array of the host's may hold."""
    scheduler = host.ops.batch
    assert scheduler is not None
    return min(
        n
        for n in (scheduler.max_array_size, limits.max_array_size, host.config.max_array)
        if n is not None
    )


def _jobs_in_queue(host: HostRun, scheduler: BatchScheduler) -> int:
    """Scheduler jobs of this host's active tasks: a job array or packed job counts once, a
    start not yet answered as one job."""
    jobs = {scheduler.submission_of(t.job_id) if t.job_id else t.id for t in host.active.values()}
    return len(jobs)


def _kill_grace(config: HostConfig) -> float:
    """How long the wrapper waits between TERM and KILL (the pack's `kill_grace` var)."""
    try:
        return float(config.vars.get("kill_grace", 10))
    except (TypeError, ValueError):
        return 10.0


def _clock_of(timestamp: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp or 0))
