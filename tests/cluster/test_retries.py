"""Automatic retries on the docker SLURM cluster: a timed-out task retried with more walltime,
and failed members of a job array retried; every run counted on the host."""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write


def _tasks_file(project: Path, host: dict[str, Any], tasks: list[dict[str, Any]]) -> Path:
    return write(
        project / "tasks.yml",
        json.dumps({"hosts": {"slurm": host}, "defaults": {"host": "slurm"}, "tasks": tasks}),
    )


def _status(cli, project: Path) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {t["name"]: t for t in json.loads(cli("status", "--json", "-C", project).out)}


def _count_lines(remote, path: str) -> int:  # type: ignore[no-untyped-def]
    result = remote("slurm", f"wc -l < '{path}'")
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


# packed: the task's wrapper enforces its walltime inside a packed job; single: one job of
# its own (max_per_job 1), where the wrapper enforces it too (SLURM's limit, whole minutes, is
# the safety net behind it)
@pytest.mark.parametrize("how", ["packed", "single"])
def test_timeout_is_retried_with_escalated_walltime(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, remote, how: str
) -> None:
    counter = f"{cluster_secrets['shared']}/retry-{secrets.token_hex(4)}"
    host = dict(cluster_hosts["slurm"])
    if how == "single":
        host["max_per_job"] = 1
    task = {
        "name": "grows",
        "resources": {"walltime": "10s"},
        "retries": 1,
        "retry_on": ["timeout"],
        "retry_delay": "1s",
        "escalate": {"walltime": 3},
        # the second run takes longer than the first attempt's walltime: only the
        # escalated one lets it complete
        "run": f"echo x >> {counter}\n"
        f'if [ "$(wc -l < {counter})" -eq 1 ]; then sleep 300; fi\n'
        "sleep 12\n",
    }
    result = cli("apply", _tasks_file(tmp_path, host, [task]))
    assert result.code == 0, result.err
    assert "grows: attempt 1 of 2 failed: walltime exceeded" in result.err
    record = _status(cli, tmp_path)["grows"]
    assert (record["state"], record["attempt"], record["max_attempts"]) == ("completed", 2, 2)
    first, second = record["attempts"]
    assert (first["cause"], first["state"]) == ("timeout", "failed")
    assert second["state"] == "completed"
    assert first["job_id"] != second["job_id"]
    directive = remote("slurm", f"grep -- '^#SBATCH --time=' '{record['task_dir']}/job.sh'")
    assert directive.stdout.strip() == "#SBATCH --time=00:00:30", directive
    assert _count_lines(remote, counter) == 2, "the task ran exactly twice"
    table = cli("status", "-C", tmp_path)
    assert "2 of 2" in table.out


@pytest.mark.parametrize("count", [1, 2], ids=["single", "packed"])
def test_a_walltime_under_a_minute_is_enforced_alone_or_packed(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, count: int
) -> None:
    """`--time=00:00:20` is a minute to SLURM: the wrapper stops the task at 20 s, whether it
    is alone in its job or packed with another."""
    task = {
        "name": "slow-{{ i }}",
        "for_each": {"i": list(range(count))},
        "resources": {"walltime": "20s"},
        "run": "sleep 40\n",
    }
    result = cli("apply", _tasks_file(tmp_path, cluster_hosts["slurm"], [task]))
    assert result.code == 1, result.err
    records = _status(cli, tmp_path)
    assert len(records) == count
    jobs = {str(r["attempts"][-1]["job_id"]) for r in records.values()}
    assert all(("/" in job) is (count > 1) for job in jobs), jobs
    for record in records.values():
        assert (record["state"], record["reason"]) == (
            "failed",
            "walltime exceeded: killed after 00:00:20 by the wrapper",
        ), record
        attempt = record["attempts"][-1]
        assert attempt["cause"] == "timeout", attempt
        ran = _seconds(attempt["ended"]) - _seconds(attempt["started"])
        print(f"{record['name']} ({attempt['job_id']}): stopped after {ran:.1f} s")
        assert 19.5 <= ran < 23, ran


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_members_of_a_job_array_are_retried(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, remote
) -> None:
    shared = cluster_secrets["shared"]
    tag = secrets.token_hex(4)
    host = {**cluster_hosts["slurm"], "pack_under": 1}  # nothing packed: one job array
    tasks = [
        {
            "name": f"member-{i}",
            "resources": {"walltime": "00:05:00"},
            "retries": 2,
            "retry_on": [75],
            "retry_delay": "1s",
            "run": f"echo x >> {shared}/{tag}-{i}\n"
            f'[ "$(wc -l < {shared}/{tag}-{i})" -gt {i} ] || exit 75\n',
        }
        for i in range(3)
    ]
    result = cli("apply", _tasks_file(tmp_path, host, tasks))
    assert result.code == 0, result.err
    records = _status(cli, tmp_path)
    for i in range(3):
        record = records[f"member-{i}"]
        assert (record["state"], record["attempt"]) == ("completed", i + 1), record
        assert _count_lines(remote, f"{shared}/{tag}-{i}") == i + 1
    assert "_" in records["member-2"]["attempts"][0]["job_id"], "first attempt: an array member"


