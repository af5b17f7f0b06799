"""Faults ridden out on the project's docker clusters: each task runs exactly once, every
output comes back, and the final states and reasons are right.

Runs are counted on the host: each task appends a line to a file in a directory that every
node mounts (and this machine sees at the same path), so a second run of any task shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from submitter.store.db import Store
from submitter.transport.ssh import ALIVE_COUNT, ALIVE_INTERVAL, CONNECT_TIMEOUT
from tests.cluster.conftest import CLUSTERS, docker, wait_until
from tests.conftest import write


def _tasks_file(project: Path, host: dict[str, Any], tasks: list[dict[str, Any]]) -> Path:
    return write(
        project / "tasks.yml",
        json.dumps({"hosts": {"h": host}, "defaults": {"host": "h"}, "tasks": tasks}),
    )


def _counted(shared: Path, count: int, seconds: int = 3) -> list[dict[str, Any]]:
    """`count` tasks that each log their run in `shared/runs/` and write one output."""
    return [
        {
            "name": "c-{{ i }}",
            "for_each": {"i": list(range(count))},
            "outputs": ["out/{{ i }}.txt"],
            "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
            "run": f'mkdir -p out; echo "$(uname -n) $$" >> {shared}/runs/{{{{ i }}}}\n'
            f"sleep {seconds}\necho {{{{ i }}}} > out/{{{{ i }}}}.txt\n",
        }
    ]


def _shared_dir(cluster_secrets: dict[str, Path], label: str) -> Path:
    shared = cluster_secrets["shared"] / f"{label}-{uuid.uuid4().hex[:6]}"
    (shared / "runs").mkdir(parents=True, mode=0o777)
    shared.chmod(0o777)
    (shared / "runs").chmod(0o777)
    return shared


def _attempts_starting(project: Path) -> int:
    db = project / ".submitter" / "state.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM attempts").fetchone()[0])
    except sqlite3.Error:
        return 0


def _kill_client_while_starting(project: Path, tasks: Path, sig: int, delay: float) -> None:
    """Start `apply`, and signal it `delay` seconds after its first attempts are recorded:
    the moment it asks the host to start them."""
    client = subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(tasks), "-J", "50"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _attempts_starting(project) == 0:
        time.sleep(0.01)
    time.sleep(delay)
    client.send_signal(sig)
    client.wait(timeout=60)


def _assert_each_ran_once(shared: Path, project: Path, count: int) -> None:
    runs = {p.name: p.read_text().splitlines() for p in (shared / "runs").iterdir()}
    twice = {name: lines for name, lines in runs.items() if len(lines) != 1}
    assert not twice, f"ran more than once: {twice}"
    assert sorted(runs, key=int) == [str(i) for i in range(count)]
    for i in range(count):
        assert (project / "out" / f"{i}.txt").read_text() == f"{i}\n"


@pytest.mark.parametrize("host", ["ssh", "slurm", "pbs"])
@pytest.mark.parametrize(
    ("sig", "delay"),
    [(signal.SIGKILL, 0.0), (signal.SIGKILL, 0.4), (signal.SIGTERM, 0.2), (signal.SIGHUP, 0.1)],
    ids=["kill-at-start", "kill-later", "term", "hup"],
)
def test_client_killed_while_starting_runs_each_task_once(
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, host: str, sig: int, delay: float
) -> None:  # type: ignore[no-untyped-def]
    count = 10
    shared = _shared_dir(cluster_secrets, f"kill-{host}")
    tasks = _tasks_file(tmp_path, cluster_hosts[host], _counted(shared, count))
    _kill_client_while_starting(tmp_path, tasks, sig, delay)
    result = cli("apply", tasks, "-J", "50")
    assert result.code == 0, result.err
    _assert_each_ran_once(shared, tmp_path, count)
    states = json.loads(cli("status", "--json", "-C", tmp_path).out)
    assert {s["state"] for s in states} == {"completed"}


@pytest.mark.parametrize("host", ["ssh", "slurm", "pbs"])
def test_max_running_holds_with_a_home_relative_work_dir(
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, host: str
) -> None:  # type: ignore[no-untyped-def]
    """The default work_dir is under ~: the host's run must still take `-J`."""
    shared = _shared_dir(cluster_secrets, f"limit-{host}")
    (shared / "running").mkdir(mode=0o777)
    (shared / "running").chmod(0o777)
    config = dict(cluster_hosts[host])
    assert "work_dir" not in config
    tasks = _tasks_file(
        tmp_path,
        config,
        [
            {
                "name": "p-{{ i }}",
                "for_each": {"i": [1, 2, 3, 4, 5]},
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:05:00"},
                "run": f"touch {shared}/running/{{{{ i }}}}\n"
                f"ls {shared}/running | wc -l >> {shared}/peaks\n"
                f"sleep 3\nrm {shared}/running/{{{{ i }}}}\n",
            }
        ],
    )
    result = cli("apply", tasks, "-J", "2")
    assert result.code == 0, result.err
    peaks = [int(line) for line in (shared / "peaks").read_text().split()]
    assert len(peaks) == 5 and max(peaks) <= 2, peaks


