"""Golden renders: every pack's output for a fixed tasks file, compared with stored files.

To regenerate after an intended template change:
    SUBMITTER_REGENERATE_GOLDEN=1 pytest tests/unit/test_golden.py
then review the diff of tests/golden/ before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from submitter.config.project import load_project
from submitter.prepare import prepare_tasks

GOLDEN = Path(__file__).parent.parent / "golden"
HOSTS = ["plain", "hpc-slurm", "hpc-pbs", "hpc-pbspro", "hpc-lsf", "hpc-sge"]


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    project = load_project(GOLDEN / "tasks.yml")
    return {t.host.name: t.rendered.job_script for t in prepare_tasks(project, check_inputs=False)}


@pytest.mark.parametrize("host", HOSTS)
def test_job_script_matches_golden_file(rendered: dict[str, str], host: str) -> None:
    expected_file = GOLDEN / f"{host}.job.sh"
    if os.environ.get("SUBMITTER_REGENERATE_GOLDEN"):
        expected_file.write_text(rendered[host])
    assert expected_file.exists(), (
        f"missing {expected_file}; regenerate: see this module's docstring"
    )
    assert rendered[host] == expected_file.read_text(), (
        f"{host}: render differs from {expected_file}; if intended, regenerate with "
        "SUBMITTER_REGENERATE_GOLDEN=1 pytest tests/unit/test_golden.py and review the diff"
    )


@pytest.mark.parametrize(
    ("host", "lines"),
    [
        (
            "hpc-slurm",
            [
                "#SBATCH --cpus-per-task=4",
                "#SBATCH --mem=8192M",
                "#SBATCH --time=02:00:00",
                "#SBATCH --partition=normal",
                "#SBATCH --account=proj123",
                "#SBATCH --gpus=1",
                "#SBATCH --comment=golden",
            ],
        ),
        (
            "hpc-pbs",
            [
                "#PBS -l nodes=1:ppn=4:gpus=1",
                "#PBS -l mem=8192mb",
                "#PBS -l walltime=02:00:00",
                "#PBS -q normal",
            ],
        ),
        ("hpc-pbspro", ["#PBS -l select=1:ncpus=4:mem=8192MB:ngpus=1"]),
        (
            "hpc-lsf",
            [
                "#BSUB -n 4",
                '#BSUB -R "span[hosts=1]"',
                "#BSUB -M 8192MB",
                "#BSUB -W 120",
                "#BSUB -q normal",
                '#BSUB -gpu "num=1"',
            ],
        ),
        (
            "hpc-sge",
            [
                "#$ -pe smp 4",
                "#$ -l h_rt=02:00:00",
                "#$ -l h_vmem=2048M",
                "#$ -l gpu=1",
                "#$ -q normal",
                "#$ -S /bin/bash",
            ],
        ),
    ],
)
def test_directives_follow_scheduler_facts(
    rendered: dict[str, str], host: str, lines: list[str]
) -> None:
    script = rendered[host].splitlines()
    for line in lines:
        assert line in script, f"{host}: {line!r} missing"


def test_pbs_user_directives_come_first(rendered: dict[str, str]) -> None:
    directives = [line for line in rendered["hpc-pbs"].splitlines() if line.startswith("#PBS")]
    assert directives[0] == "#PBS --comment=golden"


def test_slurm_run_dir_follows_path_mapping(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.yml"
    tasks.write_text(
        "hosts:\n  h: {address: a@b, scheduler: slurm, work_dir: /w, paths: {"
        + str(tmp_path)
        + ": /remote/proj}}\ntasks:\n  - {name: t, host: h, run: 'true'}\n"
    )
    task = prepare_tasks(load_project(tasks), check_inputs=False)[0]
    assert task.run_dir == "/remote/proj"
    assert task.task_dir == f"/w/{task.task_id}"
