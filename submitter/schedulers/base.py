"""What every scheduler module provides: argv builders, output parsers and a state table.

Scheduler modules do no I/O. The engine runs the argv they build through a transport and
hands the output back to their parsers, so every parser is tested on captured real output.
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


def job_key(job_id: str) -> str:
    """The part of a job id before the first dot: `123.server` -> `123` (PBS prints server
    suffixes inconsistently; SLURM and LSF ids have no dot, so they are their own key). A
    Grid Engine array task, `123.4`, is its own key: the 4 is the task, not a server."""
    job_id = job_id.strip()
    if _GRID_ENGINE_TASK.match(job_id):
        return job_id
    return job_id.split(".", 1)[0]


_GRID_ENGINE_TASK = re.compile(r"^\d+\.\d+$")


# A task packed with others into one scheduler job is known as `<job id>/<index>`: the job,
# and its place in the job's members file.
PACKED = re.compile(r"^(.+)/(\d+)$")


def scheduler_job(job_id: str) -> str:
    """The id the scheduler knows: the packed job of a packed task, else `job_id` itself."""
    packed = PACKED.match(job_id)
    return packed.group(1) if packed else job_id


def submission_of(job_id: str) -> str:
    """What was submitted to run `job_id`: a packed task's job, an array member's array."""
    job_id = scheduler_job(job_id)
    member = _ARRAY_MEMBER.match(job_id.strip())
    return f"{member.group(1)}[]" if member else job_id


def is_packed(job_id: str | None) -> bool:
    return bool(job_id and PACKED.match(job_id))


def find_status(statuses: Mapping[str, JobStatus], job_id: str) -> JobStatus | None:
    """The status of a packed task's job, else `statuses[job_id]`, or the status of the same job printed under another server name,
    or, for an array member (`123_4`, `123[4]`), of a pending range that holds it
    (`123_[2-9%2]`, `123[2-9]`): a queued member is never taken for a lost one."""
    job_id = scheduler_job(job_id)
    if job_id in statuses:
        return statuses[job_id]
    key = job_key(job_id)
    same = next((s for printed, s in statuses.items() if job_key(printed) == key), None)
    if same is not None:
        return same
    member = _ARRAY_MEMBER.match(job_id.strip())
    if member is None:
        return None
    array, index = member.group(1), int(member.group(2) or member.group(3) or member.group(4))
    for printed, status in statuses.items():
        held = _ARRAY_RANGE.match(printed.strip())
        expression = held and (held.group(2) or held.group(3) or held.group(4))
        if held and expression and held.group(1) == array and index in _indices(expression):
            return status
    return None


# An array member as SLURM (`123_4`), PBS (`123[4].server`), LSF (`123[4]`) and Grid Engine
# (`123.4`) print it.
_ARRAY_MEMBER = re.compile(r"^(\d+)(?:_(\d+)(?:\..*)?|\[(\d+)\](?:\..*)?|\.(\d+))$")
# A range of members printed as one line: `123_[3-10%2]`, `123_[1,4-6]`, `123[2-9:2].server`,
# Grid Engine's `123.3-6:1,8-10:1`.
_ARRAY_RANGE = re.compile(r"^(\d+)(?:_\[([^\]]+)\](?:\..*)?|\[([^\]]+)\](?:\..*)?|\.(\d[\d,:-]*))$")


def _indices(expression: str) -> range | set[int]:
    """The member indices a range expression names (`3-10%2`, `1,4-6`, `2-9:2`, `7`)."""
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


class TransientErrors:
    """Recognises a submission the scheduler refused only because it was briefly busy or
    unreachable; each scheduler sets `transient_errors` to its own wording. Also the
    defaults of what a scheduler may not have: job arrays, a way to read site limits, an
    accounting record of finished jobs."""

    transient_errors: re.Pattern[str] = re.compile(r"(?!)")  # matches nothing
    max_array_size: int = 0  # 0: no job arrays through submitter (yet)
    # The scheduler's variant where it has several (PBS: pro or torque); None: one, or not
    # known yet (the engine sets what the site's limits say).
    flavor: str | None = None
    # A shell command printing what the site says of its limits (run once per apply and
    # host; its failure is not an error); empty: the scheduler has no such command.
    limits_command: str = ""
    # A shell command printing only what parse_limits reads the flavour from (check-host).
    flavor_command: str = ""

    # check-host: a shell test that the scheduler's accounting answers (its stdout is dropped,
    # its stderr says why not), and what answers when it does; empty: the scheduler has no
    # accounting worth asking
    accounting_probe: str = ""
    accounting: str = ""

    def parse_limits(self, output: str) -> SiteLimits:
        return SiteLimits()

    def finished_argv(self) -> list[str]:
        return []

    def parse_finished(self, output: str) -> dict[str, JobStatus]:
        return {}

    def is_transient(self, output: str) -> bool:
        return bool(self.transient_errors.search(output))

    def array_member(self, job_id: str, index: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} has no job arrays")


class BatchScheduler(Protocol):
    """A batch scheduler reached by command line tools (SLURM, PBS, LSF)."""

    name: str
    default_pack: str  # the pack a host of this scheduler renders with unless it names one
    default_poll_interval: float  # seconds between polls unless the host sets poll_interval
    default_max_running: int  # jobs at once unless the host sets max_running or -J is given
    job_id_variable: str  # the environment variable holding the job id inside the job
    commands: tuple[str, ...]  # the commands check-host expects on the host
    probe: str  # a shell test check-host runs to see that the scheduler answers

    max_array_size: int  # the most members of one job array; 0 when arrays are not used
    flavor: str | None  # the variant (PBS: pro | torque); None: one, or not known yet

    limits_command: str  # prints the site's limits for parse_limits; empty: none
    flavor_command: str  # prints what parse_limits reads the flavour from; empty: none

    def parse_limits(self, output: str) -> SiteLimits:
        """The limits `limits_command` printed (tolerant: what it cannot read is None)."""

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

    def submit_argv(self, script_path: str, after: Sequence[str] = ()) -> list[str]:
        """The command that submits the job script at `script_path` (run in its directory);
        with `after`, the job starts only once all those jobs (or array members, or packed
        tasks' jobs) completed successfully, and leaves the queue if one of them fails."""

    def submit_uses_stdin(self) -> bool:
        """True when the script goes on standard input (LSF's `bsub < job.sh`)."""

    def probe_directives(self, name: str, output: str) -> list[str]:
        """The header lines of check-host's one-job node probe: its name, and its standard
        output and error both to the file `output` (never mailed, never in a default place)."""

    def parse_job_id(self, output: str) -> str:
        """The job id from the submit command's standard output; ValueError if absent."""

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        """One command asking about all of `job_ids` at once."""

    def parse_status(self, output: str) -> dict[str, JobStatus]:
        """Job id -> status for every job the output mentions (missing ids are simply absent)."""

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        """One command cancelling all of `job_ids`."""
