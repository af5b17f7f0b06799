"""LSF: argv builders and parsers for bsub, bjobs, bkill and bhosts. No I/O.

IBM LSF has no open-source implementation; its Community Edition is free of charge but closed,
and cannot be downloaded here. So these parsers are tested against LSF's documented output and
against this project's test shim (docker/slurm/lsf-shim/: bsub, bjobs, bkill and bhosts over
SLURM), never against a real LSF cluster.

Job arrays: `bsub -J "name[1-N]"` prints the array's id (`123`); LSF numbers members from 1
and prints member i as `123[i]`, which bjobs and bkill take as they are. submitter's member
indices start at 0, so its member i is LSF's `123[i+1]` (array_member) and LSB_JOBINDEX i+1
in the driver (templates/lsf/1/array.sh.j2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from submitter.schedulers.base import (
    JobState,
    JobStatus,
    SchedulerDefaults,
    SiteLimits,
    largest,
    lookup_state,
    scheduler_job,
    smallest,
)

STATE_TABLE: dict[str, JobState] = {
    "PEND": JobState.QUEUED,  # pending: waiting in a queue
    "PROV": JobState.QUEUED,  # waiting for its dynamically provisioned host
    "WAIT": JobState.QUEUED,  # chunk job member waiting to run
    "PSUSP": JobState.HELD,  # suspended while pending (bstop by user or admin)
    "USUSP": JobState.HELD,  # suspended while running, by the user or an admin
    "SSUSP": JobState.HELD,  # suspended while running, by LSF (load, run windows)
    "UNKWN": JobState.UNKNOWN,  # mbatchd lost contact with the host running it
    "RUN": JobState.RUNNING,  # running
    "DONE": JobState.DONE,  # ended with exit code 0
    "EXIT": JobState.FAILED,  # non-zero exit, killed, or over a limit (bjobs -l tells which)
    "ZOMBI": JobState.FAILED,  # killed while its host was unreachable
}

_SUBMITTED = re.compile(r"Job <(\d+)> is submitted")
# `123 RUN -`: jobid, stat, exit_code (`-` until the job exits non-zero).
_BJOBS_LINE = re.compile(r"^(\d\S*)\s+([A-Za-z]+)(?:\s+(-|-?\d+))?$")

STATUS_FIELDS = "jobid stat exit_code"
# An array member (`123[4]`) and members printed as one line (`123[2-9]`).
_MEMBER = re.compile(r"^(\d+)\[(\d+)\]$")
_PENDING = re.compile(r"^(\d+)\[([^\]]+)\]$")

# `bparams -a`: `    MAX_JOB_ARRAY_SIZE = 1000`
_ARRAY_SIZE = re.compile(r"^MAX_JOB_ARRAY_SIZE\s*=\s*(\d+)\s*$")
# A `bhosts -w` row: HOST_NAME STATUS JL/U MAX NJOBS RUN SSUSP USUSP RSV. MAX is the host's job
# slots and JL/U the most one user may have there, `-` where there is no limit; NJOBS the
# slots of jobs dispatched there, RUN, SSUSP and USUSP of its running and suspended jobs, RSV
# those reserved for pending jobs. Groups: STATUS, JL/U, MAX, then the five counts.
_BHOSTS_ROW = re.compile(r"^\S+\s+(\S+)\s+([0-9]+|-)\s+([0-9]+|-)" + r"\s+([0-9]+)" * 5 + r"\s*$")


def free_slots(output: str) -> int | None:
    """The job slots `bhosts -w` says hosts taking jobs have left, summed: a host not `ok`
    (`closed_Full`, `closed_Adm`, `unavail`...) has none; one without a slot limit (MAX `-`)
    is left out. None when no host said anything of its slots."""
    counts: list[int] = []
    for raw in output.splitlines():
        row = _BHOSTS_ROW.match(raw.strip())
        if row is None:
            continue
        status, per_user, max_slots = row.group(1, 2, 3)
        if status != "ok":
            counts.append(0)
        elif max_slots != "-":
            njobs, run, ssusp, ususp, reserved = (int(n) for n in row.group(4, 5, 6, 7, 8))
            # Whether NJOBS counts the reserved slots is not said: the larger of the two
            taken = max(njobs, run + ssusp + ususp + reserved)
            free = max(0, int(max_slots) - taken)
            counts.append(free if per_user == "-" else min(free, int(per_user)))
    return sum(counts) if counts else None


class Lsf(SchedulerDefaults):
    """IBM Spectrum LSF through its command line tools; the script goes on stdin."""

    name: str = "lsf"
    default_pack: str = "lsf"  # its newest version
    default_poll_interval: float = 30.0
    default_max_queued: int = 200
    # LSB_JOBID is an array member's array id; LSB_JOBINDEX its index, from 1
    job_id_variables: tuple[str, ...] = ("LSB_JOBID",)
    array_index_variables: tuple[str, ...] = ("LSB_JOBINDEX",)
    first_array_index: int = 1
    commands: tuple[str, ...] = ("bsub", "bjobs", "bkill")  # check-host: present?
    # check-host: does it answer? (bjobs exits 255 when the user simply has no jobs)
    probe: str = "bjobs -noheader >/dev/null 2>&1 || bjobs 2>&1 | grep -q 'No unfinished job'"
    # mbatchd down, busy or unreachable, in LSF's default wording: "LSF is down. Please
    # wait...", "LSF is processing your request. Please wait...", "Cannot connect to LSF.
    # Please wait..." (lsf.conf LSB_MBD_DOWN_MSG, _BUSY_MSG, _CONNECT_FAIL_MSG), and what batch
    # commands print while they retry: "batch system daemon not responding ... still trying",
    # "LSF daemon (LIM) not responding ... still trying" (LSB_API_VERBOSE)
    transient_errors = re.compile(
        r"lsf is down|lsf is processing your request|cannot connect to lsf|please wait"
        r"|not responding|failed in an lsf library call|timed out",
        re.IGNORECASE,
    )
    # `Job <123> is not found`
    gone_errors = re.compile(r"is not found", re.IGNORECASE)
    answered_codes: tuple[int, ...] = (0, 255)  # 255: one of the asked jobs is not found

    member_id = _MEMBER  # `123[4]`
    pending_range = _PENDING  # `123[2-9]`
    # LSF's default MAX_JOB_ARRAY_SIZE is 1000 (indices 1-1000)
    max_array_size: int = 1000

    limits_command: str = "bparams -a 2>/dev/null; bhosts -w 2>/dev/null; true"
    # Each host's status, slot limit and slots taken (free_slots).
    free_command: str = "bhosts -w 2>/dev/null; true"

    def parse_limits(self, output: str) -> SiteLimits:
        """MAX_JOB_ARRAY_SIZE, and the smallest and the largest MAX of `bhosts -w` as the
        cores of a node (`-`, no limit: the largest is not known)."""
        array_sizes: list[int] = []
        slots: list[int] = []
        sizes: list[int | None] = []
        for raw in output.splitlines():
            line = raw.strip()
            size = _ARRAY_SIZE.match(line)
            if size:
                array_sizes.append(int(size.group(1)))
            row = _BHOSTS_ROW.match(line)
            if row and row.group(3) != "-":
                slots.append(int(row.group(3)))
            if row:
                sizes.append(None if row.group(3) == "-" else int(row.group(3)))
        return SiteLimits(
            max_array_size=smallest(array_sizes),
            node_cores=smallest(slots),
            max_node_cores=largest(sizes),
        )

    def parse_free(self, output: str) -> int | None:
        return free_slots(output)

    def array_member(self, job_id: str, index: int) -> str:
        """submitter's 0-based member `index` of array `123`: LSF's `123[index + 1]`."""
        if not job_id.strip().isdigit():
            raise ValueError(f"not an LSF job array id: {job_id!r}")
        return f"{job_id.strip()}[{index + self.first_array_index}]"

    def submit_argv(self, script_path: str, after: Sequence[str] = ()) -> list[str]:
        """`bsub`, run as `bsub < job.sh` so the script's #BSUB lines are read. With `after`,
        `ended()`: the job starts once those jobs have ended, however they ended (each task's
        wrapper checks its own upstream tasks' status files); `-ti` removes a job whose
        condition can never be met."""
        if not after:
            return ["bsub"]
        jobs = dict.fromkeys(scheduler_job(job) for job in after)
        return ["bsub", "-w", " && ".join(f"ended({job})" for job in jobs), "-ti"]

    def submit_uses_stdin(self) -> bool:
        return True

    def parse_job_id(self, output: str) -> str:
        """The id in `Job <123> is submitted to queue <normal>.`; other lines are skipped."""
        match = _SUBMITTED.search(output)
        if match is None:
            raise ValueError(f"no LSF job id in bsub output: {output!r}")
        return match.group(1)

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        """`bjobs` for all ids; an id LSF no longer knows adds `Job <ID> is not found`."""
        return ["bjobs", "-noheader", "-o", STATUS_FIELDS, *job_ids]

    def parse_status(self, output: str) -> dict[str, JobStatus]:
        """`ID STAT EXIT_CODE` lines -> statuses; `Job <125> is not found` lines are skipped.

        EXIT stays FAILED: whether LSF killed the job (TERM_RUNLIMIT, TERM_MEMLIMIT...) is
        only shown by `bjobs -l`, not by these fields.
        """
        statuses: dict[str, JobStatus] = {}
        for raw in output.splitlines():
            match = _BJOBS_LINE.match(raw.strip())
            if match:
                job_id, code, exit_field = match.groups()
                exit_code = None if exit_field in (None, "-") else int(exit_field)
                state = lookup_state(STATE_TABLE, code, self.name)
                statuses[job_id] = JobStatus(state, code, exit_code)
        return statuses

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["bkill", *job_ids]
