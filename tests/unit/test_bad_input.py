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
    "yaml_braces_in_a_flow_list": (
        "tasks:\n  - name: a\n    run: echo\n    outputs: [out/{{ name }}.txt]\n",
        4,
        "inside [ ] or { }, a value holding {{ }} must be quoted: ['out/{{ i }}.txt']",
    ),
    "yaml_braces_first": (
        "tasks:\n  - name: a\n    run: echo\n    workdir: {{ name }}/x\n",
        4,
        'a value starting with {{ must be quoted, as "{{ var }}.txt"',
    ),
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
        "6:11",
        "unknown host 'hcp' in task 'a'; did you mean 'hpc'?",
    ),
    "unknown_host_of_for_each_task": (
        "tasks:\n  - name: 'a-{{ i }}'\n    for_each: {i: [1, 2]}\n    host: hcp\n    run: echo\n",
        "4:11",
        "unknown host 'hcp' in task 'a-1'",
    ),
    "name_number": (
        "tasks:\n  - name: 5\n    run: echo\n",
        "2:11",
        'name: expected a string, got 5; quote it if you mean the text, as "5"',
    ),
    "name_boolean": (
        "tasks:\n  - name: true\n    run: echo\n",
        "2:11",
        'name: expected a string, got true; quote it if you mean the text, as "true"',
    ),
    "name_on_two_lines": (
        'tasks:\n  - name: "a\\nb"\n    run: echo\n',
        "2:11",
        "task '#1': name: must be a single line",
    ),
    "control_character": (
        "tasks:\n  - {name: a, run: echo}\n\x00\n",
        "3:1",
        "YAML syntax error: character U+0000 is not allowed in YAML",
    ),
    "name_list": (
        "tasks:\n  - name: [a]\n    run: echo\n",
        "2:11",
        "name: expected a string, got a list",
    ),
    "mem_without_unit": (
        "tasks:\n  - name: a\n    run: echo\n    resources: {mem: 4096}\n",
        "4:22",
        "resources.mem: 4096 has no unit; give a unit, as 4G or 4096M",
    ),
    "mem_text_without_unit": (
        "tasks:\n  - name: a\n    run: echo\n    resources: {mem: '4096'}\n",
        "4:22",
        "resources.mem: '4096' has no unit; give a unit, as 4G or 4096M",
    ),
    "limits_mem_without_unit": (
        "hosts:\n  h:\n    address: x\n    limits: {mem: 4096}\ntasks:\n  - {name: a, host: h, run: echo}\n",
        "4:19",
        "hosts.h.limits.mem: 4096 has no unit; give a unit, as 4G or 4096M",
    ),
    "cores_boolean": (
        "tasks:\n  - name: a\n    run: echo\n    resources: {cores: true}\n",
        "4:24",
        "resources.cores: expected a whole number, got true",
    ),
    "gpus_boolean": (
        "defaults:\n  resources: {gpus: false}\ntasks:\n  - {name: a, run: echo}\n",
        "2:21",
        "defaults.resources.gpus: expected a whole number, got false",
    ),
    "max_running_boolean": (
        "hosts:\n  h: {address: x, max_running: true}\ntasks:\n  - {name: a, host: h, run: echo}\n",
        "2:32",
        "hosts.h.max_running: expected a whole number, got true",
    ),
    "port_boolean": (
        "hosts:\n  h: {address: x, port: true}\ntasks:\n  - {name: a, host: h, run: echo}\n",
        "2:25",
        "hosts.h.port: expected a whole number, got true",
    ),
    "limits_cores_boolean": (
        "hosts:\n  h: {address: x, limits: {cores: true}}\ntasks:\n  - {name: a, host: h, run: echo}\n",
        "2:35",
        "hosts.h.limits.cores: expected a whole number, got true",
    ),
    "relative_work_dir": (
        "hosts:\n  h: {address: x, work_dir: scratch/x}\ntasks:\n  - {name: a, host: h, run: echo}\n",
        "2:29",
        "hosts.h.work_dir: must be an absolute path or start with ~/ (the host's home), "
        "got 'scratch/x'",
    ),
    "output_leaving_run_dir": (
        "tasks:\n  - name: a\n    run: echo\n    outputs: [../x.txt]\n",
        "4:15",
        "outputs.0: '../x.txt' leaves the run directory",
    ),
    "output_leaving_run_dir_through_a_subdirectory": (
        "tasks:\n  - name: a\n    run: echo\n    outputs: [ok.txt, results/../../x]\n",
        "4:23",
        "outputs.1: 'results/../../x' leaves the run directory",
    ),
    "input_leaving_run_dir": (
        "tasks:\n  - name: a\n    run: echo\n    inputs: [../x.txt]\n",
        "4:14",
        "inputs.0: '../x.txt' leaves the run directory",
    ),
    "glob_output_with_dot_dot": (
        "tasks:\n  - name: a\n    run: echo\n    outputs: [ok.txt, 'out/*/../x.txt']\n",
        "4:23",
        "outputs.1: 'out/*/../x.txt': a glob pattern may not contain '..'",
    ),
    "glob_output_leaving_run_dir": (
        "tasks:\n  - name: a\n    run: echo\n    outputs: ['../*.txt']\n",
        "4:15",
        "outputs.0: '../*.txt' leaves the run directory",
    ),
    "glob_output_with_a_partial_double_star": (
        "tasks:\n  - name: a\n    run: echo\n    outputs: ['plots/a**/*.png']\n",
        "4:15",
        "outputs.0: 'plots/a**/*.png': '**' must be a whole path component",
    ),
    "empty_output": (
        "tasks:\n  - name: a\n    run: echo\n    outputs: ['']\n",
        "4:15",
        "outputs.0: paths must not be empty",
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
    "pbs_flavor_typo": (
        "hosts:\n  h: {address: x, scheduler: pbs, pbs_flavour: pro}\ntasks:\n"
        "  - {name: a, host: h, run: echo}\n",
        "2:35",
        "unknown key 'pbs_flavour' in hosts.h; did you mean 'pbs_flavor'?",
    ),
    "pbs_flavor_value": (
        "hosts:\n  h: {address: x, scheduler: pbs, pbs_flavor: openpbs}\ntasks:\n"
        "  - {name: a, host: h, run: echo}\n",
        "2:47",
        "hosts.h.pbs_flavor: expected one of pro, torque, got 'openpbs'",
    ),
    "pbs_flavor_not_pbs": (
        "hosts:\n  h: {address: x, scheduler: slurm, pbs_flavor: pro}\ntasks:\n"
        "  - {name: a, host: h, run: echo}\n",
        2,
        "pbs_flavor is for hosts with scheduler: pbs, not slurm",
    ),
    "missing_input": (
        "tasks:\n  - name: a\n    inputs: [nothere.txt]\n    run: echo\n",
        2,
        "input 'nothere.txt' does not exist",
    ),
    "unknown_retry_cause": (
        "tasks:\n  - name: a\n    run: echo\n    retries: 2\n    retry_on: [timeout, tmeout]\n",
        "5:25",
        "task 'a': retry_on.1: unknown cause 'tmeout'; did you mean 'timeout'? (expected one of "
        "timeout, oom, node_fail, lost, preempted, or an exit code 1-255)",
    ),
    "unknown_retry_cause_in_defaults": (
        "defaults:\n  retry_on:\n    - node_fial\ntasks:\n  - name: a\n    run: echo\n",
        "3:7",
        "defaults.retry_on.0: unknown cause 'node_fial'; did you mean 'node_fail'?",
    ),
    "retry_exit_code_out_of_range": (
        "tasks:\n  - name: a\n    run: echo\n    retry_on: [300]\n",
        "4:16",
        "retry_on.0: exit code 300 is not between 1 and 255",
    ),
    "negative_retries": (
        "tasks:\n  - name: a\n    run: echo\n    retries: -1\n",
        "4:14",
        "retries: expected a number of at least 0",
    ),
    "unknown_escalated_resource": (
        "tasks:\n  - name: a\n    run: echo\n    escalate: {memory: 2}\n",
        4,
        "unknown key 'memory' in escalate; did you mean 'mem'?",
    ),
    "escalate_factor_below_one": (
        "tasks:\n  - name: a\n    run: echo\n    escalate: {walltime: 0.5}\n",
        "4:26",
        "escalate.walltime: expected a factor greater than 1 and at most 100, got 0.5",
    ),
    **{
        f"escalate_factor_{label}": (
            f"tasks:\n  - name: a\n    run: echo\n    escalate: {{mem: {factor}}}\n",
            "4:21",
            f"escalate.mem: expected a factor greater than 1 and at most 100, got {shown}",
        )
        for label, factor, shown in [
            ("huge", "1e308", "1e+308"),
            ("infinite", ".inf", "inf"),
            ("minus_infinite", "-.inf", "-inf"),
            ("nan", ".nan", "nan"),
            ("nan_as_text", "nan", "'nan'"),
            ("negative", "-2", "-2"),
            ("zero", "0", "0"),
            ("one", "1", "1"),
            ("over_the_bound", "101", "101"),
            ("beyond_a_float", "1" + "0" * 400, "1" + "0" * 29 + "..." + "0" * 5),
        ]
    },
    "escalate_walltime_without_timeout": (
        "tasks:\n  - name: a\n    run: echo\n    retries: 1\n    retry_on: [75]\n"
        "    escalate: {walltime: 2}\n",
        "5:15",
        "task 'a': retry_on does not list timeout, yet escalate.walltime (at ",
    ),
    "escalate_mem_without_oom_in_defaults": (
        "defaults:\n  retries: 1\n  retry_on: [node_fail]\n  escalate: {mem: 2}\n"
        "tasks:\n  - {name: a, run: echo}\n  - {name: b, run: echo}\n",
        "3:13",
        "defaults: retry_on does not list oom, yet escalate.mem (at ",
    ),
    "escalate_mem_in_a_task_without_oom_in_defaults": (
        "defaults:\n  retries: 1\n  retry_on: [node_fail]\n"
        "tasks:\n  - {name: a, run: echo, escalate: {walltime: 2, mem: 3}}\n",
        "3:13",
        "task 'a': retry_on does not list oom, yet escalate.mem (at ",
    ),
    "after_a_number": (
        "tasks:\n  - {name: a, run: echo}\n  - name: b\n    run: echo\n    after: 123\n",
        "5:12",
        "task 'b': after: expected a task name or a list of task names, got 123; quote it if "
        'you mean the text, as "123"',
    ),
    "bare_input_leaving_run_dir": (
        "tasks:\n  - name: a\n    run: echo\n    inputs: ../x.txt\n",
        "4:13",
        "inputs.0: '../x.txt' leaves the run directory",
    ),
    # Sizes and durations past any machine are refused rather than overflowing later.
    "mem_beyond_any_machine": (
        "tasks:\n  - name: a\n    run: echo\n    resources: {mem: 1000000000000000G}\n",
        "4:22",
        "resources.mem: '1000000000000000G' is more than the largest size accepted, 1024T",
    ),
    "mem_beyond_a_float": (
        f"tasks:\n  - name: a\n    run: echo\n    resources: {{mem: 1{'0' * 400}G}}\n",
        "4:22",
        "is more than the largest size accepted, 1024T",
    ),
    "walltime_of_a_billion_hours": (
        "tasks:\n  - name: a\n    run: echo\n    resources: {walltime: '1000000000:00:00'}\n",
        "4:27",
        "resources.walltime: '1000000000:00:00' is longer than the longest duration accepted, "
        "3650 days",
    ),
    "walltime_beyond_a_float": (
        f"tasks:\n  - name: a\n    run: echo\n    resources: {{walltime: 1{'0' * 400}s}}\n",
        "4:27",
        "is longer than the longest duration accepted, 3650 days",
    ),
    "walltime_seconds_beyond_a_float": (
        f"tasks:\n  - name: a\n    run: echo\n    resources: {{walltime: 1{'0' * 400}}}\n",
        "4:27",
        "is longer than the longest duration accepted, 3650 days",
    ),
    "retry_delay_of_a_billion_hours": (
        "tasks:\n  - name: a\n    run: echo\n    retry_delay: 1000000000h\n",
        "4:18",
        "retry_delay: '1000000000h' is longer than the longest duration accepted, 3650 days",
    ),
    "cores_beyond_any_machine": (
        f"tasks:\n  - name: a\n    run: echo\n    resources: {{cores: 1{'0' * 400}}}\n",
        "4:24",
        "resources.cores: expected a number of at most 1000000",
    ),
    "for_each_over_max_tasks": (
        "max_tasks: 5\ntasks:\n  - name: 'a-{{ i }}-{{ j }}'\n    for_each: {i: [1, 2, 3], j: [x, y]}\n"
        "    run: echo\n",
        "4:15",
        "task 'a-{{ i }}-{{ j }}': for_each makes 6 tasks (3 x 2), more than max_tasks: 5",
    ),
    "max_tasks_not_a_count": (
        "max_tasks: many\ntasks:\n  - {name: a, run: echo}\n",
        "1:12",
        "max_tasks: expected an integer, got 'many'",
    ),
}


