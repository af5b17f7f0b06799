"""The files of a task directory, named once.

A task directory (`<work_dir>/<task id>` on its host) holds what the client sends, what the
wrapper writes while the task runs, and the marks the client and the wrapper leave each other.
The engine, the step scripts (`hostops`), `logs`, `logs -f`, the report and the templates all
name these files through this module (the templates get `TEMPLATE_NAMES` as `files`; the step
scripts' @NAME@ placeholders are filled by `fill`). The task's run directory, where its command
runs, is the task directory unless the host's path mapping says otherwise (`paths.run_dir`).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

# Sent by the client before the task starts (STAGED); gone here once the attempt ends.
JOB_SCRIPT = "job.sh"  # the rendered job script: the wrapper, behind the scheduler's directives
TASK_FILE = "task.json"  # what the task is, for a reader on the host
# A task chained after its upstream tasks' jobs (apply --detach): for each upstream task, its
# task directory on the host and its name, a line each; its wrapper checks them before it runs.
UPSTREAM = "upstream"

# Written by the wrapper.
COMMAND = "command"  # the task's command, run by its interpreter
STATUS = "status"  # one line of JSON: the truth about the task (states, exit code, times)
STATUS_TEMP = ".status."  # + the wrapper's pid: a status being written, then renamed to STATUS
STDOUT = "stdout"  # the task's own output streams
STDERR = "stderr"
# The scheduler's (or the process launcher's) files of the job: the wrapper's own output.
JOB_OUT = "job.out"
JOB_ERR = "job.err"

# Marks.
CANCEL = ".cancel"  # the client asks a packed task's wrapper to stop its task alone
STOPPED = ".stopped"  # the wrapper's watchdog stopped the task, and why: walltime | cancel
ATTEMPT = ".attempt-"  # + the attempt's token: the start's claim, then what the start did

# Beside the task directories: `<work_dir>/.groups/<id>/` holds one job array's or packed job's
# driver (JOB_SCRIPT) and the list of its members' task directories, a line each.
GROUPS = ".groups"
MEMBERS = "members"
POOL_HINT = "next"  # a pool's: the place after its last member taken (a hint, not the truth)
# `<work_dir>/.groups/.over/<job>`: a pool job whose end the client took as final (a node
# failure, say) while its members were to start again elsewhere. Should that job come back
# and run on (its node thawed), its lanes take no member.
POOL_OVER = ".over"
# A pool's members leave no script of their own: they run in its one wrapper, each given its
# line of the params file; their task files are one file too, a document each.
POOL_WRAPPER = "wrapper.sh"
POOL_PARAMS = "params"
POOL_TASKS = "tasks.json"

# Here, on the client: `<state dir>/tasks/<task id>/` is where an older submitter kept what
# came back of a task (task_logs reads it still).
LOCAL_TASKS = "tasks"

TASK_LOGS = (STDOUT, STDERR)
SCHEDULER_LOGS = (JOB_OUT, JOB_ERR)
# What comes back of a finished task besides its outputs; the scheduler's files are kept
# only when they say something.
LOG_FILES = (*TASK_LOGS, *SCHEDULER_LOGS)
STAGED = (JOB_SCRIPT, TASK_FILE, UPSTREAM)
# What an earlier run of a task left in its directory, cleared before it starts again.
LEFTOVERS = (STATUS, STDOUT, STDERR, JOB_OUT, JOB_ERR, COMMAND, CANCEL)
# The wrapper's files in the task directory: never taken for the task's outputs when the task
# runs there.
WRAPPER_FILES = (JOB_SCRIPT, TASK_FILE, COMMAND, STDOUT, STDERR, STATUS, JOB_OUT, JOB_ERR)

# The names as the templates see them: `{{ files.status }}`, `{{ files.job_out }}`, ...
TEMPLATE_NAMES: dict[str, str | tuple[str, ...]] = {
    "job_script": JOB_SCRIPT,
    "task_file": TASK_FILE,
    "upstream": UPSTREAM,
    "command": COMMAND,
    "status": STATUS,
    "status_temp": STATUS_TEMP,
    "stdout": STDOUT,
    "stderr": STDERR,
    "job_out": JOB_OUT,
    "job_err": JOB_ERR,
    "cancel": CANCEL,
    "stopped": STOPPED,
    "wrapper_files": WRAPPER_FILES,
}

# The step scripts' placeholders: @STATUS@, @JOB_OUT@, ... and @LEFTOVERS@ (a bash word list).
_PLACEHOLDERS = {
    **{key.upper(): value for key, value in TEMPLATE_NAMES.items() if isinstance(value, str)},
    "ATTEMPT": ATTEMPT,
    "GROUPS": GROUPS,
    "MEMBERS": MEMBERS,
    "POOL_OVER": POOL_OVER,
    "LEFTOVERS": " ".join(LEFTOVERS),
}
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def fill(script: str) -> str:
    """A script with each @NAME@ placeholder replaced by that file's name; an unknown
    placeholder is a mistake in the script, refused at import."""

    def name(match: re.Match[str]) -> str:
        if match.group(1) not in _PLACEHOLDERS:
            raise KeyError(f"no task file is named {match.group(0)}")
        return _PLACEHOLDERS[match.group(1)]

    return _PLACEHOLDER.sub(name, script)


def over_dir(task_dir: str) -> str:
    """Where the marks of pool jobs that are over go, for the task directory `task_dir`."""
    return posixpath.join(posixpath.dirname(task_dir), GROUPS, POOL_OVER)


def over_marker(task_dir: str, job: str) -> str:
    """The mark, beside the task directory `task_dir`, that pool job `job` is over (the
    pool driver names it the same way: `/` in a job id as `_`)."""
    return posixpath.join(over_dir(task_dir), job.replace("/", "_"))


def attempt_file(token: str) -> str:
    """The name of an attempt's claim file."""
    return ATTEMPT + token


def on_host(directory: str, name: str) -> str:
    """A file's path in a task's (or a group's) directory on its host."""
    return f"{directory}/{name}"


def local_copy(state_dir: Path, task_id: str) -> Path:
    """Where an older submitter kept what came back of a task on this machine (a directory
    of files; task_logs keeps a task's logs in one file now)."""
    return state_dir / LOCAL_TASKS / task_id
