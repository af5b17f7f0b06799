"""Each class of bad input: exit code 2, file:line:col in the message, nothing started."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import write

CASES = {
    "yaml_syntax": (
        "tasks:\n  - name: a\n    run: [unclosed\n",
        4,
        "YAML syntax error: expected ',' or ']', but got '<stream end>' (while parsing a "
        "flow sequence started at line 3, column 10)",
    ),
    "yaml_tab": ("tasks:\n\t- name: a\n", 2, "YAML syntax error"),
    "unknown_key": (
        "tasks:\n  - name: a\n    run: echo\n    resources: {wallime: 1h}\n",
        4,
        "unknown key 'wallime' in resources; did you mean 'walltime'?",
    ),
    "unknown_task_key": ("tasks:\n  - name: a\n    rnu: echo\n", 3, "did you mean 'run'?"),
    "bad_walltime": (
        "tasks:\n  - name: a\n    run: echo\n    resources:\n      walltime: 25:99\n",
        5,
        "resources.walltime",
    ),
    "bad_memory": (
        "tasks:\n  - name: a\n    run: echo\n    resources: {mem: 12 parsecs}\n",
        4,
        "resources.mem: '12 parsecs' is not a size",
    ),
    "bad_cores": (
        "tasks:\n  - name: a\n    run: echo\n    resources: {cores: 0}\n",
        4,
        "resources.cores: expected a number greater than 0",
    ),
    "unknown_host": (
        "hosts:\n  hpc: {address: x, scheduler: slurm}\ntasks:\n  - name: a\n    run: echo\n"
        "    host: hcp\n",
        4,
        "unknown host 'hcp' in task 'a'; did you mean 'hpc'?",
    ),
    "missing_run": (
        "tasks:\n  - name: a\n  - name: b\n    run: echo\n",
        2,
        "missing required key 'run'",
    ),
    "unknown_variable": (
        "tasks:\n  - name: 'a-{{ smaple }}'\n    for_each: {sample: [x]}\n    run: echo\n",
        2,
        "unknown variable 'smaple'",
    ),
    "absolute_unmapped_input": (
        "hosts:\n  h: {address: x}\ntasks:\n  - name: a\n    host: h\n"
        "    inputs: [/etc/hostname]\n    run: echo\n",
        4,
        "under none of the host's 'paths' prefixes",
    ),
    "over_limits": (
        "hosts:\n  h: {address: x, scheduler: slurm, limits: {cores: 2}}\ntasks:\n"
        "  - name: a\n    host: h\n    resources: {cores: 8}\n    run: echo\n",
        4,
        "cores 8 > 2",
    ),
    "missing_input": (
        "tasks:\n  - name: a\n    inputs: [nothere.txt]\n    run: echo\n",
        2,
        "input 'nothere.txt' does not exist",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_location(cli, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    text, line, message = CASES[case]
    tasks = write(tmp_path / "tasks.yml", text)
    result = cli("apply", tasks)
    assert result.code == 2, result.err
    assert re.search(rf"{re.escape(str(tasks))}:{line}:\d+: ", result.err), result.err
    assert message in result.err
    assert not (tmp_path / ".submitter").exists(), "nothing may be started or written"


def test_render_reports_the_same_errors(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", CASES["unknown_key"][0])
    result = cli("render", tasks, "--dry-run")
    assert result.code == 2
    assert f"{tasks}:4:" in result.err


def test_unknown_host_given_with_q(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: a, run: echo}\n")
    result = cli("render", tasks, "-q", "nowhere")
    assert result.code == 2
    assert "unknown host 'nowhere' given with -q" in result.err


def test_template_error_points_at_the_template(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pack = tmp_path / "packs" / "slurm" / "9"
    write(
        pack / "pack.yml",
        "name: slurm\nversion: '9.0'\nmin_submitter: '0.1.0'\ndescription: broken\n",
    )
    write(
        pack / "job.sh.j2",
        "#!/bin/bash\n#SBATCH --job-name={{ task.job_name }}\n#SBATCH {{ task.nope }}\n",
    )
    tasks = write(
        tmp_path / "tasks.yml",
        "hosts:\n  h: {address: x, scheduler: slurm, pack: slurm@9}\ntasks:\n  - {name: a, host: h, run: echo}\n",
    )
    result = cli("render", tasks, "--dry-run")
    assert result.code == 2
    assert f"{pack / 'job.sh.j2'}:3: template error in pack slurm@9.0" in result.err
    assert "nope" in result.err


def test_several_errors_reported_together(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml", "tasks:\n  - name: a\n  - name: b\n    run: x\n    cores: 2\n"
    )
    result = cli("apply", tasks)
    assert result.code == 2
    assert ":2:" in result.err and ":5:" in result.err


def test_bad_command_line_is_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("apply").code == 2
    assert cli("apply", "x.yml", "-J", "0").code == 2
    assert cli("logs", "-C", "/nonexistent", "x").code == 2


def test_every_mistake_of_a_file_is_reported_in_one_run(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "defaults:\n  host: locl\n  resources: {cpus: 2}\ntasks:\n  - name: fit\n    run: x\n"
        "    outptus: [m.pkl]\n  - name: 'p-{{ kind }}'\n    for_each: {kind: [a]}\n    run: echo {{ knid }}\n",
    )
    result = cli("apply", tasks)
    assert result.code == 2
    assert (
        f"{tasks}:3:15: unknown key 'cpus' in defaults.resources; did you mean 'cores'?"
        in result.err
    )
    assert f"{tasks}:2:9: unknown host 'locl' in defaults.host; did you mean 'local'?" in result.err
    assert (
        f"{tasks}:7:5: task 'fit': unknown key 'outptus' in the task; did you mean 'outputs'?"
        in result.err
    )
    assert f"{tasks}:10:" in result.err and "unknown variable 'knid'" in result.err
