"""Dependencies between tasks: `after`, inferred from inputs and outputs, errors, ids, order,
blocked tasks, on the local host with real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from submitter.config import dependencies
from submitter.config.project import load_project
from submitter.errors import ConfigErrors, Location
from submitter.prepare import prepare_tasks
from tests.conftest import write

# split writes three parts; work-i reads part i (inferred); merge runs after work-* (explicit)
# and reads their directory. Every task logs its start and end to $TOP/log.
DIAMOND = """\
tasks:
  - name: merge
    after: ['work-*']
    inputs: [done/]
    outputs: [merged.txt]
    env: {TOP: '%(top)s'}
    run: |
      echo "start merge" >> "$TOP/log"
      cat done/1.txt done/2.txt done/3.txt > merged.txt
      echo "end merge" >> "$TOP/log"
  - name: 'work-{{ i }}'
    for_each: {i: [1, 2, 3]}
    inputs: ['parts/{{ i }}.txt']
    outputs: ['done/{{ i }}.txt']
    env: {TOP: '%(top)s'}
    run: |
      echo "start work-{{ i }}" >> "$TOP/log"
      sleep 0.{{ i }}
      mkdir -p done
      tr a-z A-Z < parts/{{ i }}.txt > done/{{ i }}.txt
      echo "end work-{{ i }}" >> "$TOP/log"
  - name: split
    outputs: [parts/]
    env: {TOP: '%(top)s'}
    run: |
      echo "start split" >> "$TOP/log"
      %(split_fails)s
      mkdir -p parts
      for i in 1 2 3; do echo "part $i" > parts/$i.txt; done
      echo "end split" >> "$TOP/log"
