"""User values stay data: rendered scripts run by bash never execute what a value contains."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from submitter.config.project import load_project
from submitter.prepare import prepare_tasks
from submitter.schedulers.registry import NAMES
from tests.conftest import write

NASTY = "sp ace 'sq' \"dq\" $(touch CANARY1) `touch CANARY2` ; touch CANARY3 & $HOME \\ end"


def _tasks_file(tmp_path: Path, scheduler: str, work_dir: Path) -> Path:
    data = {
        "hosts": {
            "h": {
                "address": "nowhere.invalid",
                "scheduler": scheduler,
                "work_dir": str(work_dir),
                "paths": {str(tmp_path): str(work_dir / "proj dir $(touch CANARY4)")},
                "vars": {"account": NASTY},
            }
        },
        "tasks": [
            {
                "name": "name " + NASTY,
                "host": "h",
                "inputs": ["in put/" + "file $(touch CANARY5).txt"],
                "outputs": ["out put/result `touch CANARY6`.txt"],
                "env": {"NASTY": NASTY + "\nsecond line $(touch CANARY7)"},
                "resources": {"queue": NASTY, "account": NASTY},
                "directives": ["--comment=" + NASTY],
                "run": 'mkdir -p "out put"; printf "%s" "$NASTY" > "out put/result \\`touch CANARY6\\`.txt"\n'
                "printf '%s' \"$SUBMITTER_TASK_NAME\" > name.txt\n",
            }
        ],
    }
    return write(tmp_path / "tasks.yml", json.dumps(data))  # JSON is YAML


@pytest.mark.parametrize("scheduler", ["ssh", *NAMES])
def test_rendered_script_keeps_values_literal(tmp_path: Path, scheduler: str) -> None:
    project_dir = tmp_path / "project"
    work_dir = tmp_path / "work $(touch CANARY0) 'w'"
    write(project_dir / "in put" / "file $(touch CANARY5).txt", "input\n")
    task = prepare_tasks(load_project(_tasks_file(project_dir, scheduler, work_dir)))[0]

    run_dir = Path(task.run_dir)
    task_dir = Path(task.task_dir)
    task_dir.mkdir(parents=True)
    (task_dir / "job.sh").write_text(task.render().job_script)
    done = subprocess.run(
        ["bash", "job.sh"], cwd=task_dir, capture_output=True, text=True, timeout=30
    )

    status = json.loads((task_dir / "status").read_text())
    assert status["state"] == "completed", (done.stderr, (task_dir / "stderr").read_text())
    result = run_dir / "out put" / "result `touch CANARY6`.txt"
    assert result.read_text() == NASTY + "\nsecond line $(touch CANARY7)"
    assert (run_dir / "name.txt").read_text() == "name " + NASTY
    canaries = sorted(p.name for p in tmp_path.rglob("CANARY*"))
    assert canaries == [], f"a value was executed: {canaries}"


@pytest.mark.parametrize("scheduler", NAMES)
def test_directive_lines_stay_single_lines(tmp_path: Path, scheduler: str) -> None:
    task = prepare_tasks(
        load_project(_tasks_file(tmp_path, scheduler, tmp_path / "w")), check_inputs=False
    )[0]
    header = task.render().job_script.split("# submitter task")[0].splitlines()
    prefix = header[1].split()[0]  # the pack's directive prefix: #SBATCH, #PBS, #BSUB, #$
    assert prefix.startswith("#") and len(prefix) > 1
    assert all(line.startswith((prefix + " ", "#!")) for line in header), header


def test_newline_in_a_directive_value_is_rejected(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "hosts:\n  h: {address: x, scheduler: slurm}\ntasks:\n  - name: a\n    host: h\n    run: echo\n"
        '    resources: {queue: "normal\\n#SBATCH --uid=0"}\n',
    )
    result = cli("render", tasks, "--dry-run")
    assert result.code == 2
    assert f"{tasks}:7:" in result.err and "single line" in result.err


def test_host_account_with_line_break_fails_to_render(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        'hosts:\n  h: {address: x, scheduler: slurm, vars: {account: "a\\nrm -rf /"}}\n'
        "tasks:\n  - {name: a, host: h, run: echo}\n",
    )
    result = cli("render", tasks, "--dry-run")
    assert result.code == 2
    assert "line break" in result.err
