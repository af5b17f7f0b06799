"""Runs tasks and follows them to their end, through one session per host (session.py):
classification, the pipeline's order and the loop over the sessions are here; starting,
polling, retrieving and cancelling are each session's. `apply`, `status`, `logs`, `report`,
`kill` and `purge` go through it."""

from __future__ import annotations

import time
from collections.abc import Sequence

from submitter import reachability, task_logs
from submitter.classify import classify, tracked_from_record
from submitter.config.models import HostConfig
from submitter.config.project import Project
from submitter.endings import Endings, release_retries
from submitter.errors import HostError, UsageError
from submitter.exits import ExitWatch
from submitter.identity import SignatureCache
from submitter.local_session import LocalSession
from submitter.long_lived import long_lived
from submitter.pipeline import Pipeline
from submitter.polling import poll_in_turn
from submitter.prepare import PreparedTask, needs_home, prepare_tasks
from submitter.progress import Progress, Tally
from submitter.run_context import RunContext
from submitter.run_state import ApplyReport, Tracked
from submitter.seams import REAL, Seams
from submitter.session import HostSession
from submitter.states import ACTIVE, TaskState
from submitter.store.db import FINAL_STATES, Store, TaskRecord
from submitter.store.host_record import host_config
from submitter.store.lock import apply_running

# states a task does not leave in a run
ENDED = frozenset((*FINAL_STATES, "skipped", TaskState.BLOCKED.value))
# On this machine a task's end is known at once (exits.ExitWatch) and polled for then, but
# not more often than this: tasks that end together are polled for, and their slots filled,
# together (one poll and one start script for many, not for each).
EXIT_POLL_GAP = 0.01
# A launcher on this machine starts the tasks it holds as slots free, without the engine: a
# pass of the loop that its news woke (a start, a wrapper's end) comes at least this long after
# the one before, and takes in one commit, one poll and one start step what happened meanwhile,
# rather than a pass for each task.
LAUNCHER_PASS_GAP = 0.005
UNSTARTED = "killed before it started"


