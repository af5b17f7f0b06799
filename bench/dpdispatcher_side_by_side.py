"""submitter and dpdispatcher side by side: N trivial tasks on the docker SLURM cluster.

For each cluster (`slurm`: two compute nodes, `slurm-1node`: one) and each N, both tools run
N tasks that each write one small output file, from this machine over ssh, timed from their
start to every output back on this machine:
  - submitter: `apply` of a tasks file with `for_each` and `outputs`, the host from the
    cluster's hosts.yml entry, default settings but `poll_interval` (= --poll);
  - dpdispatcher (pinned version, installed from PyPI into a venv of its own): a `Machine`
    with `batch_type: Slurm`, `context_type: SSHContext` (same key, user alice), `Resources`
    with each `group_size` of --group-sizes (one CPU per job, dpdispatcher's default), a
    `Task` per output with it as `backward_files`, and `run_submission(check_interval=)`
    = --poll.
The runs alternate between the tools, each repeated --repeat times; the cluster's work dirs
are removed (ssh `rm -rf`) and its queue left empty before each run. Printed per cluster:
N, submitter min/median, dpdispatcher's best group_size and its min/median, their ratio,
the scheduler jobs each used, and slurmctld's count of the user's RPCs (`sdiag`) per run.

Usage:  .venv/bin/python bench/dpdispatcher_side_by_side.py [--cluster slurm,slurm-1node]
            [--tasks 200,1000,5000] [--repeat 2] [--poll 10] [--group-sizes 50,200,1000] [--down]
Set SUBMITTER_TEST_PROJECT to keep the bench's cluster apart from other runs on this machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from docker_slurm import (
    login_container,
    rpcs_by_user,
    run_submitter,
    ssh_argv,
    start_cluster,
    stop_cluster,
)

DPDISPATCHER_VERSION = "1.1.0"
DPDISPATCHER_VENV = Path.home() / ".cache" / "submitter-bench" / "dpdispatcher-venv"
DPDISPATCHER_DRIVER = Path(__file__).resolve().parent / "dpdispatcher_tasks.py"
DPDISPATCHER_REMOTE_ROOT = "/scratch/alice/dpdispatcher"
COMPUTE_NODES = {"slurm": 2, "slurm-1node": 1}


@dataclass(frozen=True)
class Run:
    """One timed run: `tool` is "submitter" or "dpdispatcher"; `group_size` is
    dpdispatcher's (0 for submitter)."""

    tool: str
    tasks: int
    group_size: int
    seconds: float
    jobs: int
    rpcs: int


def dpdispatcher_python(version: str) -> Path:
    """The python of a venv holding dpdispatcher `version` (made and installed once)."""
    python = DPDISPATCHER_VENV / "bin" / "python"
    if installed_version(python) != version:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(DPDISPATCHER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"dpdispatcher=={version}"], check=True
        )
    found = installed_version(python)
    if found != version:
        raise SystemExit(f"dpdispatcher {version} wanted in {DPDISPATCHER_VENV}, found {found}")
    return python


def installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('dpdispatcher'))"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def clean_cluster(host: dict[str, object]) -> None:
    """Remove both tools' work dirs on the cluster and wait until alice has no job queued."""
    dirs = shlex.join([str(host["work_dir"]), DPDISPATCHER_REMOTE_ROOT])
    script = (
        f"rm -rf {dirs} && mkdir -p {shlex.quote(DPDISPATCHER_REMOTE_ROOT)} && "
        'for _ in $(seq 120); do [ -z "$(squeue -h -u alice -o %i)" ] && exit 0; sleep 1; '
        "done; echo 'jobs still queued after 120 s' >&2; exit 1"
    )
    subprocess.run(ssh_argv(host, script), check=True, capture_output=True, text=True)


def dpdispatcher_settings(
    host: dict[str, object], tasks: int, group_size: int, poll: int, local_root: Path
) -> dict[str, object]:
    username, hostname = str(host["address"]).split("@", 1)
    return {
        "tasks": tasks,
        "group_size": group_size,
        "check_interval": poll,
        "local_root": str(local_root),
        "remote_root": DPDISPATCHER_REMOTE_ROOT,
        "hostname": hostname,
        "username": username,
        "port": int(str(host["port"])),
        "key_filename": str(host["identity_file"]),
    }


