"""What a start sends of a task to its host: its files (script, task file, upstream list) and
the inputs that are not there already."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from submitter.paths import Transfer
from submitter.prepare import PreparedTask
from submitter.task_layout import JOB_SCRIPT, TASK_FILE, UPSTREAM


def task_files(
    task: PreparedTask, after_tasks: Sequence[tuple[str, str]], shared_wrapper: bool
) -> dict[str, str]:
    """The task's files by name: its script and task file, unless it runs in a
    `shared_wrapper` (a pool's, which has its task files; this machine's launcher's); for a
    task chained after upstream tasks' jobs, their list (`after_tasks`: name, task
    directory), for its wrapper to check."""
    files: dict[str, str] = {}
    if not shared_wrapper:
        rendered = task.render()
        files = {JOB_SCRIPT: rendered.job_script, TASK_FILE: rendered.task_file}
    if after_tasks:
        files[UPSTREAM] = "".join(f"{d}\n{n}\n" for n, d in after_tasks)
    return files


def inputs_to_send(task: PreparedTask, up_to_date: Collection[str]) -> list[Transfer]:
    """Inputs upstream tasks make on the host are linked there, unless those tasks were up to
    date: then their outputs are here, and the host may no longer have them."""
    earlier = any(up in up_to_date for up in task.definition.upstream)
    return [
        Transfer(i.local, i.remote)
        for i in task.inputs
        if i.copied and (i.declared not in task.linked_inputs or (earlier and i.local.exists()))
    ]
