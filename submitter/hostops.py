"""The bash scripts the engine runs on a host, one per host per step, and their parsers.

Each script covers every task of the step (start all, poll all, cancel all), so a host sees one
remote command per step whatever the number of tasks. Every value is shell-quoted.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from submitter import task_layout as files
from submitter.schedulers.base import (
    BatchScheduler,
    JobStatus,
    is_packed,
    pool_id,
    scheduler_jobs,
)
from submitter.states import STATUS_FILE_FINAL

# Every step script ignores the signals a dying client or a dropped link sends, so a start
# that has begun is finished and recorded on the host whatever happens to the client.
# The task directory's files are named by @NAME@ placeholders (task_layout.fill).
_HELPERS = files.fill(r"""
trap '' HUP INT TERM PIPE
submitter_flat() { tr '\n\t' '  '; }
# stamp <pid>: sets submitter_stamped to when that process started (empty: gone or a zombie),
# so a recycled pid is never taken for the task's. Builtins only on Linux: a poll must not
# fork per task.
submitter_stamp() {
  local stat fields IFS=$' \t\n'
  submitter_stamped=
  if [ -d /proc/self ]; then
    read -r stat <"/proc/$1/stat" 2>/dev/null || return 0
    # split as words, not read from a here-string: bash reads that a byte at a time
    # (after the name, the fields are numbers and a state letter: no glob, no quotes)
    fields=(${stat##*) })
    [ "${fields[0]}" != Z ] && submitter_stamped=${fields[19]}
  else
    submitter_stamped=$(ps -o lstart= -p "$1" 2>/dev/null | tr -s ' ' '_')
  fi
  return 0
}
# alive <task dir> <attempt> <pid>: that attempt's wrapper is still running
submitter_alive() {
  local verdict pid want
  IFS=$'\t' read -r verdict pid want <"$1/@ATTEMPT@$2" 2>/dev/null
  submitter_stamp "$3"
  [ -n "$submitter_stamped" ] && [ "$submitter_stamped" = "$want" ]
}
submitter_report() {
  local alive=-
  if [ -n "$4" ]; then
    if submitter_alive "$2" "$3" "$4"; then alive=1; else alive=0; fi
  fi
  submitter_read_status "$2"
  printf 'TASK\t%s\t%s\t%s\n' "$1" "$alive" "$submitter_line"
}
# read_status <task dir>: its status, one line of JSON, into submitter_line. A final status
# the wrapper wrote to @STATUS_TEMP@PID but could not rename into place (killed in between, its
# node gone) is the truth too, once whole (newline and all); as read_status_file does.
submitter_read_status() {
  local temp line
  submitter_line=
  if [ -f "$1/@STATUS@" ]; then read -r submitter_line <"$1/@STATUS@"; fi
  case $submitter_line in '' | '{"state": "running"'*) ;; *) return 0 ;; esac
  for temp in "$1"/@STATUS_TEMP@*; do
    read -r line <"$temp" 2>/dev/null || continue
    case $line in
      '{"state": "completed"'* | '{"state": "failed"'* | '{"state": "killed"'* | '{"state": "blocked"'*)
        submitter_line=$line; return 0 ;;
    esac
  done
  return 0
}
submitter_leftovers=(@LEFTOVERS@)
# clear <task dir> <attempt>: remove what an earlier run left there (rm runs only when there
# is some: a start of thousands of fresh tasks forks nothing per task)
submitter_clear() {
  local name found=()
  for name in "${submitter_leftovers[@]}"; do
    if [ -e "$1/$name" ]; then found+=("$1/$name"); fi
  done
  for name in "$1"/@STATUS_TEMP@*; do  # a final status never renamed into place
    if [ -e "$name" ]; then found+=("$name"); fi
  done
  # An earlier attempt's claim that holds its start's record: that start is over, and its
  # token is never claimed again. An empty one stays: it may be a resolve's, which a late
  # start of that attempt must still find and lose to.
  for name in "$1"/@ATTEMPT@*; do
    if [ "$name" != "$1/@ATTEMPT@$2" ] && [ -s "$name" ]; then found+=("$name"); fi
  done
  if [ "${#found[@]}" -gt 0 ]; then rm -f -- "${found[@]}"; fi
  return 0
}
# enter <task id> <task dir>: cd there
submitter_enter() {
  if ! cd -- "$2" 2>/dev/null; then
    printf 'START\t%s\terror\tcannot enter task directory %s\n' "$1" "$2"; return 1
  fi
}
# claim <task dir> <attempt>: an attempt starts only where this succeeds, and it succeeds
# once: the starter and a later run asking about a start it never heard of cannot both win.
# The claim is the exclusive creation (noclobber: O_EXCL) of the file @ATTEMPT@TOKEN.
submitter_claim() {
  local won=0
  set -C
  { : >"$1/@ATTEMPT@$2"; } 2>/dev/null || won=1
  set +C
  return "$won"
}
# record <task dir> <attempt> <line>: what the start did, kept in the claim file before it is
# reported; one short write, so a reader sees the whole line or an empty file
submitter_record() { printf '%s\n' "$3" >>"$1/@ATTEMPT@$2"; }
submitter_superseded() {
  printf 'START\t%s\tsuperseded\tattempt %s was given up before it started\n' "$1" "$2"
}
# resolve <attempt> <task id> <task dir>: what became of a start whose answer was never read
submitter_resolve() {
  mkdir -p -- "$3" 2>/dev/null
  local record=
  if submitter_claim "$3" "$1"; then
    printf 'RESOLVE\t%s\tnever\t\n' "$2"
  elif [ -s "$3/@ATTEMPT@$1" ] && IFS= read -r record <"$3/@ATTEMPT@$1" && [ -n "$record" ]; then
    printf 'RESOLVE\t%s\t%s\n' "$2" "$record"
  elif [ -n "$(find "$3/@ATTEMPT@$1" -maxdepth 0 -mmin +5 2>/dev/null)" ]; then
    printf 'RESOLVE\t%s\tstale\t\n' "$2"
  else
    printf 'RESOLVE\t%s\tpending\t\n' "$2"
  fi
}
""")

_LAUNCH = files.fill(r"""
# launch <attempt> <task id> <task dir> [<wrapper function> <the task's values>]: starts
# the task's job.sh, or, given them, the wrapper function (defined in this bash) with the
# task's values
submitter_launch() {
  submitter_started=
  submitter_enter "$2" "$3" || return
  # claimed first, cleared after: a start given up (its client killed) that comes late
  # loses the claim and clears nothing of the attempt that superseded it
  submitter_claim "$3" "$1" || { submitter_superseded "$2" "$1"; return; }
  submitter_clear "$3" "$1"
  # The wrapper runs in a process group of its own (job control: no setsid or nohup process
  # to start), so that cancelling it reaches all it started, and a step script stopped at its
  # deadline does not take it along. It gets the default signal dispositions back, not this
  # script's ignored ones, but for HUP: ignored, as nohup would. It is run by a subshell of
  # this bash, not by a new one: a bash start is most of what a short task costs (a bash
  # without BASHPID, older than 4, could not tell the subshell's pid: it starts one). Where
  # $submitter_on_exit is set (the local launcher's), the subshell runs it as it exits.
  # Descriptor 7 is the launcher's own: no wrapper holds it. A wrapper function's own output
  # goes to the task's stdout and stderr, which it is told are `given`: no job.out nor job.err.
  set -m
  if [ -n "${4:-}" ] && [ -n "${BASHPID:-}" ]; then
    ([ -z "${submitter_on_exit:-}" ] || trap "$submitter_on_exit" EXIT
     set +m; trap - INT TERM PIPE; "$4" "$5" given) 7>&- >@STDOUT@ 2>@STDERR@ </dev/null &
  elif [ -n "${4:-}" ]; then
    (trap - INT TERM PIPE; exec bash -c "$(declare -f "$4"); $4 \"\$1\" given" bash "$5" \
      7>&- >@STDOUT@ 2>@STDERR@ </dev/null) &
  elif [ -n "${BASHPID:-}" ]; then
    ([ -z "${submitter_on_exit:-}" ] || trap "$submitter_on_exit" EXIT
     set +m; trap - INT TERM PIPE; . ./@JOB_SCRIPT@) 7>&- >@JOB_OUT@ 2>@JOB_ERR@ </dev/null &
  else
    (trap - INT TERM PIPE; exec bash @JOB_SCRIPT@ 7>&- >@JOB_OUT@ 2>@JOB_ERR@ </dev/null) &
  fi
  local pid=$!
  set +m
  submitter_stamp "$pid"
  submitter_record "$3" "$1" "ok	$pid	$submitter_stamped"
  printf 'START\t%s\tok\t%s\n' "$2" "$pid"
  submitter_started=$pid
}
""")

# What a process host's start needs: the helpers and the launch of one task.
LAUNCH_HELPERS = _HELPERS + _LAUNCH

_SUBMIT = files.fill(r"""
submitter_submit() {
  local attempt=$1 task=$2 dir=$3; shift 3
  submitter_enter "$task" "$dir" || return
  submitter_claim "$dir" "$attempt" || { submitter_superseded "$task" "$attempt"; return; }
  submitter_clear "$dir" "$attempt"
  local out rc
  if [ "$SUBMITTER_STDIN" = 1 ]; then
    out=$(trap - HUP INT TERM PIPE; "$@" <@JOB_SCRIPT@ 2>&1); rc=$?
  else
    out=$(trap - HUP INT TERM PIPE; "$@" 2>&1 </dev/null); rc=$?
  fi
  out=$(printf '%s' "$out" | submitter_flat)
  if [ "$rc" -eq 0 ]; then
    submitter_record "$dir" "$attempt" "ok	$out"
    printf 'START\t%s\tok\t%s\n' "$task" "$out"
  else
    submitter_record "$dir" "$attempt" "error	exit $rc: $out"
    printf 'START\t%s\terror\texit %s: %s\n' "$task" "$rc" "$out"
  fi
}
""")

# group <array|pool> <group dir> <jobs> <stdin> [<attempt> <task id> <task dir>]... -- <submit...>
# Claims every member, lists the claimed ones' directories in the members file (an empty
# line for one that cannot start), submits the job array once, or the pool's driver <jobs>
# times, and records each member's index and the submit outputs (\x1f between two) in its
# own attempt record. The submit command reads <stdin>: the driver script for LSF's
# `bsub < array.sh`, /dev/null otherwise.
_SUBMIT_GROUP = files.fill(r"""
submitter_group() {
  local kind=$1 group=$2 jobs=$3 given=$4; shift 4
  local -a attempts=() tasks=() dirs=() indices=() outs=()
  local index=0 args=("$@") missing=() i
  # a pool's members get no files of their own before they run: their directories are made
  # here, in one mkdir
  if [ "$kind" = pool ]; then
    for ((i = 2; i < ${#args[@]}; i += 3)); do
      [ "${args[i - 2]}" != -- ] || break
      [ -d "${args[i]}" ] || missing+=("${args[i]}")
    done
    [ "${#missing[@]}" -eq 0 ] || printf '%s\0' "${missing[@]}" | xargs -0 mkdir -p -- 2>/dev/null
  fi
  : >"$group/@MEMBERS@.tmp"
  while [ "$1" != -- ]; do
    if [ -d "$3" ] && submitter_claim "$3" "$1" && submitter_clear "$3" "$1"; then
      printf '%s\n' "$3" >>"$group/@MEMBERS@.tmp"
      attempts+=("$1"); tasks+=("$2"); dirs+=("$3"); indices+=("$index")
    else
      printf '\n' >>"$group/@MEMBERS@.tmp"
      printf 'START\t%s\terror\tattempt %s could not be claimed in %s\n' "$2" "$1" "$3"
    fi
    index=$((index + 1)); shift 3
  done
  shift
  mv -f -- "$group/@MEMBERS@.tmp" "$group/@MEMBERS@"
  [ "${#tasks[@]}" -gt 0 ] || return 0
  local out rc n error= joined i
  for ((n = 0; n < jobs; n++)); do
    out=$(cd -- "$group" && trap - HUP INT TERM PIPE; "$@" 2>&1 <"$given"); rc=$?
    out=$(printf '%s' "$out" | submitter_flat)
    if [ "$rc" -eq 0 ]; then outs+=("$out"); else error="exit $rc: $out"; fi
  done
  joined=$(IFS=$'\x1f'; printf '%s' "${outs[*]}")
  for i in "${!tasks[@]}"; do
    if [ "${#outs[@]}" -gt 0 ]; then
      submitter_record "${dirs[$i]}" "${attempts[$i]}" "$kind	${indices[$i]}	$joined"
      printf 'START\t%s\t%s\t%s\t%s\n' "${tasks[$i]}" "$kind" "${indices[$i]}" "$joined"
    else
      submitter_record "${dirs[$i]}" "${attempts[$i]}" "error	$error"
      printf 'START\t%s\terror\t%s\n' "${tasks[$i]}" "$error"
    fi
  done
}
""")

_PURGE_GROUPS = files.fill(r"""
submitter_purge_groups() {
  local group dir left
  # a pool job's mark that it is over matters while the job may come back: a week at most
  if [ -d "$1/@GROUPS@/@POOL_OVER@" ]; then
    find "$1/@GROUPS@/@POOL_OVER@" -type f -mmin +10080 -delete 2>/dev/null
  fi
  for group in "$1"/@GROUPS@/*/; do
    [ -f "$group/@MEMBERS@" ] || continue
    left=
    while IFS= read -r dir; do
      if [ -n "$dir" ] && [ -e "$dir" ]; then left=1; break; fi
    done <"$group/@MEMBERS@"
    [ -n "$left" ] || rm -rf -- "$group"
  done
  return 0
}
""")

# finished <command...> -- <job id>...: runs the scheduler's accounting command (its last
# argument: up to 100 ids, comma-separated) on the ids the status command's output
# ($submitter_out) does not list: none of its lines starts with the id, nor, for an array
# member (`A_I`, `A[I]`), with a pending range of the same array (`A_[...]`, `A[...]`).
_FINISHED = r"""
submitter_finished() {
  local -a command=() ids=()
  local -A listed=()
  local first rest id rc=0 i
  while [ "$1" != -- ]; do command+=("$1"); shift; done
  shift
  while read -r first rest; do
    [ -n "$first" ] || continue
    listed["$first"]=1
    case $first in *\[*) listed["range:${first%%[_[]*}"]=1 ;; esac
  done <<<"$submitter_out"
  for id; do
    [ -n "${listed["$id"]}" ] && continue
    [ -n "${listed["range:${id%%[_[]*}"]}" ] && continue
    ids+=("$id")
  done
  local IFS=,
  for ((i = 0; i < ${#ids[@]}; i += 100)); do
    "${command[@]}" "${ids[*]:i:100}" 2>&1 || rc=$?
  done
  printf '\nDONE-END\t%s\n' "$rc"
}
"""

# forget <claim file>...: removed, a thousand to an rm: one fork for a poll's worth, and
# within the system's limit on a command's arguments for any number
_FORGET = r"""
submitter_forget() {
  local -a claims=("$@")
  local i
  for ((i = 0; i < ${#claims[@]}; i += 1000)); do rm -f -- "${claims[@]:i:1000}"; done
}
"""

_FREE_END = "printf '\\nFREE-END\\t%s\\n' \"$?\""

_SIGNAL = r"""
# signal <task dir> <attempt> <pid>: TERM to the wrapper's process group, only if that pid
# is still the task's wrapper (never a process that took over a recycled pid)
submitter_signal() {
  if submitter_alive "$1" "$2" "$3"; then
    kill -TERM -- "-$3" 2>/dev/null || kill -TERM "$3" 2>/dev/null
  fi
  return 0
}
"""


GROUPED = ("array", "pool", "packed")  # how a grouped task's start is answered


@dataclass(frozen=True)
class StartResult:
    job_id: str | None
    error: str | None
    # another client settled the attempt before the host could start it (claimed it as never
    # started): the store says what became of the task
    superseded: bool = False


@dataclass(frozen=True)
class TaskReport:
    alive: bool | None  # process hosts only: is the wrapper still running
    status: dict[str, Any] | None  # the task's status file, when there is one


@dataclass(frozen=True)
class Resolution:
    """What became of a start the client never heard the answer of."""

    outcome: str  # started | failed | never (not started, now never will) | pending | stale
    start: StartResult | None = None


@dataclass(frozen=True)
class Running:
    """A task being watched: its id, task dir, attempt and job id (a pid on process hosts)."""

    task: str
    task_dir: str
    attempt: str  # the attempt's token
    job: str | None
    after: tuple[str, ...] = ()  # batch hosts: jobs that must end before this one starts


@dataclass(frozen=True)
class ArrayStart:
    """One job array or packed job to submit: its directory and driver script on the host,
    its members."""

    directory: str
    script: str
    members: tuple[Running, ...]
    kind: str = "array"  # or "pool"
    after: tuple[str, ...] = ()  # jobs that must end before this one starts
    jobs: int = 1  # a pool's: how many jobs take its members


@dataclass(frozen=True)
class PollResult:
    scheduler: dict[str, JobStatus] | None  # None: no scheduler, or its query failed
    scheduler_error: str | None
    tasks: dict[str, TaskReport]
    resolved: dict[str, Resolution]
    free_cores: int | None = None  # asked for: what the scheduler says is free
    # The scheduler was not asked, the status files only read: `scheduler` is None for that,
    # not because its jobs are gone or it failed.
    status_only: bool = False


def q(value: str) -> str:
    return shlex.quote(value)


class HostOps:
    """Scripts for one host kind: `local`/`ssh` run processes, the rest talk to a scheduler."""

    def __init__(self, kind: str, batch: BatchScheduler | None) -> None:
        self.kind = kind
        self.batch = batch

    @classmethod
    def for_kind(cls, kind: str, flavor: str | None = None) -> HostOps:
        """`flavor`: the scheduler's variant when the host names it (PBS: pbs_flavor)."""
        if kind in ("local", "ssh"):
            return cls(kind, None)
        from submitter.schedulers.registry import batch_scheduler

        batch = batch_scheduler(kind)
        batch.flavor = flavor
        return cls(kind, batch)

    # start -----------------------------------------------------------------------------
    def start_script(
        self,
        tasks: Sequence[Running],
        arrays: Sequence[ArrayStart] = (),
        over: Sequence[str] = (),
    ) -> str:
        """Start every task's attempt, single or as members of job arrays; prints one START
        line per task. The whole script is one compound command: bash reads all of it before
        running any, so a link cut while it is being sent starts nothing, never a part.
        First it leaves the `over` marks (task_layout.over_marker) of pool jobs whose
        members may start again here."""
        marks = ""
        if over:
            folders = sorted({posixpath.dirname(mark) for mark in over})
            marks = f"mkdir -p -- {' '.join(map(q, folders))} && : " + " ".join(
                f">{q(mark)}" for mark in sorted(over)
            )
            marks += "\n"
        return "{\n" + marks + self._start_lines(tasks, arrays) + "}\n"

    def _start_lines(self, tasks: Sequence[Running], arrays: Sequence[ArrayStart]) -> str:
        if self.batch is None:
            lines = [LAUNCH_HELPERS]
            lines += [f"submitter_launch {q(t.attempt)} {q(t.task)} {q(t.task_dir)}" for t in tasks]
            return "\n".join(lines) + "\n"
        lines = [_HELPERS, _SUBMIT, f"SUBMITTER_STDIN={int(self.batch.submit_uses_stdin())}"]
        lines += [
            f"submitter_submit {q(t.attempt)} {q(t.task)} {q(t.task_dir)} "
            + shlex.join(self.batch.submit_argv(files.JOB_SCRIPT, t.after))
            for t in tasks
        ]
        if arrays:
            lines.append(_SUBMIT_GROUP)
        for array in arrays:
            members = " ".join(f"{q(m.attempt)} {q(m.task)} {q(m.task_dir)}" for m in array.members)
            submit = shlex.join(self.batch.submit_argv(array.script, array.after))
            given = array.script if self.batch.submit_uses_stdin() else "/dev/null"
            lines.append(
                f"mkdir -p -- {q(array.directory)} && submitter_group {array.kind} "
                f"{q(array.directory)} {array.jobs} {q(given)} {members} -- {submit}"
            )
        return "\n".join(lines) + "\n"

    def parse_start(self, output: str) -> dict[str, StartResult]:
        results: dict[str, StartResult] = {}
        for line in output.splitlines():
            parts = line.split("\t", 3)
            if len(parts) == 4 and parts[0] == "START":
                results[parts[1]] = self._start_result(parts[2], parts[3])
        return results

    def _start_result(self, verdict: str, detail: str) -> StartResult:
        if verdict == "superseded":
            return StartResult(None, detail.strip(), superseded=True)
        if verdict not in GROUPED and verdict != "ok":
            return StartResult(None, detail.strip() or "submission failed")
        if self.batch is None:
            return StartResult(detail.split("\t", 1)[0].strip(), None)
        try:
            if verdict in GROUPED:
                return StartResult(self._member_id(verdict, detail), None)
            return StartResult(self.batch.parse_job_id(detail), None)
        except ValueError as exc:
            return StartResult(None, str(exc))

    def _member_id(self, verdict: str, detail: str) -> str:
        """A grouped task's job id from its index and the submit output (a pool's: each of
        its jobs' output, \x1f between two)."""
        assert self.batch is not None
        index, _, output = detail.partition("\t")
        if verdict == "pool":
            jobs = [self.batch.parse_job_id(out) for out in output.split("\x1f")]
            return pool_id(jobs, int(index))
        job = self.batch.parse_job_id(output)
        if verdict == "packed":  # a packed job started by an earlier version
            return f"{job}/{int(index)}"
        return self.batch.array_member(job, int(index))

    # poll ------------------------------------------------------------------------------
    def poll_script(
        self,
        tasks: Sequence[Running],
        free: bool = False,
        *,
        scheduler: bool = True,
        forget_claims: Sequence[Running] = (),
    ) -> str:
        """One script reporting the scheduler's view of all jobs and every task's status file,
        and settling every start whose answer the client never read (tasks without a job);
        with `free`, what the scheduler says is free (to size the next start's pools).
        Without `scheduler`, the status files only: the scheduler is asked nothing.
        On a batch host it removes the claim files of `forget_claims`, attempts whose start
        the client has recorded (a process host's poll reads the wrapper's pid stamp there)."""
        lines = [_HELPERS, "submitter_rc=0"]
        for t in tasks:
            if t.job is None:
                lines.append(f"submitter_resolve {q(t.attempt)} {q(t.task)} {q(t.task_dir)}")
        job_ids = list(dict.fromkeys(j for t in tasks if t.job for j in scheduler_jobs(t.job)))
        asked = self.batch if scheduler else None
        if asked is not None and job_ids:
            lines += self._scheduler_lines(asked, job_ids)
        if free and asked is not None and asked.free_command:
            # asked only of a scheduler that just answered: an absent controller makes each
            # of its commands wait seconds before failing
            lines += [
                f"case $submitter_rc in {'|'.join(map(str, asked.answered_codes))})",
                "  printf 'FREE-BEGIN\\n'",
                f"  {asked.free_command}",
                f"  {_FREE_END}",
                "  ;;",
                "esac",
            ]
        for t in tasks:
            if t.job is not None:
                pid = t.job if self.batch is None else ""
                lines.append(
                    f"submitter_report {q(t.task)} {q(t.task_dir)} {q(t.attempt)} {q(pid)}"
                )
        if self.batch is not None and forget_claims:
            claims = (
                files.on_host(t.task_dir, files.attempt_file(t.attempt)) for t in forget_claims
            )
            lines += [_FORGET, "submitter_forget " + " ".join(map(q, claims))]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _scheduler_lines(batch: BatchScheduler, job_ids: list[str]) -> list[str]:
        """The status command on all jobs; then, where the scheduler keeps accounting and the
        status command answered, the accounting command on the jobs it did not list."""
        status = shlex.join(batch.status_argv(job_ids))
        finished = batch.finished_argv()
        if not finished:
            return [
                "printf 'SCHED-BEGIN\\n'",
                f"{status} 2>&1; submitter_rc=$?",
                "printf '\\nSCHED-END\\t%s\\n' \"$submitter_rc\"",
            ]
        return [
            _FINISHED,
            f"submitter_out=$({status} 2>&1); submitter_rc=$?",
            'printf \'SCHED-BEGIN\\n%s\\nSCHED-END\\t%s\\n\' "$submitter_out" "$submitter_rc"',
            'if [ "$submitter_rc" = 0 ]; then',
            "  printf 'DONE-BEGIN\\n'",
            f"  submitter_finished {shlex.join(finished)} -- {shlex.join(job_ids)}",
            "fi",
        ]

    def parse_poll(self, output: str, *, status_only: bool = False) -> PollResult:
        """What a poll script printed; `status_only`: it did not ask the scheduler."""
        sections: dict[str, tuple[list[str], str | None]] = {}
        inside: str | None = None
        reports: dict[str, TaskReport] = {}
        resolved: dict[str, Resolution] = {}
        for line in output.splitlines():
            if line.startswith("RESOLVE\t") and inside is None:
                parts = (line + "\t").split("\t", 3)
                resolved[parts[1]] = self._resolution(parts[2], parts[3].rstrip("\t"))
            elif line in ("SCHED-BEGIN", "DONE-BEGIN", "FREE-BEGIN"):
                inside = line.split("-", 1)[0]
                sections[inside] = ([], None)
            elif inside is not None and line.startswith(f"{inside}-END\t"):
                sections[inside] = (sections[inside][0], line.split("\t", 1)[1])
                inside = None
            elif inside is not None:
                sections[inside][0].append(line)
            elif line.startswith("TASK\t"):
                parts = line.split("\t", 3)
                if len(parts) == 4:
                    _, task, alive, status = parts
                    reports[task] = TaskReport(
                        None if alive == "-" else alive == "1", parse_status(status)
                    )
        free = self._free(sections.get("FREE"))
        lines, scheduler_rc = sections.get("SCHED", ([], None))
        if self.batch is None or scheduler_rc is None:
            status_only = status_only and self.batch is not None  # a process host has none
            return PollResult(None, None, reports, resolved, free, status_only)
        text = "\n".join(lines)
        parsed = self.batch.parse_status(text)
        # Some schedulers exit non-zero when any listed job has left the queue; only a
        # failure that yields nothing at all, and does not say the jobs are gone, is treated
        # as the query failing.
        if scheduler_rc != "0" and not parsed and not self.batch.jobs_gone(text):
            return PollResult(
                None, text.strip()[-500:] or f"exit {scheduler_rc}", reports, resolved, free
            )
        finished = self._finished(sections.get("DONE"))
        merged = {**(finished or {}), **parsed}  # the queue's view first while it has one
        return PollResult(merged, None, reports, resolved, free)

    def _free(self, section: tuple[list[str], str | None] | None) -> int | None:
        if self.batch is None or section is None or section[1] is None:
            return None
        return self.batch.parse_free("\n".join(section[0]))

    def _finished(
        self, section: tuple[list[str], str | None] | None
    ) -> dict[str, JobStatus] | None:
        """The accounting records of jobs the queue no longer lists; None when there was no
        such query or it failed (no accounting on the host: the status files decide)."""
        if self.batch is None or section is None or section[1] is None:
            return None
        lines, rc = section
        finished = self.batch.parse_finished("\n".join(lines))
        return finished if rc == "0" or finished else None

    def _resolution(self, verdict: str, detail: str) -> Resolution:
        if verdict in ("ok", "error", *GROUPED):
            start = self._start_result(verdict, detail)
            return Resolution("started" if start.job_id else "failed", start)
        return Resolution(verdict if verdict in ("never", "stale") else "pending")

    # cancel ----------------------------------------------------------------------------
    def cancel_script(self, tasks: Sequence[Running], whole_jobs: Sequence[str] = ()) -> str:
        """Stop every task; `whole_jobs` are packed jobs none of whose tasks is to go on,
        cancelled as jobs too (one still queued would otherwise hold a place, then a node)."""
        started = [t for t in tasks if t.job]
        if not started and not whole_jobs:
            return "true\n"
        if self.batch is None:
            lines = [_HELPERS, _SIGNAL]
            lines += [
                f"submitter_signal {q(t.task_dir)} {q(t.attempt)} {q(t.job or '')}" for t in started
            ]
            return "\n".join(lines) + "\n"
        # A task packed with others is stopped alone, by its wrapper, which looks for this file.
        lines = [
            f": >{q(files.on_host(t.task_dir, files.CANCEL))}" for t in started if is_packed(t.job)
        ]
        job_ids = [t.job for t in started if t.job and not is_packed(t.job)] + list(whole_jobs)
        if job_ids:
            lines.append(f"{shlex.join(self.batch.cancel_argv(job_ids))} 2>&1")
        return "\n".join(lines) + "\n"

    # purge -----------------------------------------------------------------------------
    @staticmethod
    def remove_script(directories: Sequence[str]) -> str:
        """Remove the task directories, then every job array's or packed job's directory
        beside them (`<work_dir>/.groups/<id>`) none of whose members is left."""
        if not directories:
            return "true\n"
        work_dirs = sorted({posixpath.dirname(d.rstrip("/")) for d in directories})
        return (
            "rm -rf -- "
            + " ".join(q(d) for d in directories)
            + "\n"
            + _PURGE_GROUPS
            + "".join(f"submitter_purge_groups {q(w)}\n" for w in work_dirs)
        )


def read_status_file(task_dir: str, *, leftovers: bool = True) -> dict[str, Any] | None:
    """A task directory's status, as the poll script's `submitter_read_status` reads it: the
    status file, or where that is absent or still says running, a final status the wrapper
    wrote to `.status.PID` but never renamed into place (killed in between, its node gone),
    once whole. Without `leftovers` (its wrapper still runs: it renames what it wrote), the
    status file only."""
    status = None
    with contextlib.suppress(OSError), open(os.path.join(task_dir, files.STATUS)) as handle:
        status = parse_status(handle.readline())
    if not leftovers or (status is not None and status.get("state") != "running"):
        return status
    with contextlib.suppress(OSError), os.scandir(task_dir) as entries:
        for entry in entries:
            if not entry.name.startswith(files.STATUS_TEMP):
                continue
            line = ""  # renamed into place since it was listed: read as nothing
            with contextlib.suppress(OSError), open(entry.path) as handle:
                line = handle.readline()
            left = parse_status(line) if line.endswith("\n") else None
            if left is not None and left.get("state") in STATUS_FILE_FINAL:
                return left
    return status


def parse_status(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # caught mid-write on a filesystem without atomic rename: read next cycle
    return value if isinstance(value, dict) else None