# Inputs are only looked for by apply: render shows what would be sent before they exist.
APPLY_ONLY = {"missing_input"}
COMMANDS = {"apply": ("apply",), "render": ("render", "--dry-run")}


def _where(place: int | str) -> str:
    """`line` or `line:col` as a pattern for the location after the file name."""
    return str(place) if ":" in str(place) else rf"{place}:\d+"


def _assert_nothing_happened(project: Path, *kept: Path) -> None:
    left = set(project.iterdir()) - set(kept)
    assert not left, f"nothing may be started or written, found {sorted(left)}"


@pytest.mark.parametrize(
    ("case", "command"),
    [(c, m) for c in sorted(CASES) for m in COMMANDS if not (c in APPLY_ONLY and m == "render")],
)
def test_bad_input_exits_2_with_location(cli, tmp_path: Path, case: str, command: str) -> None:  # type: ignore[no-untyped-def]
    text, place, message = CASES[case]
    tasks = write(tmp_path / "tasks.yml", text)
    result = cli(*COMMANDS[command], tasks)
    assert result.code == 2, result.err
    assert re.search(rf"^error: {re.escape(str(tasks))}:{_where(place)}: ", result.err, re.M), (
        result.err
    )
    assert message in result.err
    assert "Traceback" not in result.err
    _assert_nothing_happened(tmp_path, tasks)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_tasks_file_that_is_not_utf8(cli, tmp_path: Path, command: str) -> None:  # type: ignore[no-untyped-def]
    tasks = tmp_path / "tasks.yml"
    tasks.write_bytes(b"tasks:\n  - name: caf\xe9\n    run: x\n")
    result = cli(*COMMANDS[command], tasks)
    assert result.code == 2, result.err
    assert (
        f"error: {tasks}:2:14: the file is not UTF-8 text (byte 0xe9 cannot be read); "
        "save it as UTF-8" in result.err
    )
    _assert_nothing_happened(tmp_path, tasks)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_tasks_file_that_does_not_exist(cli, tmp_path: Path, command: str) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "tasks.yml"
    result = cli(*COMMANDS[command], missing)
    assert result.code == 2, result.err
    assert result.err == f"error: {missing}: no such file\n"
    _assert_nothing_happened(tmp_path)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_directory_given_as_tasks_file(cli, tmp_path: Path, command: str) -> None:  # type: ignore[no-untyped-def]
    inside = write(tmp_path / "tasks.yml", "tasks:\n  - {name: a, run: echo}\n")
    result = cli(*COMMANDS[command], tmp_path)
    assert result.code == 2, result.err
    assert (
        result.err
        == f"error: {tmp_path}: is a directory, not a tasks file; did you mean {inside}?\n"
    )
    _assert_nothing_happened(tmp_path, inside)


