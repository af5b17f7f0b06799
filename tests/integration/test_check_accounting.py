"""check-host's accounting row, its script run here with a stand-in probe or with SLURM's own
probe against a stand-in `sacct` on PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from submitter.checks import _accounting_check, _parse_checks
from submitter.config.models import HostConfig
from submitter.schedulers.slurm import Slurm
from tests.conftest import write

REPORT = 'report() { printf \'CHECK\\t%s\\t%s\\t%s\\n\' "$1" "$2" "$3"; }\n'
NO_ACCOUNTING = "no accounting: end states guessed from status files"


def _run(probe: str, path: str | None = None) -> str:
    script = REPORT + _accounting_check(probe, "slurmdbd (sacct works)") + "\n"
    env = None if path is None else {"PATH": path}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env).stdout


def _with_sacct(tmp_path: Path, body: str) -> str:
    """SLURM's probe run against a `sacct` that does what body says: the row's detail."""
    sacct = write(tmp_path / "bin" / "sacct", "#!/bin/bash\n" + body)
    sacct.chmod(0o755)
    (check,) = _parse_checks(
        _run(Slurm().accounting_probe, f"{sacct.parent}:/usr/bin:/bin"),
        HostConfig(scheduler="slurm"),
    )
    assert check.ok, "accounting is a note either way, never a failure"
    return check.detail


def test_accounting_that_answers_is_reported_ok() -> None:
    (check,) = _parse_checks(_run("true"), HostConfig(scheduler="slurm"))
    assert (check.name, check.ok, check.detail, check.fix) == (
        "accounting", True, "slurmdbd (sacct works)", "",
    )  # fmt: skip


def test_no_accounting_is_a_warning_with_its_fix_not_a_failure() -> None:
    probe = "{ echo 'Slurm accounting storage is disabled' >&2; false; }"
    (check,) = _parse_checks(_run(probe), HostConfig(scheduler="slurm"))
    assert check.ok and check.warning
    assert check.detail == f"{NO_ACCOUNTING} (Slurm accounting storage is disabled)"
    assert "slurmdbd" in check.fix


@pytest.mark.parametrize(
    ("stderr", "shown"),
    [
        (
            "sacct: error: Problem talking to the database: Connection refused\\n"
            "sacct: error: second line\\n",
            "sacct: error: Problem talking to the database: Connection refused",
        ),
        (
            "\\n   Slurm accounting storage is disabled  \\t\\n",
            "Slurm accounting storage is disabled",
        ),
    ],
)
def test_sacct_s_own_message_is_shown_first_line_trimmed(
    tmp_path: Path, stderr: str, shown: str
) -> None:
    detail = _with_sacct(tmp_path, f"printf '{stderr}' >&2\nexit 1\n")
    assert detail == f"{NO_ACCOUNTING} ({shown})"


def test_sacct_failing_silently_says_so(tmp_path: Path) -> None:
    assert _with_sacct(tmp_path, "exit 1\n") == f"{NO_ACCOUNTING} (sacct exited 1 with no message)"


def test_sacct_that_works_says_only_that(tmp_path: Path) -> None:
    detail = _with_sacct(tmp_path, "echo 4242\necho 'sacct: warning: noise' >&2\n")
    assert detail == "slurmdbd (sacct works)"