class Engine:
    def __init__(
        self,
        store: Store,
        progress: Progress,
        signatures: SignatureCache | None = None,
        *,
        seams: Seams = REAL,
    ) -> None:
        signatures = signatures if signatures is not None else SignatureCache()
        self.ctx = RunContext(store, progress, seams, signatures)
        self.store, self.progress = store, progress
        self.sessions: dict[str, HostSession] = {}
        self.pipeline = Pipeline(self.ctx, self.sessions)
        self.endings = Endings(self.ctx, self.pipeline)
        self.exits: ExitWatch[tuple[str, int]] = ExitWatch()  # (host, pid) of wrappers here

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
        self.ctx.may_start = True
        self.ctx.detached = detach
        prepared = self._with_remote_homes(project, prepared, max_running)
        runs, skipped = self._classify_all(project, prepared, force, max_running)
        for tracked in skipped:
            self.progress.detail(f"up to date: {tracked.name} ({tracked.id}), skipped")
        resumed = sum(1 for t in runs if t.state in ACTIVE)
        if resumed:
            self.progress.say(f"re-attached to {resumed} task(s) started earlier")
        report = ApplyReport(runs, skipped, {})
        if runs and detach:
            try:
                self.pipeline.refuse_what_does_not_fit()
            except UsageError:
                self.close()
                raise
        if runs:
            self._run(detach=detach, all_tasks=runs + skipped)
            if not detach:
                self.pipeline.block_waiting("did not complete in this run")
        report.detached = detach
        report.host_errors = {n: s.run.error for n, s in self.sessions.items() if s.run.error}
        report.stats = {
            name: vars(s.transport.stats) for name, s in self.sessions.items() if s.transport
        }
        self.close()
        return report

    def _classify_all(
        self,
        project: Project,
        prepared: list[PreparedTask],
        force: bool,
        max_running: int | None,
    ) -> tuple[list[Tracked], list[Tracked]]:
        """Each declared task, to run (with those started earlier) or skipped; the ones to
        run queued on their host's session or held back by the pipeline."""
        runs: list[Tracked] = []
        skipped: list[Tracked] = []
        tasks_file = str(project.tasks_file)
        records = self.store.tasks_by_id([t.task_id for t in prepared], with_spec=False)
        ctx = self.ctx
        # one commit for all the tasks, not one each; what is tracked stays to the run's end
        with self.store.transaction(), long_lived():
            for task in prepared:
                record = records.get(task.task_id)
                tracked = classify(
                    ctx.store, ctx.progress, ctx.signatures, task, record,
                    force=force, tasks_file=tasks_file,
                )  # fmt: skip
                if tracked.state == "skipped":
                    skipped.append(tracked)
                    continue
                runs.append(tracked)
                session = self._session(task.host.name, task.host.config, max_running)
                if tracked.state in ACTIVE:
                    session.run.active[tracked.id] = tracked
            # once every task is classified: an upstream task may be declared after its own
            ctx.up_to_date.update(t.name for t in skipped)
            self.pipeline.by_name = {t.name: t for t in runs}
            for tracked in runs:
                if tracked.state not in ACTIVE and not self.pipeline.waits(tracked):
                    self.sessions[tracked.host].run.pending.append(tracked)
            self.store.retire_undeclared(tasks_file, {t.task_id for t in prepared})
        return runs, skipped

    def refresh(self, records: Sequence[TaskRecord], *, close: bool = True) -> dict[str, str]:
        """One poll (and retrieval of what finished) for every active task: `status`.
        Without `close`, the engine may refresh again, its grace periods running on and its
        connections kept (`logs -f`)."""
        self.ctx.leaves_starts = apply_running(self.store.state_dir)
        self._watch_records(records)
        errors: dict[str, str] = {}
        for session in self.sessions.values():
            if session.run.active:
                try:
                    if session.look(self.ctx.seams.clock()):
                        session.look(self.ctx.seams.clock())
                except HostError as exc:
                    errors[session.name] = str(exc)
        if close:
            self.close()
        return errors

    def _watch_records(self, records: Sequence[TaskRecord]) -> None:
        """The active tasks among `records`, watched by their host's session."""
        for record in records:
            if not record.active:
                continue
            session = self.session_for(record)
            if record.id not in session.run.active:
                session.run.active[record.id] = tracked_from_record(self.store, record)

    def kill(self, records: Sequence[TaskRecord], wait: float = 15.0) -> dict[str, str]:
        errors: dict[str, str] = {}
        self.ctx.may_retry = False
        for record in records:
            if record.state == TaskState.PENDING:
                self.store.transition(record.id, TaskState.KILLED, UNSTARTED)
        self._watch_records(records)
        for session in self.sessions.values():
            try:
                if any(t.job_id is None for t in session.run.active.values()):
                    # settle starts an earlier run left unsure
                    session.look(self.ctx.seams.clock())
                for record in records:
                    current = self.store.task(record.id)
                    if current is not None and current.state == TaskState.PENDING:
                        self.store.transition(record.id, TaskState.KILLED, UNSTARTED)
                session.cancel(wait)
            except HostError as exc:
                errors[session.name] = str(exc)
        self.close()
        return errors

    def purge(self, records: Sequence[TaskRecord]) -> dict[str, str]:
        """Delete finished tasks: their remote task directories, local copies and records."""
        errors: dict[str, str] = {}
        by_host: dict[str, list[TaskRecord]] = {}
        for record in records:
            by_host.setdefault(record.host, []).append(record)
        for name, group in by_host.items():
            try:
                self.session_for(group[0]).remove([r.task_dir for r in group])
            except HostError as exc:
                errors[name] = str(exc)
                continue
            for record in group:
                task_logs.remove(self.store.state_dir, record.id)
                self.store.delete_task(record.id)
        if records:
            self.store.vacuum()
        self.close()
        return errors

    def close(self) -> None:
        signatures = self.ctx.signatures
        if signatures.added:
            self.store.save_signatures(signatures.added)
            signatures.known.update(signatures.added)
            signatures.added.clear()
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()  # closed once: a caller's close after a helper's is harmless

    # sessions ------------------------------------------------------------------------------
    def _session(self, name: str, config: HostConfig, max_running: int | None) -> HostSession:
        if name not in self.sessions:
            kind = LocalSession if config.kind == "local" else HostSession
            self.sessions[name] = kind(name, config, self.ctx, self.endings, max_running)
        return self.sessions[name]

    def session_for(self, record: TaskRecord) -> HostSession:
        """The session of the host a stored task ran on."""
        return self._session(record.host, host_config(record.spec["host_config"]), None)

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
            session = self._session(name, project.hosts[name].config, max_running)
            result = session.connection().run_script('printf "%s" "$HOME"\n')
            if not result.ok or not result.stdout.startswith("/"):
                raise HostError(
                    f"{name}: cannot read the remote home directory: {result.stderr.strip()}"
                )
            homes[name] = result.stdout.strip()
        # Only the tasks of those hosts are prepared again, now with their real paths.
        again = {t.name for t in prepared if t.host.name in homes}
        redone = {
            t.name: t
            for t in prepare_tasks(project, homes, signatures=self.ctx.signatures, only=again)
        }
        return [redone.get(t.name, t) for t in prepared]

    # the loop ------------------------------------------------------------------------------
    def _run(self, *, detach: bool, all_tasks: list[Tracked]) -> None:
        self.progress.start()
        tally = Tally(all_tasks, ENDED)
        clock = self.ctx.seams.clock
        try:
            while True:
                now = clock()
                for session in self.sessions.values():
                    self._step(session, now, detach)
                busy = [s for s in self.sessions.values() if s.run.busy]
                if detach or not busy or self.progress.due():  # counting 10,000 tasks costs
                    # a task handed to a process host's launcher is as good as running
                    launched = {
                        s.name: s.run.max_running for s in self.sessions.values() if s.has_launcher
                    }
                    counts, by_host = tally.take(launched)
                    sessions = list(self.sessions.values())
                    self.progress.update(counts, reachability.notes(sessions), by_host)
                if detach and self.pipeline.chain_waiting():
                    continue  # submit them too, before leaving
                if detach or not busy:
                    break
                wake = min(reachability.next_step(s, now) for s in busy)
                self._watch_exits()
                answers = [fd for s in busy if (fd := s.readable()) is not None]
                timeout = max(0.005, min(wake - clock(), 1.0))
                for name, _ in self.exits.wait(timeout, answers):
                    run = self.sessions[name].run
                    run.next_poll = min(run.next_poll, run.polled_at + EXIT_POLL_GAP)
                if any(s.has_launcher for s in busy):  # what it did meanwhile, taken together
                    time.sleep(max(0.0, now + LAUNCHER_PASS_GAP - clock()))
        finally:
            self.progress.stop()
            self.exits.close()

    def _step(self, session: HostSession, now: float, detach: bool) -> None:
        """One turn of the loop for one host: what its launcher answered, a poll when one is
        due, retries whose backoff has passed, a start step."""
        run = session.run
        if run.error or now < run.retry_at:
            return
        try:
            session.take_launched()
            if run.active and now >= run.next_poll:
                poll_in_turn(session, now)
            release_retries(session, now)
            if now >= run.start_after:
                session.start()
        except HostError as exc:
            reachability.unreachable(session, exc, now, self.progress, give_up=detach)
        else:
            reachability.reachable(session, now, self.progress)

    def _watch_exits(self) -> None:
        """Watch the wrappers of this machine's running tasks for their end; forget those of
        tasks no longer watched."""
        current = {(s.name, pid) for s in self.sessions.values() for pid in s.exits_to_watch()}
        for key in current:
            self.exits.watch(key, key[1])
        for key in self.exits.keys() - current:
            self.exits.forget(key)
