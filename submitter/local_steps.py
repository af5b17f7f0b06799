"""The start and poll steps for tasks run as processes on this machine, without waiting.

With thousands of short tasks, a step script per start costs a bash and its helpers every
time, and the engine waits for each wrapper to be spawned before it does anything else; the
tasks' slots stay empty meanwhile. Here:

- One launcher, a bash running the very same `submitter_launch` as a start step script, reads
  the tasks to start from its standard input, one line each, and answers each with its START
  line. The engine writes the lines and goes on; it reads the answers as they come. The
  launcher runs in a session of its own and ignores the signals a dying client sends, like a
  step script: a start it has read is finished and recorded in the claim file whatever happens
  to the client, and what it has not read is settled by a later poll (`submitter_resolve`).
- A poll reads the status files and the wrappers' start stamps in-process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Sequence
from typing import Any

from submitter import task_layout as files
from submitter.hostops import (
    LAUNCH_HELPERS,
    HostOps,
    PollResult,
    Running,
    StartResult,
    TaskReport,
    read_status_file,
)
from submitter.quoting import shell_quote_line
from submitter.render.wrapped import WrappedTask

# Fields of /proc/PID/stat after the command name; the 20th is the process's start time.
_START_TIME_FIELD = 19
# How long a launcher whose input was closed may take to start what it has read.
_DRAIN_SECONDS = 30.0

# At most $1 wrappers run at once, as with `xargs -P`: the engine hands the launcher a few
# tasks ahead (LOOKAHEAD), and a task read while as many run waits here for one of them to
# end, so that a slot is filled as soon as it frees, without waiting for the engine. A wrapper
# this launcher started says it ended as its last act (its pid and start stamp, written to
# this bash's descriptor 7, a pipe only it reads); one that could not (killed by SIGKILL) is
# found gone by its pid's start stamp within a second. A launcher whose client is gone (it was
# interrupted, or killed) starts nothing more: what it held is settled by the next poll (not
# started), as what it had not read.
# A line is a task to start (attempt, task id, task directory, and for a task run in a shared
# wrapper, the wrapper's function and the task's values), or DEFINE and the bash defining a
# wrapper function, as one quoted word, before the first task that runs in it.
_LOOP = r"""
submitter_slots=$1
submitter_running=()  # by pid: the start stamp of each wrapper not seen ending yet
submitter_stamp "$$"
submitter_self=$submitter_stamped
exec 7<> <(:)
submitter_on_exit=submitter_ended
submitter_ended() {  # in the wrapper's subshell, where $$ is this launcher's pid
  local own
  submitter_stamp "$BASHPID"
  own=$submitter_stamped
  submitter_stamp "$$"
  if [ -n "$own" ] && [ "$submitter_stamped" = "$submitter_self" ]; then
    printf '%s %s\n' "$BASHPID" "$own" 2>/dev/null >"/proc/$$/fd/7"
  fi
}
submitter_end() {  # <pid> <stamp> of a wrapper that ended
  case $1 in '' | *[!0-9]*) return 0 ;; esac
  if [ "${submitter_running[$1]-}" = "$2" ]; then unset "submitter_running[$1]"; fi
}
submitter_client_gone() {  # this bash was given to another parent: its client ended
  local stat fields IFS=$' \t\n'
  read -r stat <"/proc/$$/stat" 2>/dev/null || return 1
  fields=(${stat##*) })
  [ "${fields[1]}" != "$PPID" ]
}
submitter_free_slot() {
  local pid stamp
  while read -r -t 0 -u 7 && read -r pid stamp <&7; do submitter_end "$pid" "$stamp"; done
  while [ "${#submitter_running[@]}" -ge "$submitter_slots" ]; do
    if read -r -t 1 -u 7 pid stamp; then
      submitter_end "$pid" "$stamp"
      continue
    fi
    for pid in "${!submitter_running[@]}"; do  # gone, or its pid taken by another
      submitter_stamp "$pid"
      [ "$submitter_stamped" = "${submitter_running[pid]}" ] || unset "submitter_running[pid]"
    done
  done
}
while IFS=$'\t' read -r submitter_a submitter_t submitter_d submitter_f submitter_p; do
  if [ "$submitter_a" = DEFINE ]; then
    eval "submitter_definition=$submitter_t" && eval "$submitter_definition"
    continue
  fi
  submitter_free_slot
  if submitter_client_gone; then continue; fi
  submitter_launch "$submitter_a" "$submitter_t" "$submitter_d" "$submitter_f" "$submitter_p"
  if [ -n "$submitter_started" ] && [ -n "$submitter_stamped" ]; then
    submitter_running[submitter_started]=$submitter_stamped
  fi
done
"""


def can_take(*fields: str) -> bool:
    """The launcher can read these fields of a task (no tab nor line break in any)."""
    return not any("\t" in field or "\n" in field for field in fields)


def supported() -> bool:
    """In-process polls read /proc for the wrappers' start stamps (Linux)."""
    return os.path.isdir("/proc/self")


class LocalSteps:
    def __init__(self, ops: HostOps, slots: int) -> None:
        self._ops = ops
        self._slots = slots  # wrappers the launcher runs at once
        self._launcher: subprocess.Popen[bytes] | None = None
        self._unanswered: set[str] = set()
        self._partial = b""
        self._defined: set[str] = set()  # the wrapper functions the launcher has read
        self._unsent = b""  # lines the launcher's input had no room for yet
        # by task and attempt: a wrapper's pid and start stamp, and its `running` status
        self._stamps: dict[tuple[str, str], tuple[str, str]] = {}
        self._running: dict[tuple[str, str], dict[str, Any] | None] = {}

    # start -----------------------------------------------------------------------------
    def launch(self, tasks: Sequence[tuple[Running, WrappedTask | None]]) -> None:
        """Hand the tasks to the launcher, each with its values for its shared wrapper (None:
        it runs its job.sh); their answers come from `answers`."""
        if not tasks:
            return
        launcher = self._running_launcher()
        assert launcher.stdin is not None
        lines = []
        for task, wrapped in tasks:
            fields = [task.attempt, task.task, task.task_dir]
            if wrapped is not None:
                wrapper = wrapped.wrapper
                if wrapper.function not in self._defined:
                    lines.append(f"DEFINE\t{shell_quote_line(wrapper.definition)}\n")
                    self._defined.add(wrapper.function)
                fields += [wrapper.function, wrapped.params]
            lines.append("\t".join(fields) + "\n")
        self._unanswered.update(t.task for t, _ in tasks)
        self._unsent += "".join(lines).encode()
        self._send()

    def _send(self) -> None:
        """Write what the launcher's input has room for; the rest waits for the next call (the
        launcher reads a line when a slot is free: a write never waits for it)."""
        if not self._unsent or self._launcher is None or self._launcher.stdin is None:
            return
        try:
            written = os.write(self._launcher.stdin.fileno(), self._unsent)
        except BlockingIOError:
            return
        except OSError:
            self._gone()  # these tasks are settled by the next poll
            return
        self._unsent = self._unsent[written:]

    @staticmethod
    def can_launch(tasks: Sequence[Running]) -> bool:
        """The launcher reads one line of tab-separated fields per task: a directory with a tab
        or a newline in its path goes through a step script instead."""
        return all(can_take(task.attempt, task.task, task.task_dir) for task in tasks)

    def awaiting(self, task: str) -> bool:
        """The launcher has yet to answer for this task, and can still answer."""
        return task in self._unanswered

    def readable(self) -> int | None:
        """The file descriptor the answers arrive on, while some are awaited."""
        if not self._unanswered or self._launcher is None or self._launcher.stdout is None:
            return None
        return self._launcher.stdout.fileno()

    def answers(self) -> dict[str, StartResult]:
        """The START answers that arrived since the last call (and what was not sent yet,
        sent)."""
        self._send()
        if self._launcher is None or self._launcher.stdout is None:
            return {}
        chunks = []
        while True:
            try:
                chunk = os.read(self._launcher.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                self._gone()
                break
            chunks.append(chunk)
        data = self._partial + b"".join(chunks)
        complete, _, self._partial = data.rpartition(b"\n")
        answered = self._ops.parse_start(complete.decode("utf-8", "replace"))
        self._unanswered -= answered.keys()
        return answered

    def _running_launcher(self) -> subprocess.Popen[bytes]:
        if self._launcher is None or self._launcher.poll() is not None:
            # what a launcher that ended never answered for is for a poll to settle
            self._unanswered.clear()
            self._launcher = subprocess.Popen(
                ["bash", "-c", LAUNCH_HELPERS + _LOOP, "bash", str(self._slots)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            assert self._launcher.stdout is not None and self._launcher.stdin is not None
            for stream in (self._launcher.stdout, self._launcher.stdin):
                descriptor = stream.fileno()
                flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)
                fcntl.fcntl(descriptor, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            self._partial = self._unsent = b""
            self._defined = set()
        return self._launcher

    def _gone(self) -> None:
        """The launcher ended: what it never answered for is for a poll to settle."""
        self._unanswered.clear()
        self._unsent = b""
        if self._launcher is not None:
            self._launcher.wait()
            self._launcher = None

    def close(self) -> None:
        """Let the launcher start what it has read, then end."""
        launcher = self._launcher
        if launcher is None:
            return
        with contextlib.suppress(OSError):
            if launcher.stdin is not None:
                if self._unsent:
                    os.set_blocking(launcher.stdin.fileno(), True)
                    launcher.stdin.write(self._unsent)
                launcher.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            launcher.wait(_DRAIN_SECONDS)
        self._launcher = None

    # poll ------------------------------------------------------------------------------
    def poll(self, tasks: Sequence[Running]) -> PollResult:
        """Every task's status file and whether its wrapper still runs, as the poll script
        reports them; every task must have its pid. A wrapper's start stamp, read once from
        its claim file, and the `running` status of a wrapper that still runs are not read
        again at each poll: at -J 16 a poll every hundredth of a second read three files of
        every running task. A wrapper writes its final status before it ends: read once it
        has."""
        reports: dict[str, TaskReport] = {}
        for task in tasks:
            key = (task.task, task.attempt)
            alive = self._alive(task, key)
            status = self._running.get(key) if alive else None
            if status is None:
                status = read_status_file(task.task_dir, leftovers=not alive)
            if alive and (status or {}).get("state") == "running":
                self._running[key] = status
            else:
                self._running.pop(key, None)
                if not alive:
                    self._stamps.pop(key, None)
            reports[task.task] = TaskReport(alive, status)
        return PollResult(None, None, reports, {})

    def _alive(self, task: Running, key: tuple[str, str]) -> bool:
        """That attempt's wrapper still runs: its pid has the start time recorded at its
        start (in its claim file)."""
        stamp = self._stamps.get(key)
        if stamp is None or stamp[0] != task.job:
            stamp = _recorded_stamp(task)
            if stamp is None:
                return False
            self._stamps[key] = stamp
        try:
            with open(f"/proc/{task.job}/stat") as handle:
                stat = handle.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            return False
        return stat[0] != "Z" and stat[_START_TIME_FIELD] == stamp[1]


def _recorded_stamp(task: Running) -> tuple[str, str] | None:
    """The pid and start stamp the launcher recorded in the attempt's claim file."""
    try:
        with open(os.path.join(task.task_dir, files.attempt_file(task.attempt))) as handle:
            fields = handle.readline().rstrip("\n").split("\t")
    except OSError:
        return None
    return (fields[1], fields[2]) if len(fields) == 3 else None
