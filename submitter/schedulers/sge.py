"""Grid Engine (SGE 8.1, Son of Grid Engine, Univa/Altair GE): argv builders and parsers for
qsub, qstat, qacct and qdel. No I/O.

Job ids: `qsub -terse` prints `123` for a job and `123.1-10:1` for an array submitted with
`-t 1-10`. Grid Engine numbers array tasks from 1 and names task i `123.i`, which qdel takes
as it is; submitter's member indices start at 0, so its member i is `123.<i+1>`
(array_member) and SGE_TASK_ID i+1 in the driver (templates/sge/1/array.sh.j2).

Status: `qstat` lists the user's queued and running jobs (a running array task on a line
of its own, `ja-task-ID` 5; the pending ones as one range, `8-10:1` or `3-6:1,8-10:1`). A
job that ended leaves qstat at once; its end (`failed`, `exit_status`) is in the accounting
file, read by `qacct -j ID`, one job per call. status_argv is therefore a small bash script
run as one command: qstat for all jobs, then qacct for each job qstat no longer lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from submitter.schedulers.base import (
    JobState,
    JobStatus,
    SchedulerDefaults,
    SiteLimits,
    largest,
    log,
    scheduler_job,
    smallest,
)

# qstat's state column, case-sensitive (`t` transferring, `T` threshold-suspended).
STATE_TABLE: dict[str, JobState] = {
    "qw": JobState.QUEUED,  # queued, waiting to be scheduled
    "w": JobState.QUEUED,  # waiting
    "t": JobState.RUNNING,  # being transferred to its execution host: about to run
    "r": JobState.RUNNING,  # running
    "Rr": JobState.RUNNING,  # restarted (rescheduled) and running again
    "Rt": JobState.RUNNING,  # restarted, being transferred
    "Rq": JobState.QUEUED,  # rescheduled: back in the queue
    "hqw": JobState.HELD,  # on hold (qhold, qsub -h, or -hold_jid on an unfinished job)
    "hRwq": JobState.HELD,  # rescheduled and on hold
    "hr": JobState.RUNNING,  # running; a hold set after it started only affects a restart
    "s": JobState.HELD,  # suspended by the user or an operator (qmod -sj)
    "ts": JobState.HELD,  # suspended while being transferred
    "S": JobState.HELD,  # its queue is suspended
    "T": JobState.HELD,  # suspended by its queue's suspend threshold (load)
    "Rs": JobState.HELD,  # restarted, then suspended
    "dr": JobState.RUNNING,  # being deleted (qdel) while running: still ending
    "dt": JobState.RUNNING,  # being deleted while being transferred
    "dRr": JobState.RUNNING,  # being deleted, restarted job
    "ds": JobState.HELD,  # being deleted while suspended
    "dS": JobState.HELD,  # being deleted while its queue is suspended
    "dT": JobState.HELD,  # being deleted while threshold-suspended
    "dqw": JobState.CANCELLED,  # deleted before it ran: never will
    "dhqw": JobState.CANCELLED,  # deleted while on hold
    "Eqw": JobState.FAILED,  # error state: cannot start (bad directory, output path...)
    "Ehqw": JobState.FAILED,  # error state, on hold
    "EhRqw": JobState.FAILED,  # error state after a restart
}

# qacct's `failed` codes (sge_shepherd's SSTATE_*) that are the scheduler's own verdict.
FAILED_CODES: dict[int, JobState] = {
    0: JobState.DONE,  # the job ran; exit_status says how it ended
    37: JobState.TIMEOUT,  # qmaster enforced h_rt, h_cpu or h_vmem (h_vmem: see below)
    # 100, "assumedly after job": the job script died of a signal (exit_status 128 + N),
    # most often qdel's SIGKILL. A process SIGKILLed on the host by anything else reads the
    # same: no field of the record tells them apart.
    100: JobState.CANCELLED,
}

# `  5 0.25000 sleep  alice  r  11/26/2026 20:53:58 all.q@c1  1  [ja-task-ID]`; the state is
# the word before the submit/start date; the queue column is empty while the job waits.
_QSTAT_LINE = re.compile(
    r"^\s*(\d+)\s+\S+\s+.*?\s(\w+)\s+\d\d/\d\d/\d{4}\s+\d\d:\d\d:\d\d"
    r"(?:\s+\S*@\S*)?\s+\d+(?:\s+([\d,:-]+))?\s*$"
)
# `123` or, for an array, `123.1-10:1`
_QSUB_ID = re.compile(r"^(\d+)(?:\.\d+-\d+:\d+)?$")
# An array task (`123.4`) and tasks of one array printed on one line (`123.3-6:1,8-10:1`).
_MEMBER = re.compile(r"^(\d+)\.(\d+)$")
_PENDING = re.compile(r"^(\d+)\.(\d[\d,:-]*)$")
_QACCT_FIELD = re.compile(r"^(\w+)\s+(.*?)\s*$")
# `-l h_rt=5,h_vmem=1G` in qacct's category line
_REQUEST = re.compile(r"(?:^|[\s,])(h_rt|h_vmem)=([^\s,]+)")
_CONF_LIMIT = re.compile(r"^(max_aj_tasks|max_u_jobs|max_jobs)\s+(\d+)\s*$")
# A queue instance of `qstat -f`: `all.q@c1   BIP   0/1/4   0.01   lx-amd64   [states]`, its
# slots as reserved/used/total (the header's `resv/used/tot.`; `used/tot.` before Grid Engine
# 6.2), load, architecture (`-NA-` when not known), then its states when it has any.
# Groups: host, reserved (None in the older form), used, total, states.
_QUEUE_INSTANCE = re.compile(
    r"^\S*@(\S+)\s+\S+\s+(?:([0-9]+)/)?([0-9]+)/([0-9]+)\s+\S+\s+\S+(?:\s+(\S+))?\s*$"
)
# A queue instance's states (qstat(1), Full Format). Each keeps new jobs out of the instance,
# so one with any state has no free slots:
#   u  unknown: its sge_execd cannot be contacted
#   a  alarm: a load threshold is exceeded, "which prevents from scheduling further jobs"
#   A  alarm: a suspend threshold is exceeded; its jobs are being suspended
#   s, S, C  suspended: by qmod, by subordination to another queue, by a calendar
#   d, D  disabled: by qmod, by a calendar
#   E  error: sge_execd could not start a job there
#   c  configuration ambiguous, o  orphaned: "prevents further jobs from being scheduled"

# Marks the accounting records of one job in status_argv's output.
QACCT_MARK = "SUBMITTER-QACCT"

# Arguments: the job ids. qstat once; then qacct for each job qstat no longer lists (an
# array once, however many of its tasks are asked about). Exits with qstat's status.
_STATUS_SCRIPT = f"""out=$(qstat 2>&1); rc=$?
printf '%s\\n' "$out"
[ "$rc" -eq 0 ] || exit "$rc"
listed=" $(printf '%s\\n' "$out" | awk '$1 ~ /^[0-9]+$/ {{print $1}}' | tr '\\n' ' ') "
asked=" "
for id in "$@"; do
  job=${{id%%.*}}
  case $listed$asked in *" $job "*) continue ;; esac
  asked="$asked$job "
  printf '{QACCT_MARK} %s\\n' "$job"
  qacct -j "$job" 2>&1
