"""Faults ridden out on the project's docker clusters: each task runs exactly once, every
output comes back, and the final states and reasons are right.

Runs are counted on the host: each task appends a line to a file in a directory that every
node mounts (and this machine sees at the same path), so a second run of any task shows.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

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


@pytest.mark.parametrize("host", ["ssh", "slurm"])
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


@pytest.mark.parametrize("host", ["ssh", "slurm"])
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
