"""`logs -f` on the plain ssh host and on SLURM: lines arrive while the task runs, over one
ssh connection, and the follow ends with the task."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from submitter.follow import Streams, follow
from submitter.seams import REAL
from submitter.store.db import Store
from submitter.transport.base import Transport
from tests.cluster.conftest import wait_until
from tests.conftest import write


class _Stamped(io.StringIO):
    """Keeps each line with the time it was written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.lines.append((time.time(), line))
        return super().write(text)


@pytest.mark.parametrize("host", ["ssh", "slurm"])
def test_follow_streams_lines_over_one_connection_until_the_task_ends(
    cli, tmp_path: Path, cluster_hosts: dict[str, dict[str, Any]], host: str
) -> None:  # type: ignore[no-untyped-def]
    run = (
        'echo "first $(date +%s.%N)"\n'
        'echo "oops $(date +%s.%N)" >&2\n'
        "sleep 5\n"
        'echo "second $(date +%s.%N)"\n'
    )
    tasks = write(
        tmp_path / "tasks.yml",
        json.dumps(
            {
                "hosts": {"h": cluster_hosts[host]},
                "defaults": {"host": "h"},
                "tasks": [
                    {
                        "name": "talker",
                        "resources": {"cores": 1, "mem": "100M", "walltime": "00:05:00"},
                        "run": run,
                    }
                ],
            }
        ),
    )
    assert cli("apply", tasks, "--detach").code == 0

    def running() -> bool:
        return json.loads(cli("status", "talker", "--json", "-C", tmp_path).out)[0]["state"] in (
            "running",
            "completed",
        )

    wait_until(running, 60, "the task runs")
    opened: list[Transport] = []

    def counting_connect(name: str, config: Any) -> Transport:
        transport = REAL.connect(name, config)
        opened.append(transport)
        return transport

    store = Store(tmp_path / ".submitter")
    out, err = _Stamped(), _Stamped()
    seams = dataclasses.replace(REAL, connect=counting_connect)
    code = follow(store, store.tasks()[0], Streams(out, err), seams=seams)

    assert code == 0, out.getvalue() + err.getvalue()
    assert len(opened) == 1 and opened[0].stats.connections == 1, [t.stats for t in opened]
    body = [(at, line) for at, line in out.lines if not line.startswith("#")]
    assert [line.split()[0] for _, line in body] == ["first", "second"]
    assert [line.split()[0] for _, line in err.lines] == ["oops"]
    assert out.lines[-1][1].endswith(": completed")
    (first_seen, _), (second_seen, second) = body
    assert first_seen < float(second.split()[1]), "the first line came while the task still ran"
    latency = second_seen - float(second.split()[1])
    assert latency < 2.0, f"a line took {latency:.2f} s to arrive"
    print(f"{host}: a line arrived {latency:.3f} s after it was written; {opened[0].stats}")


def test_follow_ends_when_the_batch_job_vanishes_without_a_status(
    cli, tmp_path: Path, cluster_hosts: dict[str, dict[str, Any]]
) -> None:  # type: ignore[no-untyped-def]
    """The task SIGKILLs its wrapper (the batch script): no status is ever written, SLURM ends
    the job. The poll through the follow's connection sees it and tells the loop to stop."""
    tasks = write(
        tmp_path / "tasks.yml",
        json.dumps(
            {
                "hosts": {"h": cluster_hosts["slurm"]},
                "defaults": {"host": "h"},
                "tasks": [
                    {"name": "doomed", "run": "echo alive\nsleep 3\nkill -KILL $PPID\nsleep 300\n"}
                ],
            }
        ),
    )
    assert cli("apply", tasks, "--detach").code == 0

    def running() -> bool:
        record = json.loads(cli("status", "doomed", "--json", "-C", tmp_path).out)[0]
        return bool(record["state"] == "running")

    wait_until(running, 60, "the job runs")
    store = Store(tmp_path / ".submitter")
    out, err = _Stamped(), _Stamped()
    code = follow(store, store.tasks()[0], Streams(out, err))
    assert code == 1
    alive_at = next(at for at, line in out.lines if line == "alive")
    ended_at, final = out.lines[-1]
    assert ": failed" in final or ": lost" in final, final
    took = ended_at - alive_at
    assert took < 60, f"the follow ended {took:.1f} s after the job's last line"
    print(f"vanished job: the follow ended {took:.1f} s after its last line: {final}")