done
exit 0"""


def lookup_code(code: str) -> JobState:
    """A qstat state code through STATE_TABLE (case matters); unknown codes are logged."""
    state = STATE_TABLE.get(code.strip())
    if state is None:
        log.warning("sge: unknown job state code %r, treated as unknown", code)
        return JobState.UNKNOWN
    return state


def parse_qstat(output: str) -> dict[str, JobStatus]:
    """`qstat` table -> job id -> status: `123`, running task `123.5`, pending tasks
    `123.3-6:1,8-10:1` (one key, as qstat prints them)."""
    statuses: dict[str, JobStatus] = {}
    for line in output.splitlines():
        match = _QSTAT_LINE.match(line)
        if match:
            job, code, tasks = match.groups()
            key = f"{job}.{tasks}" if tasks else job
            statuses[key] = JobStatus(lookup_code(code), code)
    return statuses


def parse_qacct(output: str) -> list[dict[str, str]]:
    """`qacct -j` text -> one dict per record (a job, or each task of an array), split on
    its `=====` lines; lines that are not `name value` (errors) are skipped."""
    records: list[dict[str, str]] = []
    for line in output.splitlines():
        if line.startswith("====="):
            records.append({})
            continue
        field = _QACCT_FIELD.match(line)
        if field and records:
            records[-1][field.group(1)] = field.group(2)
    return [r for r in records if "jobnumber" in r]


def finished_status(record: Mapping[str, str]) -> JobStatus:
    """The end of a job from its accounting record: `failed` is Grid Engine's own verdict,
    `exit_status` the job script's (128 + N: killed by signal N)."""
    failed_field = record.get("failed", "").strip()
    failed = _leading_int(failed_field)
    exit_status = _leading_int(record.get("exit_status", ""))
    code = f"failed {failed_field}" if failed else f"exit_status {exit_status}"
    if failed is None:
        return JobStatus(JobState.UNKNOWN, code, exit_status)
    state = FAILED_CODES.get(failed, JobState.FAILED)
    if failed == 37 and _over_memory(record):
        state = JobState.OUT_OF_MEMORY
    elif state is JobState.DONE and exit_status:
        state = JobState.FAILED
    return JobStatus(state, " ".join(code.split()), exit_status)


