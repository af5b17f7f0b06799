"""What every scheduler module provides: argv builders, output parsers, a state table, and
every other fact of its scheduler (job id and array syntax, its wording for transient errors
and for jobs gone, the variables a job sees).

Scheduler modules do no I/O. The engine runs the argv they build through a transport and
hands the output back to their parsers. The parsers are tested on the output in
tests/fixtures/schedulers: captured from the project's docker clusters for SLURM, PBS (OpenPBS,
and SLURM's Torque wrapper) and Grid Engine, while LSF's are tested on LSF's documentation and
on a test shim over SLURM only, never on a real LSF (lsf.py says why).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class JobState(enum.Enum):
    """The scheduler's view of a job, reduced to what the engine acts on."""

    QUEUED = "queued"
    HELD = "held"
    RUNNING = "running"
    DONE = "done"  # left the scheduler without an error of the scheduler's own
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.HELD, JobState.RUNNING, JobState.UNKNOWN)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    code: str  # the scheduler's own state code, shown to the user as the reason
    exit_code: int | None = None
    # A queued job's pending reason that waiting will not clear, with what it means
    # (`PartitionConfig (the job asks more than the partition allows)`); empty otherwise.
    cannot_start: str = ""


# A scheduler's pending reasons that waiting will not clear: the pattern of the reason as
# the scheduler prints it, and what it means to the user. Each scheduler keeps its own table.
NeverStarts = tuple[tuple[re.Pattern[str], str], ...]


def cannot_start(table: NeverStarts, reason: str) -> str:
    """`reason (meaning)` when `reason` starts with one of `table`'s patterns, else empty."""
    reason = " ".join(reason.split())
    for pattern, meaning in table:
        if pattern.match(reason):
            return f"{reason} ({meaning})"
    return ""


def lookup_state(table: Mapping[str, JobState], code: str, scheduler: str) -> JobState:
    """Map a state code through `table`; an unknown code is logged, never a crash."""
    state = table.get(code.strip().upper())
    if state is None:
        log.warning("%s: unknown job state code %r, treated as unknown", scheduler, code)
        return JobState.UNKNOWN
    return state


# A task packed with others into one scheduler job is known as `<job id>/<index>`: the job,
# and its place in the job's members file. This is submitter's own notation, the same
# whatever the scheduler: no scheduler prints a `/` in a job id.
PACKED = re.compile(r"^(.+)/(\d+)$")


def scheduler_job(job_id: str) -> str:
    """The id the scheduler knows: the packed job of a packed task, else `job_id` itself."""
    packed = PACKED.match(job_id)
    return packed.group(1) if packed else job_id


def is_packed(job_id: str | None) -> bool:
    """A task sharing its job with others: packed, or in a pool."""
    return bool(job_id and PACKED.match(job_id))


# A task of a pool (alike short tasks that several jobs take, one at a time, as they run) is
# known as `pool:<jobs>/<index>`: the pool's jobs, comma-separated (a run of numeric ids as
# `first..last`), and its place in the pool's members file. Which job runs it is decided on
# the host, when one claims it; its status file then names that job.
POOL = "pool:"


