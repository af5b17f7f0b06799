"""The only orchestrator: prepare -> send -> run -> watch -> retrieve, per host in batches."""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from submitter.config.models import HostConfig
from submitter.config.project import Project
from submitter.errors import HostError
from submitter.hostops import HostOps
from submitter.identity import SignatureCache
from submitter.interrupts import deferred_interrupts
from submitter.paths import Transfer
from submitter.prepare import PreparedTask, needs_home, prepare_tasks
from submitter.progress import Progress
from submitter.schedulers.base import find_status
from submitter.store.db import ACTIVE_STATES, FINAL_STATES, Store, TaskRecord
from submitter.transport.base import Transport
from submitter.transport.factory import connect
from submitter.units import format_clock
from submitter.watch import judge

LOG_FILES = ("status", "stdout", "stderr", "job.out", "job.err")
POLL_FAILURES_TOLERATED = 3
DEFAULT_POLL = {"local": 0.5, "ssh": 5.0, "slurm": 10.0, "pbs": 10.0, "lsf": 10.0}


def default_max_running(config: HostConfig) -> int:
    if config.max_running:
        return config.max_running
    if config.kind == "local":
        return os.cpu_count() or 2
    return 8 if config.kind == "ssh" else 200


@dataclass
class Tracked:
    """A task the engine is starting or watching in this run."""

    id: str
    name: str
    host: str
    task_dir: str
    outputs: list[Transfer]
    state: str = "pending"
    reason: str = ""
    attempt_id: int | None = None
    job_id: str | None = None
    walltime: int | None = None
    pack: str = ""  # what a new attempt records: the pack and the hash of what it rendered
    script_sha256: str = ""
    waiting_since: float | None = None
    sends: list[Transfer] = field(default_factory=list)


@dataclass
class HostRun:
    """One host's share of the work, with its connection."""

    name: str
    config: HostConfig
    ops: HostOps
    transport: Transport | None = None
    pending: deque[Tracked] = field(default_factory=deque)
    active: dict[str, Tracked] = field(default_factory=dict)
    max_running: int = 1
    poll_interval: float = 1.0
    next_poll: float = 0.0
    poll_failures: int = 0
    error: str | None = None


@dataclass
class ApplyReport:
    tasks: list[Tracked]
    skipped: list[Tracked]
    host_errors: dict[str, str]
    detached: bool = False
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[Tracked]:
        return [t for t in self.tasks if t.state in ("failed", "killed", "lost")]


def spec_of(task: PreparedTask) -> dict[str, Any]:
    """What the store keeps so status, logs, kill and purge work without the tasks file."""
    return {
        "host_config": task.host.config.model_dump(mode="json"),
        "outputs": [[o.local.as_posix(), o.remote] for o in task.outputs if o.copied],
        "walltime": task.definition.resources.walltime,
    }