def _over_memory(record: Mapping[str, str]) -> bool:
    """Whether a job killed at a limit (failed 37) used its h_vmem rather than its time: the
    category names an h_vmem and maxvmem reached it, or it names no h_rt at all."""
    requests = dict(_REQUEST.findall(record.get("category", "")))
    limit = _bytes(requests.get("h_vmem", ""))
    used = _bytes(record.get("maxvmem", ""))
    if limit and used is not None and used >= limit:
        return True
    return "h_rt" not in requests and limit is not None


_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _bytes(text: str) -> int | None:
    """`4.418MB`, `1G`, `512M`, `1000` -> bytes (Grid Engine's units are powers of 1024)."""
    match = re.match(r"^([\d.]+)\s*([KMGT]?)B?$", text.strip(), re.IGNORECASE)
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def free_slots(output: str) -> int | None:
    """The slots of `qstat -f`'s queue instances neither used nor reserved, summed over hosts;
    None when it printed no queue instance."""
    hosts: dict[str, list[tuple[int, int, bool]]] = {}
    for line in output.splitlines():
        instance = _QUEUE_INSTANCE.match(line)
        if instance:
            host, reserved, used, total, states = instance.groups()
            taken = int(reserved or 0) + int(used)
            hosts.setdefault(host, []).append((int(total), taken, not states))
    if not hosts:
        return None
    return sum(_host_free(instances) for instances in hosts.values())


def _host_free(instances: list[tuple[int, int, bool]]) -> int:
    """What one host has left: the room of its roomiest usable queue instance, and no more
    than its slots (those of its largest instance) less what every instance there takes:
    queues sharing a host (all.q, long.q...) share its cores."""
    room = max((total - taken for total, taken, usable in instances if usable), default=0)
    left = max(total for total, _, _ in instances) - sum(taken for _, taken, _ in instances)
    return max(0, min(room, left))


def _leading_int(text: str) -> int | None:
    match = re.match(r"^\s*(-?\d+)", text)
    return int(match.group(1)) if match else None


