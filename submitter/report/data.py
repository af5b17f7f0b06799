"""What a report shows, read from a project's state store: tasks, their attempts, failures'
log tails and who runs after whom. Reads the store only (the command refreshes running tasks
first)."""

from __future__ import annotations

import calendar
import functools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from submitter import task_layout as files
from submitter import task_logs
from submitter.states import FAILED
from submitter.store.db import AttemptRecord, Store, TaskRecord
from submitter.task_records import retry_policy

TAIL_LINES = 20


@dataclass(frozen=True)
class Attempt:
    """One attempt's spans, in epoch seconds: queued from `submitted` to `started`, running
    from `started` to `ended`. A time the host never reported is None."""

    number: int
    state: str
    reason: str
    cause: str
    exit_code: int | None
    exec_host: str | None
    submitted: float
    started: float | None
    ended: float | None

    @property
    def queue_wait(self) -> float | None:
        return None if self.started is None else max(0.0, self.started - self.submitted)

    @property
    def run_time(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, self.ended - self.started)


@dataclass(frozen=True)
class Task:
    id: str
    name: str
    host: str
    state: str
    reason: str
    upstream: tuple[str, ...]
    max_attempts: int
    attempts: tuple[Attempt, ...]

    @property
    def latest(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def run_time(self) -> float | None:
        """The latest attempt's run time that is known."""
        times = [a.run_time for a in self.attempts if a.run_time is not None]
        return times[-1] if times else None


@dataclass(frozen=True)
class Failure:
    task: Task
    stdout_tail: str
    stderr_tail: str


@dataclass
class ReportData:
    project: Path
    generated: float
    tasks: list[Task]
    failures: list[Failure]
    failures_total: int
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def hosts(self) -> dict[str, list[Task]]:
        by_host: dict[str, list[Task]] = {}
        for task in self.tasks:
            by_host.setdefault(task.host, []).append(task)
        return by_host


_WRAPPER_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z")


@functools.lru_cache(maxsize=65536)
def parse_time(text: str | None) -> float | None:
    """An attempt's start or end as the wrapper writes it (`2026-11-26T23:19:57.204Z`, UTC,
    milliseconds with bash 5, whole seconds before), in epoch seconds; None when absent or
    unreadable."""
    if not text:
        return None
    match = _WRAPPER_TIME.fullmatch(text)
    if match:  # strptime costs ten times more, and a report reads 20,000 of them
        *whole, fraction = match.groups()
        year, month, day, hour, minute, second = map(int, whole)
        seconds = calendar.timegm((year, month, day, hour, minute, second))
        return seconds + (float(fraction) if fraction else 0.0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def tail(text: str | None, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of a log's text (of its last 64 KB as kept, see task_logs)."""
    return "\n".join((text or "").splitlines()[-lines:])


def gather(store: Store, max_failures: int = 50, *, include_retired: bool = False) -> ReportData:
    """Everything the report shows, in two queries and a read of each shown failure's logs."""
    records = store.tasks(include_retired=include_retired)
    by_task: dict[str, list[AttemptRecord]] = {}
    for attempt in store.all_attempts():
        by_task.setdefault(attempt.task_id, []).append(attempt)
    tasks = [_task(record, by_task.get(record.id, [])) for record in records]
    failed = [t for t in tasks if t.state in FAILED]
    failures = []
    for t in failed[:max_failures]:
        logs = task_logs.read(store.state_dir, t.id, tail=True)
        failures.append(Failure(t, tail(logs.get(files.STDOUT)), tail(logs.get(files.STDERR))))
    counts = Counter(t.state for t in tasks)
    return ReportData(store.project_dir, time.time(), tasks, failures, len(failed), counts)


def _task(record: TaskRecord, attempts: list[AttemptRecord]) -> Task:
    return Task(
        id=record.id,
        name=record.name,
        host=record.host,
        state=record.state,
        reason=record.reason,
        upstream=tuple(record.spec.get("upstream") or ()),
        max_attempts=retry_policy(record).attempts,
        attempts=tuple(_attempt(a) for a in attempts),
    )


def _attempt(record: AttemptRecord) -> Attempt:
    return Attempt(
        number=record.number,
        state=record.state,
        reason=record.reason,
        cause=record.cause,
        exit_code=record.exit_code,
        exec_host=record.exec_host,
        submitted=record.submitted,
        started=parse_time(record.started),
        ended=parse_time(record.ended),
    )


_GROUP_SEPARATOR = re.compile(r"[-_.:/\[ ]")


def group_of(name: str) -> str:
    """The group a task name belongs to in aggregated views: what comes before its first
    separator, with `*` (`align-a` and `align-b` are `align-*`); a name without one is its own."""
    head = _GROUP_SEPARATOR.split(name, maxsplit=1)
    return f"{head[0]}-*" if len(head) > 1 and head[0] else name
