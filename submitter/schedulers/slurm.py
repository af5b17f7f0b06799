"""SLURM: argv builders and parsers for sbatch, squeue, sacct and scancel. No I/O.

Job ids stay strings: array tasks print as `123_4` and pending array ranges as `123_[5-10%2]`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from submitter.schedulers.base import (
    JobState,
    JobStatus,
    NeverStarts,
    SchedulerDefaults,
    SiteLimits,
    cannot_start,
    largest,
    lookup_state,
    scheduler_job,
    smallest,
)

# (short code, long name, state): squeue `%t` prints the short code, sacct and `%T` the long one.
_CODES: tuple[tuple[str, str, JobState], ...] = (
    ("PD", "PENDING", JobState.QUEUED),  # waiting for resources or priority
    ("CF", "CONFIGURING", JobState.QUEUED),  # allocated, nodes still booting or being set up
    ("R", "RUNNING", JobState.RUNNING),  # running
    ("CG", "COMPLETING", JobState.RUNNING),  # ending: some processes or the epilog still run
    ("S", "SUSPENDED", JobState.HELD),  # suspended by an admin or by gang scheduling
    ("ST", "STOPPED", JobState.HELD),  # sent SIGSTOP; keeps its allocation
    ("RQ", "REQUEUED", JobState.QUEUED),  # being put back in the queue; will pend again
    ("RS", "RESIZING", JobState.RUNNING),  # running job changing its allocation size
    ("RH", "REQUEUE_HOLD", JobState.HELD),  # requeued and held until released
    ("RD", "RESV_DEL_HOLD", JobState.HELD),  # held because its reservation was deleted
    ("RF", "REQUEUE_FED", JobState.QUEUED),  # requeued by a federation sibling
    ("SI", "SIGNALING", JobState.RUNNING),  # being sent a signal
    ("SO", "STAGE_OUT", JobState.RUNNING),  # staging files out after the run
    ("RV", "REVOKED", JobState.UNKNOWN),  # federation sibling copy removed; runs elsewhere
    ("SE", "SPECIAL_EXIT", JobState.HELD),  # requeued in a held special state after an exit
    ("CD", "COMPLETED", JobState.DONE),  # every process ended with exit code 0
    ("CA", "CANCELLED", JobState.CANCELLED),  # scancel by the user or an admin
    ("F", "FAILED", JobState.FAILED),  # non-zero exit code or other failure
    ("NF", "NODE_FAIL", JobState.NODE_FAIL),  # one of its nodes failed
    ("TO", "TIMEOUT", JobState.TIMEOUT),  # reached its time limit
    # exceeded its memory limit (enforced by task/cgroup; the docker test clusters cannot)
    ("OOM", "OUT_OF_MEMORY", JobState.OUT_OF_MEMORY),
    ("PR", "PREEMPTED", JobState.PREEMPTED),  # killed to make room for a higher-priority job
    ("BF", "BOOT_FAIL", JobState.NODE_FAIL),  # a node failed to boot: hardware, not the job
    ("DL", "DEADLINE", JobState.FAILED),  # could not finish before its --deadline
)

# squeue `%r` of a pending job that waiting will not start: what it asks is beyond what its
# partition, QOS or association allows one job, or names what does not exist. Reasons that
# clear as other jobs end (Resources, Priority, Dependency, AssocGrp*, QOSMax*PerUser...)
# are not here. From SLURM's "Job Reason Codes" (squeue(1), resource_limits.html).
NEVER_STARTS: NeverStarts = (
    (re.compile(r"PartitionConfig\b"), "the job asks more than the partition allows"),
    (re.compile(r"PartitionNodeLimit\b"), "the job asks more nodes than the partition has up"),
    (re.compile(r"PartitionTimeLimit\b"), "the walltime is over the partition's time limit"),
    (re.compile(r"ReqNodeNotAvail\b"), "a node the job needs is down, drained or reserved"),
    (re.compile(r"QOSMax\w*PerJob\w*"), "the job asks more than its QOS allows one job"),
    (re.compile(r"QOSMin\w*"), "the job asks less than its QOS requires"),
    (re.compile(r"AssocMax\w*PerJob\w*"), "the job asks more than its account allows one job"),
    (re.compile(r"BadConstraints\b"), "no node has the features the job asks for"),
    (re.compile(r"InvalidQOS\b"), "the job's QOS does not exist or is not allowed"),
    (re.compile(r"InvalidAccount\b"), "the job's account does not exist or is not allowed"),
)

# sacct prints the long name; statuses carry the short one, as squeue's, so that a reason
# reads the same whichever of the two last saw the job.
_SHORT_CODE: dict[str, str] = {long: short for short, long, _ in _CODES}

STATE_TABLE: dict[str, JobState] = {
    code: state for short, long, state in _CODES for code in (short, long)
}

# `123`, `123;cluster` (sbatch --parsable) or `Submitted batch job 123 [on cluster X]`.
_PARSABLE_ID = re.compile(r"^(\d+)(?:;\S+)?$")
_SUBMITTED_ID = re.compile(r"^Submitted batch job (\d+)(?: on cluster \S+)?$")
# A squeue line `ID CODE REASON`; an id starts with a digit (`123`, `123_4`, `123_[5-9]`,
# `123+0`); the reason may hold spaces (`ReqNodeNotAvail, UnavailableNodes:c1`) and is absent
# from `%i %t` output. Error lines (`slurm_load_jobs error: ...`) never match.
_SQUEUE_LINE = re.compile(r"^(\d\S*)\s+([A-Za-z_]+)(?:\s+(.*))?$")
# An array member (`123_4`) and a range of pending members printed as one line (`123_[3-10%2]`).
_MEMBER = re.compile(r"^(\d+)_(\d+)$")
_PENDING = re.compile(r"^(\d+)_\[([^\]]+)\]$")
# `MaxArraySize            = 1001` from `scontrol show config`
_CONFIG_LINE = re.compile(r"^(MaxArraySize|MaxJobCount)\s*=\s*(\d+)\s*$", re.IGNORECASE)


class Slurm(SchedulerDefaults):
    """SLURM through its command line tools."""

    name: str = "slurm"
    default_pack: str = "slurm"  # its newest version
    default_poll_interval: float = 30.0
    default_max_queued: int = 200
    job_id_variables: tuple[str, ...] = ("SLURM_JOB_ID",)
    array_index_variables: tuple[str, ...] = ("SLURM_ARRAY_TASK_ID",)
    commands: tuple[str, ...] = ("sbatch", "squeue", "scancel")  # check-host: present?
    probe: str = 'squeue -h -u "$(id -un)" >/dev/null'  # check-host: does it answer?
    # slurmctld busy, restarting or briefly unreachable, or the user's jobs already queued at
    # a submit limit of the association or QOS (AssocMaxSubmitJobLimit,
    # QOSMaxSubmitJobPerUserLimit, AssocGrpSubmitJobsLimit...): the same sbatch succeeds later
    transient_errors = re.compile(
        r"socket timed out|resource temporarily unavailable|unable to contact slurm controller"
        r"|temporarily unable to accept job|connection refused|slurm_persist_conn_open"
        r"|\b(?:Assoc|QOS)\w*SubmitJobs?\w*Limit\b",
        re.IGNORECASE,
    )
    # squeue on a single id slurmctld no longer knows (status_argv never asks about only one)
    gone_errors = re.compile(r"invalid job id specified", re.IGNORECASE)

    member_id = _MEMBER  # `123_4`
    pending_range = _PENDING  # `123_[3-10%2]`, `123_[1,4-6]`
    # SLURM's default MaxArraySize is 1001 (indices 0-1000)
    max_array_size: int = 1000
    # The CPUs of every partition as allocated/idle/other/total, a line each.
    free_command: str = "sinfo -h -o '%C' 2>/dev/null"
    # MaxSubmitJobs counts each member; `squeue -r` lists each
    array_members_queued: bool = True
    # Sections: scontrol's limits, then after NODES the CPUs of each kind of node (sinfo
    # `-e %c`: `--exact` lists each size, where without it `4+` is the smallest of several), then after ASSOC the user's MaxSubmitJobs when accounting answers, then
    # after PARTITIONS each partition's name (`*`: the default), time limit and node memory.
    limits_command: str = (
        "scontrol show config 2>/dev/null | grep -iE '^(MaxArraySize|MaxJobCount)'; "
        "printf 'NODES\\n'; sinfo -e -h -o '%c' 2>/dev/null; "
        "printf 'ASSOC\\n'; "
        'sacctmgr -nP show assoc user="$(id -un)" format=maxsubmitjobs 2>/dev/null; '
        "printf 'PARTITIONS\\n'; sinfo -h -o '%P %l %m' 2>/dev/null; true"
    )
    # sacct answers only where slurmdbd keeps accounting; else it says "Slurm accounting
    # storage is disabled" (or cannot reach the database) on stderr and exits 1.
    accounting_probe: str = "sacct -n -X -o JobID -S now"
    accounting: str = "slurmdbd (sacct works)"

    def parse_free(self, output: str) -> int | None:
        """The idle CPUs of `sinfo -h -o '%C'` (allocated/idle/other/total), summed over its
        lines; None when it printed none."""
        idle = [
            int(f[1])
            for f in (line.strip().split("/") for line in output.splitlines())
            if len(f) == 4 and f[1].isdigit()
        ]
        return sum(idle) if idle else None

    def parse_limits(self, output: str) -> SiteLimits:
        """max_array_size: MaxArraySize - 1, the highest index SLURM accepts (as the default
        1000 for SLURM's default 1001): one member fewer than the limit allows, never more;
        and no more than the user's MaxSubmitJobs, against which each member counts as a job
        (a larger array is refused outright).
        max_jobs: the smaller of MaxJobCount (all users' jobs) and the user's MaxSubmitJobs.
        max_walltime: the default partition's time limit (else the shortest one's); max_mem:
        the memory of the smallest node. node_cores: the CPUs of the smallest node;
        max_node_cores: of the largest (unknown where sinfo printed `N+`: at least N)."""
        section = ""
        config: dict[str, int] = {}
        cores: list[int] = []
        sizes: list[int | None] = []
        submit: list[int] = []
        partitions: list[str] = []
        for raw in output.splitlines():
            line = raw.strip()
            if line in ("NODES", "ASSOC", "PARTITIONS"):
                section = line
                continue
            if section == "PARTITIONS":
                partitions.append(line)
                continue
            if section == "":
                match = _CONFIG_LINE.match(line)
                if match:
                    config[match.group(1).lower()] = int(match.group(2))
            elif section == "NODES":
                digits = re.match(r"^(\d+)\+?$", line)
                if digits:
                    cores.append(int(digits.group(1)))
                    sizes.append(None if line.endswith("+") else int(digits.group(1)))
            elif line.isdigit():
                submit.append(int(line))
        array_size = config.get("maxarraysize")
        max_walltime, max_mem = _partition_limits(partitions)
        return SiteLimits(
            max_array_size=_array_size(array_size, submit),
            max_jobs=smallest([*submit, *[v for k, v in config.items() if k == "maxjobcount"]]),
            node_cores=smallest(cores),
            max_walltime=max_walltime,
            max_mem=max_mem,
            max_node_cores=largest(sizes),
        )

    def array_member(self, job_id: str, index: int) -> str:
        return f"{job_id}_{index}"

    def submit_argv(self, script_path: str, after: Sequence[str] = ()) -> list[str]:
        """With `after`, the job starts once those jobs have ended, however they ended: a
        packed job's members end apart, and each task's wrapper checks its own upstream
        tasks' status files. `--kill-on-invalid-dep`: a job whose dependency can never be
        met (an unknown job) is removed rather than pending for ever."""
        if not after:
            return ["sbatch", "--parsable", script_path]
        jobs = ":".join(dict.fromkeys(scheduler_job(job) for job in after))
        return [
            "sbatch",
            "--parsable",
            f"--dependency=afterany:{jobs}",
            "--kill-on-invalid-dep=yes",
            script_path,
        ]

    def submit_uses_stdin(self) -> bool:
        return False

    def parse_job_id(self, output: str) -> str:
        """The job id; warning lines are skipped and a `;cluster` suffix is dropped."""
        for raw in output.splitlines():
            line = raw.strip()
            match = _PARSABLE_ID.match(line) or _SUBMITTED_ID.match(line)
            if match:
                return match.group(1)
        raise ValueError(f"no SLURM job id in sbatch output: {output!r}")

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        """`squeue` for all `job_ids`, finished ones included while slurmctld remembers them.

        `-t all` makes squeue also report jobs that ended within MinJobAge (CD, F, TO, CA...),
        which it hides by default. `--jobs=` is one element because squeue's `-j` takes an
        optional argument (`-j 123` with a space is not reliably parsed). A single id unknown to
        slurmctld makes squeue exit 1 with `slurm_load_jobs error: Invalid job id specified`,
        while a list of two or more never fails on unknown ids, so a lone id is repeated;
        parse_status also skips such error lines.
        """
        ids = list(job_ids)
        if len(ids) == 1:
            ids = ids * 2
        return ["squeue", "-h", "-t", "all", "-o", "%i %t %r", f"--jobs={','.join(ids)}"]

    def parse_status(self, output: str) -> dict[str, JobStatus]:
        """`ID CODE REASON` lines -> statuses; a pending job whose reason waiting will not
        clear (NEVER_STARTS) says so in `cannot_start`."""
        statuses: dict[str, JobStatus] = {}
        for raw in output.splitlines():
            match = _SQUEUE_LINE.match(raw.strip())
            if match:
                job_id, code, reason = match.groups()
                state = lookup_state(STATE_TABLE, code, self.name)
                stuck = cannot_start(NEVER_STARTS, reason or "") if code == "PD" else ""
                statuses[job_id] = JobStatus(state, code, cannot_start=stuck)
        return statuses

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["scancel", *job_ids]

    def finished_argv(self) -> list[str]:
        """`sacct` of the jobs squeue no longer lists (the poll appends `-j`'s value: the ids,
        comma-separated, 100 at most: a long list makes sacct slow). `-X`: the allocation's
        record only, not its steps; array members print as `123_4`."""
        return ["sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j"]

    def parse_finished(self, output: str) -> dict[str, JobStatus]:
        """`JobID|State|ExitCode` lines -> statuses, with an exit code once the job has ended.

        State may carry a suffix (`CANCELLED by 1000`) and is given its squeue code (`CA`).
        ExitCode is `code:signal`; a job killed by signal N gets 128 + N, the shell's
        convention. Error lines (accounting disabled, database unreachable) never match.
        """
        statuses: dict[str, JobStatus] = {}
        for raw in output.splitlines():
            fields = raw.strip().split("|")
            if len(fields) != 3 or not fields[0][:1].isdigit() or not fields[1].strip():
                continue
            job_id, state_field, exit_field = fields
            code = state_field.split()[0].rstrip("+").upper()
            state = lookup_state(STATE_TABLE, code, self.name)
            exit_code = None if state.active else _sacct_exit_code(exit_field)
            statuses[job_id] = JobStatus(state, _SHORT_CODE.get(code, code), exit_code)
        return statuses


def _array_size(max_array_size: int | None, max_submit_jobs: list[int]) -> int | None:
    """The most members of one array: MaxArraySize - 1 (0 where it is 1: no arrays) and no
    more than MaxSubmitJobs (0 or less there: no limit)."""
    sizes = [n for n in max_submit_jobs if n > 0]
    if max_array_size:
        sizes.append(max_array_size - 1)
    return min(sizes, default=None)


def _partition_limits(lines: list[str]) -> tuple[int | None, int | None]:
    """max_walltime and max_mem from sinfo's `PARTITION TIMELIMIT MEMORY` lines: the default
    partition's time limit (none when it has none), else the shortest of all."""
    default: list[int | None] = []
    times: list[int] = []
    memory: list[int] = []
    for line in lines:
        fields = line.split()
        if len(fields) != 3:
            continue
        name, limit, mem = fields
        seconds = _slurm_time(limit)
        if name.endswith("*"):
            default.append(seconds)
        if seconds is not None:
            times.append(seconds)
        digits = re.match(r"^(\d+)\+?$", mem)
        if digits and int(digits.group(1)) > 0:
            memory.append(int(digits.group(1)) * 1024**2)
    return (default[0] if default else min(times, default=None), min(memory, default=None))


_SLURM_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def _slurm_time(text: str) -> int | None:
    """Seconds of a SLURM time limit: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
    `D-HH:MM:SS`; None for `infinite`, `UNLIMITED` or anything else."""
    match = _SLURM_TIME.match(text.strip())
    if match is None:
        return None
    days, first, second, third = match.groups()
    parts = [int(p) for p in (first, second, third) if p is not None]
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = [*parts, 0, 0][:3]
        return int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    if len(parts) == 3:
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    if len(parts) == 2:  # MM:SS
        return parts[0] * 60 + parts[1]
    return parts[0] * 60  # MM


def _sacct_exit_code(field: str) -> int | None:
    code, _, signal = field.strip().partition(":")
    try:
        exit_code, signal_number = int(code), int(signal or "0")
    except ValueError:
        return None
    return 128 + signal_number if signal_number else exit_code
