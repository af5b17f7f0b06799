"""Job arrays on the docker SLURM cluster: many tasks, one submission, each task its own life."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import count_attempts, write


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


def test_tasks_alike_go_as_one_job_array(cli, tmp_path: Path, cluster_hosts) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts["slurm"],
        [
            {
                "name": "a-{{ i }}",
                "for_each": {"i": list(range(6))},
                "outputs": ["out/{{ i }}.txt"],
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
                "run": 'mkdir -p out; echo "{{ i }} $SLURM_ARRAY_TASK_ID" > out/{{ i }}.txt\n',
            },
            {"name": "other", "resources": {"cores": 2, "mem": "60M"}, "run": "echo alone\n"},
        ],
    )
    result = cli("apply", tasks, "--json")
    assert result.code == 0, result.err
    states = _states(cli, tmp_path)
    jobs = {name: row["attempts"][-1]["job_id"] for name, row in states.items()}
    arrays = {jobs[f"a-{i}"].split("_")[0] for i in range(6)}
    assert len(arrays) == 1, jobs
    assert sorted(jobs[f"a-{i}"].split("_")[1] for i in range(6)) == [str(i) for i in range(6)]
    assert "_" not in jobs["other"], "a task with other resources is a job of its own"
    for i in range(6):
        number, element = (tmp_path / "out" / f"{i}.txt").read_text().split()
        assert number == str(i) and element == jobs[f"a-{i}"].split("_")[1]
    assert json.loads(result.out)["transport"]["h"]["commands"] <= 12
    assert count_attempts(tmp_path) == 7


def test_killing_one_member_stops_only_that_member(cli, tmp_path: Path, cluster_hosts) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts["slurm"],
        [
            {
                "name": "m-{{ i }}",
                "for_each": {"i": [0, 1, 2]},
                "outputs": ["m{{ i }}.txt"],
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
                "run": "sleep 12\necho {{ i }} > m{{ i }}.txt\n",
            }
        ],
    )
    assert cli("apply", tasks, "--detach").code == 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _states(cli, tmp_path)["m-1"]["state"] != "running":
        time.sleep(1)
    killed = cli("kill", "m-1", "-C", tmp_path)
    assert killed.code == 0, killed.err
    deadline = time.monotonic() + 90
    states = _states(cli, tmp_path)
    while time.monotonic() < deadline and {s["state"] for s in states.values()} & {
        "running",
        "queued",
        "submitted",
    }:
        time.sleep(1)
        states = _states(cli, tmp_path)
    assert states["m-1"]["state"] == "killed", states["m-1"]
    assert states["m-0"]["state"] == states["m-2"]["state"] == "completed"
    assert (tmp_path / "m0.txt").exists() and (tmp_path / "m2.txt").exists()
    assert not (tmp_path / "m1.txt").exists()


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
