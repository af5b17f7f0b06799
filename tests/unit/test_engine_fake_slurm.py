"""The engine on a batch host without a cluster: the real engine, step scripts and SLURM
adapter against the fake SLURM of tests/fakes/slurm (a test fake, not SLURM: the cluster
suite in tests/cluster stays the proof)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from submitter import engine
from submitter.transport import factory
from tests.conftest import write
from tests.fakes.slurm_host import FAKE_BIN, Recorded, fast_poll, kill_jobs, local_connect


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorded]:
    """sbatch & co. first on PATH, their state under tmp_path, a recording local transport;
    every process the fake started is killed at teardown."""
    state = tmp_path / "slurm-state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(state))
    recorded = Recorded()
    connect = local_connect(recorded)
    monkeypatch.setattr(engine, "connect", connect)
    monkeypatch.setattr(factory, "connect", connect)
    monkeypatch.setattr(engine, "default_poll_interval", fast_poll)
    yield recorded
    kill_jobs(state)


def _tasks(project: Path, tasks: str, host: str = "") -> Path:
    """A tasks file whose tasks all go to the fake SLURM host `fake`."""
    work = project / "cluster-work"
    return write(
        project / "tasks.yml",
        "hosts:\n"
        f"  fake: {{scheduler: slurm, work_dir: '{work}'{host}}}\n"
        "defaults: {host: fake}\n"
        "tasks:\n" + tasks,
    )


def _status(cli, project: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {r["name"]: r for r in json.loads(cli("status", "--json", "-C", project).out)}


def _trivial(n: int) -> str:
    return (
        "  - name: 't-{{ i }}'\n    for_each: {i: " + json.dumps(list(range(n))) + "}\n"
        "    outputs: ['out/{{ i }}.txt']\n"
        "    run: 'mkdir -p out && echo {{ i }} > out/{{ i }}.txt'\n"
    )


def test_many_tasks_cost_no_more_host_scripts_than_few(cli, fake_slurm: Recorded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    scripts = {}
    for n in (5, 40):
        project = tmp_path / f"p{n}"
        result = cli("apply", _tasks(project, _trivial(n)))
        assert result.code == 0, result.err
        for i in range(n):
            assert (project / "out" / f"{i}.txt").read_text() == f"{i}\n"
        assert all(r["state"] == "completed" for r in _status(cli, project).values())
        scripts[n] = fake_slurm.scripts("fake")
        fake_slurm.runs.clear()
    assert scripts[40] <= scripts[5] + 2, scripts