"""


def _diamond(tmp_path: Path, split_fails: bool = False) -> Path:
    text = DIAMOND % {"top": tmp_path, "split_fails": "exit 3" if split_fails else ""}
    return write(tmp_path / "tasks.yml", text)


def _log(tmp_path: Path) -> list[str]:
    return (tmp_path / "log").read_text().splitlines()


def _status(cli, project: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    rows = json.loads(cli("status", "--json", "-C", project).out)
    return {row["name"]: row for row in rows}


def _errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_project(write(tmp_path / "tasks.yml", text))
    return [str(e) for e in caught.value.errors]


def test_diamond_runs_in_dependency_order(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _diamond(tmp_path)
    result = cli("apply", tasks, "-J", "4")
    assert result.code == 0, result.err
    assert (tmp_path / "merged.txt").read_text() == "PART 1\nPART 2\nPART 3\n"
    log = _log(tmp_path)
    assert log[:2] == ["start split", "end split"]
    works = [line for line in log if "work-" in line]
    assert log.index("start merge") > max(log.index(line) for line in works)
    assert len(log) == 10, log  # each task ran once
    again = cli("apply", tasks)
    assert again.code == 0 and "0 completed, 5 up to date" in again.err
    assert len(_log(tmp_path)) == 10


def test_an_upstream_change_reruns_everything_downstream(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _diamond(tmp_path)
    assert cli("apply", tasks).code == 0
    before = _status(cli, tmp_path)
    tasks.write_text(tasks.read_text().replace("part $i", "piece $i"))
    assert cli("apply", tasks).code == 0
    after = _status(cli, tmp_path)
    assert all(after[name]["id"] != before[name]["id"] for name in before), (before, after)
    assert (tmp_path / "merged.txt").read_text() == "PIECE 1\nPIECE 2\nPIECE 3\n"


def test_a_failed_upstream_blocks_downstream_until_fixed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _diamond(tmp_path, split_fails=True)
    result = cli("apply", tasks)
    assert result.code == 1
    rows = _status(cli, tmp_path)
    assert rows["split"]["state"] == "failed"
    for name in ("work-1", "work-2", "work-3", "merge"):
        assert rows[name]["state"] == "blocked", rows[name]
        assert "upstream task 'split' failed" in rows[name]["reason"]
    assert "4 blocked" in result.err
    assert _log(tmp_path) == ["start split"]  # nothing downstream started
    fixed = _diamond(tmp_path)
    result = cli("apply", fixed)
    assert result.code == 0, result.err
    assert (tmp_path / "merged.txt").read_text() == "PART 1\nPART 2\nPART 3\n"
    assert all(row["state"] == "completed" for row in _status(cli, tmp_path).values())


def test_purge_all_takes_blocked_tasks_too(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("apply", _diamond(tmp_path, split_fails=True)).code == 1
    result = cli("purge", "--all", "-C", tmp_path)
    assert result.code == 0, result.err
    assert "purged 5 task(s)" in result.out
    assert _status(cli, tmp_path) == {}, "no task left blocked by one that is gone"


def test_a_blocked_task_is_purged_with_the_task_that_blocked_it(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _diamond(tmp_path, split_fails=True)
    tasks.write_text(tasks.read_text() + "  - {name: alone, run: 'true'}\n")
    assert cli("apply", tasks).code == 1
    ids = {name: row["id"] for name, row in _status(cli, tmp_path).items()}
    result = cli("purge", "split", "-C", tmp_path)
    assert result.code == 0, result.err
    for name in ("work-1", "work-2", "work-3"):
        assert f"{name} ({ids[name]}) is blocked by split: purged too" in result.out
    assert f"merge ({ids['merge']}) is blocked by work-1, work-2, work-3" in result.out
    assert "purged 5 task(s)" in result.out
    assert list(_status(cli, tmp_path)) == ["alone"]
    assert not (tmp_path / ".submitter" / "logs" / f"{ids['work-1']}.log").exists()


def test_inputs_made_upstream_need_not_exist_and_ids_are_stable(tmp_path: Path) -> None:
    project = load_project(_diamond(tmp_path))
    first = {t.name: t.task_id for t in prepare_tasks(project)}
    write(tmp_path / "parts" / "1.txt", "whatever\n")  # as if split had run
    second = {t.name: t.task_id for t in prepare_tasks(project)}
    assert first == second
    only = prepare_tasks(project, only={"merge"})
    assert [t.name for t in only] == ["merge"] and only[0].task_id == first["merge"]


def test_upstream_is_named_and_inferred(tmp_path: Path) -> None:
    project = load_project(_diamond(tmp_path))
    upstream = {t.name: t.upstream for t in project.tasks}
    assert upstream["split"] == ()
    assert upstream["work-2"] == ("split",)  # its input lies under split's output directory
    assert upstream["merge"] == ("work-1", "work-2", "work-3")


def test_an_input_directory_waits_for_the_outputs_inside_it(tmp_path: Path) -> None:
    text = (
        "tasks:\n"
        "  - {name: a, outputs: [res/a.txt], run: 'true'}\n"
        "  - {name: b, outputs: [res/b/y.txt], run: 'true'}\n"
        "  - {name: c, inputs: [res/], run: 'true'}\n"
        "  - {name: d, inputs: [res/b/], run: 'true'}\n"
    )
    project = load_project(write(tmp_path / "tasks.yml", text))
    upstream = {t.name: t.upstream for t in project.tasks}
    assert upstream == {"a": (), "b": (), "c": ("a", "b"), "d": ("b",)}


def test_a_glob_output_is_waited_for_by_what_it_may_produce() -> None:
    links, errors = dependencies.link(
        ["b", "c", "d", "e"],
        [(), (), (), ()],
        [(), ("res/",), ("res/b/x.txt",), ("res/b/x.csv",)],
        [("res/b/*.txt",), (), (), ()],
        [Location("t", 1, 1)] * 4,
        Path("/p"),
    )
    assert not errors
    assert {i: link.upstream for i, link in links.items()} == {1: ("b",), 2: ("b",)}
    assert links[2].derived_inputs == ("res/b/x.txt",)


def test_unknown_names_say_where_and_the_nearest_name(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        "tasks:\n"
        "  - {name: split, run: 'true'}\n"
        "  - name: merge\n"
        "    after: [splitt, 'nothing-*']\n"
        "    run: 'true'\n",
    )
    assert errors == [
        f"{tmp_path}/tasks.yml:4:13: task 'merge': after: no task named 'splitt'; "
        "did you mean 'split'?",
        f"{tmp_path}/tasks.yml:4:21: task 'merge': after: 'nothing-*' matches no other task",
    ]


def test_a_cycle_is_an_error_naming_it(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n"
        "  - {name: a, after: c, run: 'true'}\n"
        "  - {name: b, inputs: [a.txt], outputs: [b.txt], run: 'true'}\n"
        "  - {name: c, outputs: [a.txt], after: [b], run: 'true'}\n",
    )
    result = cli("apply", tasks)
    assert result.code == 2
    assert "dependency cycle: " in result.err
    assert "'b' runs after 'c' (its input 'a.txt' is an output of 'c')" in result.err
    assert not (tmp_path / ".submitter" / "state.db").exists()


def test_a_task_cannot_run_after_itself(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "tasks:\n  - {name: a, after: [a], run: 'true'}\n")
    assert errors == [f"{tmp_path}/tasks.yml:2:23: task 'a': after: a task cannot run after itself"]


def test_a_task_declared_before_its_up_to_date_upstream_runs_at_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _diamond(tmp_path)  # merge is declared before the work-* tasks it runs after
    assert cli("apply", tasks).code == 0
    tasks.write_text(tasks.read_text().replace("> merged.txt", "> merged.txt; true"))
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert "1 completed, 4 up to date" in result.err
    assert _status(cli, tmp_path)["merge"]["state"] == "completed"
