"""Apply N trivial tasks to the docker SLURM cluster and compare with plain sbatch.

Prints, in one run:
  - submitter's wall time from `apply` to every output back on this machine,
  - the scheduler jobs, ssh connections and remote commands/copies it used (`apply --json`),
  - slurmctld's own count of the RPCs the user made during the run (`sdiag`), per minute, and
    the ssh logins the login node's sshd accepted (its log),
  - the floor: the same N jobs submitted with plain `sbatch` on the login node and waited
    for (`--floor jobs`, one job per task, as a user without submitter would), or the same
    N commands packed by hand into as many sbatch jobs as submitter used (`--floor packed`).

Usage:  .venv/bin/python bench/slurm_many_tasks.py [-n 200] [--poll 30s] [--floor jobs|packed]
Starts the cluster with `docker/cluster up slurm` (the Docker engine must be running:
`docker/install-engine`).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_cluster() -> dict[str, object]:
    done = subprocess.run(
        [str(ROOT / "docker" / "cluster"), "up", "slurm"],
        capture_output=True,
        text=True,
        check=True,
    )
    from ruamel.yaml import YAML

    entry = YAML(typ="safe").load(done.stdout.split("\n\n")[0])
    return dict(entry["hosts"]["docker-slurm"])


def login_container() -> str:
    """The docker container of the cluster's login node (slurmctld and sshd run there)."""
    names = subprocess.run(
        ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return next(n for n in names if n.startswith("submitter-test") and "slurm-login" in n)


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


def run_submitter(host: dict[str, object], count: int, poll: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="submitter-bench-") as tmp:
        project = Path(tmp)
        tasks = {
            "hosts": {"slurm": dict(host, poll_interval=poll)},
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
        login = login_container()
        rpcs, logins = rpcs_by_user(login), ssh_logins(login)
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "submitter", "apply", "tasks.yml", "--json"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - began
        rpcs, logins = rpcs_by_user(login) - rpcs, ssh_logins(login) - logins
        if done.returncode != 0:
            raise SystemExit(f"apply failed ({done.returncode}): {done.stderr[-2000:]}")
        outputs = len(list((project / "out").glob("*.txt")))
        report = json.loads(done.stdout)
        stats = report["transport"]["slurm"]
        # an array member's id is ARRAY_INDEX, a packed task's JOB/INDEX: count the jobs
        jobs = {re.split(r"[_/]", str(t["job_id"]))[0] for t in report["tasks"] if t["job_id"]}
        return {
            "seconds": elapsed,
            "outputs": outputs,
            "jobs": len(jobs),
            "rpcs": rpcs,
            "logins": logins,
            **stats,
        }


def run_plain_sbatch(host: dict[str, object], count: int, jobs: int) -> float:
    """`jobs` sbatch jobs on the login node running the `count` trivial commands between
    them (count == jobs: one job per task), submitted and waited for."""
    script = f"""
set -e
dir=/scratch/alice/bench-plain-$$
mkdir -p "$dir"; cd "$dir"
start=$(date +%s.%N)
for j in $(seq 0 {jobs - 1}); do
  sbatch --parsable --mem=50M --time=00:05:00 -o /dev/null --wrap \
    "for i in \\$(seq $j {jobs} {count - 1}); do echo \\$i > $dir/\\$i.txt; done" >/dev/null
done
while [ -n "$(squeue -h -u alice -t PD,R,CG -o %i)" ]; do sleep 0.2; done
end=$(date +%s.%N)
n=$(ls "$dir" | wc -l)
rm -rf "$dir"
echo "$start $end $n"
"""
    argv = [
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
        "bash -s",
    ]
    done = subprocess.run(argv, input=script, capture_output=True, text=True, check=True)
    start, end, produced = done.stdout.split()
    if int(produced) != count:
        raise SystemExit(f"plain sbatch produced {produced} of {count} outputs")
    return float(end) - float(start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--tasks", type=int, default=200)
    parser.add_argument("--poll", default="30s", help="submitter's poll_interval for the host")
    parser.add_argument(
        "--floor",
        choices=["jobs", "packed"],
        default="jobs",
        help="the floor: one sbatch job per task, or as many jobs as submitter used",
    )
    args = parser.parse_args()
    host = start_cluster()
    print(
        f"cluster: docker SLURM (login + 2 compute nodes, 4 CPUs each), {args.tasks} tasks",
        flush=True,
    )
    ours = run_submitter(host, args.tasks, args.poll)
    floor_jobs = args.tasks if args.floor == "jobs" else int(str(ours["jobs"]))
    floor = run_plain_sbatch(host, args.tasks, floor_jobs)
    print(
        f"submitter apply (poll {args.poll}): {ours['seconds']:.1f} s wall, apply to all "
        f"{ours['outputs']} outputs back here"
    )
    print(f"  scheduler jobs used: {ours['jobs']} for {args.tasks} tasks")
    minutes = float(str(ours["seconds"])) / 60
    print(
        f"  slurmctld RPCs by the user (sdiag): {ours['rpcs']}, "
        f"{int(str(ours['rpcs'])) / minutes:.0f} per minute; ssh logins accepted by the "
        f"login node's sshd: {ours['logins']}"
    )
    print(
        f"  ssh connections: {ours['connections']}, remote commands: {ours['commands']}, "
        f"file copies (rsync runs): {ours['transfers']} moving {ours['files']} files"
    )
    how = "one job per task" if floor_jobs == args.tasks else "packed by hand"
    print(
        f"plain sbatch on the login node ({floor_jobs} jobs, {how}): {floor:.1f} s for "
        f"{args.tasks} commands submitted and waited for"
    )
    print(f"overhead: {ours['seconds'] - floor:+.1f} s ({ours['seconds'] / floor:.2f}x the floor)")
    print("command line:", shlex.join(sys.argv))


if __name__ == "__main__":
    main()