def test_numbers_are_text_where_text_is_expected(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "hosts:\n  h: {address: x, scheduler: slurm}\ntasks:\n  - name: a\n    host: h\n"
        "    run: echo\n    resources: {queue: 5, account: 123}\n    directives: [7]\n",
    )
    result = cli("render", "--dry-run", tasks)
    assert result.code == 0, result.err
    assert "#SBATCH --partition=5" in result.out


def test_sizes_with_units_and_substituted_numbers_are_accepted(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "hosts:\n  h: {address: x, work_dir: ~/w, limits: {mem: 8G, cores: 4}}\ntasks:\n"
        "  - name: 'a-{{ n }}'\n    for_each: {n: [1, 2]}\n    host: h\n    run: echo\n"
        "    resources: {cores: '{{ n }}', mem: 4096M}\n",
    )
    result = cli("render", "--dry-run", tasks)
    assert result.code == 0, result.err


@pytest.mark.parametrize("pattern", ["r?.txt", "r[12].txt", "results/*/x", "plots/**/*.png"])
def test_glob_patterns_are_shown_as_written_by_render(cli, tmp_path: Path, pattern: str) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml", f"tasks:\n  - name: a\n    run: echo\n    outputs: ['{pattern}']\n"
    )
    result = cli("render", "--dry-run", tasks)
    assert result.code == 0, result.err
    assert f'"outputs": [\n    "{pattern}"\n  ]' in result.out
    _assert_nothing_happened(tmp_path, tasks)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_two_tasks_declaring_the_same_output(cli, tmp_path: Path, command: str) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: a\n    run: echo\n    outputs: [a.txt]\n"
        "  - name: b\n    run: echo\n    outputs: [b.txt, ./a.txt]\n",
    )
    result = cli(*COMMANDS[command], tasks)
    assert result.code == 2, result.err
    assert (
        f"error: {tasks}:7:22: task 'b': output './a.txt' is also an output of task 'a' "
        f"(at {tasks}:4:15); each file can be the output of one task only"
    ) in result.err
    _assert_nothing_happened(tmp_path, tasks)