# ------------------------------------------------------------------ faults during the watch
SSHD_OUTAGE = 15.0
PAUSE = 60.0
# A frozen host: the master's keepalives give up after ALIVE_INTERVAL * (ALIVE_COUNT + 1) s,
# and the command that was waiting then tries a connection of its own, which ConnectTimeout
# ends: about a minute of silence before the engine hears of it.
NOTICE_FROZEN = ALIVE_INTERVAL * (ALIVE_COUNT + 1) + CONNECT_TIMEOUT + 15


class BackgroundApply:
    """`submitter apply` as a process of its own, as a user runs it; stderr kept in a file."""

    def __init__(self, project: Path, tasks: Path, *args: str, env: dict[str, str]) -> None:
        self.log = project / "apply.stderr"
        self.started = time.monotonic()
        with self.log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "submitter", "apply", str(tasks), *args],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                start_new_session=True,
            )

    @property
    def stderr(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float) -> float:
        """Until `text` is on stderr; when that was, on the monotonic clock."""
        wait_until(
            lambda: text in self.stderr or self.process.poll() is not None,
            timeout,
            f"apply to print {text!r}; it printed:\n{self.stderr}",
        )
        assert text in self.stderr, f"apply ended ({self.process.returncode}):\n{self.stderr}"
        return time.monotonic()

    def wait(self, timeout: float) -> tuple[int, float]:
        """Its exit code, and how long it ran."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"apply still running after {timeout:g} s:\n{self.stderr}"
            ) from None
        return code, time.monotonic() - self.started


@contextmanager
def _applying(
    project: Path, tasks: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[BackgroundApply]:
    client = BackgroundApply(project, tasks, *args, env=env or dict(os.environ))
    try:
        yield client
    finally:
        if client.process.poll() is None:
            os.killpg(client.process.pid, signal.SIGKILL)
            client.process.wait()


def _started(shared: Path) -> int:
    return len(list((shared / "runs").iterdir()))


def _wait_running(shared: Path, count: int) -> None:
    wait_until(lambda: _started(shared) == count, 90, f"{count} tasks running")


def _assert_completed(project: Path, count: int, *, resubmitted: bool = False) -> None:
    """Every task completed, with no reason, under the attempt it was started with; or, if
    `resubmitted`, after submissions the scheduler refused (no job) and that were retried."""
    store = Store(project / ".submitter")
    try:
        records = store.tasks()
        assert [(r.state, r.reason) for r in records] == [("completed", "")] * count, records
        for record in records:
            *refused, last = store.attempts(record.id)
            assert (last.state, last.cause) == ("completed", "") and last.job_id, record.name
            assert all(a.cause == "submit_error" and not a.job_id for a in refused), refused
            assert resubmitted or not refused, refused
    finally:
        store.close()


def _unreachable_since(stderr: str, trouble: str = "unreachable") -> str:
    match = re.search(
        rf"host h: {trouble} since (\d\d:\d\d:\d\d) \((.+?)\); keeps trying", stderr, re.S
    )
    assert match, stderr
    return match.group(2)


@pytest.mark.parametrize("host", ["ssh", "slurm", "pbs"])
def test_sshd_stopped_during_watch_is_ridden_out(  # type: ignore[no-untyped-def]
    tmp_path: Path, cluster_hosts, cluster_secrets, cluster_container, host: str
) -> None:
    """sshd and every session on the host end (the multiplexed connection drops) for 15 s
    while the tasks run: apply says since when the host is unreachable, keeps its tasks,
    reconnects once sshd is back and finishes with exit 0."""
    count = 3
    shared = _shared_dir(cluster_secrets, f"sshd-{host}")
    tasks = _tasks_file(tmp_path, cluster_hosts[host], _counted(shared, count, seconds=20))
    login = cluster_container(CLUSTERS[host][0])
    with _applying(tmp_path, tasks) as client:
        _wait_running(shared, count)
        stopped = time.monotonic()
        try:
            docker(
                "exec",
                login,
                "sh",
                "-c",
                "touch /run/sshd.hold; pkill -x sshd; "
                "while pgrep -x sshd >/dev/null; do sleep 0.1; done",
            )
            noticed = client.wait_for("unreachable since", SSHD_OUTAGE) - stopped
            time.sleep(max(0.0, stopped + SSHD_OUTAGE - time.monotonic()))  # the outage
        finally:
            docker("exec", login, "rm", "-f", "/run/sshd.hold")
        back = time.monotonic()
        code, took = client.wait(120)
    print(
        f"sshd outage on {host}: noticed after {noticed:.1f} s, apply took {took:.1f} s, "
        f"ended {time.monotonic() - back:.1f} s after sshd came back"
    )
    assert code == 0, client.stderr
    assert took < back - client.started + 30, "apply did not end soon after sshd came back"
    assert "connection" in _unreachable_since(client.stderr).lower()
    assert "reachable again after" in client.stderr
    _assert_each_ran_once(shared, tmp_path, count)
    _assert_completed(tmp_path, count)


def test_login_node_paused_during_watch_is_ridden_out(  # type: ignore[no-untyped-def]
    tmp_path: Path, cluster_hosts, cluster_secrets, cluster_container
) -> None:
    """The login node freezes (nothing answers, no connection closes) for a minute and more:
    apply notices by its ssh keepalives, keeps trying, and completes after it thaws."""
    count = 3
    shared = _shared_dir(cluster_secrets, "pause")
    tasks = _tasks_file(tmp_path, cluster_hosts["slurm"], _counted(shared, count, seconds=20))
    login = cluster_container("slurm-login")
    with _applying(tmp_path, tasks) as client:
        _wait_running(shared, count)
        paused = time.monotonic()
        docker("pause", login)
        try:
            noticed = client.wait_for("unreachable since", NOTICE_FROZEN) - paused
            time.sleep(max(0.0, paused + PAUSE - time.monotonic()))  # the rest of the minute
        finally:
            docker("unpause", login)
        thawed = time.monotonic()
        code, took = client.wait(120)
    print(
        f"login paused {thawed - paused:.1f} s: noticed after {noticed:.1f} s, apply took "
        f"{took:.1f} s, ended {time.monotonic() - thawed:.1f} s after the unpause"
    )
    assert code == 0, client.stderr
    assert took < thawed - client.started + 30, "apply did not end soon after the unpause"
    assert "ssh" in _unreachable_since(client.stderr)
    assert "reachable again after" in client.stderr
    _assert_each_ran_once(shared, tmp_path, count)
    _assert_completed(tmp_path, count)


def test_slurmctld_restarted_while_jobs_run_and_wait(  # type: ignore[no-untyped-def]
    tmp_path: Path, cluster_hosts, cluster_secrets, cluster_container
) -> None:
    """The controller goes away for 10 s while three jobs run and three tasks wait for a
    slot (-J 3): nothing is lost, nothing is submitted twice, all six complete."""
    count = 6
    shared = _shared_dir(cluster_secrets, "slurmctld")
    tasks = _tasks_file(tmp_path, cluster_hosts["slurm"], _counted(shared, count, seconds=8))
    login = cluster_container("slurm-login")
    _nodes_idle(login, "before the test")
    with _applying(tmp_path, tasks, "-J", "3") as client:
        _wait_running(shared, 3)
        try:
            docker(
                "exec",
                login,
                "sh",
                "-c",
                "pkill -x slurmctld; while pgrep -x slurmctld >/dev/null; do sleep 0.1; done",
            )
            stopped = time.monotonic()
            time.sleep(10)  # the outage
            started_during_outage = _started(shared)
        finally:
            docker(
                "exec", login, "sh", "-c", "pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld"
            )
        restarted = time.monotonic()
        code, took = client.wait(120)
    print(f"slurmctld down {restarted - stopped:.1f} s: apply took {took:.1f} s")
    assert code == 0, client.stderr
    assert started_during_outage == 3
    said = _unreachable_since(client.stderr, "its scheduler is not answering")
    assert "Unable to contact slurm controller" in said
    _assert_each_ran_once(shared, tmp_path, count)
    _assert_completed(tmp_path, count, resubmitted=True)


def _nodes_idle(login: str, why: str) -> None:
    """Until both compute nodes are idle: each one slurmctld left down or drained (a node
    that came back, or one that slurmctld stopped hearing from while it was itself frozen)
    is resumed by hand."""

    def idle() -> bool:
        states = docker("exec", login, "sinfo", "-h", "-N", "-p", "debug", "-o", "%N %t")
        for line in states.splitlines():
            node, _, state = line.partition(" ")
            if state in ("down", "drain"):  # not "down*": slurmctld still waits to hear from it
                docker("exec", login, "scontrol", "update", f"nodename={node}", "state=resume")
        return states.count(" idle\n") == 2

    wait_until(idle, 90, f"nodes idle {why}")


def test_compute_node_killed_mid_job_fails_the_task(  # type: ignore[no-untyped-def]
    tmp_path: Path, cluster_hosts, cluster_secrets, cluster_container
) -> None:
    """The node running the job dies: the task fails with the node failure as its reason
    within a couple of minutes, and SLURM does not run it again elsewhere (--no-requeue)."""
    shared = _shared_dir(cluster_secrets, "node")
    tasks = _tasks_file(tmp_path, cluster_hosts["slurm"], _counted(shared, 1, seconds=300))
    login = cluster_container("slurm-login")
    with _applying(tmp_path, tasks) as client:
        _wait_running(shared, 1)
        node = (shared / "runs" / "0").read_text().split()[0]
        assert node in ("c1", "c2"), node
        compute = cluster_container(f"slurm-{node}")
        try:
            docker("kill", compute)
            killed = time.monotonic()
            code, took = client.wait(150)
            failed_after = time.monotonic() - killed
        finally:
            docker("start", compute)
            _nodes_idle(login, f"after {node} came back")
    print(
        f"node {node} killed: the task failed {failed_after:.1f} s later; apply took {took:.1f} s"
    )
    assert code == 1, client.stderr
    assert "node failure (NF)" in client.stderr
    store = Store(tmp_path / ".submitter")
    try:
        (record,) = store.tasks()
        assert (record.state, record.reason) == ("failed", "node failure (NF)"), record
        (attempt,) = store.attempts(record.id)
        assert (attempt.state, attempt.cause, attempt.exec_host) == ("failed", "node_fail", node)
    finally:
        store.close()
    runs = (shared / "runs" / "0").read_text().splitlines()
    assert len(runs) == 1, runs
    assert not (tmp_path / "out" / "0.txt").exists()


def test_compute_nodes_frozen_under_packed_tasks_run_each_once(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, cluster_container
) -> None:
    """Both compute nodes freeze (`docker pause`) for a minute under 200 packed one-second
    tasks, a walltime of 30 s each: on the thaw, the tasks that were running find their
    command ended and their walltime passed at once. Each ran once, all completed, and the
    next apply runs nothing. SLURM waits for a frozen node as long as its default does
    (SlurmdTimeout 300 s): the cluster's own 20 s would make the freeze a node failure."""
    count = 200
    shared = _shared_dir(cluster_secrets, "frozen-nodes")
    (task,) = _counted(shared, count, seconds=1)
    task["resources"] = {"cores": 1, "mem": "20M", "walltime": "30s"}
    tasks = _tasks_file(tmp_path, cluster_hosts["slurm"], [task])
    login = cluster_container("slurm-login")
    nodes = [cluster_container(f"slurm-{node}") for node in ("c1", "c2")]
    with _slurmd_timeout([login, *nodes], 300), _applying(tmp_path, tasks) as client:
        wait_until(lambda: _started(shared) >= 20, 120, "20 tasks run")
        paused = time.monotonic()
        ran_before = _started(shared)
        try:
            for node in nodes:
                docker("pause", node)
            time.sleep(PAUSE)
        finally:
            for node in nodes:
                docker("unpause", node)
        thawed = time.monotonic()
        code, took = client.wait(600)
    said = (
        f"nodes paused {thawed - paused:.1f} s after {ran_before} of {count} tasks began: "
        f"apply took {took:.1f} s, ended {time.monotonic() - thawed:.1f} s after the thaw"
    )
    assert code == 0, client.stderr
    assert 0 < ran_before < count, "the nodes froze while the tasks ran"
    _assert_each_ran_once(shared, tmp_path, count)
    _assert_completed(tmp_path, count)
    assert all("/" in _job_id(tmp_path, i) for i in (0, count - 1)), "packed"
    again = cli("apply", tasks)
    assert again.code == 0 and f"{count} up to date" in again.err, again.err
    _assert_each_ran_once(shared, tmp_path, count)
    print(said)  # after the last `cli`, which reads what was printed


