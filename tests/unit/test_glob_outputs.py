"""Outputs declared as glob patterns: validation, where matches go, and real local applies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from submitter.config.models import TaskSpec, validate_written
from submitter.paths import OutputPattern, Transfer
from submitter.run_state import Tracked
from submitter.task_files import produced


def _outputs(*outputs: str) -> list[str]:
    spec = validate_written(TaskSpec, {"name": "t", "run": "true", "outputs": list(outputs)})
    return spec.outputs


@pytest.mark.parametrize(
    "pattern", ["results/*.txt", "plots/**/*.png", "r?.txt", "r[12].txt", "**", "logs/"]
)
def test_patterns_and_directories_are_accepted(pattern: str) -> None:
    assert _outputs(pattern) == [pattern]


@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        ("", "must not be empty"),
        ("../*.txt", "leaves the run directory"),
        ("a/../../*.txt", "leaves the run directory"),
        ("out/*/../x.txt", "'..'"),
        ("out/a**.txt", "'**' must be a whole path component"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, said: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(said)):
        _outputs(pattern)


def _pattern(tmp_path: Path) -> OutputPattern:
    return OutputPattern.of(
        "out/**/*.txt", tmp_path / "out" / "**" / "*.txt", "/w/run/out/**/*.txt"
    )


def test_a_match_goes_to_the_same_relative_place_here(tmp_path: Path) -> None:
    pattern = _pattern(tmp_path)
    assert pattern.transfer("out/sub/c.txt") == Transfer(
        tmp_path / "out" / "sub" / "c.txt", "/w/run/out/sub/c.txt"
    )
    assert pattern.transfer("out/a.txt") == Transfer(tmp_path / "out" / "a.txt", "/w/run/out/a.txt")


def test_an_absolute_pattern_maps_its_matches_like_its_base(tmp_path: Path) -> None:
    pattern = OutputPattern.of("/scratch/p/r/*.dat", tmp_path / "r" / "*.dat", "/scratch/p/r/*.dat")
    assert pattern.transfer("/scratch/p/r/x.dat") == Transfer(
        tmp_path / "r" / "x.dat", "/scratch/p/r/x.dat"
    )


@pytest.mark.parametrize("match", ["elsewhere/a.txt", "out/../../etc/passwd", "/etc/passwd", ""])
def test_a_match_outside_the_patterns_directory_is_ignored(tmp_path: Path, match: str) -> None:
    assert _pattern(tmp_path).transfer(match) is None


@pytest.mark.parametrize(
    ("output", "path", "covered"),
    [
        ("/p/x/y.txt", "/p/x/y.txt", True),
        ("/p/x/logs", "/p/x/logs/deep/run.log", True),  # a directory: all in it
        ("/p/x/y.txt", "/p/x/y.txt.bak", False),
        ("/p/x/*.txt", "/p/x/a.txt", True),
        ("/p/x/*.txt", "/p/x/sub/a.txt", False),  # `*` stays in its directory
        ("/p/x/*.txt", "/p/x/.hidden.txt", False),  # as bash: no dotglob
        ("/p/x/**/*.png", "/p/x/a.png", True),  # `**`: zero or more directories
        ("/p/x/**/*.png", "/p/x/d/e/a.png", True),
        ("/p/x/**/*.png", "/p/x/.git/a.png", False),
        ("/p/x/**", "/p/x/d/anything", True),
        ("/p/x/r[12].txt", "/p/x/r2.txt", True),
        ("/p/x/r?.txt", "/p/x/r10.txt", False),
        ("/p/x/*/out", "/p/x/a/out/f", True),  # a matched directory: all in it
    ],
)
def test_what_an_output_covers(output: str, path: str, covered: bool) -> None:
    from submitter.globs import covers

    assert covers(output, path) is covered


def _tracked(tmp_path: Path) -> Tracked:
    plain = Transfer(tmp_path / "logs", "/w/run/logs")
    return Tracked("id", "t", "h", "/w/run", [plain], patterns=[_pattern(tmp_path)])


def test_what_a_completed_task_produced_is_its_files_and_the_matches_once(tmp_path: Path) -> None:
    matched = {
        "out/**/*.txt": ["out/a.txt", "out/sub", "out/sub-x", "out/sub/c.txt", "out/a.txt", 7]
    }
    outputs, unmatched = produced(_tracked(tmp_path), {"matched": matched})
    assert [o.remote for o in outputs] == [
        "/w/run/logs",
        "/w/run/out/a.txt",
        "/w/run/out/sub",
        "/w/run/out/sub-x",
    ]
    assert unmatched == []


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"matched": []},
        {"matched": {"out/**/*.txt": ["/x"]}},
        {"matched": {"out/**/*.txt": "out/a.txt"}},
    ],
)
def test_a_pattern_the_host_reports_no_match_for_is_missing(
    tmp_path: Path, status: dict[str, object]
) -> None:
    outputs, unmatched = produced(_tracked(tmp_path), status)
    assert [o.remote for o in outputs] == ["/w/run/logs"]
    assert unmatched == ["out/**/*.txt (no match reported)"]
