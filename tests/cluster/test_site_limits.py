"""Site limits discovered and obeyed: a thousand tasks on the slurm cluster with small limits
(MaxArraySize=10, alice's association MaxSubmitJobs=20, enforced by slurmdbd) complete with
no submission refused, whether short tasks are packed or long ones go as job arrays.

SLURM counts each member of a job array as one job against MaxSubmitJobs, and refuses a
submission over it (`AssocMaxSubmitJobLimit`)."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from submitter.schedulers.slurm import Slurm
from tests.cluster.conftest import _ssh
from tests.cluster.test_faults import BackgroundApply, _applying, _shared_dir
from tests.conftest import count_attempts, write

COUNT = 1000
MAX_SUBMIT_JOBS = 20  # alice's association limit on the slurm-limits cluster
MAX_ARRAY_SIZE = 10  # MaxArraySize: indices 0-9
# What SLURM says when a submission or a job is over a QOS or association limit
LIMIT_WORDS = re.compile(r"QOS|AssocMax|violates|submit limit|MaxSubmit", re.IGNORECASE)


def host_key(host: dict[str, Any]) -> Path:
    return Path(host["identity_file"])


class QueueSampler:
    """Counts alice's jobs in the queue, each array member as one (`squeue -r`), about once a
    second while it runs: the most seen is `peak`."""

    def __init__(self, host: dict[str, Any]) -> None:
        self.host = host
        self.samples: list[int] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stopped.wait(1.0):
            out = _ssh(self.host["port"], host_key(self.host), "squeue -r -h -u alice -o %i")
            if out.returncode == 0:
                self.samples.append(len(out.stdout.split()))

    def __enter__(self) -> QueueSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)


def _most_at_once(host: dict[str, Any], since: str) -> int:
    """The most of alice's jobs submitted and not yet ended at any one moment since `since`,
    from sacct (each array member one job): at each submission, the jobs submitted by then
    that had not ended (a job that ended in the second of a submission is not counted; one
    that has not, `Unknown`, sorts after every time)."""
    out = _ssh(
        host["port"],
        host_key(host),
        f"sacct -n -P -X -u alice -S {since} -o JobID,Submit,End",
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    spans = [tuple(line.split("|")[1:]) for line in out.stdout.splitlines() if line.strip()]
    assert spans, "sacct lists no job of the run"
    return max(sum(1 for submit, end in spans if submit <= at < end) for at, _ in spans)


def _wait_unrefused(client: BackgroundApply, timeout: float) -> tuple[int, float]:
    """apply's exit code and how long it ran; stopped at the first refusal or limit error it
    reports (a refused submission is retried after a pause: waiting on would only be slow)."""
    deadline = time.monotonic() + timeout
    while client.process.poll() is None:
        assert not LIMIT_WORDS.search(client.stderr), client.stderr[-4000:]
        assert time.monotonic() < deadline, f"apply still running:\n{client.stderr[-4000:]}"
        time.sleep(1)
    return client.wait(0)


def _tasks(project: Path, host: dict[str, Any], shared: Path, walltime: str) -> Path:
    tasks = [
        {
            "name": "t-{{ i }}",
            "for_each": {"i": list(range(COUNT))},
            "resources": {"cores": 1, "mem": "20M", "walltime": walltime},
            "run": f'echo "$SUBMITTER_TASK_ID" >> {shared}/runs/{{{{ i }}}}\n',
        }
    ]
    return write(
        project / "tasks.yml",
        json.dumps({"hosts": {"h": host}, "defaults": {"host": "h"}, "tasks": tasks}),
    )


@pytest.mark.parametrize(
    ("walltime", "kind"),
    [("00:01:00", "packed"), ("00:20:00", "array")],
    ids=["short-tasks-packed", "long-tasks-in-arrays"],
)
def test_a_thousand_tasks_within_max_array_size_and_max_submit_jobs(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, slurm_limits_host, cluster_secrets, walltime: str, kind: str
) -> None:
    host = slurm_limits_host
    limits = Slurm().parse_limits(_ssh(host["port"], host_key(host), Slurm.limits_command).stdout)
    assert (limits.max_array_size, limits.max_jobs) == (MAX_ARRAY_SIZE - 1, MAX_SUBMIT_JOBS), (
        "the cluster's image is not this checkout's (built by another checkout meanwhile?)"
    )
    shared = _shared_dir(cluster_secrets, f"limits-{kind}")
    tasks = _tasks(tmp_path, host, shared, walltime)
    since = _ssh(host["port"], host_key(host), "date +%Y-%m-%dT%H:%M:%S").stdout
    with QueueSampler(host) as queue, _applying(tmp_path, tasks) as client:
        code, took = _wait_unrefused(client, timeout=1800)
    assert code == 0, client.stderr[-4000:]
    assert not LIMIT_WORDS.search(client.stderr), client.stderr[-4000:]

    runs = {p.name: p.read_text().splitlines() for p in (shared / "runs").iterdir()}
    assert sorted(runs, key=int) == [str(i) for i in range(COUNT)]
    assert not {name: lines for name, lines in runs.items() if len(lines) != 1}, "ran twice"

    rows = json.loads(cli("status", "--json", "-C", tmp_path).out)
    assert [row["state"] for row in rows] == ["completed"] * COUNT
    attempts = [a for row in rows for a in row["attempts"]]
    assert count_attempts(tmp_path) == COUNT, "a refused submission is an attempt more"
    assert not [a for a in attempts if a["cause"] or LIMIT_WORDS.search(a["reason"] or "")]
    assert not [row for row in rows if LIMIT_WORDS.search(row["reason"])]
    jobs = {a["job_id"] for a in attempts}
    if kind == "array":  # `123_4`, or `123` for a job of its own: no index over MaxArraySize
        members = [job.partition("_") for job in jobs]
        assert all(int(index) < MAX_ARRAY_SIZE for _, _, index in members if index), jobs
        assert sum(1 for _, _, index in members if index) > COUNT // 2, "mostly arrays"
    else:  # `123/4`: members of packed jobs
        assert all("/" in job for job in jobs), sorted(jobs)[:5]

    at_once = _most_at_once(host, since.strip())
    print(
        f"{kind}: {COUNT} tasks in {took:.0f} s; most jobs queued {queue.peak} in "
        f"{len(queue.samples)} samples, {at_once} by sacct"
    )
    assert queue.peak <= MAX_SUBMIT_JOBS, queue.samples
    assert at_once <= MAX_SUBMIT_JOBS
