"""The docker SLURM clusters as the benches drive them: start one and read its hosts.yml
entry, find its login node, read slurmctld's and sshd's counts of what a user asked, run a
command there over ssh, and apply N trivial tasks to it with submitter.

`docker/cluster` names its docker-compose project after `$SUBMITTER_TEST_PROJECT` (default
`submitter-test`): set it to keep a bench's cluster apart from another run's on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from submitter.schedulers.base import scheduler_jobs

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "docker" / "cluster"


def compose_project() -> str:
    return os.environ.get("SUBMITTER_TEST_PROJECT", "submitter-test")


def start_cluster(cluster: str = "slurm") -> dict[str, object]:
    """Start `cluster` (`docker/cluster up`: waits until its nodes are idle) and return its
    hosts.yml entry: address, port, identity_file, known_hosts, work_dir, ..."""
    done = subprocess.run(
        [str(CLUSTER_SCRIPT), "up", cluster], capture_output=True, text=True, check=True
    )
    from ruamel.yaml import YAML

    entry = YAML(typ="safe").load(done.stdout.split("\n\n")[0])
    return dict(entry["hosts"][f"docker-{cluster}"])


def stop_cluster(cluster: str) -> None:
    subprocess.run([str(CLUSTER_SCRIPT), "down", cluster], capture_output=True, check=True)


def login_container(cluster: str = "slurm") -> str:
    """The docker container of the cluster's login node (slurmctld and sshd run there)."""
    names = subprocess.run(
        [
            "docker",
            "ps",
            "--filter",
            f"label=com.docker.compose.project={compose_project()}",
            "--filter",
            f"label=com.docker.compose.service={cluster}-login",
            "--format",
            "{{.Names}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not names:
        raise SystemExit(f"no running {cluster}-login container in project {compose_project()}")
    return names[0]


def rpcs_by_user(container: str, user: str = "alice") -> int:
    """How many remote procedure calls slurmctld has served `user` since it started, by its
    own counters (`sdiag`, section "statistics by user")."""
    out = subprocess.run(
        ["docker", "exec", container, "sdiag"], capture_output=True, text=True, check=True
    ).stdout
    by_user = out.split("statistics by user", 1)[-1]
    found = re.search(rf"^\s*{re.escape(user)}\s*\(\s*\d+\)\s*count:(\d+)", by_user, re.M)
    return int(found.group(1)) if found else 0


def ssh_logins(container: str, user: str = "alice") -> int:
    """ssh logins the login node's sshd has accepted for `user`, by its own log."""
    done = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    return (done.stdout + done.stderr).count(f"Accepted publickey for {user}")


def ssh_argv(host: dict[str, object], command: str) -> list[str]:
    """ssh to the cluster's login node as its entry says, running `command`."""
    return [
        "ssh",
        "-i",
        str(host["identity_file"]),
        "-p",
        str(host["port"]),
        "-o",
        f"UserKnownHostsFile={host['known_hosts']}",
        "-o",
        "BatchMode=yes",
        str(host["address"]),
        command,
    ]


def run_submitter(host: dict[str, object], count: int, poll: str, login: str) -> dict[str, object]:
    """`submitter apply` of `count` tasks that each write one small output, on `host` polled
    every `poll`; timed from the start of apply to every output back on this machine.
    `login` is the cluster's login container, whose RPC and login counts are read around it."""
    with tempfile.TemporaryDirectory(prefix="submitter-bench-") as tmp:
        project = Path(tmp)
        work_dir = f"/scratch/alice/bench-{os.getpid()}-{int(time.time())}"
        tasks = {
            "hosts": {"slurm": dict(host, poll_interval=poll, work_dir=work_dir)},
            "defaults": {
                "host": "slurm",
                "resources": {"cores": 1, "mem": "50M", "walltime": "00:01:00"},
            },
            "tasks": [
                {
                    "name": "t-{{ i }}",
                    "for_each": {"i": list(range(count))},
                    "outputs": ["out/{{ i }}.txt"],
                    "run": "mkdir -p out; echo {{ i }} > out/{{ i }}.txt\n",
                }
            ],
        }
        (project / "tasks.yml").write_text(json.dumps(tasks))
        rpcs, logins = rpcs_by_user(login), ssh_logins(login)
        began_at = time.time()
        began = time.monotonic()
        done, peak_mb = _run_measured(
            [sys.executable, "-m", "submitter", "apply", "tasks.yml", "--json"], project
        )
        elapsed = time.monotonic() - began
        rpcs, logins = rpcs_by_user(login) - rpcs, ssh_logins(login) - logins
        if done.returncode != 0:
            raise SystemExit(f"apply failed ({done.returncode}): {done.stderr[-2000:]}")
        outputs = len(list((project / "out").glob("*.txt")))
        report = json.loads(done.stdout)
        stats = report["transport"]["slurm"]
        # an array member's id is ARRAY_INDEX, a pool member's pool:JOBS/INDEX: count the jobs
        jobs = {
            re.split(r"_", job)[0]
            for t in report["tasks"]
            if t["job_id"]
            for job in scheduler_jobs(str(t["job_id"]))
        }
        entries, groups = host_entries(host, work_dir)
        return {
            "seconds": elapsed,
            "phases": phases(project / ".submitter" / "state.db", began_at),
            "outputs": outputs,
            "jobs": len(jobs),
            "peak_mb": peak_mb,
            "entries_per_task": entries / count,
            "group_entries": groups,
            "rpcs": rpcs,
            "logins": logins,
            **stats,
        }


def phases(state_db: Path, began_at: float) -> dict[str, float]:
    """When, in seconds after the apply began, the run reached each step, from its store:
    the first and last submission, the first task's start and the last task's end on the
    cluster (its clock: the containers share this machine's), the last completion here."""
    with contextlib.closing(sqlite3.connect(state_db)) as db:
        submitted = db.execute("SELECT min(submitted), max(submitted) FROM attempts").fetchone()
        started, ended = zip(*db.execute("SELECT started, ended FROM attempts"), strict=True)
        (completed,) = db.execute(
            "SELECT max(time) FROM events WHERE kind = 'completed'"
        ).fetchone()

    def on_host(stamps: tuple[str | None, ...], pick: Callable[..., str]) -> float:
        stamp = pick(s for s in stamps if s)
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    marks = {
        "first submission": submitted[0],
        "last submission": submitted[1],
        "first start": on_host(started, min),
        "last end": on_host(ended, max),
        "last completion": completed,
    }
    return {name: round(moment - began_at, 1) for name, moment in marks.items()}


def host_entries(host: dict[str, object], work_dir: str) -> tuple[int, int]:
    """Files and directories under the run's work_dir on the cluster (the task directories
    and all in them but the tasks' outputs, `out/`), and those of its pools and arrays
    (`.groups/`); the work_dir is removed after."""
    script = (
        f"cd {work_dir} && find . -mindepth 1 \\( -path ./.groups -o -name out \\) -prune"
        " -o -print | wc -l;"
        f" find .groups 2>/dev/null | wc -l; rm -rf {work_dir}"
    )
    done = subprocess.run(ssh_argv(host, script), capture_output=True, text=True, check=True)
    tasks, groups = done.stdout.split()
    return int(tasks), int(groups)


def _run_measured(argv: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a command; what it printed, and its own peak memory in MB (wait4's rusage)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        return subprocess.CompletedProcess(
            argv, code, out.read(), err.read()
        ), usage.ru_maxrss / 1024