@contextmanager
def _slurmd_timeout(containers: list[str], seconds: int) -> Iterator[None]:
    """SLURM's SlurmdTimeout set to `seconds` on every node (the first one runs slurmctld),
    and set back afterwards."""

    def set_to(value: str) -> None:
        for container in containers:
            docker(
                "exec", container, "sed", "-i", f"s/^SlurmdTimeout=.*/SlurmdTimeout={value}/",
                "/etc/slurm/slurm.conf",
            )  # fmt: skip
        docker("exec", containers[0], "scontrol", "reconfigure")

    before = docker("exec", containers[0], "sh", "-c", "grep ^SlurmdTimeout= /etc/slurm/slurm.conf")
    set_to(str(seconds))
    try:
        yield
    finally:
        set_to(before.strip().split("=", 1)[1])


def _job_id(project: Path, index: int) -> str:
    store = Store(project / ".submitter")
    try:
        record = next(r for r in store.tasks() if r.name == f"c-{index}")
        return str(store.attempts(record.id)[-1].job_id)
    finally:
        store.close()


def _control_processes(control: Path) -> list[int]:
    """The ssh processes a client started with its control sockets under `control`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(control) in command:
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize("host", ["ssh", "slurm", "pbs"])
def test_client_machine_reboots_mid_run_then_apply_reattaches(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, host: str
) -> None:
    """The client dies with its ssh connections while every task runs (kill -9, its ssh
    processes and control sockets gone, as after a reboot): the next apply re-attaches to
    the running tasks and completes them, each run once."""
    count = 4
    shared = _shared_dir(cluster_secrets, f"reboot-{host}")
    tasks = _tasks_file(tmp_path, cluster_hosts[host], _counted(shared, count, seconds=8))
    control = Path(tempfile.mkdtemp(prefix="xdg-"))  # short: unix socket paths are limited
    try:
        with _applying(
            tmp_path, tasks, env={**os.environ, "XDG_RUNTIME_DIR": str(control)}
        ) as client:
            _wait_running(shared, count)
            os.killpg(client.process.pid, signal.SIGKILL)
            client.process.wait()
        leftover = _control_processes(control)
        assert leftover, "no ssh master outlived the client: nothing to clean up, no reboot"
        for pid in leftover:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        sockets = list(control.glob("submitter-*/*"))
        assert sockets, "no control socket to remove"
    finally:
        shutil.rmtree(control, ignore_errors=True)
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert f"re-attached to {count} task(s) started earlier" in result.err
    _assert_each_ran_once(shared, tmp_path, count)
    _assert_completed(tmp_path, count)
