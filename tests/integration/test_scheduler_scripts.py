"""Scheduler command scripts run by bash on this machine, without the scheduler's tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from submitter.schedulers.base import SiteLimits
from submitter.schedulers.lsf import Lsf
from submitter.schedulers.pbs import (
    Pbs,
    flavor_of,
)
from submitter.schedulers.slurm import Slurm


@pytest.mark.parametrize(
    ("version", "flavor"),
    [
        ("pbs_version = 23.06.06", "pro"),
        ("Version: 6.1.3", "torque"),
        ("Unknown option: version", "torque"),
        ("bash: qstat: command not found", None),
        ("", None),
    ],
)
def test_pbs_status_query_of_unknown_flavor_asks_qstat(
    tmp_path: Path, version: str, flavor: str | None
) -> None:
    """The query run by sh with a fake qstat printing `version`: -x only where it is PBS Pro."""
    qstat = tmp_path / "qstat"
    qstat.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo {version!r}; exit 0; fi\necho "$@"\n'
    )
    qstat.chmod(0o755)
    result = subprocess.run(
        Pbs().status_argv(["1.srv", "2[3].srv"]),
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    expected = "-x -f" if flavor == "pro" else "-f"
    assert result.stdout == f"{expected} 1.srv 2[3].srv\n"
    assert flavor_of(version, wrapper=False) == flavor


@pytest.mark.parametrize("scheduler", [Slurm(), Pbs(), Lsf()])
def test_limits_command_never_fails_where_the_tools_are_missing(
    scheduler: Slurm | Pbs | Lsf, tmp_path: Path
) -> None:
    """Not one scheduler tool on the PATH (nor grep, id, ...): an empty answer, exit 0."""
    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", scheduler.limits_command],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert scheduler.parse_limits(result.stdout) == SiteLimits()