def test_escalated_cores_stop_at_the_largest_node(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, remote
) -> None:
    """`cores: 3` escalated by 2 on nodes of 4 CPUs: the retry asks 4 (sinfo's largest node),
    not 6, which no node could run."""
    counter = f"{cluster_secrets['shared']}/cores-{secrets.token_hex(4)}"
    task = {
        "name": "wide",
        "resources": {"cores": 3},
        "retries": 1,
        "retry_on": [75],
        "retry_delay": "1s",
        "escalate": {"cores": 2},
        "run": f'echo "$SLURM_CPUS_PER_TASK" >> {counter}\n'
        f'[ "$(wc -l < {counter})" -gt 1 ] || exit 75\n',
    }
    result = cli("apply", _tasks_file(tmp_path, cluster_hosts["slurm"], [task]))
    assert result.code == 0, result.err
    record = _status(cli, tmp_path)["wide"]
    assert (record["state"], record["attempt"]) == ("completed", 2), record
    asked = remote("slurm", f"cat '{counter}'")
    assert asked.stdout.split() == ["3", "4"], asked
    directive = remote(
        "slurm", f"grep -- '^#SBATCH --cpus-per-task=' '{record['task_dir']}/job.sh'"
    )
    assert directive.stdout.strip() == "#SBATCH --cpus-per-task=4", directive


def test_a_job_that_cannot_start_says_why_and_one_too_wide_is_not_submitted(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts
) -> None:
    """More cores than any node: refused before submission. A walltime over its partition's
    time limit (`short`: 5 minutes): SLURM keeps the job pending (PartitionTimeLimit), and
    `status` says it cannot start, rather than a plain `queued`."""
    host = {**cluster_hosts["slurm"], "max_per_job": 1}
    tasks = [
        {"name": "too-wide", "resources": {"cores": 6}, "run": "true"},
        {"name": "too-long", "resources": {"walltime": "10m", "queue": "short"}, "run": "true"},
    ]
    tasks_file = _tasks_file(tmp_path, host, tasks)
    try:
        assert cli("apply", tasks_file, "--detach").code in (0, 1)
        why = "cannot start: PartitionTimeLimit (the walltime is over the partition's time limit)"
        deadline = time.monotonic() + 90
        while (rows := _status(cli, tmp_path))["too-long"]["reason"] != why:
            assert time.monotonic() < deadline, rows["too-long"]
            time.sleep(2)
        assert rows["too-long"]["state"] == "queued"
        assert (rows["too-wide"]["state"], rows["too-wide"]["reason"]) == (
            "failed",
            "not submitted: it asks 6 cores and the largest node of host 'slurm' has 4 "
            "(the scheduler's site limits)",
        )
        assert rows["too-wide"]["attempts"] == [], "nothing was submitted for it"
    finally:
        cli("kill", "--all", "-C", tmp_path)
