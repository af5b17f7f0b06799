"""One lifecycle suite, run on the plain ssh host and on the SLURM, OpenPBS, Torque-wrapper and
LSF-shim clusters."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import wait_until
from tests.conftest import count_attempts, write

HOSTS = ["ssh", "slurm", "pbs", "torque", "lsf", "sge"]


def _tasks_file(
    project: Path, host: dict[str, Any], tasks: list[dict[str, Any]], **extra: Any
) -> Path:
    config = dict(host, **extra)
    return write(
        project / "tasks.yml",
        json.dumps({"hosts": {"h": config}, "defaults": {"host": "h"}, "tasks": tasks}),
    )


def _mapped(project: Path) -> dict[str, str]:
    return {str(project): f"/home/alice/proj-{uuid.uuid4().hex[:8]}"}


def _status(cli, project: Path, name: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = cli("status", name, "--json", "-C", project)
    return dict(json.loads(result.out)[0])


@pytest.mark.parametrize("host", HOSTS)
def test_inputs_outputs_mapping_and_shared_path(
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, remote, host: str
) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project"
    shared: Path = cluster_secrets["shared"] / f"{host}-{uuid.uuid4().hex[:6]}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    (shared / "factor.txt").write_text("10\n")
    for n in (2, 3):
        write(project / "in" / f"{n}.txt", f"{n}\n")
    paths = _mapped(project)
    tasks = _tasks_file(
        project,
        cluster_hosts[host],
        [
            {
                "name": "square-{{ n }}",
                "for_each": {"n": [2, 3]},
                "inputs": ["in/{{ n }}.txt", str(shared / "factor.txt")],
                "outputs": ["out/{{ n }}.txt", str(shared / "seen-{{ n }}.txt")],
                "resources": {"cores": 1, "mem": "100M", "walltime": "00:05:00"},
                "run": "mkdir -p out\n"
                f"n=$(cat in/{{{{ n }}}}.txt); f=$(cat {shared}/factor.txt)\n"
                "echo $((n * n * f)) > out/{{ n }}.txt\n"
                f"uname -n > {shared}/seen-{{{{ n }}}}.txt\n",
            }
        ],
        paths=paths,
    )
    first = cli("apply", tasks)
    assert first.code == 0, first.err
    assert (project / "out" / "2.txt").read_text() == "40\n"
    assert (project / "out" / "3.txt").read_text() == "90\n"
    assert (shared / "seen-2.txt").exists(), "shared outputs are visible, not copied"
    record = _status(cli, project, "square-2")
    assert record["run_dir"] == next(iter(paths.values())), "the project dir is mapped on the host"
    assert record["attempts"][0]["job_id"]
    assert remote(host, f"cat {record['run_dir']}/out/2.txt").stdout == "40\n"
    assert (
        remote(host, f"test -e {record['run_dir']}/factor.txt || echo absent").stdout == "absent\n"
    ), "shared inputs are never copied"

    again = cli("apply", tasks, "-v")
    assert again.code == 0
    assert again.err.count("up to date:") == 2
    assert count_attempts(project) == 2

    task_dir = record["task_dir"]
    assert remote(host, f"test -d {task_dir} && echo here").stdout == "here\n"
    purged = cli("purge", "--all", "-C", project)
    assert purged.code == 0, purged.err
    assert remote(host, f"test -d {task_dir} || echo gone").stdout == "gone\n"


@pytest.mark.parametrize("host", HOSTS)
def test_failing_task_and_missing_output(cli, tmp_path: Path, cluster_hosts, host: str) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[host],
        [
            {"name": "bad", "run": "echo about to fail\necho broken >&2\nexit 5\n"},
            {"name": "lazy", "outputs": ["never.txt"], "run": "true\n"},
            {"name": "fine", "interpreter": "python3", "run": "print('python ran')\n"},
        ],
    )
    result = cli("apply", tasks)
    assert result.code == 1
    assert "FAILED bad" in result.err and "exit code 5" in result.err
    assert "FAILED lazy" in result.err and "missing declared output: never.txt" in result.err
    bad = _status(cli, tmp_path, "bad")
    assert bad["state"] == "failed" and bad["attempts"][-1]["exit_code"] == 5
    logs = cli("logs", "bad", "-C", tmp_path)
    assert "about to fail" in logs.out and "broken" in logs.out
    assert "python ran" in cli("logs", "fine", "-C", tmp_path).out


@pytest.mark.parametrize("host", HOSTS)
def test_kill_records_killed(cli, tmp_path: Path, cluster_hosts, host: str) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks_file(
        tmp_path, cluster_hosts[host], [{"name": "sleeper", "run": "echo started\nsleep 300\n"}]
    )
    assert cli("apply", tasks, "--detach").code == 0
    _wait_for(cli, tmp_path, "sleeper", "running")
    killed = cli("kill", "sleeper", "-C", tmp_path)
    assert killed.code == 0, killed.err
    record = _status(cli, tmp_path, "sleeper")
    assert record["state"] == "killed", record
    assert "started" in cli("logs", "sleeper", "-C", tmp_path).out


@pytest.mark.parametrize("host", HOSTS)
def test_detach_then_reattach(cli, tmp_path: Path, cluster_hosts, host: str) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[host],
        [
            {
                "name": "later-{{ i }}",
                "for_each": {"i": [1, 2, 3]},
                "outputs": ["r{{ i }}.txt"],
                "run": "sleep 3; echo {{ i }} > r{{ i }}.txt\n",
            }
        ],
    )
    began = time.monotonic()
    detached = cli("apply", tasks, "--detach")
    assert detached.code == 0, detached.err
    assert time.monotonic() - began < 15
    assert not (tmp_path / "r1.txt").exists()
    attached = cli("apply", tasks)
    assert attached.code == 0, attached.err
    assert "re-attached to 3 task" in attached.err
    assert [(tmp_path / f"r{i}.txt").read_text() for i in (1, 2, 3)] == ["1\n", "2\n", "3\n"]
    assert count_attempts(tmp_path) == 3


def test_walltime_exceeded_on_every_host(cli, tmp_path: Path, cluster_hosts) -> None:  # type: ignore[no-untyped-def]
    """Scheduler time limits are whole minutes: one apply runs the four overruns at once."""
    hosts = {name: dict(cluster_hosts[name]) for name in HOSTS}
    tasks = write(
        tmp_path / "tasks.yml",
        json.dumps(
            {
                "hosts": hosts,
                "tasks": [
                    {
                        "name": f"overrun-{name}",
                        "host": name,
                        "resources": {"walltime": "00:01:00"},
                        "run": "echo begin\nsleep 600\n",
                    }
                    for name in HOSTS
                ],
            }
        ),
    )
    result = cli("apply", tasks)
    assert result.code == 1
    for name in HOSTS:
        record = _status(cli, tmp_path, f"overrun-{name}")
        assert record["state"] == "failed", record
        assert "walltime exceeded" in record["reason"], record


def test_check_host_passes_on_every_host(cli, tmp_path: Path, cluster_hosts) -> None:  # type: ignore[no-untyped-def]
    for name in HOSTS:
        paths = {str(tmp_path): "/home/alice"}
        tasks = _tasks_file(
            tmp_path, cluster_hosts[name], [{"name": "x", "run": "true"}], paths=paths
        )
        result = cli("check-host", "h", "-f", tasks, "--json")
        report = json.loads(result.out)
        assert result.code == 0, report
        checks = {c["name"] for c in report["checks"]}
        assert {"ssh key login", "work dir writable", "rsync on host"} <= checks
        assert any(c.startswith("shared path") for c in checks)
        assert any(c.startswith("mapped path") for c in checks)
        if name != "ssh":
            assert "scheduler answers" in checks
        flavors = {c["detail"] for c in report["checks"] if c["name"] == "pbs flavour"}
        expected = {"pbs": {"pro (detected)"}, "torque": {"torque (detected)"}}
        assert flavors == expected.get(name, set()), report


def test_check_host_reports_failures_with_fixes(cli, tmp_path: Path, cluster_hosts) -> None:  # type: ignore[no-untyped-def]
    config = dict(
        cluster_hosts["slurm"], scheduler="pbs", shared=[str(tmp_path)], work_dir="/root/forbidden"
    )
    tasks = _tasks_file(
        tmp_path, config, [{"name": "x", "run": "true"}], paths={str(tmp_path): "/nope/missing"}
    )
    result = cli("check-host", "h", "-f", tasks, "--json")
    assert result.code == 3
    failed = {c["name"]: c["fix"] for c in json.loads(result.out)["checks"] if not c["ok"]}
    assert "work dir writable" in failed
    assert any(name.startswith("shared path") for name in failed), (
        "tmp_path is not mounted in the cluster"
    )
    assert any(name.startswith("mapped path") for name in failed)
    assert all(failed.values()), "every failed check carries a fix"


def _wait_for(cli, project: Path, name: str, state: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = _status(cli, project, name)["state"]
        if seen == state:
            return
        time.sleep(1)
    raise AssertionError(f"{name} stayed {seen}, expected {state}")


@pytest.mark.parametrize(
    ("host", "state", "reason"),
    [
        ("ssh", "lost", "ended while its status file still said 'running'"),
        ("slurm", "failed", "the scheduler reports the job failed (F)"),
        # OpenPBS: the job's shell saw its script killed (128 + 9) and ended with that
        ("pbs", "failed", "the scheduler reports the job failed (F, Exit_status 137)"),
        ("torque", "lost", "left the scheduler while its status file still said 'running'"),
        ("lsf", "failed", "the scheduler reports the job failed (EXIT)"),
        # Grid Engine's accounting tells a SIGKILLed job script from a qdel'ed one by nothing
        ("sge", "killed", "cancelled by the scheduler or an administrator (failed 100"),
    ],
)
def test_job_dying_without_status_is_lost_or_failed_with_reason(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, host: str, state: str, reason: str
) -> None:
    """The wrapper itself is SIGKILLed: its status file stays at 'running' (and the reason says
    so, not that there is none); the queue decides."""
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts[host],
        [{"name": "vanish", "run": "kill -KILL $PPID\nsleep 1\n"}],
        lost_after="3s",
    )
    result = cli("apply", tasks)
    assert result.code == 1
    record = _status(cli, tmp_path, "vanish")
    assert record["state"] == state and reason in record["reason"], record


@pytest.mark.parametrize("host", ["ssh", "slurm"])
def test_glob_and_directory_outputs(cli, tmp_path: Path, cluster_hosts, host: str) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project"
    # on the ssh host the tasks run in their own task directories, on SLURM in the mapped
    # project directory
    mapping = {"paths": _mapped(project)} if host == "slurm" else {}
    tasks = _tasks_file(
        project,
        cluster_hosts[host],
        [
            {
                "name": "own-{{ where }}",
                "for_each": {"where": ["a", "b"]},
                "outputs": ["{{ where }}/**/*.txt", "{{ where }}-logs/"],
                "resources": {"cores": 1, "mem": "100M", "walltime": "00:05:00"},
                "run": "mkdir -p {{ where }}/sub {{ where }}-logs/deep\n"
                "echo 1 > {{ where }}/one.txt; echo 2 > '{{ where }}/sub/t w o.txt'\n"
                "echo skip > {{ where }}/skip.dat; echo log > {{ where }}-logs/deep/run.log\n",
            },
            {"name": "none", "outputs": ["nothing/*.txt"], "run": "true\n"},
        ],
        **mapping,
    )
    first = cli("apply", tasks)
    assert first.code == 1, first.err
    for where in ("a", "b"):
        assert (project / where / "one.txt").read_text() == "1\n"
        assert (project / where / "sub" / "t w o.txt").read_text() == "2\n"
        assert not (project / where / "skip.dat").exists()
        assert (project / f"{where}-logs" / "deep" / "run.log").read_text() == "log\n"
    assert "missing declared output: nothing/*.txt (no match)" in first.err

    again = cli("apply", tasks, "-v")
    assert again.err.count("up to date: own-") == 2
    (project / "a" / "sub" / "t w o.txt").unlink()
    rerun = cli("apply", tasks, "-v")
    assert "rerun: own-a" in rerun.err and "up to date: own-b" in rerun.err
    assert (project / "a" / "sub" / "t w o.txt").read_text() == "2\n"
    assert count_attempts(project) == 6, "own-a twice, own-b once, the failing one thrice"


def test_openpbs_is_detected_and_its_jobs_ask_with_select(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, remote
) -> None:
    """No pbs_flavor: the site's answer decides, and the job reaches OpenPBS as `select=`,
    its finished record read back from the job history (qstat -x)."""
    assert "pbs_flavor" not in cluster_hosts["pbs"]
    tasks = _tasks_file(
        tmp_path,
        cluster_hosts["pbs"],
        [{"name": "sized", "resources": {"cores": 2, "mem": "60M"}, "run": "echo sized\n"}],
    )
    assert cli("apply", tasks).code == 0
    job = _status(cli, tmp_path, "sized")["attempts"][-1]["job_id"]
    # the task's status file says completed a moment before the job itself ends
    wait_until(
        lambda: "job_state = F" in remote("pbs", f"qstat -x -f {job}").stdout, 30, "job ends"
    )
    shown = remote("pbs", f"qstat -x -f {job}").stdout
    assert "Resource_List.select = 1:ncpus=2:mem=60MB" in shown
    assert "Exit_status = 0" in shown
