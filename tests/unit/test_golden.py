"""Golden renders: every pack's output for a fixed tasks file, compared with stored files.

Each host of tests/golden/tasks.yml gives `<host>.job.sh` and `<host>.task.json`, and, where
its pack submits job arrays and packed jobs, `<host>.array.sh` and `<host>.packed.sh`.
To regenerate after an intended template change:
    SUBMITTER_REGENERATE_GOLDEN=1 pytest tests/unit
then review the diff of tests/golden/ before committing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from submitter import __version__
from submitter.config.project import load_project
from submitter.prepare import PreparedTask, prepare_tasks
from submitter.render.compile import (
    ArrayGroup,
    has_array_template,
    has_packed_template,
    render_array,
    render_packed,
)
from submitter.task_layout import over_dir
from tests.conftest import matches_golden

GOLDEN = Path(__file__).parent.parent / "golden"
# Every host the tasks file defines (`local` always exists; no task runs there).
HOSTS = sorted(set(load_project(GOLDEN / "tasks.yml").hosts) - {"local"})
# The version changes with every release: task.json goldens hold this word in its place.
_VERSION = f'"submitter_version": "{__version__}"'
_ANY_VERSION = '"submitter_version": "(the version rendering)"'


def golden_files(task: PreparedTask) -> dict[str, str]:
    """What a task's pack renders, by golden file suffix: the job script, the task file and,
    where the pack has them, the drivers of a job array of three and a pool of three
    run two at a time (in a fixed group directory)."""
    rendered = task.render()
    files = {
        "job.sh": rendered.job_script,
        "task.json": rendered.task_file.replace(_VERSION, _ANY_VERSION),
    }
    directory = "/scratch/alice/submitter/.groups/g1"
    chain = list(task.chain)
    if has_array_template(chain):
        group = ArrayGroup("g1", "align+2", 3, directory, f"{directory}/members")
        files["array.sh"] = render_array(task.spec, chain, group)
    if has_packed_template(chain):
        group = ArrayGroup(
            "g1",
            "align+2",
            3,
            directory,
            f"{directory}/members",
            2,
            60,
            f"{directory}/next",
            over_dir=over_dir(task.task_dir),
        )
        job = task.spec.resources.model_copy(
            update={"cores": 8, "mem": 16 * 1024**3, "walltime": 4 * 3600}
        )
        files["packed.sh"] = render_packed(task.spec, chain, group, job)
    return files


@pytest.fixture(scope="module")
def prepared() -> dict[str, PreparedTask]:
    project = load_project(GOLDEN / "tasks.yml")
    return {t.host.name: t for t in prepare_tasks(project, check_inputs=False)}


@pytest.fixture(scope="module")
def rendered(prepared: dict[str, PreparedTask]) -> dict[str, str]:
    return {name: task.render().job_script for name, task in prepared.items()}


@pytest.mark.parametrize("host", HOSTS)
def test_renders_match_golden_files(prepared: dict[str, PreparedTask], host: str) -> None:
    for suffix, text in golden_files(prepared[host]).items():
        matches_golden(f"{host}.{suffix}", text)


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
