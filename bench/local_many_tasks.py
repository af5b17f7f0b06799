"""Many trivial tasks on the local host: render, apply, re-apply, and what stays on disk.

Prints, in one run, each figure beside its floor measured in the same run:
  - `render --dry-run` of N tasks, against loading and expanding the tasks file alone;
  - `apply -J J` of N trivial tasks, against running the same N commands with
    `xargs -P J bash -c` (the least any runner must spend);
  - a re-apply of the N tasks once they are done (nothing runs), against the same load;
  - files and bytes under `.submitter/` afterwards, per task;
  - the peak memory (max RSS) of each submitter command.

Usage:  .venv/bin/python bench/local_many_tasks.py [-n 10000] [-J 16]
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


def timed(argv: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds and peak RSS (MB) of one child command: its own, from wait4 (the
    RUSAGE_CHILDREN maximum would be the largest of every command run so far)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.monotonic()
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(argv, process.returncode, out.read(), err.read())
    return seconds, usage.ru_maxrss / 1024, done


def disk_use(directory: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(directory):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(root, name)).st_size
    return files, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10000)
    parser.add_argument("-J", type=int, default=16)
    args = parser.parse_args()
    submitter = [sys.executable, "-m", "submitter"]
    with tempfile.TemporaryDirectory(prefix="submitter-bench-") as tmp:
        project = Path(tmp)
        tasks = {
            "tasks": [
                {
                    "name": "t-{{ i }}",
                    "for_each": {"i": list(range(args.n))},
                    "outputs": ["out/{{ i }}.txt"],
                    "run": "mkdir -p out; echo {{ i }} > out/{{ i }}.txt\n",
                }
            ]
        }
        (project / "tasks.yml").write_text(json.dumps(tasks))
        load = (
            "from pathlib import Path; from submitter.config.project import load_project; "
            "load_project(Path('tasks.yml'))"
        )
        load_s, _, _ = timed([sys.executable, "-c", load], project)
        render_s, render_mb, render = timed(
            [*submitter, "render", "tasks.yml", "--dry-run"], project
        )
        assert render.returncode == 0, render.stderr[-2000:]

        # the floor runs the very commands the tasks run, in a directory of its own
        floor_dir = project / "floor"
        floor_dir.mkdir()
        floor_script = (
            f"seq 0 {args.n - 1} | xargs -P {args.J} -I@ bash -c 'mkdir -p out; echo @ > out/@.txt'"
        )
        floor_s, _, _ = timed(["bash", "-c", floor_script], floor_dir)
        apply_s, apply_mb, applied = timed(
            [*submitter, "apply", "tasks.yml", "-J", str(args.J)], project
        )
        assert applied.returncode == 0, applied.stderr[-2000:]
        again_s, again_mb, again = timed([*submitter, "apply", "tasks.yml"], project)
        assert again.returncode == 0, again.stderr[-2000:]
        files, size = disk_use(project / ".submitter")
        outputs = len(list((project / "out").iterdir()))

    print(f"local host, {args.n} trivial tasks, -J {args.J}")
    print(
        f"  render --dry-run     {render_s:7.2f} s   (load + expand only: {load_s:.2f} s)  peak {render_mb:.0f} MB"
    )
    print(
        f"  apply                {apply_s:7.2f} s   (floor, xargs -P {args.J} bash -c of the same"
        f" {args.n} commands: {floor_s:.2f} s; {apply_s / floor_s:.1f}x)  peak {apply_mb:.0f} MB"
    )
    print(
        f"  re-apply (all done)  {again_s:7.2f} s   (load + expand only: {load_s:.2f} s)  peak {again_mb:.0f} MB"
    )
    print(f"  re-apply output      {len(again.stderr.splitlines())} line(s)")
    print(f"  outputs back         {outputs} of {args.n}")
    print(
        f"  .submitter/          {files} files ({files / args.n:.1f} per task), {size / 1e6:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
