"""Packed jobs on the docker clusters: many short tasks in one scheduler job, each task with
its own life (status, exit code, walltime, kill, retry, re-attach)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from submitter.schedulers.base import is_pool, pool_of, scheduler_jobs
from tests.cluster.test_arrays import _states
from tests.conftest import count_attempts, write

SCHEDULERS = ["slurm", "pbs", "lsf"]


def _tasks_file(
    project: Path, host: dict[str, Any], tasks: list[dict[str, Any]], **keys: Any
) -> Path:
    host = {**host, **keys}
    return write(
        project / "tasks.yml",
        json.dumps({"hosts": {"h": host}, "defaults": {"host": "h"}, "tasks": tasks}),
    )


def _job(row: dict[str, Any]) -> str:
    return str(row["attempts"][-1]["job_id"])


def _wait_final(cli, project: Path, timeout: float) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    states = _states(cli, project)
    while time.monotonic() < deadline and any(
        s["state"] in ("pending", "starting", "submitted", "queued", "running")
        for s in states.values()
    ):
        time.sleep(1)
        states = _states(cli, project)
    return states


def _counted_run(marker: str) -> str:
    """A task body that notes each run of itself on the host, in ~/runs/<marker>."""
    return f'mkdir -p ~/runs && echo "$SUBMITTER_TASK_ID" >> ~/runs/{marker}\n'


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_short_tasks_share_jobs_and_keep_their_own_outcomes(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, scheduler: str
) -> None:
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[scheduler],
        [
            {
                "name": "p-{{ i }}",
                "for_each": {"i": list(range(8))},
                "outputs": ["out/{{ i }}.txt"],
                "resources": {"cores": 1, "mem": "20M", "walltime": "00:01:00"},
                "run": "mkdir -p out; echo {{ i }} > out/{{ i }}.txt\n[ {{ i }} != 5 ] || exit 3\n",
            },
            {
                "name": "w-{{ i }}",
                "for_each": {"i": [0, 1]},
                "resources": {"cores": 1, "mem": "20M", "walltime": "00:00:03"},
                "run": "[ {{ i }} = 0 ] || sleep 60\necho done\n",
            },
        ],
        pack_cores=2,
        max_per_job=4,
    )
    result = cli("apply", tasks, "--json")
    assert result.code == 1, result.err  # p-5 and w-1 fail
    states = _states(cli, tmp_path)
    jobs = {name: _job(row) for name, row in states.items()}
    assert all(is_pool(job) for job in jobs.values()), jobs
    scan_pools = {pool_of(jobs[f"p-{i}"]) for i in range(8)}
    assert len(scan_pools) == 1, f"alike tasks share one pool, its jobs taking them: {jobs}"
    assert pool_of(jobs["w-0"]) not in scan_pools, "other walltime, other pool"
    assert states["p-5"]["state"] == "failed" and states["p-5"]["attempts"][-1]["exit_code"] == 3
    for i in (0, 1, 2, 3, 4, 6, 7):
        assert states[f"p-{i}"]["state"] == "completed", states[f"p-{i}"]
        assert (tmp_path / "out" / f"{i}.txt").read_text() == f"{i}\n"
    assert states["w-0"]["state"] == "completed"
    assert states["w-1"]["state"] == "failed", states["w-1"]
    assert "walltime exceeded" in states["w-1"]["reason"], states["w-1"]
    # one remote command per step, not per task: the probes, one start, about a poll a
    # second (poll_interval 1) for the dozen seconds the wrapper's walltime kill takes
    assert json.loads(result.out)["transport"]["h"]["commands"] <= 25
    assert count_attempts(tmp_path) == 10


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_kill_stops_one_packed_task_only(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, scheduler: str
) -> None:
    """One job of two lanes (max_queued: 1): m-1 is killed while running, m-2 before a lane
    takes it."""
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[scheduler],
        [
            {
                "name": "m-{{ i }}",
                "for_each": {"i": [0, 1, 2, 3]},
                "outputs": ["m{{ i }}.txt"],
                "resources": {"cores": 1, "mem": "20M", "walltime": "00:01:00"},
                "run": "sleep 8\necho {{ i }} > m{{ i }}.txt\n",
            }
        ],
        pack_cores=2,
        max_queued=1,
    )
    assert cli("apply", tasks, "--detach").code == 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _states(cli, tmp_path)["m-1"]["state"] != "running":
        time.sleep(0.5)
    assert _states(cli, tmp_path)["m-2"]["state"] == "queued", "waits for a lane of the job"
    killed = cli("kill", "m-1", "m-2", "-C", tmp_path)
    assert killed.code == 0, killed.err
    states = _wait_final(cli, tmp_path, 90)
    assert states["m-1"]["state"] == "killed", states["m-1"]
    assert states["m-2"]["state"] == "killed", states["m-2"]
    for i in (0, 3):
        assert states[f"m-{i}"]["state"] == "completed", states[f"m-{i}"]
        assert (tmp_path / f"m{i}.txt").exists()
    assert not (tmp_path / "m1.txt").exists() and not (tmp_path / "m2.txt").exists()


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_reapply_reruns_only_the_failed_packed_task(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, remote, scheduler: str
) -> None:
    marker = f"retry-{tmp_path.name}"
    body = _counted_run(marker)
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[scheduler],
        [
            {
                "name": "r-{{ i }}",
                "for_each": {"i": [0, 1, 2]},
                "resources": {"cores": 1, "mem": "20M", "walltime": "00:01:00"},
                # r-1 fails on its first run only
                "run": body + f"[ {{{{ i }}}} != 1 ] || [ -e ~/runs/{marker}.again ] || "
                f"{{ touch ~/runs/{marker}.again; exit 1; }}\n",
            }
        ],
    )
    assert cli("apply", tasks).code == 1
    assert _states(cli, tmp_path)["r-1"]["state"] == "failed"
    again = cli("apply", tasks)
    assert again.code == 0, again.err
    assert {s["state"] for s in _states(cli, tmp_path).values()} == {"completed"}
    assert count_attempts(tmp_path) == 4
    runs = remote(scheduler, f"cat ~/runs/{marker}").stdout.split()
    assert len(runs) == 4 and len(set(runs)) == 3, runs


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_reattach_to_packed_jobs_after_the_client_was_killed(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, remote, scheduler: str
) -> None:
    marker = f"reattach-{tmp_path.name}"
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[scheduler],
        [
            {
                "name": "a-{{ i }}",
                "for_each": {"i": list(range(6))},
                "outputs": ["a{{ i }}.txt"],
                "resources": {"cores": 1, "mem": "20M", "walltime": "00:01:00"},
                "run": _counted_run(marker) + "sleep 2\necho {{ i }} > a{{ i }}.txt\n",
            }
        ],
        pack_cores=2,
    )
    client = subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(tasks)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = _states(cli, tmp_path) if (tmp_path / ".submitter").exists() else {}
            if states and all(
                s["state"] == "running" or s["state"] == "queued" for s in states.values()
            ):
                break
            time.sleep(0.2)
    finally:
        os.killpg(client.pid, signal.SIGKILL)
        client.wait()
    again = cli("apply", tasks)
    assert again.code == 0, again.err
    assert "re-attached" in again.err
    assert {s["state"] for s in _states(cli, tmp_path).values()} == {"completed"}
    assert count_attempts(tmp_path) == 6
    runs = remote(scheduler, f"cat ~/runs/{marker}").stdout.split()
    assert sorted(runs) == sorted(set(runs)) and len(runs) == 6, runs


def test_killing_every_task_of_a_queued_packed_job_cancels_the_job(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, remote
) -> None:
    """Nothing in the job is to run any more: it leaves the queue rather than waiting for a
    node to skip its tasks."""
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts["slurm"],
        [
            {
                "name": "q-{{ i }}",
                "for_each": {"i": [0, 1, 2]},
                "resources": {"cores": 1, "mem": "20M", "walltime": "00:01:00"},
                "directives": ["--begin=now+600"],
                "run": "echo never\n",
            }
        ],
    )
    assert cli("apply", tasks, "--detach").code == 0
    jobs = ",".join(scheduler_jobs(_job(_states(cli, tmp_path)["q-0"])))
    queued = remote("slurm", f"squeue -h -j {jobs} -o %t").stdout.split()
    assert queued and set(queued) == {"PD"}, queued
    killed = cli("kill", "q-0", "q-1", "q-2", "-C", tmp_path)
    assert killed.code == 0, killed.err
    assert {s["state"] for s in _states(cli, tmp_path).values()} == {"killed"}
    left = remote("slurm", f"squeue -h -j {jobs} -o %t 2>/dev/null").stdout.split()
    assert set(left) <= {"CA"}, f"jobs {jobs} still in the queue: {left}"
