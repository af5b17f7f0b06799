"""2,000 pooled tasks on the docker SLURM cluster through what a user does to a long run: the
client killed with -9 at two instants, one of the pool's jobs cancelled mid-way. Every task
runs once, counted on the host, but those the cancelled job had taken and not finished: they
are reported killed, and the next apply runs each of them once more. And a pool's nodes frozen
past SLURM's patience: each task's retry runs it, whatever the first jobs' wrappers do on the
thaw."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from submitter.schedulers.base import pool_jobs, scheduler_jobs
from tests.cluster.conftest import docker, wait_until
from tests.cluster.test_arrays import _states
from tests.cluster.test_faults import (
    _applying,
    _attempts_starting,
    _nodes_idle,
    _shared_dir,
    _started,
    _tasks_file,
)

COUNT = 2000


def _pooled(shared: Path) -> dict[str, object]:
    """COUNT short tasks that each note their run in `shared/runs/<i>` and write an output."""
    return {
        "name": "p-{{ i }}",
        "for_each": {"i": list(range(COUNT))},
        "outputs": ["out/{{ i }}.txt"],
        "resources": {"cores": 1, "mem": "20M", "walltime": "00:01:00"},
        "run": f'mkdir -p out; echo "$SUBMITTER_TASK_ID" >> {shared}/runs/{{{{ i }}}}\n'
        "sleep 0.2\necho {{ i }} > out/{{ i }}.txt\n",
    }


def _runs(shared: Path) -> dict[str, int]:
    return {p.name: len(p.read_text().splitlines()) for p in (shared / "runs").iterdir()}


def _apply(tasks: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "submitter", "apply", str(tasks)],
            stdout=out,
            stderr=out,
            start_new_session=True,
            env=dict(os.environ),
        )


def _kill_when(client: subprocess.Popen[bytes], ready: Callable[[], bool], what: str) -> None:
    try:
        wait_until(ready, 240, what)
    finally:
        os.killpg(client.pid, signal.SIGKILL)
        client.wait()


def test_two_thousand_pooled_tasks_run_once_through_client_kills_and_a_cancelled_job(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, remote
) -> None:
    shared = _shared_dir(cluster_secrets, "pool-once")
    tasks = _tasks_file(tmp_path, cluster_hosts["slurm"], [_pooled(shared)])
    log = tmp_path / "apply.log"
    db = tmp_path / ".submitter" / "state.db"

    # Killed as its first tasks start, then mid-run.
    _kill_when(_apply(tasks, log), lambda: db.exists() and _runs(shared) != {}, "a first run")
    _kill_when(_apply(tasks, log), lambda: len(_runs(shared)) >= 400, "400 tasks run")

    client = _apply(tasks, log)
    try:
        wait_until(lambda: len(_runs(shared)) >= 900, 240, "900 tasks run")
        running = remote("slurm", "squeue -h -t R -o %i --me").stdout.split()
        assert running, "a pool job runs"
        remote("slurm", f"scancel {running[0]}")
        assert client.wait(timeout=600) == 1, log.read_text()[-3000:]
    finally:
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
    states = _states(cli, tmp_path)
    killed = {n for n, s in states.items() if s["state"] != "completed"}
    assert killed, "the cancelled job was running tasks"
    assert {states[n]["state"] for n in killed} == {"killed"}, {n: states[n] for n in killed}
    assert all(
        running[0] in (pool_jobs(str(states[n]["attempts"][-1]["job_id"])) or []) for n in killed
    ), "each killed task was its cancelled job's"
    ran = _runs(shared)
    # A task killed between its claim and its command's first line never noted a run.
    assert all(ran.get(str(i)) == 1 for i in range(COUNT) if f"p-{i}" not in killed), ran
    assert all(ran.get(str(i), 0) <= 1 for i in range(COUNT)), ran

    started = time.monotonic()
    again = cli("apply", tasks)
    assert again.code == 0, again.err
    assert {s["state"] for s in _states(cli, tmp_path).values()} == {"completed"}
    assert _runs(shared) == {
        str(i): ran.get(str(i), 0) + 1 if f"p-{i}" in killed else 1 for i in range(COUNT)
    }, "the cancelled job's unfinished tasks ran once more, and only they"
    for i in range(COUNT):
        assert (tmp_path / "out" / f"{i}.txt").read_text() == f"{i}\n"
    print(
        f"{len(killed)} tasks of job {running[0]} killed; rerun in {time.monotonic() - started:.1f} s"
    )


RUNNING_AT_ONCE = 8  # the two compute nodes' CPUs
QUEUED = 4  # beyond them: still in the pool's queue when the nodes freeze


def test_after_a_node_failure_under_a_pool_each_task_runs_once_per_attempt(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, cluster_container
) -> None:
    """Both compute nodes freeze under a pool for longer than SLURM waits for them (the
    cluster's SlurmdTimeout, 20 s): the pool's jobs end as node failures. Each running task
    is retried, each task no job took yet goes into a new pool, while the nodes are still
    frozen. On the thaw the first jobs' lanes and wrappers run on until slurmd ends them:
    they must neither take a task whose attempt is over, nor write where the new attempt
    looks for its end. Counted on the host: each task ran once under each attempt that
    started it (the running ones twice, the queued ones once), and all completed."""
    count = RUNNING_AT_ONCE + QUEUED
    shared = _shared_dir(cluster_secrets, "pool-node-fail")
    task = {
        "name": "n-{{ i }}",
        "for_each": {"i": list(range(count))},
        "outputs": ["out/{{ i }}.txt"],
        "resources": {"cores": 1, "mem": "20M", "walltime": "00:01:00"},
        "retries": 1,
        "retry_delay": "1s",
        "run": f'mkdir -p out; echo "$SLURM_JOB_ID" >> {shared}/runs/{{{{ i }}}}\n'
        "sleep 25\necho {{ i }} > out/{{ i }}.txt\n",
    }
    tasks = _tasks_file(tmp_path, cluster_hosts["slurm"], [task])
    login = cluster_container("slurm-login")
    nodes = [cluster_container(f"slurm-{node}") for node in ("c1", "c2")]
    with _applying(tmp_path, tasks) as client:
        wait_until(lambda: _started(shared) == RUNNING_AT_ONCE, 120, "the nodes full")
        try:
            for node in nodes:
                docker("pause", node)
            # Frozen until every task has its next attempt (its new pool waits for the nodes).
            wait_until(lambda: _attempts_starting(tmp_path) == 2 * count, 150, "new attempts")
        finally:
            for node in nodes:
                docker("unpause", node)
            _nodes_idle(login, "after the thaw")
        code, took = client.wait(300)
    assert code == 0, client.stderr
    states = _states(cli, tmp_path)
    runs = {p.name: p.read_text().split() for p in (shared / "runs").iterdir()}
    failed = []
    for i in range(count):
        attempts = states[f"n-{i}"]["attempts"]
        assert attempts[-1]["state"] == "completed", attempts
        started = [a for a in attempts if a["cause"] != "not_started"]
        assert len(runs[str(i)]) == len(started), (i, runs[str(i)], attempts)
        for ran, attempt in zip(runs[str(i)], started, strict=True):
            assert ran in scheduler_jobs(str(attempt["job_id"])), (i, runs[str(i)], attempts)
        failed += [a for a in attempts if a["cause"] == "node_fail"]
        assert (tmp_path / "out" / f"{i}.txt").read_text() == f"{i}\n"
    assert len(failed) == RUNNING_AT_ONCE, "the running tasks failed with their nodes"
    print(f"{len(failed)} tasks failed with their nodes; all {count} completed in {took:.1f} s")