def test_same_output_as_an_absolute_path(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        f"tasks:\n  - name: a\n    run: echo\n    outputs: [r/a.txt]\n"
        f"  - name: b\n    run: echo\n    outputs: ['{tmp_path}/r/./a.txt']\n",
    )
    result = cli("apply", tasks)
    assert result.code == 2, result.err
    assert f"{tasks}:7:15: task 'b': output " in result.err
    assert "is also an output of task 'a'" in result.err


def test_for_each_task_with_one_output_for_all(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 'a-{{ i }}'\n    for_each: {i: [1, 2]}\n    run: echo\n"
        "    outputs: [out.txt]\n",
    )
    result = cli("render", "--dry-run", tasks)
    assert result.code == 2, result.err
    assert (
        f"{tasks}:5:15: task 'a-2': output 'out.txt' is also an output of task 'a-1' "
        f"(at {tasks}:5:15)"
    ) in result.err
    assert "use {{ var }} in the outputs of a for_each task" in result.err


def _tasks_file_here(directory: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    monkeypatch.chdir(directory)
    return write(directory / "tasks.yml", text)


@pytest.mark.parametrize("command", ["check-host", "setup-host"])
def test_host_commands_report_a_broken_tasks_file_here(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    tasks = _tasks_file_here(
        tmp_path,
        monkeypatch,
        "hosts:\n  far: {address: alice@127.0.0.1, prot: 1}\ntasks:\n  - {name: a, run: echo}\n",
    )
    result = cli(command, "far")
    assert result.code == 2, result.err
    assert (
        f"error: {tasks}:2:35: unknown key 'prot' in hosts.far; did you mean 'port'?" in result.err
    )
    _assert_nothing_happened(tmp_path, tasks)


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


def test_an_escalation_in_defaults_that_is_never_used_is_reported_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", CASES["escalate_mem_without_oom_in_defaults"][0])
    result = cli("render", "--dry-run", tasks)
    assert result.code == 2
    assert result.err.count("retry_on does not list oom") == 1, result.err
