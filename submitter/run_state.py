"""What the engine keeps track of in a run: each task, each host's share, the outcome."""

from __future__ import annotations

import os
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from submitter.config.models import HostConfig
from submitter.hostops import Running
from submitter.paths import OutputPattern, Transfer
from submitter.poll_timing import Queries
from submitter.prepare import PreparedTask
from submitter.retry import RetryPolicy
from submitter.schedulers.base import SiteLimits
from submitter.schedulers.registry import batch_scheduler
from submitter.states import FAILED, Cause, TaskState

PROCESS_POLL = {"local": 0.5, "ssh": 5.0}
BATCH_MAX_RUNNING = 100_000  # tasks at once on a batch host unless max_running or -J says
RECONNECT_FOR = 600.0  # default of the host key reconnect_for
FIRST_POLL_REMOTE = 0.25


def default_max_running(config: HostConfig) -> int:
    if config.max_running:
        return config.max_running
    if config.kind == "local":
        return os.cpu_count() or 2
    if config.kind == "ssh":
        return 8
    # On a batch host what is limited by default is jobs in the queue (max_queued), not tasks.
    return BATCH_MAX_RUNNING


def default_poll_interval(config: HostConfig) -> float:
    if config.poll_interval:
        return float(config.poll_interval)
    if config.kind in PROCESS_POLL:
        return PROCESS_POLL[config.kind]
    return batch_scheduler(config.kind).default_poll_interval


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
    token: str = ""  # the attempt's name on the host
    job_id: str | None = None
    walltime: int | None = None
    began: float | None = None  # when its attempt began, as its status file says (poll_timing)
    pack: str = ""  # what a new attempt records: the pack and the hash of what it rendered
    script_sha256: str = ""
    waiting_since: float | None = None
    prepared: PreparedTask | None = None  # set while it can be (re)started in this run
    waiting_for: set[str] = field(default_factory=set)  # upstream tasks yet to complete
    upstream: tuple[str, ...] = ()  # names of the tasks it runs after
    after_jobs: tuple[str, ...] = ()  # jobs the scheduler waits for before starting it
    after_tasks: tuple[tuple[str, str], ...] = ()  # those jobs' tasks: name, task directory
    patterns: list[OutputPattern] = field(default_factory=list)  # outputs given as globs
    number: int = 1  # of its current (or next) attempt: 2 for its first retry
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # The user's kill was sent: an end the wrapper never recorded (killed before it could
    # trap the signal) is that kill, whatever the queue calls it.
    cancelled: bool = False
    # Pools in a row whose jobs all ended having taken none of their members, this among them.
    idle_pools: int = 0
    # The attempt (its token) whose claim file a poll removed: its start is recorded here.
    claim_removed: str = ""

    def ready(self, task: PreparedTask) -> None:
        """Make the task ready to start in this run as `task` renders it. Its files are
        written when a start step takes it, not all before the first start."""
        self.pack, self.script_sha256 = task.submission
        self.prepared = task

    @property
    def claim_to_remove(self) -> bool:
        """Its start is recorded, its claim file on the host not yet removed by this client."""
        return self.job_id is not None and self.claim_removed != self.token

    def as_running(self) -> Running:
        """What the host's step scripts know of it."""
        return Running(self.id, self.task_dir, self.token, self.job_id, self.after_jobs)


@dataclass(frozen=True, eq=False)
class Ending:
    """How a task's attempt ended, as a poll judged it: its state, the human reason, its
    status file and the structured cause."""

    tracked: Tracked
    state: str
    reason: str
    status: dict[str, Any] = field(default_factory=dict)
    cause: Cause = Cause.NONE


@dataclass
class HostRun:
    """One host's share of the work in this run: its queue, what runs, when to look again,
    whether it answers. Its session (session.HostSession) is the only one to change it."""

    pending: deque[Tracked] = field(default_factory=deque)
    active: dict[str, Tracked] = field(default_factory=dict)
    max_running: int = 1
    poll_interval: float = 1.0
    next_poll: float = 0.0
    polled_at: float = 0.0
    poll_delay: float = FIRST_POLL_REMOTE  # grows to poll_interval while nothing changes
    queries: Queries = field(default_factory=Queries)  # its scheduler's: when last asked
    error: str | None = None  # given up on: reported once, with the outcome
    unreachable_since: float | None = None  # wall clock of the first failure in a row
    trouble: str = "unreachable"  # or: its scheduler is not answering
    failures: int = 0
    retry_at: float = 0.0
    start_after: float = 0.0  # after a transient submission error: pause the starts
    submit_retries: dict[str, int] = field(default_factory=dict)
    limits: SiteLimits | None = None  # read from the scheduler at the first start step
    free_cores: int | None = None  # what the scheduler last said is free (pools' size)
    pools_taken: set[str] = field(default_factory=set)  # pools a job took a member of
    spare_jobs: set[str] = field(default_factory=set)  # pool jobs cancelled: nothing to take
    over_marks: set[str] = field(default_factory=set)  # pool jobs over, to mark (pool_over)
    retrying: list[tuple[float, Tracked]] = field(default_factory=list)  # (when, task)
    # queued tasks whose jobs cannot start, by reason, as the last poll saw them
    stuck: Counter[str] = field(default_factory=Counter)

    @property
    def busy(self) -> bool:
        """Anything left to start, watch or retry, on a host not given up on."""
        return not self.error and bool(self.active or self.pending or self.retrying)


@dataclass
class ApplyReport:
    tasks: list[Tracked]
    skipped: list[Tracked]
    host_errors: dict[str, str]
    detached: bool = False
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[Tracked]:
        return [t for t in self.tasks if t.state in FAILED]

    @property
    def blocked(self) -> list[Tracked]:
        return [t for t in self.tasks if t.state == TaskState.BLOCKED]
