"""How long `render --dry-run` and `apply` spend hashing inputs, with and without the cache.

A task's id includes its inputs' content hashes. Hashes are kept in the state store keyed by
(path, size, mtime, inode), so an unchanged input is read once, not on every apply.

Usage:  .venv/bin/python bench/input_signatures.py [--size-mb 512] [--tasks 4]
Prints the wall time of render (nothing cached), the first apply (hashes and stores), then
render and apply again (cache hits). Runs on the local host; needs no cluster.
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


def timed(argv: list[str], cwd: Path) -> float:
    began = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr[-1000:]}")
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--tasks", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="submitter-bench-") as tmp:
        project = Path(tmp)
        data = project / "data"
        data.mkdir()
        for i in range(args.tasks):
            with (data / f"{i}.bin").open("wb") as handle:
                for _ in range(args.size_mb):
                    handle.write(os.urandom(1 << 20))
        tasks = {
            "hosts": {"local": {"scheduler": "local", "paths": {str(project): str(project)}}},
            "tasks": [
                {
                    "name": "size-{{ i }}",
                    "for_each": {"i": list(range(args.tasks))},
                    "inputs": ["data/{{ i }}.bin"],
                    "run": "wc -c < data/{{ i }}.bin\n",
                }
            ],
        }
        (project / "tasks.yml").write_text(json.dumps(tasks))
        submitter = [sys.executable, "-m", "submitter"]
        total = args.tasks * args.size_mb
        print(f"{args.tasks} tasks, one {args.size_mb} MB input each ({total} MB to hash)")
        print(
            f"render --dry-run, nothing cached : {timed([*submitter, 'render', 'tasks.yml'], project):6.2f} s"
        )
        print(
            f"apply, first (hashes, stores)    : {timed([*submitter, 'apply', 'tasks.yml'], project):6.2f} s"
        )
        print(
            f"render --dry-run, cached         : {timed([*submitter, 'render', 'tasks.yml'], project):6.2f} s"
        )
        print(
            f"apply again, all up to date      : {timed([*submitter, 'apply', 'tasks.yml'], project):6.2f} s"
        )


if __name__ == "__main__":
    main()
