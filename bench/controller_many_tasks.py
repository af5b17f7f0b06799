"""The controller alone at scale: N trivial local tasks from one `for_each` product.

Prints, in one run, the wall time and peak memory (max RSS) of each submitter command, each
beside its floor measured in the same run:
  - loading and expanding the tasks file alone (`load_project`), the floor of the rest;
  - `apply --plan` with no state store (every task new);
  - `render` of every task, its output thrown away;
  - a state store holding the N tasks, completed (filled the way an apply records them, or by
    a real `apply` with --fill apply), and its size;
  - `apply --plan` and `apply` over that store (every task up to date: nothing runs);
  - `status` and `status --json` over that store, against reading every record of the store.

Usage:  .venv/bin/python bench/controller_many_tasks.py [--tasks 100000] [--width 100]
            [--fill synthetic|apply] [-J 16] [--only plan,render,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from submitter.config.project import load_project
from submitter.identity import SignatureCache, file_signature
from submitter.prepare import prepare_tasks
from submitter.states import TaskState
from submitter.store.db import STATE_DIR, Store
from submitter.task_records import spec_of

SUBMITTER = [sys.executable, "-m", "submitter"]
STEPS = ("plan", "render", "store", "replan", "reapply", "status")


def timed(argv: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds and peak RSS (MB) of one child command: its own, from wait4 (the
    RUSAGE_CHILDREN maximum would be the largest of every command run so far). Its stdout is
    thrown away (rendering 100,000 tasks prints hundreds of MB), its stderr kept."""
    with tempfile.TemporaryFile("w+") as err:
        began = time.monotonic()
        process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - began
        err.seek(0)
        done = subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), "", err.read())
    return seconds, usage.ru_maxrss / 1024, done


def write_tasks(project: Path, rows: int, width: int) -> None:
    """rows x width tasks from one product of two lists, each writing one output file."""
    tasks = {
        "tasks": [
            {
                "name": "t-{{ i }}-{{ j }}",
                "for_each": {"i": list(range(rows)), "j": list(range(width))},
                "outputs": ["out/{{ i }}-{{ j }}.txt"],
                "run": "mkdir -p out; echo {{ i }} {{ j }} > out/{{ i }}-{{ j }}.txt\n",
            }
        ]
    }
    (project / "tasks.yml").write_text(json.dumps(tasks))


def fill_synthetic(project: Path) -> None:
    """The store as an apply of every task leaves it, written directly: each task recorded,
    started, running, completed with exit code 0 and its output's digest; and the outputs."""
    loaded = load_project(project / "tasks.yml")
    prepared = prepare_tasks(loaded, done=_every_id_as_done())
    store = Store(project / STATE_DIR)
    signatures = SignatureCache()
    tasks_file = str(loaded.tasks_file)
    (project / "out").mkdir(exist_ok=True)
    with store.transaction():
        for task in prepared:
            record = (task.task_id, task.name, task.host.name, task.task_dir, task.run_dir)
            store.upsert_task(*record, spec_of(task), tasks_file)  # as apply records it
            store.set_next_attempt(task.task_id, 1)
            attempt, _ = store.start_attempt(task.task_id, task.host.name, "local@1", "0" * 64)
            store.update_attempt(attempt, job_id=str(100000 + len(task.task_id)))
            store.transition(task.task_id, TaskState.RUNNING, attempt_id=attempt)
            digests = {}
            for output in task.output_files:
                output.local.write_text(task.name + "\n")
                digests[str(output.local)] = file_signature(output.local, signatures)
            store.set_outputs(task.task_id, digests)
            store.transition(
                task.task_id,
                TaskState.COMPLETED,
                attempt_id=attempt,
                exit_code=0,
                exec_host="localhost",
                started="2024-01-01T00:00:00Z",
                ended="2024-01-01T00:00:01Z",
            )
        store.save_signatures(signatures.added)  # as apply keeps its outputs' digests
    store.close()


class _EveryId(set[str]):
    """`done` for prepare_tasks: renders none (the fill needs ids, paths and specs only)."""

    def __contains__(self, item: object) -> bool:
        return True


def _every_id_as_done() -> set[str]:
    return _EveryId()


def disk_size(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("state.db*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="N, a multiple of --width")
    parser.add_argument("--width", type=int, default=100, help="length of the product's 2nd list")
    parser.add_argument("--fill", choices=("synthetic", "apply"), default="synthetic")
    parser.add_argument("-J", type=int, default=16, help="for --fill apply")
    parser.add_argument("--only", default=",".join(STEPS), help=f"some of {','.join(STEPS)}")
    args = parser.parse_args()
    steps = set(args.only.split(","))
    width = min(args.width, args.tasks)
    rows = args.tasks // width
    results: list[str] = []

    def run(label: str, argv: list[str], floor: str = "") -> None:
        seconds, mb, done = timed(argv, project)
        ok = "" if done.returncode == 0 else f"  EXIT {done.returncode}: {done.stderr[-500:]}"
        results.append(f"  {label:<24}{seconds:7.2f} s  peak {mb:5.0f} MB{floor}{ok}")

    with tempfile.TemporaryDirectory(prefix="submitter-bench-") as tmp:
        project = Path(tmp)
        write_tasks(project, rows, width)
        load = (
            "from pathlib import Path; from submitter.config.project import load_project; "
            "load_project(Path('tasks.yml'))"
        )
        load_s, load_mb, loaded = timed([sys.executable, "-c", load], project)
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        floor = f"   (floor, load + expand: {load_s:.2f} s, {load_mb:.0f} MB)"
        results.append(f"  {'load + expand':<24}{load_s:7.2f} s  peak {load_mb:5.0f} MB")
        if "plan" in steps:
            run("apply --plan (new)", [*SUBMITTER, "apply", "tasks.yml", "--plan"], floor)
        if "render" in steps:
            run("render (all tasks)", [*SUBMITTER, "render", "tasks.yml"], floor)
        if steps & {"store", "replan", "reapply", "status"}:
            _fill(project, args, results)
        if "replan" in steps:
            run("apply --plan (done)", [*SUBMITTER, "apply", "tasks.yml", "--plan"], floor)
        if "reapply" in steps:
            run("re-apply (all done)", [*SUBMITTER, "apply", "tasks.yml"], floor)
        if "status" in steps:
            read = (
                "from pathlib import Path; from submitter.store.db import Store; "
                "s = Store(Path('.submitter')); s.tasks(); s.all_attempts()"
            )
            read_s, read_mb, _ = timed([sys.executable, "-c", read], project)
            store_floor = f"   (floor, reading every record: {read_s:.2f} s, {read_mb:.0f} MB)"
            run("status", [*SUBMITTER, "status"], store_floor)
            run("status --json", [*SUBMITTER, "status", "--json"], store_floor)

    print(f"controller, {args.tasks} local tasks ({rows} x {width} for_each product)")
    print("\n".join(results))
    return 0


def _fill(project: Path, args: argparse.Namespace, results: list[str]) -> None:
    began = time.monotonic()
    if args.fill == "apply":
        seconds, mb, done = timed([*SUBMITTER, "apply", "tasks.yml", "-J", str(args.J)], project)
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(f"  {'apply (fills the store)':<24}{seconds:7.2f} s  peak {mb:5.0f} MB")
    else:
        fill_synthetic(project)
        results.append(f"  {'store filled directly':<24}{time.monotonic() - began:7.2f} s")
    size = disk_size(project / STATE_DIR)
    results.append(
        f"  {'state.db':<24}{size / 1e6:7.1f} MB  ({size / args.tasks:.0f} bytes per task)"
    )


if __name__ == "__main__":
    sys.exit(main())