def run_dpdispatcher(
    python: Path, host: dict[str, object], run: tuple[int, int, int], login: str
) -> Run:
    """dpdispatcher running `tasks` trivial tasks in jobs of `group_size`, polling every
    `poll` s (`run` = tasks, group_size, poll); timed from its start to every output here."""
    tasks, group_size, poll = run
    with tempfile.TemporaryDirectory(prefix="dpdispatcher-bench-") as tmp:
        local_root = Path(tmp) / "work"
        settings, result = Path(tmp) / "settings.json", Path(tmp) / "result.json"
        settings.write_text(
            json.dumps(dpdispatcher_settings(host, tasks, group_size, poll, local_root))
        )
        rpcs = rpcs_by_user(login)
        began = time.monotonic()
        done = subprocess.run(
            [str(python), str(DPDISPATCHER_DRIVER), str(settings), str(result)],
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        elapsed = time.monotonic() - began
        rpcs = rpcs_by_user(login) - rpcs
        if done.returncode != 0:
            raise SystemExit(
                f"dpdispatcher failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                f"{done.stderr[-2000:]}"
            )
        outputs = len(list(local_root.glob("t-*/out.txt")))
        if outputs != tasks:
            raise SystemExit(f"dpdispatcher brought back {outputs} of {tasks} outputs")
        jobs = len(set(json.loads(result.read_text())["job_ids"]))
        return Run("dpdispatcher", tasks, group_size, elapsed, jobs, rpcs)


def run_submitter_once(host: dict[str, object], tasks: int, poll: int, login: str) -> Run:
    ours = run_submitter(host, tasks, f"{poll}s", login)
    if ours["outputs"] != tasks:
        raise SystemExit(f"submitter brought back {ours['outputs']} of {tasks} outputs")
    seconds, jobs, rpcs = (float(str(ours["seconds"])), int(str(ours["jobs"])), ours["rpcs"])
    steps = ", ".join(f"{name} {moment}" for name, moment in ours["phases"].items())
    print(f"  submitter, {tasks} tasks: {seconds:.1f} s ({steps})", flush=True)
    return Run("submitter", tasks, 0, seconds, jobs, int(str(rpcs)))


def group_sizes_for(tasks: int, sizes: list[int]) -> list[int]:
    """The group sizes worth trying for `tasks`: every size over `tasks` makes one job."""
    return sorted({min(size, tasks) for size in sizes})


def measure_cluster(cluster: str, args: argparse.Namespace, python: Path) -> list[Run]:
    host = start_cluster(cluster)
    login = login_container(cluster)
    nodes = COMPUTE_NODES.get(cluster, 0)
    print(f"\ncluster {cluster}: login + {nodes} compute node(s), 4 CPUs each", flush=True)
    runs: list[Run] = []
    for tasks in args.tasks:
        # a tool's entry: group size, 0 being submitter
        entries = [0, *group_sizes_for(tasks, args.group_sizes)]
        for repeat in range(args.repeat):
            for group_size in entries if repeat % 2 == 0 else entries[::-1]:
                clean_cluster(host)
                if group_size == 0:
                    run = run_submitter_once(host, tasks, args.poll, login)
                else:
                    run = run_dpdispatcher(python, host, (tasks, group_size, args.poll), login)
                runs.append(run)
                print(f"  {describe(run)}", flush=True)
    clean_cluster(host)
    return runs


def describe(run: Run) -> str:
    tool = run.tool if run.tool == "submitter" else f"dpdispatcher group_size={run.group_size}"
    return (
        f"N={run.tasks} {tool}: {run.seconds:.1f} s, {run.jobs} scheduler jobs, "
        f"{run.rpcs} slurmctld RPCs"
    )


def min_median(runs: list[Run]) -> tuple[float, float]:
    seconds = [run.seconds for run in runs]
    return min(seconds), statistics.median(seconds)


def best_group(runs: list[Run]) -> list[Run]:
    """dpdispatcher's runs at its best group size: the lowest median, then the lowest min."""
    by_size: dict[int, list[Run]] = {}
    for run in runs:
        by_size.setdefault(run.group_size, []).append(run)
    return min(by_size.values(), key=min_median)


def jobs_and_rpcs(runs: list[Run]) -> str:
    jobs = sorted({run.jobs for run in runs})
    return f"{'/'.join(map(str, jobs))} | {', '.join(str(run.rpcs) for run in runs)}"


def print_table(cluster: str, runs: list[Run], poll: int) -> None:
    print(f"\n{cluster}, poll interval {poll} s for both (seconds: min / median)")
    print(
        "| N | submitter | jobs | RPCs per run | dpdispatcher best group_size | dpdispatcher "
        "| jobs | RPCs per run | dpdispatcher / submitter (median) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for tasks in sorted({run.tasks for run in runs}):
        ours = [r for r in runs if r.tasks == tasks and r.tool == "submitter"]
        theirs = best_group([r for r in runs if r.tasks == tasks and r.tool == "dpdispatcher"])
        (our_min, our_median), (their_min, their_median) = min_median(ours), min_median(theirs)
        print(
            f"| {tasks} | {our_min:.1f} / {our_median:.1f} | {jobs_and_rpcs(ours)} "
            f"| {theirs[0].group_size} | {their_min:.1f} / {their_median:.1f} "
            f"| {jobs_and_rpcs(theirs)} | {their_median / our_median:.2f}x |"
        )
    print_group_sizes(runs)


def print_group_sizes(runs: list[Run]) -> None:
    """Every group size dpdispatcher was given, with its min / median, by N."""
    for tasks in sorted({run.tasks for run in runs}):
        theirs = [r for r in runs if r.tasks == tasks and r.tool == "dpdispatcher"]
        tried = []
        for size in sorted({run.group_size for run in theirs}):
            low, middle = min_median([r for r in theirs if r.group_size == size])
            tried.append(f"group_size {size}: {low:.1f} / {middle:.1f}")
        print(f"dpdispatcher at N={tasks}: {'; '.join(tried)}")


def comma_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cluster", default="slurm-1node,slurm", help="slurm, slurm-1node or both")
    parser.add_argument("--tasks", type=comma_ints, default=[200, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each tool at each N")
    parser.add_argument("--poll", type=int, default=10, help="both tools' poll interval, seconds")
    parser.add_argument("--group-sizes", type=comma_ints, default=[50, 200, 1000])
    parser.add_argument("--dpdispatcher-version", default=DPDISPATCHER_VERSION)
    parser.add_argument("--down", action="store_true", help="bring each cluster down after it")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    python = dpdispatcher_python(args.dpdispatcher_version)
    print(f"dpdispatcher {installed_version(python)} ({python})", flush=True)
    measured: dict[str, list[Run]] = {}
    for cluster in args.cluster.split(","):
        try:
            measured[cluster] = measure_cluster(cluster, args, python)
        finally:
            if args.down:
                stop_cluster(cluster)
    for cluster, runs in measured.items():
        print_table(cluster, runs, args.poll)
    print("\ncommand line:", shlex.join(sys.argv))


if __name__ == "__main__":
    main()
