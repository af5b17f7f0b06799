"""A local task as the launcher runs it: its values for a wrapper function alike tasks share."""

from __future__ import annotations

from pathlib import Path

from submitter.config.project import load_project
from submitter.grouping import Group, Packing, group_driver
from submitter.prepare import PreparedTask, prepare_tasks
from submitter.task_layout import POOL_PARAMS
from tests.conftest import write

TASKS = """\
tasks:
  - {name: 't-{{ i }}', for_each: {i: [1, 2]}, outputs: ['{{ i }}.txt'], run: 'echo {{ i }} > {{ i }}.txt'}
  - {name: long, resources: {walltime: 5m}, run: "echo it's long"}
"""


def _prepared(tmp_path: Path, tasks: str = TASKS, host: str = "") -> dict[str, PreparedTask]:
    project = load_project(write(tmp_path / "tasks.yml", host + tasks))
    return {t.name: t for t in prepare_tasks(project, {})}


def test_alike_tasks_share_one_wrapper_and_differ_in_their_values(tmp_path: Path) -> None:
    tasks = _prepared(tmp_path)
    one, two, long = (tasks[n].wrapped for n in ("t-1", "t-2", "long"))
    assert one is not None and two is not None and long is not None
    assert one.wrapper is two.wrapper, "rendered once for the tasks alike"
    assert long.wrapper.function != one.wrapper.function, "its walltime is in its wrapper"
    assert one.wrapper.definition.startswith("# submitter shared wrapper (pack wrapper@")
    assert f"\n{one.wrapper.function}() {{\n" in one.wrapper.definition
    assert "\n" not in one.params and "1.txt" in one.params and "2.txt" in two.params
    assert one.sha256 != two.sha256
    assert tasks["t-1"].submission == (one.pack, one.sha256)


def test_a_pack_whose_job_script_is_more_than_the_wrapper_runs_its_own_script(
    tmp_path: Path,
) -> None:
    pack = tmp_path / "packs" / "mine" / "1"
    write(
        pack / "pack.yml",
        "name: mine\nversion: '1.0'\nmin_submitter: '0.1.0'\ndescription: x\nextends: wrapper@1\n",
    )
    write(pack / "job.sh.j2", '#!/bin/bash\nexport EXTRA=1\n{% include "wrapper.sh.j2" %}\n')
    tasks = _prepared(tmp_path, host="hosts:\n  local: {scheduler: local, pack: mine}\n")
    task = tasks["t-1"]
    assert task.wrapped is None
    assert task.submission == (task.digest.pack, task.digest.sha256)


def test_a_task_of_a_remote_host_is_not_wrapped(tmp_path: Path) -> None:
    host = "hosts:\n  far: {scheduler: ssh, address: example.org, work_dir: /w}\ndefaults: {host: far}\n"
    assert all(t.wrapped is None for t in _prepared(tmp_path, host=host).values())


def test_a_plain_bash_command_runs_in_the_wrappers_subshell(tmp_path: Path) -> None:
    """A bash `run` text that uses nothing telling a subshell from a new bash runs without a
    bash start; one that does, or that another interpreter runs, runs its own."""
    tasks = _prepared(
        tmp_path,
        "tasks:\n"
        "  - {name: plain, run: 'mkdir -p out; ls /usr/local >/dev/null; echo ok > out/a'}\n"
        "  - {name: pid, run: 'echo $$ > pid'}\n"
        "  - {name: fn, run: 'f() { local x=1; return 0; }; f'}\n"
        "  - {name: py, interpreter: python3, run: 'print(1)'}\n"
        "  - {name: path, env: {PATH: /opt/bin}, run: 'echo'}\n",
    )
    in_subshell = {n: "submitter_in_subshell=1" in (t.wrapped.params if t.wrapped else "")
                   for n, t in tasks.items()}  # fmt: skip
    assert in_subshell == {"plain": True, "pid": False, "fn": False, "py": False, "path": False}


def test_the_wrappers_functions_are_defined_once_beside_it(tmp_path: Path) -> None:
    """Read once per launcher (or pool job), not defined again by every task's call."""
    wrapper = _prepared(tmp_path)["t-1"].wrapped
    assert wrapper is not None
    definition = wrapper.wrapper.definition
    function = definition.index(f"\n{wrapper.wrapper.function}() {{\n")
    assert 0 < definition.index("\nsubmitter_status() {\n") < function
    assert definition.count("submitter_status() {") == 1


def test_a_pools_plain_bash_members_run_in_their_wrappers_subshell(tmp_path: Path) -> None:
    """A pool's params file gives each member its values on a line: the same rule as the
    launcher's decides which of them skips the bash start."""
    host = "hosts:\n  hpc: {scheduler: slurm, address: example.org, work_dir: /w}\ndefaults: {host: hpc}\n"
    tasks = _prepared(
        tmp_path,
        "tasks:\n  - {name: plain, run: 'echo ok > a'}\n  - {name: pid, run: 'echo $$ > pid'}\n",
        host,
    )
    group = Group([tasks["plain"], tasks["pid"]], Packing(2, 2, 1))
    _, extras = group_driver(group, tmp_path)
    (params,) = [t.local for t in extras if t.remote.endswith("/" + POOL_PARAMS)]
    plain, pid = params.read_text().splitlines()
    assert plain.endswith("; submitter_in_subshell=1") and "submitter_in_subshell" not in pid