class Sge(SchedulerDefaults):
    """Grid Engine through qsub, qstat, qacct and qdel."""

    name: str = "sge"
    default_pack: str = "sge"  # its newest version
    default_poll_interval: float = 30.0
    default_max_queued: int = 200
    # JOB_ID is an array task's array id; SGE_TASK_ID its index, from 1
    job_id_variables: tuple[str, ...] = ("JOB_ID",)
    array_index_variables: tuple[str, ...] = ("SGE_TASK_ID",)
    first_array_index: int = 1
    commands: tuple[str, ...] = ("qsub", "qstat", "qacct", "qdel")  # check-host: present?
    probe: str = "qstat >/dev/null"  # check-host: does it answer?
    # qmaster busy, restarting or unreachable
    transient_errors = re.compile(
        r"unable to contact qmaster|commlib error|can't connect to service"
        r"|unable to send message|got send error|try again|timed out",
        re.IGNORECASE,
    )

    member_id = _MEMBER  # `123.4`
    pending_range = _PENDING  # qstat's `123.3-6:1,8-10:1`
    # Grid Engine's default max_aj_tasks is 75000; 1000 keeps one array within most sites'.
    max_array_size: int = 1000
    limits_command: str = (
        "qconf -sconf 2>/dev/null | grep -E '^(max_aj_tasks|max_u_jobs|max_jobs) '; "
        "qstat -f 2>/dev/null | grep '@'; true"
    )
    # The queue instances of `qstat -f` (free_slots); its job lines are not needed.
    free_command: str = "qstat -f 2>/dev/null | grep '@'; true"

    def parse_limits(self, output: str) -> SiteLimits:
        """max_aj_tasks, the smaller of max_u_jobs and max_jobs (0: none), and the slots of
        the smallest and of the largest host (each host's largest queue instance)."""
        limits: dict[str, int] = {}
        host_slots: dict[str, int] = {}
        for raw in output.splitlines():
            limit = _CONF_LIMIT.match(raw.strip())
            if limit:
                limits[limit.group(1)] = int(limit.group(2))
            instance = _QUEUE_INSTANCE.match(raw)
            if instance:
                host, slots = instance.group(1), int(instance.group(4))
                host_slots[host] = max(slots, host_slots.get(host, 0))
        return SiteLimits(
            max_array_size=smallest([limits.get("max_aj_tasks", 0)]),
            max_jobs=smallest([limits.get("max_u_jobs", 0), limits.get("max_jobs", 0)]),
            node_cores=smallest(list(host_slots.values())),
            max_node_cores=largest(list(host_slots.values())),
        )

    def parse_free(self, output: str) -> int | None:
        return free_slots(output)

    def array_member(self, job_id: str, index: int) -> str:
        """submitter's 0-based member `index` of array `123.1-10:1`: Grid Engine's `123.<index + 1>`."""
        match = _QSUB_ID.match(job_id.strip())
        if match is None:
            raise ValueError(f"not a Grid Engine job array id: {job_id!r}")
        return f"{match.group(1)}.{index + self.first_array_index}"

    def job_key(self, job_id: str) -> str:
        """An array task (`123.4`) is its own key; else the job number (`123.1-10:1` -> 123)."""
        job_id = job_id.strip()
        return job_id if _MEMBER.match(job_id) else job_id.split(".", 1)[0]

    def submit_argv(self, script_path: str, after: Sequence[str] = ()) -> list[str]:
        """`qsub -terse`; with `after`, `-hold_jid`: the job waits until those jobs (whole
        arrays for array members) have ended, however they ended, as on every scheduler here:
        each task's wrapper checks its own upstream tasks' status files."""
        if not after:
            return ["qsub", "-terse", script_path]
        jobs = ",".join(dict.fromkeys(scheduler_job(job).split(".", 1)[0] for job in after))
        return ["qsub", "-terse", "-hold_jid", jobs, script_path]

    def submit_uses_stdin(self) -> bool:
        return False

    def parse_job_id(self, output: str) -> str:
        """The line `qsub -terse` prints (`123`, `123.1-10:1`), kept whole; other lines
        (warnings) are skipped."""
        ids = [line.strip() for line in output.splitlines() if _QSUB_ID.match(line.strip())]
        if len(ids) != 1:
            raise ValueError(f"no single Grid Engine job id in qsub output: {output!r}")
        return ids[0]

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        """One bash command: qstat for all jobs, qacct for each one qstat no longer lists."""
        return ["bash", "-c", _STATUS_SCRIPT, "submitter-sge-status", *job_ids]

    def parse_status(self, output: str) -> dict[str, JobStatus]:
        """qstat's jobs, then each qacct record's end: `123`, or `123.4` for an array task."""
        qstat_part, *accounting = output.split(QACCT_MARK)
        statuses = parse_qstat(qstat_part)
        for block in accounting:
            for record in parse_qacct(block):
                job = record["jobnumber"].strip()
                task = record.get("taskid", "undefined").strip()
                key = f"{job}.{task}" if task.isdigit() else job
                statuses.setdefault(key, finished_status(record))
        return statuses

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        """`qdel`, which takes an array task as `123.4`."""
        return ["qdel", *job_ids]