def pool_id(jobs: Sequence[str], index: int) -> str:
    """The job id of member `index` of the pool run by `jobs`."""
    parts: list[str] = []
    run: list[int] = []
    for job in [*jobs, ""]:
        if job.isdigit() and (not run or int(job) == run[-1] + 1):
            run.append(int(job))
            continue
        if run:
            parts.append(f"{run[0]}..{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [int(job)] if job.isdigit() else []
        if job and not job.isdigit():
            parts.append(job)
    return f"{POOL}{','.join(parts)}/{index}"


def pool_jobs(job_id: str | None) -> list[str] | None:
    """The jobs of a pool member's pool; None for any other job id."""
    if not job_id or not job_id.startswith(POOL):
        return None
    listed = job_id[len(POOL) :].rpartition("/")[0]
    jobs: list[str] = []
    for part in listed.split(","):
        first, dots, last = part.partition("..")
        if dots and first.isdigit() and last.isdigit():
            jobs += [str(n) for n in range(int(first), int(last) + 1)]
        elif part:
            jobs.append(part)
    return jobs


def is_pool(job_id: str | None) -> bool:
    return bool(job_id and job_id.startswith(POOL))


def pool_of(job_id: str) -> str:
    """What names a pool member's pool: its job id without the member's index."""
    return job_id.rpartition("/")[0]


def scheduler_jobs(job_id: str) -> list[str]:
    """The ids the scheduler knows for a task's job: a pool's jobs, a packed task's job, or
    `job_id` itself."""
    pool = pool_jobs(job_id)
    return pool if pool is not None else [scheduler_job(job_id)]


def range_indices(expression: str) -> set[int]:
    """The member indices a range expression names (`3-10%2`, `1,4-6`, `2-9:2`, `7`): the
    grammar SLURM, PBS, LSF and Grid Engine share for a pending range of array members."""
    members: set[int] = set()
    for part in expression.split("%", 1)[0].split(","):
        bounds, _, step = part.partition(":")
        first, _, last = bounds.partition("-")
        try:
            low, high = int(first), int(last or first)
            members.update(range(low, high + 1, int(step or 1)))
        except ValueError:
            continue
    return members


@dataclass(frozen=True)
class SiteLimits:
    """What a site's scheduler says of its limits; None where it does not say."""

    max_array_size: int | None = None  # most members of one job array
    max_jobs: int | None = None  # most jobs one user may have in the queue
    node_cores: int | None = None  # cores of the smallest compute node (packed jobs' width)
    max_walltime: int | None = None  # seconds: the default partition's or queue's time limit
    max_mem: int | None = None  # bytes: the memory of the smallest compute node
    flavor: str | None = None  # which variant answers, for schedulers that have several (PBS)
    max_node_cores: int | None = None  # cores of the largest compute node (no job gets more)


def smallest(values: Sequence[int]) -> int | None:
    """The smallest positive value, None when there is none (0 and -1 mean "no limit")."""
    positive = [v for v in values if v > 0]
    return min(positive) if positive else None


def largest(values: Sequence[int | None]) -> int | None:
    """The largest value, None when there is none or one is unknown (None): a node whose
    size is not known may be the largest."""
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


NEVER = re.compile(r"(?!)")  # a pattern that matches nothing


class SchedulerDefaults:
    """What a scheduler module need not say when the default is true of its scheduler: no
    wording for a transient failure or for jobs gone, no job arrays, no way to read site
    limits, no accounting record of finished jobs, job ids that are their own keys and no
    array member syntax. Each scheduler subclasses it and sets what differs."""

    # A submission the scheduler refused only because it was briefly busy or unreachable.
    transient_errors: re.Pattern[str] = NEVER
    # A status query that failed only because every job it was asked about has left.
    gone_errors: re.Pattern[str] = NEVER
    # An array member's id (groups: the array's number, the member's index) and a line of
    # pending members (groups: the array's number, a range_indices expression).
    member_id: re.Pattern[str] = NEVER
    pending_range: re.Pattern[str] = NEVER
    max_array_size: int = 0  # 0: no job arrays through submitter (yet)
    first_array_index: int = 0  # the index the scheduler gives an array's first member
    # Whether each member of a job array counts as one job against the user's limit on
    # queued jobs (SLURM's MaxSubmitJobs does); False: an array counts once.
    array_members_queued: bool = False
    # The scheduler's variant where it has several (PBS: pro or torque); None: one, or not
    # known yet (the engine sets what the site's limits say).
    flavor: str | None = None
    # A shell command printing what the site says of its limits (run once per apply and
    # host; its failure is not an error); empty: the scheduler has no such command.
    limits_command: str = ""
    # A shell command printing only what parse_limits reads the flavour from (check-host).
    flavor_command: str = ""
    # A shell command printing what parse_free reads the cores free now from (each poll,
    # to size pools); empty: not known, pools are sized as packed jobs are.
    free_command: str = ""
    # The status command's exit codes that say the scheduler answered (some exit non-zero
    # when an asked job has left); after another, a poll does not ask what is free: an
    # absent controller makes each command wait seconds before it fails.
    answered_codes: tuple[int, ...] = (0,)

    # check-host: a shell test that the scheduler's accounting answers (its stdout is dropped,
    # its stderr says why not), and what answers when it does; empty: the scheduler has no
    # accounting worth asking
    accounting_probe: str = ""
    accounting: str = ""

    # Inside a job: the environment variables holding its job id and, in a job array, the
    # member's index, the first one set wins (templates read them as `scheduler.job_id` and
    # `scheduler.array_index`, see template_facts).
    job_id_variables: tuple[str, ...] = ()
    array_index_variables: tuple[str, ...] = ()

    def parse_limits(self, output: str) -> SiteLimits:
        return SiteLimits()

    def parse_free(self, output: str) -> int | None:
        return None

    def finished_argv(self) -> list[str]:
        return []

    def parse_finished(self, output: str) -> dict[str, JobStatus]:
        return {}

    def is_transient(self, output: str) -> bool:
        return bool(self.transient_errors.search(output))

    def jobs_gone(self, output: str) -> bool:
        return bool(self.gone_errors.search(output))

    def array_member(self, job_id: str, index: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} has no job arrays")

    def job_key(self, job_id: str) -> str:
        return job_id.strip()

    def member_of(self, job_id: str) -> tuple[str, int] | None:
        member = self.member_id.match(job_id.strip())
        return (member.group(1), int(member.group(2))) if member else None

    def pending_members(self, printed: str) -> tuple[str, set[int]] | None:
        held = self.pending_range.match(printed.strip())
        return (held.group(1), range_indices(held.group(2))) if held else None

    def submission_of(self, job_id: str) -> str:
        """What was submitted to run `job_id`: a packed task's job, an array member's array
        (as `<array number>[]`, a key that no other job prints)."""
        job_id = scheduler_job(job_id)
        member = self.member_of(job_id)
        return f"{member[0]}[]" if member else job_id

    def queued_job_of(self, job_id: str) -> str:
        """What `job_id` takes one place of in the user's queue limit: a packed task's job; an
        array member itself where members count apart (array_members_queued), else its array."""
        job = scheduler_job(job_id)
        return job if self.array_members_queued and self.member_of(job) else self.submission_of(job)

    def find_status(self, statuses: Mapping[str, JobStatus], job_id: str) -> JobStatus | None:
        """The status of a packed task's job, else `statuses[job_id]`, or the status of the
        same job printed otherwise (job_key), or, for an array member, of a pending range that
        holds it: a queued member is never taken for a lost one."""
        job_id = scheduler_job(job_id)
        if job_id in statuses:
            return statuses[job_id]
        key = self.job_key(job_id)
        same = next((s for printed, s in statuses.items() if self.job_key(printed) == key), None)
        if same is not None:
            return same
        member = self.member_of(job_id)
        if member is None:
            return None
        for printed, status in statuses.items():
            held = self.pending_members(printed)
            if held is not None and held[0] == member[0] and member[1] in held[1]:
                return status
        return None


def shell_first(variables: Sequence[str]) -> str:
    """A shell expansion giving the first of `variables` that is set and not empty, else
    nothing: `${A:-${B:-}}`; empty for no variables."""
    expansion = ""
    for name in reversed(variables):
        expansion = f"${{{name}:-{expansion}}}"
    return expansion


def template_facts(scheduler: BatchScheduler | None) -> dict[str, str]:
    """What the templates know of the host's scheduler, as `scheduler.*`: its name and the
    shell expansions of its job id and array index (empty on a host without one)."""
    if scheduler is None:
        return {"name": "", "job_id": "", "array_index": ""}
    return {
        "name": scheduler.name,
        "job_id": shell_first(scheduler.job_id_variables),
        "array_index": shell_first(scheduler.array_index_variables),
    }


class BatchScheduler(Protocol):
    """A batch scheduler reached by command line tools (SLURM, PBS, LSF, Grid Engine): what
    the engine, the step scripts and the templates know of it, all of it here."""

    name: str
    default_pack: str  # the pack a host of this scheduler renders with unless it names one
    # the longest wait between polls, and between status queries, unless the host sets
    # poll_interval (polls come sooner after starts, ends and as a walltime runs out)
    default_poll_interval: float
    default_max_queued: int  # jobs in the queue at once unless the host sets max_queued
    commands: tuple[str, ...]  # the commands check-host expects on the host
    probe: str  # a shell test check-host runs to see that the scheduler answers
    job_id_variables: tuple[str, ...]  # inside a job: its id, the first one set
    array_index_variables: tuple[str, ...]  # inside an array member: its index, likewise
    first_array_index: int  # the index the scheduler gives an array's first member

    max_array_size: int  # the most members of one job array; 0 when arrays are not used
    array_members_queued: bool  # each array member counts against the queue limit
    flavor: str | None  # the variant (PBS: pro | torque); None: one, or not known yet

    limits_command: str  # prints the site's limits for parse_limits; empty: none
    flavor_command: str  # prints what parse_limits reads the flavour from; empty: none

    def parse_limits(self, output: str) -> SiteLimits:
        """The limits `limits_command` printed (tolerant: what it cannot read is None)."""

    free_command: str  # prints what parse_free reads the free cores from; empty: none
    answered_codes: tuple[int, ...]  # the status command's exit codes when it answered

    def parse_free(self, output: str) -> int | None:
        """The cores free now, from what `free_command` printed; None when not known."""

    accounting_probe: str  # check-host: a shell test that accounting answers; empty: none
    accounting: str  # check-host: what answers when accounting_probe succeeds

    def finished_argv(self) -> list[str]:
        """The command printing the accounting record of jobs the status command no longer
        lists; the poll appends their ids, comma-separated, as its last argument. Empty: the
        scheduler has none, and a job gone from the queue is judged by its status file."""

    def parse_finished(self, output: str) -> dict[str, JobStatus]:
        """Job id -> status for every job `finished_argv` printed a record of."""

    def is_transient(self, output: str) -> bool:
        """Whether a failed submission says the scheduler was briefly unavailable, so the same
        submission is worth retrying after a pause."""

    def array_member(self, job_id: str, index: int) -> str:
        """The id of member `index` of the job array `job_id`, as the status command prints it."""

    def job_key(self, job_id: str) -> str:
        """What two printings of one job id have in common (PBS: the part before the server
        name); ids with the same key name the same job."""

    def member_of(self, job_id: str) -> tuple[str, int] | None:
        """An array member's array number and index as the scheduler numbers them (`123_4`,
        `123[4].server`, `123.4` -> ("123", 4)); None for any other id."""

    def pending_members(self, printed: str) -> tuple[str, set[int]] | None:
        """The array number and member indices of a pending range printed as one status line
        (`123_[3-10%2]`, `123[2-9].server`, `123.3-6:1,8-10:1`); None for any other line."""

    def submission_of(self, job_id: str) -> str:
        """What was submitted to run `job_id`: a packed task's job, an array member's array."""

    def queued_job_of(self, job_id: str) -> str:
        """What `job_id` takes one place of in the user's queue limit (max_queued)."""

    def find_status(self, statuses: Mapping[str, JobStatus], job_id: str) -> JobStatus | None:
        """The status the poll printed for `job_id` (a packed task's job, the same job under
        another server name, a pending range holding the member), None when not listed."""

    def jobs_gone(self, output: str) -> bool:
        """Whether a failed status query says only that the jobs it asked about have left the
        scheduler (so it answered: none of them is queued)."""

    def submit_argv(self, script_path: str, after: Sequence[str] = ()) -> list[str]:
        """The command that submits the job script at `script_path` (run in its directory);
        with `after`, the job starts only once all those jobs (or array members, or packed
        tasks' jobs) completed successfully, and leaves the queue if one of them fails."""

    def submit_uses_stdin(self) -> bool:
        """True when the script goes on standard input (LSF's `bsub < job.sh`)."""

    def parse_job_id(self, output: str) -> str:
        """The job id from the submit command's standard output; ValueError if absent."""

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        """One command asking about all of `job_ids` at once."""

    def parse_status(self, output: str) -> dict[str, JobStatus]:
        """Job id -> status for every job the output mentions (missing ids are simply absent)."""

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        """One command cancelling all of `job_ids`."""
