"""PBS (PBS Pro/OpenPBS and Torque): argv builders and parsers for qsub, qstat and qdel. No I/O.

Two flavours share the commands but not all their options (the host key `pbs_flavor`, else
detected by `limits_command`):
- `pro`: PBS Professional and OpenPBS, its open-source edition (the project's docker `pbs`
  cluster is OpenPBS 23.06.06). Resources as `-l select=N:ncpus=C:mem=XMB`, arrays `-J`,
  and finished jobs kept in the job history, read with `qstat -x -f`: `job_state = F`, also
  for an array member on OpenPBS (`X` in some PBS Pro versions), with an `Exit_status`.
- `torque`: Torque, and SLURM's Torque command wrapper (Debian's slurm-wlm-torque, the
  docker `torque` cluster). Resources as `-l nodes=N:ppn=C`, arrays `-t`; `qstat -x` means
  XML there, so finished jobs are read with `qstat -f` while the server still lists them.

Job ids: `qsub` prints the full id (`123.server`) and parse_job_id keeps it, since qstat and
qdel on another server need it. `qstat -f` may print the same job with a different server
suffix (short name or FQDN), or none at all, so parse_status keys jobs exactly as printed in
their `Job Id:` lines and callers look them up with `find_status`, which compares `job_key`s:
the part before the first dot (`123`, `123[4]`, `123[]`).

Job arrays: qsub prints an array's id as `123[].server`; member 4 is `123[4].server`, which
Torque's and PBS Pro's qstat and qdel take as they are. SLURM's Torque wrapper
(slurm-wlm-torque, the project's docker torque cluster) cannot address a member at all: its
qsub prints `123`, its qstat lists the members under their SLURM job ids with nothing naming
the array, and its qdel reads `123[4]` as 123 and kills the whole array. limits_command
recognises that wrapper and parse_limits then allows arrays of 1: one job per task there.
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
from submitter.schedulers.pbs_nodes import free_cores

STATE_TABLE: dict[str, JobState] = {
    "Q": JobState.QUEUED,  # queued, eligible to run
    "W": JobState.QUEUED,  # waiting for its requested start time (qsub -a)
    "T": JobState.QUEUED,  # in transit to another queue or server
    "H": JobState.HELD,  # held by a user, operator or dependency
    "S": JobState.HELD,  # suspended
    "U": JobState.HELD,  # PBS Pro: suspended because the workstation is busy
    "R": JobState.RUNNING,  # running
    "E": JobState.RUNNING,  # exiting after having run
    "B": JobState.RUNNING,  # PBS Pro: array job with at least one subjob started
    "M": JobState.UNKNOWN,  # PBS Pro: moved to another server, which now tracks it
    "C": JobState.DONE,  # Torque: completed; Exit_status refines it (finished_state)
    "F": JobState.DONE,  # PBS Pro: finished (qstat -x); Exit_status refines it
    "X": JobState.DONE,  # PBS Pro: subjob finished; Exit_status refines it
}

_FINISHED = frozenset({"C", "F", "X"})

# A queued job's `comment` (PBS Pro's scheduler writes it) that waiting will not clear.
NEVER_STARTS: NeverStarts = (
    (re.compile(r"Can Never Run\b"), "no node, queue or server limit can ever fit the job"),
)
# `Not Running: Insufficient amount of resource: ncpus (R: 3 A: 2 T: 8)`: R asked, A free
# now, T in all. R over T never fits; R over A only waits. (A chunk larger than every node
# but within T reads the same as a busy site: the largest node's cores refuse it earlier.)
_INSUFFICIENT = re.compile(r"Insufficient amount of resource: (\S+) \(R: (\S+) A: \S+ T: (\S+)\)")
_AMOUNT = re.compile(r"^(\d+)([kmgtp]?)(b|w)?$", re.IGNORECASE)

# Negative Exit_status values are the execution daemon's own codes (JOB_EXEC_*); Torque and
# PBS Pro number them differently. Any other negative value is FAILED.
EXEC_CODES: dict[int, JobState] = {
    -10: JobState.OUT_OF_MEMORY,  # Torque JOB_EXEC_OVERLIMIT_MEM
    -11: JobState.TIMEOUT,  # Torque JOB_EXEC_OVERLIMIT_WT (PBS Pro: bad restart, rare)
    -12: JobState.TIMEOUT,  # Torque JOB_EXEC_OVERLIMIT_CPUT
    -26: JobState.OUT_OF_MEMORY,  # PBS Pro JOB_EXEC_KILL_VMEM
    -27: JobState.OUT_OF_MEMORY,  # PBS Pro JOB_EXEC_KILL_MEM
    -28: JobState.TIMEOUT,  # PBS Pro JOB_EXEC_KILL_CPUT
    -29: JobState.TIMEOUT,  # PBS Pro JOB_EXEC_KILL_WALLTIME
}

# Exit_status 256 + N: killed by signal N. HUP, INT, KILL and TERM are what qdel, admins and
# limit enforcement send (271 = TERM, 265 = KILL); other signals (SEGV, ABRT...) are crashes.
_CANCEL_SIGNALS = frozenset({1, 2, 9, 15})

_JOB_ID_LINE = re.compile(r"^Job Id:\s*(\S+)\s*$")
_QSUB_ID = re.compile(r"^\d+(?:\[\d*\])?(?:\.\S+)?$")
# An array's id as qsub prints it (`123[].server`, `123.server`, `123`): number, suffix.
_ARRAY_ID = re.compile(r"^(\d+)(?:\[\])?(\..*)?$")
# A subjob (`123[4].server`, `123[4]`) and a range of them printed as one job (`123[2-9]`).
_SUBJOB = re.compile(r"^(\d+)\[(\d+)\](\..*)?$")
_PENDING = re.compile(r"^(\d+)\[([^\]]+)\](?:\..*)?$")
_ATTRIBUTE = re.compile(r"^(\s+)([A-Za-z_][\w.]*) = ?(.*)$")

# Site limits: PBS Pro `qmgr -c 'list server'` prints `\tmax_array_size = 10000` and
# `\tmax_queued = [u:PBS_GENERIC=200]`; Torque `qmgr -c 'print server'` prints
# `set server max_job_array_size = 1000`; `pbsnodes -a` prints `np = 16` (Torque) or
# `resources_available.ncpus = 32` (PBS Pro) for every node.
_SERVER_LIMIT = re.compile(
    r"^(?:set server\s+)?(max_array_size|max_job_array_size|max_user_queuable)\s*=\s*(\d+)\s*$"
)
_GENERIC_QUEUED = re.compile(r"^(?:set server\s+)?max_queued\s*=.*\[u:PBS_GENERIC=(\d+)\]")
_NODE_CORES = re.compile(r"^(?:np|resources_available\.ncpus)\s*=\s*(\d+)\s*$")
# What limits_command prints when qsub is SLURM's Torque wrapper (slurm-wlm-torque)
SLURM_WRAPPER = "SLURM-TORQUE-WRAPPER"
# limits_command's line with the first line of `qstat --version`: PBS Pro and OpenPBS print
# `pbs_version = 23.06.06`, Torque `Version: 6.1.3`, the SLURM wrapper `Unknown option: version`.
_QSTAT_VERSION = "QSTAT-VERSION"
_TORQUE_VERSION = re.compile(r"^version:|unknown option", re.IGNORECASE)
FLAVORS: tuple[str, ...] = ("pro", "torque")  # the host key pbs_flavor's values
# A status query when the flavour is not known (yet): `qstat -x -f` where qstat is PBS Pro's.
_STATUS_EITHER = (
    'if qstat --version 2>&1 | grep -q "pbs_version"; then exec qstat -x -f "$@"; '
    'else exec qstat -f "$@"; fi'
)


def flavor_of(version_line: str, wrapper: bool) -> str | None:
    """The flavour `qstat --version` (first line) says; None when it says nothing known."""
    if wrapper or _TORQUE_VERSION.search(version_line):
        return "torque"
    return "pro" if "pbs_version" in version_line else None


def finished_code(code: str, exit_status: int | None) -> str:
    """The state code of a finished job with what its Exit_status means, shown as a reason:
    `F, Exit_status -29`, `F, Exit_status 265 (signal 9)`."""
    if exit_status is None:
        return code
    text = f"{code}, Exit_status {exit_status}"
    return f"{text} (signal {exit_status - 256})" if exit_status > 256 else text


def finished_state(exit_status: int | None) -> JobState:
    """The state of a finished job (C, F, X) from its Exit_status.

    No Exit_status (some servers and wrappers never print one) means the scheduler reports no
    error of its own: DONE, and the task's own exit-code file decides.
    """
    if exit_status is None or exit_status == 0:
        return JobState.DONE
    if exit_status < 0:
        return EXEC_CODES.get(exit_status, JobState.FAILED)
    if exit_status > 256 and exit_status - 256 in _CANCEL_SIGNALS:
        return JobState.CANCELLED
    return JobState.FAILED


def parse_qstat_full(output: str) -> dict[str, dict[str, str]]:
    """`qstat -f` text -> job id (as printed) -> attributes, with lower-case names.

    Blocks start with `Job Id: ID`; attributes are indented `name = value` lines (four spaces,
    or a tab on some servers and wrappers); a long value wraps onto lines indented with a tab,
    which are joined back. Any other line, such as `qstat: Unknown Job Id 123.server` merged in
    from stderr, is skipped.
    """
    jobs: dict[str, dict[str, str]] = {}
    attributes: dict[str, str] | None = None
    indent: str | None = None
    last: str | None = None
    for line in output.splitlines():
        header = _JOB_ID_LINE.match(line)
        if header:
            attributes = jobs.setdefault(header.group(1), {})
            indent, last = None, None
            continue
        if not line.strip() or not line[:1].isspace():
            last = None  # a blank or error line ends any wrapped value
            continue
        if attributes is None:
            continue
        attribute = _ATTRIBUTE.match(line)
        if attribute and indent in (None, attribute.group(1)):
            indent, last = attribute.group(1), attribute.group(2).lower()
            attributes[last] = attribute.group(3)
        elif last is not None:
            attributes[last] += line[1:] if line.startswith("\t") else line.strip()
    return jobs


class Pbs(SchedulerDefaults):
    """PBS Pro (OpenPBS) and Torque through their common command line interface.

    `flavor`: `pro`, `torque`, or None until known (from the host's `pbs_flavor`, or
    detected with the site's limits); it decides the status query.
    """

    name: str = "pbs"
    default_pack: str = "pbs"  # its newest version
    default_poll_interval: float = 30.0
    default_max_queued: int = 200
    # SLURM's Torque wrapper (slurm-wlm-torque) sets only SLURM's variables; PBS Pro's array
    # member index is PBS_ARRAY_INDEX, Torque's PBS_ARRAYID
    job_id_variables: tuple[str, ...] = ("PBS_JOBID", "SLURM_JOB_ID")
    array_index_variables: tuple[str, ...] = (
        "PBS_ARRAY_INDEX",
        "PBS_ARRAYID",
        "SLURM_ARRAY_TASK_ID",
    )
    commands: tuple[str, ...] = ("qsub", "qstat", "qdel")  # check-host: present?
    # check-host: does it answer? The queues, not the jobs: SLURM's Torque wrapper's plain
    # qstat exits 153 while the user has no job.
    probe: str = "qstat -Q >/dev/null"
    # pbs_server busy, restarting or unreachable (Torque and PBS Pro wording)
    transient_errors = re.compile(
        r"cannot connect to (?:pbs )?server|could not connect|end of file|pbs_iff"
        r"|server .* not (?:available|reachable)|try again|timed out"
        r"|unable to contact slurm controller|resource temporarily unavailable",
        re.IGNORECASE,
    )
    # `qstat: Unknown Job Id 123.server`
    gone_errors = re.compile(r"unknown job id", re.IGNORECASE)
    answered_codes: tuple[int, ...] = (0, 153)  # 153: one of the asked jobs is unknown

    member_id = _SUBJOB  # `123[4].server`, `123[4]`
    pending_range = _PENDING  # `123[2-9].server`, `123[2-9:2]`
    # PBS Pro's default max_array_size is 10000 and Torque's max_job_array_size is unset
    # (no limit); 1000 keeps one array within what most sites allow.
    max_array_size: int = 1000
    # Which flavour answers (flavor_of): also the last lines of limits_command.
    flavor_command: str = (
        'grep -qs "use Slurm" "$(command -v qsub)" && '
        f"printf '%s\\n' {SLURM_WRAPPER}; "
        f"printf '{_QSTAT_VERSION} %s\\n' \"$(qstat --version 2>&1 | head -n 1)\"; true"
    )
    # Both qmgr forms run: the parsers read PBS Pro's `list server` lines and Torque's
    # `set server` lines, and a limit printed by both is the same number.
    limits_command: str = (
        "qmgr -c 'list server' 2>/dev/null; qmgr -c 'print server' 2>/dev/null; "
        "pbsnodes -a 2>/dev/null; " + flavor_command
    )
    # Each node's state and cores (pbs_nodes.py); nothing where pbsnodes is missing.
    free_command: str = "pbsnodes -a 2>/dev/null; true"

    def __init__(self, flavor: str | None = None) -> None:
        self.flavor = flavor

    def parse_limits(self, output: str) -> SiteLimits:
        """The server's array and per-user queue limits, the smallest and the largest node's
        cores and the flavour. Behind SLURM's Torque wrapper the array limit is 1: it cannot address array
        members."""
        array_sizes: list[int] = []
        queued: list[int] = []
        cores: list[int] = []
        wrapper = False
        version: str | None = None
        for raw in output.splitlines():
            if raw.startswith(_QSTAT_VERSION + " "):
                version = raw[len(_QSTAT_VERSION) + 1 :].strip()
                continue
            line = raw.strip()
            wrapper = wrapper or line == SLURM_WRAPPER
            limit = _SERVER_LIMIT.match(line)
            if limit:
                target = queued if limit.group(1) == "max_user_queuable" else array_sizes
                target.append(int(limit.group(2)))
            generic = _GENERIC_QUEUED.match(line)
            if generic:
                queued.append(int(generic.group(1)))
            node = _NODE_CORES.match(line)
            if node:
                cores.append(int(node.group(1)))
        return SiteLimits(
            max_array_size=1 if wrapper else smallest(array_sizes),
            max_jobs=smallest(queued),
            node_cores=smallest(cores),
            flavor=flavor_of(version or "", wrapper),
            max_node_cores=largest(cores),
        )

    def parse_free(self, output: str) -> int | None:
        return free_cores(output)

    def array_member(self, job_id: str, index: int) -> str:
        """`123[].server` (or `123.server`, `123`) and 4 -> `123[4].server` (`123[4]`)."""
        match = _ARRAY_ID.match(job_id.strip())
        if match is None:
            raise ValueError(f"not a PBS job array id: {job_id!r}")
        return f"{match.group(1)}[{index}]{match.group(2) or ''}"

    def submit_argv(self, script_path: str, after: Sequence[str] = ()) -> list[str]:
        """With `after`, `afterany`: the job starts once those jobs have ended, however they
        ended (each task's wrapper checks its own upstream tasks' status files). A dependency
        on one array member is one on the whole array: a subjob cannot be depended on."""
        if not after:
            return ["qsub", script_path]
        jobs = ":".join(dict.fromkeys(_whole_array(scheduler_job(job)) for job in after))
        return ["qsub", "-W", f"depend=afterany:{jobs}", script_path]

    def submit_uses_stdin(self) -> bool:
        return False

    def parse_job_id(self, output: str) -> str:
        """The line qsub prints (`123.server`, `123`, `123[].server`), kept whole.

        Other lines (warnings) are skipped; exactly one line must look like a job id.
        """
        ids = [line.strip() for line in output.splitlines() if _QSUB_ID.match(line.strip())]
        if len(ids) != 1:
            raise ValueError(f"no single PBS job id in qsub output: {output!r}")
        return ids[0]

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        """`qstat -x -f` on PBS Pro, which then lists finished jobs from its job history
        (with their Exit_status); `qstat -f` on Torque, which reads `-x` as "XML". When the
        flavour is not known, qstat itself is asked which it is. Unknown ids only add an
        error line."""
        if self.flavor == "pro":
            return ["qstat", "-x", "-f", *job_ids]
        if self.flavor == "torque":
            return ["qstat", "-f", *job_ids]
        return ["sh", "-c", _STATUS_EITHER, "qstat", *job_ids]

    def parse_status(self, output: str) -> dict[str, JobStatus]:
        statuses: dict[str, JobStatus] = {}
        for job_id, attributes in parse_qstat_full(output).items():
            code = attributes.get("job_state", "").strip().upper()
            if not code:
                continue
            exit_status = _int_or_none(attributes.get("exit_status"))
            if code in _FINISHED:
                state = finished_state(exit_status)
                code = finished_code(code, exit_status)
            else:
                state = lookup_state(STATE_TABLE, code, self.name)
            stuck = never_runs(attributes.get("comment", "")) if code == "Q" else ""
            statuses[job_id] = JobStatus(state, code, exit_status, stuck)
        return statuses

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["qdel", *job_ids]

    def job_key(self, job_id: str) -> str:
        """The part before the first dot: `123.server` -> `123`, `123[4].server` -> `123[4]`
        (qstat prints the server suffix inconsistently: short, FQDN, or none)."""
        return job_id.strip().split(".", 1)[0]


def never_runs(comment: str) -> str:
    """What a queued job's comment says when the job can never run, else empty."""
    said = cannot_start(NEVER_STARTS, comment)
    insufficient = _INSUFFICIENT.search(comment)
    if said or insufficient is None:
        return said
    resource, asked, total = insufficient.groups()
    asked_amount, total_amount = _amount(asked), _amount(total)
    if asked_amount is None or total_amount is None or asked_amount <= total_amount:
        return ""
    return f"{' '.join(comment.split())} (the job asks more {resource} than the site has)"


def _amount(text: str) -> int | None:
    """`8`, `100gb`, `48210mb` -> a number to compare (bytes for sizes)."""
    match = _AMOUNT.match(text.strip())
    if match is None:
        return None
    scale: int = 1024 ** "bkmgtp".index(match.group(2).lower() or "b")
    return int(match.group(1)) * scale


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _whole_array(job_id: str) -> str:
    """`123[4].server` -> `123[].server`: the array a subjob belongs to; other ids as they are."""
    member = _SUBJOB.match(job_id)
    return f"{member.group(1)}[]{member.group(3) or ''}" if member else job_id
