"""Glob outputs brought back from a real local apply."""

from __future__ import annotations

from pathlib import Path

from submitter.store.db import Store
from tests.conftest import count_attempts, write


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
