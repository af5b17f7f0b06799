"""Job arrays on the docker clusters: many tasks, one submission, each task its own life.

SLURM, OpenPBS (`pbs`) and the LSF test shim run every test. The `torque` cluster is SLURM's
Torque wrapper, which cannot watch or kill one member of an array (see
tests/fixtures/schedulers/README.md): there, submitter is shown to recognise the wrapper and
send one job per task, and the PBS pack's driver to run each member's task under it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from submitter.config.models import Resources
from submitter.config.project import load_project
from submitter.prepare import prepare_tasks
from submitter.render.compile import ArrayGroup, render_array
from submitter.schedulers.base import SiteLimits
from submitter.schedulers.pbs import Pbs
from tests.cluster.conftest import wait_until
from tests.cluster.test_faults import (
    _applying,
    _assert_completed,
    _assert_each_ran_once,
    _counted,
    _shared_dir,
    _wait_running,
)
from tests.conftest import count_attempts, write

ARRAY_HOSTS = ["slurm", "pbs", "lsf", "sge"]
# The variable holding a member's index inside the job, and submitter's index of that member
INDEX = {
    "slurm": ("SLURM_ARRAY_TASK_ID", 0),
    "pbs": ("PBS_ARRAY_INDEX", 0),
    "lsf": ("LSB_JOBINDEX", 1),
    "sge": ("SGE_TASK_ID", 1),
}
# `123_4` (SLURM), `123[4].login` (OpenPBS), `123[4]` (LSF) or `123.4` (Grid Engine): array
# id, member index as the scheduler numbers it
_MEMBER = re.compile(r"^(\d+)(?:_(\d+)|\[(\d+)\](?:\.\S+)?|\.(\d+))$")


def _tasks_file(project: Path, host: dict[str, Any], tasks: list[dict[str, Any]]) -> Path:
    """Short alike tasks would be packed: max_per_job 1 keeps these tests about arrays."""
    host = {"max_per_job": 1, **host}
    return write(
        project / "tasks.yml",
        json.dumps({"hosts": {"h": host}, "defaults": {"host": "h"}, "tasks": tasks}),
    )


def _states(cli, project: Path) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    rows = json.loads(cli("status", "--json", "-C", project).out)
    return {row["name"]: row for row in rows}


def _member(job_id: str) -> tuple[str, int] | None:
    match = _MEMBER.match(job_id)
    if match is None:
        return None
    return match.group(1), int(match.group(2) or match.group(3) or match.group(4))


def _arrays(jobs: dict[str, str]) -> dict[str, tuple[str, int] | None]:
    return {name: _member(job) for name, job in jobs.items()}


def _last_jobs(cli, project: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: row["attempts"][-1]["job_id"] for name, row in _states(cli, project).items()}


def _wait_settled(cli, project: Path, timeout: float) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    states = _states(cli, project)
    while time.monotonic() < deadline and {s["state"] for s in states.values()} & {
        "running",
        "queued",
        "submitted",
    }:
        time.sleep(1)
        states = _states(cli, project)
    return states


@pytest.mark.parametrize("host", ARRAY_HOSTS)
def test_tasks_alike_go_as_one_job_array(cli, tmp_path: Path, cluster_hosts, host: str) -> None:  # type: ignore[no-untyped-def]
    variable, first = INDEX[host]
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[host],
        [
            {
                "name": "a-{{ i }}",
                "for_each": {"i": list(range(6))},
                "outputs": ["out/{{ i }}.txt"],
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
                "run": f'mkdir -p out; echo "{{{{ i }}}} ${variable}" > out/{{{{ i }}}}.txt\n',
            },
            {"name": "other", "resources": {"cores": 2, "mem": "60M"}, "run": "echo alone\n"},
        ],
    )
    result = cli("apply", tasks, "--json")
    assert result.code == 0, result.err
    members = _arrays(_last_jobs(cli, tmp_path))
    assert members["other"] is None, "a task with other resources is a job of its own"
    assert len({members[f"a-{i}"][0] for i in range(6)}) == 1, members  # type: ignore[index]
    assert sorted(members[f"a-{i}"][1] for i in range(6)) == [i + first for i in range(6)]  # type: ignore[index]
    for i in range(6):
        number, index = (tmp_path / "out" / f"{i}.txt").read_text().split()
        assert number == str(i) and int(index) == members[f"a-{i}"][1], members  # type: ignore[index]
    assert json.loads(result.out)["transport"]["h"]["commands"] <= 12
    assert count_attempts(tmp_path) == 7


@pytest.mark.parametrize("host", ARRAY_HOSTS)
def test_a_failed_member_fails_alone_and_reapply_retries_only_it(
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, host: str
) -> None:  # type: ignore[no-untyped-def]
    shared = _shared_dir(cluster_secrets, f"array-retry-{host}")
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[host],
        [
            {
                "name": "f-{{ i }}",
                "for_each": {"i": [0, 1, 2]},
                "outputs": ["f{{ i }}.txt"],
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
                # f-1 fails on its first run only
                "run": f"if [ {{{{ i }}}} = 1 ] && [ ! -e {shared}/tried ]; then\n"
                f"  touch {shared}/tried; exit 3\nfi\necho {{{{ i }}}} > f{{{{ i }}}}.txt\n",
            }
        ],
    )
    first = cli("apply", tasks)
    assert first.code == 1
    states = _states(cli, tmp_path)
    assert states["f-1"]["state"] == "failed" and states["f-1"]["attempts"][-1]["exit_code"] == 3
    assert states["f-0"]["state"] == states["f-2"]["state"] == "completed"
    members = _arrays(_last_jobs(cli, tmp_path))
    assert len({m[0] for m in members.values() if m}) == 1 and None not in members.values()

    again = cli("apply", tasks)
    assert again.code == 0, again.err
    states = _states(cli, tmp_path)
    assert {s["state"] for s in states.values()} == {"completed"}
    assert len(states["f-1"]["attempts"]) == 2 and count_attempts(tmp_path) == 4
    assert (tmp_path / "f1.txt").read_text() == "1\n"


@pytest.mark.parametrize("host", ARRAY_HOSTS)
def test_killing_one_member_stops_only_that_member(
    cli, tmp_path: Path, cluster_hosts, host: str
) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[host],
        [
            {
                "name": "m-{{ i }}",
                "for_each": {"i": [0, 1, 2]},
                "outputs": ["m{{ i }}.txt"],
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
                # `&&`: a command whose sleep the scheduler's cancel ends does not go on to
                # write its output (a scheduler may signal it before its wrapper)
                "run": "sleep 12 && echo {{ i }} > m{{ i }}.txt\n",
            }
        ],
    )
    assert cli("apply", tasks, "--detach").code == 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _states(cli, tmp_path)["m-1"]["state"] != "running":
        time.sleep(1)
    assert _member(_last_jobs(cli, tmp_path)["m-1"]) is not None
    killed = cli("kill", "m-1", "-C", tmp_path)
    assert killed.code == 0, killed.err
    states = _wait_settled(cli, tmp_path, 90)
    assert states["m-1"]["state"] == "killed", states["m-1"]
    assert states["m-0"]["state"] == states["m-2"]["state"] == "completed"
    assert (tmp_path / "m0.txt").exists() and (tmp_path / "m2.txt").exists()
    assert not (tmp_path / "m1.txt").exists()


@pytest.mark.parametrize("host", ARRAY_HOSTS)
def test_apply_reattaches_to_an_array_after_the_client_was_killed(
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, host: str
) -> None:  # type: ignore[no-untyped-def]
    count = 3
    shared = _shared_dir(cluster_secrets, f"array-reattach-{host}")
    tasks = _tasks_file(tmp_path, cluster_hosts[host], _counted(shared, count, seconds=6))
    with _applying(tmp_path, tasks) as client:
        _wait_running(shared, count)
        os.killpg(client.process.pid, signal.SIGKILL)
        client.process.wait()
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert f"re-attached to {count} task(s) started earlier" in result.err
    _assert_each_ran_once(shared, tmp_path, count)
    _assert_completed(tmp_path, count)
    members = _arrays(_last_jobs(cli, tmp_path))
    assert len({m[0] for m in members.values() if m}) == 1 and None not in members.values()


def test_max_array_caps_the_members_of_one_array(cli, tmp_path: Path, cluster_hosts) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks_file(
        tmp_path,
        dict(cluster_hosts["slurm"], max_array=2),
        [
            {
                "name": "c-{{ i }}",
                "for_each": {"i": list(range(5))},
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
                "run": "echo {{ i }}\n",
            }
        ],
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    jobs = [row["attempts"][-1]["job_id"] for row in _states(cli, tmp_path).values()]
    arrays = [job.split("_")[0] for job in jobs if "_" in job]
    assert len(arrays) == 4 and len(set(arrays)) == 2, jobs  # 2 + 2 members, and one alone
    assert sum(1 for job in jobs if "_" not in job) == 1, jobs


# --- the docker torque cluster: SLURM's Torque wrapper -----------------------------------


def test_torque_wrapper_is_recognised_and_alike_tasks_go_one_job_each(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, remote
) -> None:
    pbs = Pbs()
    answer = remote("torque", pbs.limits_command)
    assert answer.returncode == 0, answer.stderr
    assert pbs.parse_limits(answer.stdout) == SiteLimits(
        max_array_size=1, node_cores=4, max_node_cores=4, flavor="torque"
    )
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts["torque"],
        [
            {
                "name": "p-{{ i }}",
                "for_each": {"i": [0, 1, 2]},
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
                "run": "echo {{ i }}\n",
            }
        ],
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    jobs = _last_jobs(cli, tmp_path)
    assert all(job.isdigit() for job in jobs.values()) and len(set(jobs.values())) == 3, jobs


def test_pbs_array_driver_runs_each_members_task_under_the_wrapper(  # type: ignore[no-untyped-def]
    remote, tmp_path: Path
) -> None:
    """The pack's driver, submitted by hand with qsub: the wrapper honours `#PBS -t` in the
    script and sets only SLURM_ARRAY_TASK_ID, from which the driver finds its task."""
    project = load_project(Path(__file__).parents[1] / "golden" / "tasks.yml")
    task = next(t for t in prepare_tasks(project, check_inputs=False) if t.host.name == "hpc-pbs")
    base = f"/scratch/alice/pbs-array-{tmp_path.name}"
    small = Resources.model_validate({"cores": 1, "mem": "50M", "walltime": "00:05:00"})
    spec = dataclasses.replace(task.spec, resources=small, directives=())
    driver = render_array(spec, task.chain, ArrayGroup("g", "arr", 3, base, f"{base}/members"))
    dirs = [f"{base}/t{i}" for i in range(3)]
    setup = " && ".join(
        [f"mkdir -p {shlex.quote(d)}" for d in dirs]
        + [f"echo 'echo ran {i} > done' > {shlex.quote(d)}/job.sh" for i, d in enumerate(dirs)]
        + [
            f"printf '%s\\n' {shlex.quote(dirs[0])} '' {shlex.quote(dirs[2])} > {base}/members",
            f"printf '%s' {shlex.quote(driver)} > {base}/array.sh",
            f"cd {base} && qsub array.sh",
        ]
    )
    submitted = remote("torque", setup)
    assert submitted.returncode == 0 and submitted.stdout.strip().isdigit(), submitted
    wait_until(
        lambda: remote("torque", f"cat {base}/t0/done {base}/t2/done").stdout == "ran 0\nran 2\n",
        60,
        "members 0 and 2 to run their tasks",
    )
    assert remote("torque", f"test -e {base}/t1/done || echo none").stdout == "none\n"
    remote("torque", f"rm -rf {base}")
