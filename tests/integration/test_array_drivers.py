"""The job array drivers of every scheduler's pack: their directives, and what each member
runs when started with the index variables its scheduler sets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from submitter.config.project import load_project
from submitter.prepare import PreparedTask, prepare_tasks
from submitter.render.compile import ArrayGroup, render_array
from submitter.schedulers.registry import batch_scheduler
from tests.conftest import SCHEDULER_HOSTS

GOLDEN = Path(__file__).parent.parent / "golden"


@pytest.fixture(scope="module")
def prepared() -> dict[str, PreparedTask]:
    project = load_project(GOLDEN / "tasks.yml")
    return {t.host.name: t for t in prepare_tasks(project, check_inputs=False)}


def _driver(task: PreparedTask, directory: Path, size: int) -> str:
    group = ArrayGroup("g1", "align+2", size, str(directory), str(directory / "members"))
    return render_array(task.spec, task.chain, group)


def _members(tmp_path: Path, count: int) -> list[Path]:
    """`count` task directories whose job.sh records what ran it, listed in a members file;
    the second member's line is empty (its start was given up)."""
    dirs = []
    for i in range(count):
        task_dir = tmp_path / f"task {i}"
        task_dir.mkdir()
        (task_dir / "job.sh").write_text(f'echo "ran {i}" > "$PWD/ran"\n')
        dirs.append(task_dir)
    lines = [str(d) if i != 1 else "" for i, d in enumerate(dirs)]
    (tmp_path / "members").write_text("\n".join(lines) + "\n")
    return dirs


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


DIRECTIVES = {
    "hpc-slurm": ["#SBATCH --array=0-2", "#SBATCH --job-name=align+2"],
    "hpc-pbs": ["#PBS -t 0-2", "#PBS -r n", "#PBS -N align+2", "#PBS -l nodes=1:ppn=4:gpus=1"],
    "hpc-pbspro": ["#PBS -J 0-2", "#PBS -r y", "#PBS -l select=1:ncpus=4:mem=8192MB:ngpus=1"],
    "hpc-lsf": ["#BSUB -J align+2[1-3]", "#BSUB -n 4", "#BSUB -o /arr/%I.out"],
    "hpc-sge": ["#$ -t 1-3", "#$ -N align+2", "#$ -o /arr/$TASK_ID.out", "#$ -pe smp 4"],
}


def test_every_scheduler_host_has_its_driver_directives_checked() -> None:
    assert set(DIRECTIVES) == {host for _, host in SCHEDULER_HOSTS}


@pytest.mark.parametrize(("host", "lines"), DIRECTIVES.items())
def test_driver_directives(prepared: dict[str, PreparedTask], host: str, lines: list[str]) -> None:
    script = _driver(prepared[host], Path("/arr"), 3).splitlines()
    for line in lines:
        assert line in script, f"{host}: {line!r} missing"
    assert not any(line.startswith("#PBS -t") for line in script if host != "hpc-pbs")
    assert not any(line.startswith("#PBS -J") for line in script if host != "hpc-pbspro")


@pytest.mark.parametrize(
    ("scheduler", "host", "variable"),
    [
        (name, host, variable)
        for name, host in SCHEDULER_HOSTS
        for variable in batch_scheduler(name).array_index_variables
    ],
)
def test_each_member_runs_its_own_task(
    prepared: dict[str, PreparedTask], tmp_path: Path, scheduler: str, host: str, variable: str
) -> None:
    """Whichever of its index variables the scheduler sets (PBS: PBS Pro's, Torque's, or SLURM's
    behind SLURM's Torque wrapper), numbered from its first index (LSF and Grid Engine: 1)."""
    first = batch_scheduler(scheduler).first_array_index
    dirs = _members(tmp_path, 3)
    script = _driver(prepared[host], tmp_path, 3)
    for i in (0, 2):
        result = _run(script, {variable: str(i + first)})
        assert result.returncode == 0, result.stderr
        assert (dirs[i] / "ran").read_text() == f"ran {i}\n"
    given_up = _run(script, {variable: str(1 + first)})
    assert given_up.returncode == 0 and not (dirs[1] / "ran").exists()


@pytest.mark.parametrize("host", [host for _, host in SCHEDULER_HOSTS])
def test_a_driver_without_an_index_runs_nothing(
    prepared: dict[str, PreparedTask], tmp_path: Path, host: str
) -> None:
    dirs = _members(tmp_path, 3)
    result = _run(_driver(prepared[host], tmp_path, 3), {})
    assert result.returncode == 1 and "submitter:" in result.stderr
    assert not any((d / "ran").exists() for d in dirs)


def test_a_pbs_pro_member_run_again_by_the_server_does_not_run_its_task_twice(
    prepared: dict[str, PreparedTask], tmp_path: Path
) -> None:
    """PBS Pro arrays are rerunnable (`-r y`, it refuses `-r n`): a member the server starts
    again under the same id leaves its task alone; a later array (a retry) runs it."""
    dirs = _members(tmp_path, 3)
    script = _driver(prepared["hpc-pbspro"], tmp_path, 3)
    member = {"PBS_ARRAY_INDEX": "0", "PBS_JOBID": "8[0].login"}
    assert _run(script, member).returncode == 0
    (dirs[0] / "ran").unlink()
    again = _run(script, member)
    assert again.returncode == 0 and "not run again" in again.stderr
    assert not (dirs[0] / "ran").exists()
    retried = _run(script, {"PBS_ARRAY_INDEX": "0", "PBS_JOBID": "9[0].login"})
    assert retried.returncode == 0 and (dirs[0] / "ran").read_text() == "ran 0\n"
