"""End states told by SLURM's accounting (`sacct`) once squeue has forgotten a job.

The `slurm` cluster keeps accounting (slurmdbd + MariaDB on its login node); the `pbs`
cluster is SLURM too (under its Torque wrapper) without accounting, so a `scheduler: slurm`
host pointed at it shows the fallback: the status file alone decides. Each test detaches,
keeps the wrapper from writing its final status, waits until squeue no longer
lists the job (MinJobAge and slurmctld's purge pass: a minute or two), then re-attaches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from submitter.schedulers.slurm import Slurm
from submitter.store.db import AttemptRecord, Store, TaskRecord
from tests.cluster.conftest import docker, wait_until
from tests.cluster.test_faults import _counted, _nodes_idle, _shared_dir
from tests.cluster.test_faults import _wait_running as _wait_counted_running
from tests.conftest import write

# A directory where the wrapper (the task's parent) would write its final status before
# renaming it into place: it cannot, and its status file keeps saying `running`.
_UNWRITABLE = 'mkdir -- "$SUBMITTER_TASK_DIR/.status.$PPID"\n'


def _tasks_file(project: Path, host: dict[str, Any], tasks: list[dict[str, Any]]) -> Path:
    config = dict(host, scheduler="slurm", lost_after="3s")
    return write(
        project / "tasks.yml",
        json.dumps({"hosts": {"h": config}, "defaults": {"host": "h"}, "tasks": tasks}),
    )


def _outcome(project: Path) -> tuple[TaskRecord, AttemptRecord]:
    store = Store(project / ".submitter")
    try:
        (record,) = store.tasks()
        return record, store.attempts(record.id)[-1]
    finally:
        store.close()


def _job_of(project: Path) -> str:
    job = _outcome(project)[1].job_id
    assert job, "the detached apply recorded no job id"
    return job


def _wait_forgotten(remote, host: str, job: str, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    def forgotten() -> bool:
        answer = remote(host, f"squeue -h -t all -o %i --jobs={job},{job}")
        return answer.returncode == 0 and not answer.stdout.strip()

    wait_until(forgotten, timeout, f"job {job} gone from squeue")


def _wait_running(remote, host: str, job: str) -> None:  # type: ignore[no-untyped-def]
    def running() -> bool:
        return remote(host, f"squeue -h -o %t --jobs={job},{job}").stdout.strip() == "R"

    wait_until(running, 60, f"job {job} running")


@pytest.mark.parametrize(
    ("host", "state", "cause", "reason"),
    [
        ("slurm", "killed", "cancelled", "cancelled by the scheduler or an administrator (CA)"),
        ("torque", "lost", "lost", "left the scheduler while its status file still said 'running'"),
    ],
)
def test_job_killed_outright_is_cancelled_from_sacct_or_lost_without_it(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, remote, host: str, state: str, cause: str, reason: str
) -> None:
    """`scancel` of a job whose wrapper cannot write its final status (see _UNWRITABLE)."""
    task = {"name": "v", "run": _UNWRITABLE + "sleep 600\n"}
    tasks = _tasks_file(tmp_path, cluster_hosts[host], [task])
    assert cli("apply", tasks, "--detach").code == 0
    job = _job_of(tmp_path)
    _wait_running(remote, host, job)
    remote(host, f"sleep 2; scancel {job}")
    _wait_forgotten(remote, host, job)
    assert cli("apply", tasks).code == 1
    record, attempt = _outcome(tmp_path)
    assert record.state == state and reason in record.reason, record
    assert attempt.cause == cause, attempt


def test_time_limit_the_wrapper_could_not_record_is_a_timeout_from_sacct(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, remote
) -> None:
    """Killed at its time limit, the wrapper cannot say so: its status still says running.
    The wrapper's own walltime watchdog (every child of the wrapper but the command) is
    stopped, so that SLURM's limit, its safety net, is the one that ends the job."""
    task = {
        "name": "overrun",
        "resources": {"walltime": "00:01:00"},
        "run": _UNWRITABLE + 'kill -STOP $(pgrep -P "$PPID" | grep -vx "$$")\nsleep 600\n',
    }
    tasks = _tasks_file(tmp_path, cluster_hosts["slurm"], [task])
    assert cli("apply", tasks, "--detach").code == 0
    job = _job_of(tmp_path)
    _wait_forgotten(remote, "slurm", job, timeout=300)
    assert cli("apply", tasks).code == 1
    record, attempt = _outcome(tmp_path)
    assert (record.state, record.reason) == (
        "failed",
        "walltime exceeded: killed by the scheduler (TO)",
    ), record
    assert attempt.cause == "timeout", attempt


def test_node_killed_under_a_detached_job_is_a_node_failure_from_sacct(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, cluster_container, remote
) -> None:
    shared = _shared_dir(cluster_secrets, "acct-node")
    tasks = _tasks_file(tmp_path, cluster_hosts["slurm"], _counted(shared, 1, seconds=300))
    assert cli("apply", tasks, "--detach").code == 0
    job = _job_of(tmp_path)
    _wait_counted_running(shared, 1)
    node = (shared / "runs" / "0").read_text().split()[0]
    assert node in ("c1", "c2"), node
    login = cluster_container("slurm-login")
    compute = cluster_container(f"slurm-{node}")
    try:
        docker("kill", compute)
        _wait_forgotten(remote, "slurm", job)
    finally:
        docker("start", compute)
        _nodes_idle(login, f"after {node} came back")
    assert cli("apply", tasks).code == 1
    record, attempt = _outcome(tmp_path)
    assert (record.state, record.reason) == ("failed", "node failure (NF)"), record
    assert (attempt.cause, attempt.exec_host) == ("node_fail", node), attempt


def test_check_host_tells_whether_sacct_works(cli, tmp_path: Path, cluster_hosts) -> None:  # type: ignore[no-untyped-def]
    for host, detail in (
        ("slurm", "slurmdbd (sacct works)"),
        ("torque", "no accounting: end states guessed from status files"),
    ):
        tasks = _tasks_file(tmp_path, cluster_hosts[host], [{"name": "x", "run": "true"}])
        result = cli("check-host", "h", "-f", tasks, "--json")
        report = json.loads(result.out)
        assert result.code == 0, report
        (row,) = [c for c in report["checks"] if c["name"] == "accounting"]
        assert row["ok"] and row["detail"].startswith(detail), row
        assert not row["detail"].endswith("()"), "sacct's own message, when it has one"
        assert bool(row["fix"]) == (host == "torque"), row


def test_max_submit_jobs_is_read_from_the_accounting_database(  # type: ignore[no-untyped-def]
    cluster_hosts, cluster_container, remote
) -> None:
    login = cluster_container("slurm-login")
    limit = ["sacctmgr", "-i", "modify", "user", "alice", "set"]
    docker("exec", login, *limit, "MaxSubmitJobs=50")
    try:
        answer = remote("slurm", Slurm.limits_command)
    finally:
        docker("exec", login, *limit, "MaxSubmitJobs=-1")
    assert Slurm().parse_limits(answer.stdout).max_jobs == 50, answer.stdout
