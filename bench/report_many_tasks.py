"""`submitter report` on a large synthetic run: how long it takes and how big the page is.

Builds a state store as an overnight run of N tasks would leave it (three hosts, one of them
small enough for a row per task; a pipeline prep -> sim-* -> stats-* -> final; about 3 % of
tasks failed, 5 % retried, local logs for the failures), then times `submitter report` on it.

Usage:  .venv/bin/python bench/report_many_tasks.py [-n 10000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from submitter.store.db import Store

HOSTS = (("local", 0.05), ("cloud", 0.35), ("hpc", 0.60))  # host, share of the tasks


def _clock(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _names(n: int) -> list[tuple[str, list[str]]]:
    """Task names with their upstream names: prep, sims, stats over 9 sims each, final."""
    sims = max(1, (n - 2) * 9 // 10)
    stats = max(1, n - 2 - sims)
    tasks: list[tuple[str, list[str]]] = [("prep", [])]
    tasks += [(f"sim-{i:05d}", ["prep"]) for i in range(sims)]
    per = max(1, sims // stats)
    tasks += [
        (f"stats-{j:04d}", [f"sim-{i:05d}" for i in range(j * per, min(sims, (j + 1) * per))])
        for j in range(stats)
    ]
    tasks.append(("final", [f"stats-{j:04d}" for j in range(stats)]))
    return tasks


def build_store(project: Path, n: int, seed: int = 1) -> Path:
    """A project directory whose `.submitter/state.db` holds n finished tasks."""
    rng = random.Random(seed)
    store = Store(project / ".submitter")
    start = time.time() - 8 * 3600
    submissions: list[tuple[float, int]] = []  # the store records "now": set them afterwards
    with store.transaction():
        for index, (name, upstream) in enumerate(_names(n)):
            host = rng.choices([h for h, _ in HOSTS], [w for _, w in HOSTS])[0]
            task_id = f"{index:08x}{rng.getrandbits(32):08x}"
            retry = {"retries": 1, "retry_on": ["node_fail"]}
            spec = {"upstream": upstream, "retry": retry, "host_config": {}}
            store.upsert_task(task_id, name, host, f"/w/{task_id}", f"/w/{task_id}", spec)
            submitted = start + index * 2.5 + rng.random() * 60
            attempts = 2 if rng.random() < 0.05 else 1
            failed = rng.random() < 0.03
            for number in range(1, attempts + 1):
                attempt_id, _ = store.start_attempt(task_id, host, "slurm@1", "0" * 64, number)
                submissions.append((submitted, attempt_id))
                began = submitted + rng.expovariate(1 / 120)
                ended = began + rng.lognormvariate(6, 0.6)
                last = number == attempts
                state = "failed" if (failed and last) or not last else "completed"
                store.update_attempt(
                    attempt_id,
                    state=state,
                    exit_code=(2 if last else None) if state == "failed" else 0,
                    reason="exit code 2" if state == "failed" else "",
                    cause=("exit_code" if last else "node_fail") if state == "failed" else "",
                    exec_host=f"node{rng.randrange(64):03d}",
                    started=_clock(began),
                    ended=_clock(ended),
                )
                submitted = ended + 5
            store.set_task_state(task_id, state, "exit code 2" if state == "failed" else "")
            if state == "failed":
                logs = project / ".submitter" / "tasks" / task_id
                logs.mkdir(parents=True)
                (logs / "stdout").write_text("".join(f"step {i} of {name}\n" for i in range(100)))
                (logs / "stderr").write_text(f"Traceback ...\nValueError: {name} diverged\n")
    store.close()
    with sqlite3.connect(project / ".submitter" / "state.db") as db:
        db.executemany("UPDATE attempts SET submitted=? WHERE id=?", submissions)
    return project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        project = build_store(Path(temp), args.n)
        output = project / "report.html"
        began = time.monotonic()
        command = [sys.executable, "-m", "submitter", "report", "-C", str(project), "-o"]
        subprocess.run([*command, str(output)], check=True, capture_output=True)
        seconds = time.monotonic() - began
        size = output.stat().st_size
        # The floor: a Python start that imports the store and reads every task and attempt,
        # which any report of this run must do.
        read = (
            "import sys; from pathlib import Path; from submitter.store.db import Store; "
            "store = Store(Path(sys.argv[1])); store.tasks(); store.all_attempts()"
        )
        began = time.monotonic()
        subprocess.run([sys.executable, "-c", read, str(project / ".submitter")], check=True)
        floor = time.monotonic() - began
    print(
        f"report of {args.n} tasks: {seconds:.2f} s (whole command), {size / 1e6:.2f} MB"
        f"   (floor, reading the store alone: {floor:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
