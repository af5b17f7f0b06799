"""check-host's accounting row, its script run here with a stand-in probe."""

from __future__ import annotations

import subprocess

from submitter.checks import _accounting_check, _parse_checks
from submitter.config.models import HostConfig

REPORT = 'report() { printf \'CHECK\\t%s\\t%s\\t%s\\n\' "$1" "$2" "$3"; }\n'


def _run(probe: str) -> str:
    script = REPORT + _accounting_check(probe, "slurmdbd (sacct works)") + "\n"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout


def test_accounting_that_answers_is_reported_ok() -> None:
    (check,) = _parse_checks(_run("true"), HostConfig(scheduler="slurm"))
    assert (check.name, check.ok, check.detail, check.fix) == (
        "accounting", True, "slurmdbd (sacct works)", "",
    )  # fmt: skip


def test_no_accounting_is_a_warning_with_its_fix_not_a_failure() -> None:
    probe = "{ echo 'Slurm accounting storage is disabled' >&2; false; }"
    (check,) = _parse_checks(_run(probe), HostConfig(scheduler="slurm"))
    assert (
        check.ok
        and check.warning
        and check.detail
        == (
            "no accounting: end states guessed from status files (Slurm accounting storage is disabled)"
        )
    )
    assert "slurmdbd" in check.fix
