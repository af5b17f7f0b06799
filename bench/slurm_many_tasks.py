"""Apply N trivial tasks to the docker SLURM cluster and compare with plain sbatch.

Prints, in one run:
  - submitter's wall time from `apply` to every output back on this machine,
  - the scheduler jobs, ssh connections and remote commands/copies it used (`apply --json`),
  - slurmctld's own count of the RPCs the user made during the run (`sdiag`), per minute, and
    the ssh logins the login node's sshd accepted (its log),
  - the floor: the same N jobs submitted with plain `sbatch` on the login node and waited
    for (`--floor jobs`, one job per task, as a user without submitter would), or the same
    N commands packed by hand into as many sbatch jobs as submitter used (`--floor packed`).

Usage:  .venv/bin/python bench/slurm_many_tasks.py [-n 200] [--poll 30s] [--floor jobs|packed|none]
            [--cluster slurm|slurm-1node]
Starts the cluster with `docker/cluster up slurm` (the Docker engine must be running:
`docker/install-engine`).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from docker_slurm import login_container, run_submitter, ssh_argv, start_cluster


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
    done = subprocess.run(
        ssh_argv(host, "bash -s"), input=script, capture_output=True, text=True, check=True
    )
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
        choices=["jobs", "packed", "none"],
        default="jobs",
        help="the floor: one sbatch job per task, as many jobs as submitter used, or none",
    )
    parser.add_argument(
        "--cluster",
        choices=["slurm", "slurm-1node"],
        default="slurm",
        help="two compute nodes (slurm) or one (slurm-1node), 4 CPUs each",
    )
    args = parser.parse_args()
    host = start_cluster(args.cluster)
    nodes = "2 compute nodes" if args.cluster == "slurm" else "1 compute node"
    print(f"cluster: docker SLURM (login + {nodes}, 4 CPUs each), {args.tasks} tasks", flush=True)
    ours = run_submitter(host, args.tasks, args.poll, login_container(args.cluster))
    floor_jobs = args.tasks if args.floor == "jobs" else int(str(ours["jobs"]))
    floor = run_plain_sbatch(host, args.tasks, floor_jobs) if args.floor != "none" else 0.0
    print(
        f"submitter apply (poll {args.poll}): {ours['seconds']:.1f} s wall, apply to all "
        f"{ours['outputs']} outputs back here"
    )
    print(f"  scheduler jobs used: {ours['jobs']} for {args.tasks} tasks")
    steps = ours["phases"]
    assert isinstance(steps, dict)
    print("  seconds after apply began: " + ", ".join(f"{k} {v}" for k, v in steps.items()))
    print(
        f"  on the cluster: {ours['entries_per_task']:.2f} files and directories per task"
        f" besides its output, and {ours['group_entries']} in the pools' directories;"
        f" client peak memory {ours['peak_mb']:.0f} MB"
    )
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
    if args.floor == "none":
        print("command line:", shlex.join(sys.argv))
        return
    how = "one job per task" if floor_jobs == args.tasks else "packed by hand"
    print(
        f"plain sbatch on the login node ({floor_jobs} jobs, {how}): {floor:.1f} s for "
        f"{args.tasks} commands submitted and waited for"
    )
    print(f"overhead: {ours['seconds'] - floor:+.1f} s ({ours['seconds'] / floor:.2f}x the floor)")
    print("command line:", shlex.join(sys.argv))


if __name__ == "__main__":
    main()
