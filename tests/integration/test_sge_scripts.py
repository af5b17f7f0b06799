"""Grid Engine's status script run by bash on this machine."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_sge_parsers import FIXTURES, SGE


@pytest.mark.skipif(subprocess.run(["which", "bash"]).returncode, reason="no bash")
def test_status_script_asks_qacct_once_per_job_not_listed(tmp_path: Path) -> None:
    """The script against fake qstat/qacct: jobs qstat lists are not looked up; an array is
    looked up once for all its tasks."""
    (tmp_path / "qstat").write_text(
        "#!/bin/sh\ncat " + shlex.quote(str(FIXTURES / "sge_qstat_pending.txt")) + "\n"
    )
    (tmp_path / "qacct").write_text('#!/bin/sh\necho "qacct $*"\n')
    for tool in ("qstat", "qacct"):
        (tmp_path / tool).chmod(0o755)
    argv = SGE.status_argv(["8", "10.2", "2", "4.1", "4.2"])
    out = subprocess.run(
        argv, capture_output=True, text=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}
    ).stdout
    assert [line for line in out.splitlines() if line.startswith("qacct")] == [
        "qacct -j 2",
        "qacct -j 4",
    ]
