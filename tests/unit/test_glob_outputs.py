"""Outputs declared as glob patterns: validation, where matches go, and real local applies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from submitter.config.models import TaskSpec, validate_written
from submitter.paths import OutputPattern, Transfer
from submitter.run_state import Tracked
from submitter.store.db import Store
from submitter.task_files import produced
from tests.conftest import count_attempts, write


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


def _last_cause(project: Path, name: str) -> str:
    store = Store(project / ".submitter")
    try:
        task = next(t for t in store.tasks() if t.name == name)
        return store.attempts(task.id)[-1].cause
    finally:
        store.close()


GLOBS = """\
tasks:
  - name: many
    outputs: ["out/**/*.txt", "logs/"]
    run: |
      mkdir -p out/sub logs
      echo a > out/a.txt; echo b > out/b.txt; echo c > out/sub/c.txt; echo x > out/x.dat
      echo log > logs/run.log
  - name: none
    outputs: ["nothing/*.txt"]
    run: 'true'
"""


def test_every_match_comes_back_and_a_pattern_without_match_fails(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", GLOBS)
    first = cli("apply", tasks)
    assert first.code == 1
    assert (tmp_path / "out" / "a.txt").read_text() == "a\n"
    assert (tmp_path / "out" / "b.txt").read_text() == "b\n"
    assert (tmp_path / "out" / "sub" / "c.txt").read_text() == "c\n"
    assert not (tmp_path / "out" / "x.dat").exists(), "only what matched comes back"
    assert (tmp_path / "logs" / "run.log").read_text() == "log\n"
    assert "FAILED none" in first.err
    assert "missing declared output: nothing/*.txt (no match)" in first.err
    assert _last_cause(tmp_path, "none") == "missing_output"

    again = cli("apply", tasks, "-v")
    assert "up to date: many" in again.err
    assert count_attempts(tmp_path) == 3, "the completed task is skipped, the failed one reruns"

    (tmp_path / "out" / "sub" / "c.txt").unlink()
    rerun = cli("apply", tasks, "-v")
    assert "rerun: many" in rerun.err and "out/sub/c.txt is missing here" in rerun.err
    assert (tmp_path / "out" / "sub" / "c.txt").read_text() == "c\n"

    (tmp_path / "out" / "a.txt").write_text("edited\n")
    changed = cli("apply", tasks, "-v")
    assert "rerun: many" in changed.err and "out/a.txt changed here" in changed.err
    assert (tmp_path / "out" / "a.txt").read_text() == "a\n"


def test_the_tasks_own_files_are_never_matched(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: all\n    outputs: ['*']\n    run: echo hi > made.txt\n",
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert (tmp_path / "made.txt").read_text() == "hi\n"
    for name in ("job.sh", "task.json", "command", "stdout", "stderr", "status"):
        assert not (tmp_path / name).exists(), name


def test_odd_file_names_come_back(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: odd\n    outputs: ['r/*']\n    run: |\n"
        "      mkdir -p r\n"
        "      for n in 'a b' 'q\"uote' \"$(printf 'tab\\tnl\\nctl\\001')\" '$(x)' 'é'; do\n"
        '        echo data > "r/$n"\n'
        "      done\n",
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert names == sorted(["a b", 'q"uote', "tab\tnl\nctl\x01", "$(x)", "é"])


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
