"""The bash scripts the engine runs on a host, one per host per step, and their parsers.

Each script covers every task of the step (start all, poll all, cancel all), so a host sees one
remote command per step whatever the number of tasks. Every value is shell-quoted.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from submitter.schedulers.base import BatchScheduler, JobStatus

# A status query that fails only because every listed job has left the scheduler
# (`qstat: Unknown Job Id`, `squeue: Invalid job id`, `Job <1> is not found`) answered fine.
_ALL_JOBS_GONE = re.compile(r"unknown job|invalid job id|is not found", re.IGNORECASE)

_HELPERS = r"""
submitter_flat() { tr '\n\t' '  '; }
submitter_report() {
  local alive=-
  if [ -n "$3" ]; then
    if kill -0 "$3" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$3/status"; then
      alive=1
    else
      alive=0
    fi
  fi
  local status=
  if [ -f "$2/status" ]; then status=$(submitter_flat <"$2/status"); fi
  printf 'TASK\t%s\t%s\t%s\n' "$1" "$alive" "$status"
}
# enter <task id> <task dir>: cd there and clear what an earlier run of the task left behind
submitter_enter() {
  if ! cd -- "$2" 2>/dev/null; then
    printf 'START\t%s\terror\tcannot enter task directory %s\n' "$1" "$2"; return 1
  fi
  rm -f -- status stdout stderr job.out job.err command
}
"""

_LAUNCH = r"""
submitter_launch() {
  submitter_enter "$1" "$2" || return
  if command -v setsid >/dev/null 2>&1; then
    setsid nohup bash job.sh >job.out 2>job.err </dev/null &
  else
    nohup bash job.sh >job.out 2>job.err </dev/null &
  fi
  printf 'START\t%s\tok\t%s\n' "$1" "$!"
}
"""

_SUBMIT = r"""
submitter_submit() {
  local task=$1 dir=$2; shift 2
  submitter_enter "$task" "$dir" || return
  local out rc
  if [ "$SUBMITTER_STDIN" = 1 ]; then
    out=$("$@" <job.sh 2>&1); rc=$?
  else
    out=$("$@" 2>&1 </dev/null); rc=$?
  fi
  out=$(printf '%s' "$out" | submitter_flat)
  if [ "$rc" -eq 0 ]; then
    printf 'START\t%s\tok\t%s\n' "$task" "$out"
  else
    printf 'START\t%s\terror\texit %s: %s\n' "$task" "$rc" "$out"
  fi
}
"""


@dataclass(frozen=True)
class StartResult:
    job_id: str | None
    error: str | None


@dataclass(frozen=True)
class TaskReport:
    alive: bool | None  # process hosts only: is the wrapper still running
    status: dict[str, Any] | None  # the task's status file, when there is one


@dataclass(frozen=True)
class PollResult:
    scheduler: dict[str, JobStatus] | None  # None: no scheduler, or its query failed
    scheduler_error: str | None
    tasks: dict[str, TaskReport]


def q(value: str) -> str:
    return shlex.quote(value)


class HostOps:
    """Scripts for one host kind: `local`/`ssh` run processes, the rest talk to a scheduler."""

    def __init__(self, kind: str, batch: BatchScheduler | None) -> None:
        self.kind = kind
        self.batch = batch

    @classmethod
    def for_kind(cls, kind: str) -> HostOps:
        if kind in ("local", "ssh"):
            return cls(kind, None)
        from submitter.schedulers.registry import batch_scheduler

        return cls(kind, batch_scheduler(kind))

    # start -----------------------------------------------------------------------------
    def start_script(self, tasks: Sequence[tuple[str, str]]) -> str:
        """Start every (task id, task dir); prints one START line per task."""
        if self.batch is None:
            lines = [_HELPERS, _LAUNCH]
            lines += [f"submitter_launch {q(task)} {q(d)}" for task, d in tasks]
            return "\n".join(lines) + "\n"
        argv = self.batch.submit_argv("job.sh")
        lines = [_HELPERS, _SUBMIT, f"SUBMITTER_STDIN={int(self.batch.submit_uses_stdin())}"]
        lines += [f"submitter_submit {q(task)} {q(d)} {shlex.join(argv)}" for task, d in tasks]
        return "\n".join(lines) + "\n"

    def parse_start(self, output: str) -> dict[str, StartResult]:
        results: dict[str, StartResult] = {}
        for line in output.splitlines():
            parts = line.split("\t", 3)
            if len(parts) != 4 or parts[0] != "START":
                continue
            _, task, verdict, detail = parts
            if verdict != "ok":
                results[task] = StartResult(None, detail.strip() or "submission failed")
            elif self.batch is None:
                results[task] = StartResult(detail.strip(), None)
            else:
                try:
                    results[task] = StartResult(self.batch.parse_job_id(detail), None)
                except ValueError as exc:
                    results[task] = StartResult(None, str(exc))
        return results

    # poll ------------------------------------------------------------------------------
    def poll_script(self, tasks: Sequence[tuple[str, str, str | None]]) -> str:
        """One script reporting the scheduler's view of all jobs and every task's status file."""
        lines = [_HELPERS]
        job_ids = [job for _, _, job in tasks if job]
        if self.batch is not None and job_ids:
            lines.append("printf 'SCHED-BEGIN\\n'")
            lines.append(f"{shlex.join(self.batch.status_argv(job_ids))} 2>&1")
            lines.append("printf '\\nSCHED-END\\t%s\\n' \"$?\"")
        for task, task_dir, job in tasks:
            pid = job if (self.batch is None and job) else ""
            lines.append(f"submitter_report {q(task)} {q(task_dir)} {q(pid)}")
        return "\n".join(lines) + "\n"

    def parse_poll(self, output: str) -> PollResult:
        scheduler_lines: list[str] = []
        scheduler_rc: str | None = None
        inside = False
        reports: dict[str, TaskReport] = {}
        for line in output.splitlines():
            if line == "SCHED-BEGIN":
                inside = True
            elif line.startswith("SCHED-END\t"):
                inside = False
                scheduler_rc = line.split("\t", 1)[1]
            elif inside:
                scheduler_lines.append(line)
            elif line.startswith("TASK\t"):
                parts = line.split("\t", 3)
                if len(parts) == 4:
                    _, task, alive, status = parts
                    reports[task] = TaskReport(
                        None if alive == "-" else alive == "1", _parse_status(status)
                    )
        if self.batch is None or scheduler_rc is None:
            return PollResult(None, None, reports)
        text = "\n".join(scheduler_lines)
        parsed = self.batch.parse_status(text)
        # Some schedulers exit non-zero when any listed job has left the queue; only a
        # failure that yields nothing at all is treated as the query failing.
        if scheduler_rc != "0" and not parsed and not _ALL_JOBS_GONE.search(text):
            return PollResult(None, text.strip()[-500:] or f"exit {scheduler_rc}", reports)
        return PollResult(parsed, None, reports)

    # cancel ----------------------------------------------------------------------------
    def cancel_script(self, job_ids: Sequence[str]) -> str:
        if not job_ids:
            return "true\n"
        if self.batch is None:
            return (
                "".join(
                    f"kill -TERM -- -{q(pid)} 2>/dev/null || kill -TERM {q(pid)} 2>/dev/null\n"
                    for pid in job_ids
                )
                + "true\n"
            )
        return f"{shlex.join(self.batch.cancel_argv(list(job_ids)))} 2>&1\n"

    # purge -----------------------------------------------------------------------------
    @staticmethod
    def remove_script(directories: Sequence[str]) -> str:
        if not directories:
            return "true\n"
        return "rm -rf -- " + " ".join(q(d) for d in directories) + "\n"


def _parse_status(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # caught mid-write on a filesystem without atomic rename: read next cycle
    return value if isinstance(value, dict) else None