class Engine:
    def __init__(
        self, store: Store, progress: Progress, signatures: SignatureCache | None = None
    ) -> None:
        self.store = store
        self.progress = progress
        self.signatures = signatures if signatures is not None else SignatureCache()
        self.hosts: dict[str, HostRun] = {}

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
        prepared = self._with_remote_homes(project, prepared)
        runs: list[Tracked] = []
        skipped: list[Tracked] = []
        for task in prepared:
            tracked = self._classify(task, force)
            if tracked.state == "skipped":
                skipped.append(tracked)
                continue
            runs.append(tracked)
            host = self._host(task.host.name, task.host.config, max_running)
            if tracked.state in ACTIVE_STATES:
                host.active[tracked.id] = tracked
            else:
                host.pending.append(tracked)
        for tracked in skipped:
            self.progress.say(f"up to date: {tracked.name} ({tracked.id}), skipped")
        resumed = sum(1 for t in runs if t.state in ACTIVE_STATES)
        if resumed:
            self.progress.say(f"re-attached to {resumed} task(s) started earlier")
        report = ApplyReport(runs, skipped, {})
        if runs:
            self._run(detach=detach, all_tasks=runs + skipped)
        report.detached = detach
        report.host_errors = {h.name: h.error for h in self.hosts.values() if h.error}
        report.stats = {
            name: vars(h.transport.stats) for name, h in self.hosts.items() if h.transport
        }
        self.close()
        return report

    def refresh(self, records: Sequence[TaskRecord]) -> dict[str, str]:
        """One poll (and retrieval of what finished) for every active task: `status`."""
        for record in records:
            if not record.active:
                continue
            tracked = self._tracked_from_record(record)
            self._host_for_record(record).active[tracked.id] = tracked
        errors: dict[str, str] = {}
        for host in self.hosts.values():
            if host.active:
                try:
                    self._poll(host, time.time())
                except HostError as exc:
                    errors[host.name] = str(exc)
        self.close()
        return errors

    def kill(self, records: Sequence[TaskRecord], wait: float = 15.0) -> dict[str, str]:
        errors: dict[str, str] = {}
        for record in records:
            if record.state == "pending":
                self.store.set_task_state(record.id, "killed", "killed before it started")
                self.store.event(record.id, "killed", "killed before it started")
            elif record.active:
                tracked = self._tracked_from_record(record)
                self._host_for_record(record).active[tracked.id] = tracked
        for host in self.hosts.values():
            job_ids = [t.job_id for t in host.active.values() if t.job_id]
            try:
                transport = self._transport(host)
                result = transport.run_script(host.ops.cancel_script(job_ids))
                if not result.ok and host.ops.batch is not None:
                    self.progress.say(f"{host.name}: cancel said: {result.stdout.strip()}")
                for tracked in host.active.values():
                    self.store.event(tracked.id, "kill", f"cancel sent for job {tracked.job_id}")
                deadline = time.time() + wait
                while host.active and time.time() < deadline:
                    time.sleep(0.5)
                    self._poll(host, time.time())
                for tracked in list(host.active.values()):
                    self._finish(
                        host, tracked, "killed", "killed by the user (no status file yet)", {}
                    )
            except HostError as exc:
                errors[host.name] = str(exc)
        self.close()
        return errors

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
                _remove_tree(self.local_dir(record.id))
                self.store.delete_task(record.id)
        self.close()
        return errors

    def close(self) -> None:
        for host in self.hosts.values():
            if host.transport is not None:
                host.transport.close()

    def local_dir(self, task_id: str) -> Path:
        return self.store.state_dir / "tasks" / task_id

    # preparation -------------------------------------------------------------------------
    def _with_remote_homes(
        self, project: Project, prepared: list[PreparedTask]
    ) -> list[PreparedTask]:
        """Hosts whose work_dir starts with ~ are asked for $HOME once; their tasks re-rendered."""
        needing = sorted(
            {t.host.name for t in prepared if needs_home(t.host.config, project.directory)}
        )
        if not needing:
            return prepared
        homes: dict[str, str] = {}
        for name in needing:
            host = self._host(name, project.hosts[name].config, None)
            result = self._transport(host).run_script('printf "%s" "$HOME"\n')
            if not result.ok or not result.stdout.startswith("/"):
                raise HostError(
                    f"{name}: cannot read the remote home directory: {result.stderr.strip()}"
                )
            homes[name] = result.stdout.strip()
        return prepare_tasks(project, homes, signatures=self.signatures)

    def _classify(self, task: PreparedTask, force: bool) -> Tracked:
        record = self.store.task(task.task_id)
        tracked = Tracked(
            task.task_id,
            task.name,
            task.host.name,
            task.task_dir,
            [Transfer(o.local, o.remote) for o in task.outputs if o.copied],
            walltime=task.definition.resources.walltime,
            pack=task.rendered.pack,
            script_sha256=task.rendered.sha256,
        )
        if record is not None and record.active:
            attempt = self.store.latest_attempt(task.task_id)
            tracked.state = record.state
            tracked.attempt_id = attempt.id if attempt else None
            tracked.job_id = attempt.job_id if attempt else None
            return tracked
        outputs_here = all(o.local.exists() for o in task.outputs if o.copied)
        if record is not None and record.state == "completed" and not force and outputs_here:
            tracked.state = "skipped"
            return tracked
        local = self.local_dir(task.task_id)
        local.mkdir(parents=True, exist_ok=True)
        for name in LOG_FILES:
            (local / name).unlink(missing_ok=True)
        (local / "job.sh").write_text(task.rendered.job_script, encoding="utf-8")
        (local / "task.json").write_text(task.rendered.task_file, encoding="utf-8")
        tracked.sends = [
            Transfer(local / "job.sh", f"{task.task_dir}/job.sh"),
            Transfer(local / "task.json", f"{task.task_dir}/task.json"),
            *(Transfer(i.local, i.remote) for i in task.inputs if i.copied),
        ]
        self.store.upsert_task(
            task.task_id, task.name, task.host.name, task.task_dir, task.run_dir, spec_of(task)
        )
        self.store.set_task_state(task.task_id, "pending")
        if record is not None and record.state == "completed":
            reason = "forced" if force else "a declared output is missing here"
            self.store.event(task.task_id, "rerun", reason)
            self.progress.say(f"rerun: {task.name} ({task.task_id}): {reason}")
        return tracked

    def _host(self, name: str, config: HostConfig, max_running: int | None) -> HostRun:
        if name not in self.hosts:
            self.hosts[name] = HostRun(
                name,
                config,
                HostOps.for_kind(config.kind),
                max_running=max_running or default_max_running(config),
                poll_interval=float(config.poll_interval or DEFAULT_POLL[config.kind]),
            )
        return self.hosts[name]

    def _host_for_record(self, record: TaskRecord) -> HostRun:
        config = HostConfig.model_validate(record.spec["host_config"])
        return self._host(record.host, config, None)

    def _tracked_from_record(self, record: TaskRecord) -> Tracked:
        attempt = self.store.latest_attempt(record.id)
        outputs = [
            Transfer(Path(local), remote) for local, remote in record.spec.get("outputs", [])
        ]
        return Tracked(
            record.id,
            record.name,
            record.host,
            record.task_dir,
            outputs,
            record.state,
            attempt_id=attempt.id if attempt else None,
            job_id=attempt.job_id if attempt else None,
            walltime=record.spec.get("walltime"),
        )

    def _transport(self, host: HostRun) -> Transport:
        if host.transport is None:
            host.transport = connect(host.name, host.config)
        return host.transport

    # the loop ------------------------------------------------------------------------------
    def _run(self, *, detach: bool, all_tasks: list[Tracked]) -> None:
        self.progress.start()
        try:
            while True:
                now = time.time()
                for host in self.hosts.values():
                    if host.error:
                        continue
                    try:
                        if host.active and now >= host.next_poll:
                            self._poll(host, now)
                            host.next_poll = now + host.poll_interval
                        self._start(host)
                    except HostError as exc:
                        host.error = str(exc)  # reported once, with the outcome
                self.progress.update(Counter(t.state for t in all_tasks))
                if detach:
                    break
                busy = [h for h in self.hosts.values() if not h.error and (h.active or h.pending)]
                if not busy:
                    break
                wake = (
                    min(h.next_poll for h in busy if h.active)
                    if any(h.active for h in busy)
                    else now
                )
                time.sleep(max(0.05, min(wake - time.time(), 1.0)))
        finally:
            self.progress.stop()

    def _start(self, host: HostRun) -> None:
        slots = host.max_running - len(host.active)
        if slots <= 0 or not host.pending:
            return
        batch = [host.pending.popleft() for _ in range(min(slots, len(host.pending)))]
        transport = self._transport(host)
        transport.put([s for t in batch for s in t.sends])
        with deferred_interrupts():
            self._submit(host, transport, batch)
        host.next_poll = min(host.next_poll, time.time() + min(host.poll_interval, 1.0))

    def _submit(self, host: HostRun, transport: Transport, batch: list[Tracked]) -> None:
        for tracked in batch:
            tracked.attempt_id = self.store.add_attempt(
                tracked.id, host.name, tracked.pack, tracked.script_sha256
            )
        result = transport.run_script(host.ops.start_script([(t.id, t.task_dir) for t in batch]))
        started = host.ops.parse_start(result.stdout)
        for tracked in batch:
            outcome = started.get(tracked.id)
            assert tracked.attempt_id is not None
            if outcome is None or outcome.job_id is None:
                error = outcome.error if outcome else (result.stderr.strip() or "no answer")
                self._finish(host, tracked, "failed", f"submission failed: {error}", {})
                continue
            tracked.job_id = outcome.job_id
            tracked.state = "submitted"
            self.store.update_attempt(tracked.attempt_id, job_id=outcome.job_id)
            self.store.set_task_state(tracked.id, "submitted")
            self.store.event(tracked.id, "submitted", f"job {outcome.job_id} on {host.name}")
            host.active[tracked.id] = tracked

    def _poll(self, host: HostRun, now: float) -> None:
        transport = self._transport(host)
        tasks = [(t.id, t.task_dir, t.job_id) for t in host.active.values()]
        result = transport.run_script(host.ops.poll_script(tasks))
        poll = host.ops.parse_poll(result.stdout)
        if not result.ok or poll.scheduler_error is not None:
            host.poll_failures += 1
            detail = poll.scheduler_error or result.stderr.strip()
            if host.poll_failures >= POLL_FAILURES_TOLERATED:
                raise HostError(f"{host.poll_failures} polls in a row failed: {detail}")
            return
        host.poll_failures = 0
        finished: list[tuple[Tracked, str, str, dict[str, Any]]] = []
        for tracked in list(host.active.values()):
            report = poll.tasks.get(tracked.id)
            status = report.status if report else None
            scheduler = None
            if poll.scheduler is not None and tracked.job_id:
                scheduler = find_status(poll.scheduler, tracked.job_id)
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
            if verdict.final:
                state, reason = overran_walltime(
                    verdict.state, verdict.reason, status, tracked.walltime
                )
                finished.append((tracked, state, reason, status or {}))
            elif verdict.state and verdict.state != tracked.state:
                tracked.state = verdict.state
                self.store.set_task_state(tracked.id, verdict.state, verdict.reason)
                if tracked.attempt_id is not None:
                    self.store.update_attempt(
                        tracked.attempt_id, state=verdict.state, last_seen=now
                    )
        if finished:
            self._retrieve(host, finished)

    def _retrieve(
        self, host: HostRun, finished: list[tuple[Tracked, str, str, dict[str, Any]]]
    ) -> None:
        transfers: list[Transfer] = []
        for tracked, state, _, _ in finished:
            local = self.local_dir(tracked.id)
            transfers += [Transfer(local / n, f"{tracked.task_dir}/{n}") for n in LOG_FILES]
            if state == "completed":
                transfers += tracked.outputs
        missing = {m.remote for m in self._transport(host).get(transfers)}
        for tracked, state, reason, status in finished:
            if state == "completed":
                lost = [o.remote for o in tracked.outputs if o.remote in missing]
                if lost:
                    state, reason = (
                        "failed",
                        "declared output not found on the host: " + ", ".join(lost),
                    )
            self._finish(host, tracked, state, reason, status)

    def _finish(
        self, host: HostRun, tracked: Tracked, state: str, reason: str, status: dict[str, Any]
    ) -> None:
        tracked.state, tracked.reason = state, reason
        host.active.pop(tracked.id, None)
        self.store.set_task_state(tracked.id, state, reason)
        if tracked.attempt_id is not None:
            exit_code = status.get("exit_code")
            self.store.update_attempt(
                tracked.attempt_id,
                state=state,
                reason=reason,
                exit_code=exit_code if isinstance(exit_code, int) else None,
                exec_host=status.get("hostname"),
                started=status.get("start") or None,
                ended=status.get("end") or None,
                last_seen=time.time(),
            )
        self.store.event(tracked.id, state, reason or state)


def overran_walltime(
    state: str, reason: str, status: dict[str, Any] | None, walltime: int | None
) -> tuple[str, str]:
    """A kill at the walltime is the scheduler's timeout, even when the queue has forgotten
    the job (or, as Torque's qstat, never says why it ended)."""
    if state != "killed" or not walltime or not status:
        return state, reason
    try:
        start = datetime.fromisoformat(str(status["start"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(status["end"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return state, reason
    if (end - start).total_seconds() >= walltime - 1:
        return (
            "failed",
            f"walltime exceeded: killed after {format_clock(walltime)} by the scheduler",
        )
    return state, reason


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def records_for(store: Store, references: Iterable[str]) -> list[TaskRecord]:
    from submitter.errors import UsageError

    found: list[TaskRecord] = []
    for reference in references:
        matches = store.resolve(reference)
        if not matches:
            raise UsageError(f"no task named or with an id starting with '{reference}'")
        found.append(matches[0])
    return found


__all__ = ["FINAL_STATES", "ApplyReport", "Engine", "records_for"]
