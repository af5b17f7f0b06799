"""check-host: warnings, rows without fixes, and the `--node` probe run for real on this
machine (a `local` host runs the probe job in the foreground, as an ssh host does)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from submitter import checks
from submitter.check_node import _run_probe
from submitter.check_result import Check
from submitter.config.models import HostConfig
from submitter.node_probe import Probe, interpreter_command, targets_for
from submitter.schedulers.slurm import Slurm
from submitter.transport.base import CommandResult, TransportStats
from tests.conftest import write
from tests.fakes.slurm_host import FAKE_BIN, kill_jobs


def test_a_missing_rsync_is_a_warning_with_its_fix_and_does_not_fail() -> None:
    rows = checks._parse_checks(
        "CHECK\trsync-remote\t0\tnot found: scp copies instead\nCHECK\tworkdir\t1\t/scratch/w\n",
        HostConfig(address="a", scheduler="ssh"),
    )
    rsync, workdir = rows
    assert (rsync.ok, rsync.warning, rsync.result) == (True, True, "warning")
    assert "install rsync" in rsync.fix
    assert (workdir.result, workdir.fix) == ("ok", "")


def test_check_host_exits_0_with_only_warnings(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = write(tmp_path / "tasks.yml", "hosts:\n  h: {address: a@b}\ntasks: []\n")
    rows = [Check("rsync on host", True, "not found", "install rsync", warning=True)]
    monkeypatch.setattr(checks, "check_host", lambda entry, node=None, seams=None: rows)
    result = cli("check-host", "h", "-f", tasks)
    assert result.code == 0
    assert "WARNING" in result.out and "install rsync" in result.out
    shown = json.loads(cli("check-host", "h", "-f", tasks, "--json").out)
    assert shown["ok"] is True and shown["checks"][0]["result"] == "warning"


def test_a_row_that_passes_carries_no_fix() -> None:
    assert Check("x", True, "fine", "do this").fix == ""
    assert Check("x", False, "broken", "do this").fix == "do this"


@pytest.mark.parametrize(
    ("interpreter", "command"),
    [
        ("python3", "python3"),
        ("python3 -u", "python3"),
        ("/usr/bin/env perl", "perl"),
        ("env -S LC_ALL=C Rscript --vanilla", "Rscript"),
        ("/opt/R/bin/Rscript", "/opt/R/bin/Rscript"),
    ],
)
def test_interpreter_command(interpreter: str, command: str) -> None:
    assert interpreter_command(interpreter) == command


def _local_tasks(tmp_path: Path, **host: Any) -> Path:
    config = {"scheduler": "local", "work_dir": str(tmp_path / "work"), **host}
    doc = {
        "hosts": {"h": config},
        "tasks": [
            {"name": "a", "host": "h", "run": "true", "interpreter": "bash"},
            {"name": "b", "host": "h", "run": "true", "interpreter": "/usr/bin/env bash -e"},
            {"name": "c", "host": "h", "run": "true", "interpreter": "no-such-interp-x9 -q"},
        ],
    }
    return write(tmp_path / "tasks.yml", json.dumps(doc))


def _rows(result: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(result.out)["checks"]}


def test_node_probe_reports_each_check_with_a_fix(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    odd = tmp_path / "it's $(odd) dir"
    odd.mkdir()
    tasks = _local_tasks(
        tmp_path,
        shared=[str(odd), str(tmp_path / "not-there")],
        setup='export PATH="$PATH"\nif true; then\n  echo set\nfi\nfalse # broken\n',
    )
    result = cli("check-host", "h", "-f", tasks, "--node", "--json")
    assert result.code == 3, result.out
    rows = _rows(result)
    assert rows["ran on"]["ok"] and rows["ran on"]["detail"]
    assert rows["queue wait"]["ok"]
    assert rows["work dir on node"]["ok"]
    assert rows[f"shared path on node {odd}"]["ok"]
    missing = rows[f"shared path on node {tmp_path / 'not-there'}"]
    assert not missing["ok"] and "mount" in missing["fix"]
    assert rows["setup line 1"]["ok"] and rows["setup lines 2-4"]["ok"]
    broken = rows["setup line 5"]
    assert not broken["ok"] and "exited 1" in broken["detail"] and broken["fix"]
    assert rows["interpreter bash"]["ok"] and rows["interpreter /usr/bin/env bash -e"]["ok"]
    absent = rows["interpreter no-such-interp-x9 -q"]
    assert not absent["ok"] and "module load no-such-interp-x" in absent["fix"]
    assert all(not c["fix"] for c in rows.values() if c["result"] == "ok")
    assert not list(Path.home().glob(".submitter-probe-*")), "the probe removed itself"
    assert not list(odd.glob(".submitter-*")) and not list((tmp_path / "work").glob(".sub*"))


def test_node_probe_passes_on_a_ready_host(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        json.dumps(
            {
                "hosts": {"h": {"scheduler": "local", "shared": [str(tmp_path)]}},
                "tasks": [{"name": "a", "host": "h", "run": "true"}],
            }
        ),
    )
    result = cli("check-host", "h", "-f", tasks, "--node")
    assert result.code == 0, result.out
    assert "ran on" in result.out and "FAILED" not in result.out


class _QueuedForever:
    """A host whose scheduler keeps the probe pending: records every script it is sent."""

    name = "fake"

    def __init__(self) -> None:
        self.stats = TransportStats()
        self.scripts: list[str] = []

    def run_script(self, script: str, *, timeout: float | None = None) -> CommandResult:
        self.scripts.append(script)
        if "sbatch" in script:
            return CommandResult(0, "SUBMIT\t0\t4242\n", "")
        return CommandResult(0, "4242 PD\n", "")

    def run(self, argv: Sequence[str], **_: Any) -> CommandResult:
        raise AssertionError("the probe sends scripts only")


def test_a_probe_that_never_starts_times_out_and_is_cancelled() -> None:
    targets, login = targets_for("t0k", "/w", [], [])
    probe = Probe("/home/a/.submitter-probe-t0k", "t0k", targets, login, (), ())
    host = _QueuedForever()
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    rows = _run_probe(probe, Slurm(), host, 10, 2, lambda: now[0], sleep)  # type: ignore[arg-type]
    assert [r.name for r in rows] == ["probe job"]
    assert "did not start within 10 s (still PD)" in rows[0].detail and rows[0].fix
    assert "scancel 4242" in host.scripts[-1] and "rm -rf" in host.scripts[-1]
    assert len(host.scripts) == 1 + 6 + 1, "one submit, a poll every 2 s, one clean-up"


def test_the_probe_job_asks_the_scheduler_what_the_pack_header_says(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the fake SLURM (tests/fakes/slurm, not SLURM): sbatch reads the probe's
    #SBATCH lines, rendered from the slurm pack's header, and runs it."""
    state, home = tmp_path / "slurm-state", tmp_path / "home"
    state.mkdir()
    home.mkdir()
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(state))
    monkeypatch.setenv("HOME", str(home))
    host = {"scheduler": "slurm", "work_dir": str(tmp_path / "work")}
    task = {"name": "a", "host": "h", "run": "true"}
    tasks = write(tmp_path / "tasks.yml", json.dumps({"hosts": {"h": host}, "tasks": [task]}))
    try:
        result = cli("check-host", "h", "-f", tasks, "--node", "--timeout", "60", "--json")
    finally:
        kill_jobs(state)
    rows = _rows(result)
    assert result.code == 0, result.out
    assert rows["ran on"]["detail"].endswith("(job 1)")
    job = json.loads((state / "jobs" / "1.json").read_text())
    assert job["cpus"] == 1
    assert job["out"] == f"{job['cwd']}/job.out" and job["err"] == f"{job['cwd']}/job.err"
    assert not list(home.glob(".submitter-probe-*")), "the probe removed itself"
