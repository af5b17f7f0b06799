"""Run N trivial tasks through dpdispatcher; run by the python of dpdispatcher's own venv
(see dpdispatcher_side_by_side.py), never by submitter's.

Usage:  python dpdispatcher_tasks.py SETTINGS.json RESULT.json
SETTINGS: {"tasks": N, "group_size": G, "check_interval": S, "local_root": DIR,
           "remote_root": DIR on the cluster, "hostname": H, "username": U, "port": P,
           "key_filename": PATH}
Each task writes `out.txt` in its own directory `t-I/` (dpdispatcher runs a task in a
directory of its own), brought back as its backward file. RESULT gets the scheduler job ids.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dpdispatcher import Machine, Resources, Submission, Task


def machine_of(settings: dict[str, Any]) -> Machine:
    return Machine.load_from_dict(
        {
            "batch_type": "Slurm",
            "context_type": "SSHContext",
            "local_root": settings["local_root"],
            "remote_root": settings["remote_root"],
            "remote_profile": {
                "hostname": settings["hostname"],
                "username": settings["username"],
                "port": settings["port"],
                "key_filename": settings["key_filename"],
                "look_for_keys": False,
            },
        }
    )


def submission_of(settings: dict[str, Any]) -> Submission:
    resources = Resources.load_from_dict(
        {
            "number_node": 1,
            "cpu_per_node": 1,
            "gpu_per_node": 0,
            "queue_name": "",
            "group_size": settings["group_size"],
        }
    )
    tasks = []
    for i in range(settings["tasks"]):
        (Path(settings["local_root"]) / f"t-{i}").mkdir(parents=True, exist_ok=True)
        tasks.append(
            Task(
                command=f"echo {i} > out.txt",
                task_work_path=f"t-{i}/",
                forward_files=[],
                backward_files=["out.txt"],
            )
        )
    return Submission(
        work_base="./", machine=machine_of(settings), resources=resources, task_list=tasks
    )


def main() -> None:
    settings = json.loads(Path(sys.argv[1]).read_text())
    submission = submission_of(settings)
    submission.run_submission(check_interval=settings["check_interval"])
    job_ids = [str(job.job_id) for job in submission.belonging_jobs]
    Path(sys.argv[2]).write_text(json.dumps({"job_ids": job_ids}))


if __name__ == "__main__":
    main()
