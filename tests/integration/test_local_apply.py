"""End to end on the built-in local host: real processes, real files, the real state store."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from submitter.report.data import parse_time
from tests.conftest import count_attempts, write

TASKS = """\
hosts:
  local: {scheduler: local, poll_interval: 1}
tasks:
  - name: "upper-{{ s }}"
    for_each: {s: [a, b]}
    inputs: ["data/{{ s }}.txt"]
    outputs: ["results/{{ s }}.txt"]
    run: |
      mkdir -p results
      tr a-z A-Z < data/{{ s }}.txt > results/{{ s }}.txt
  - name: python-task
    interpreter: python3
    outputs: [py.txt]
    run: |
      open("py.txt", "w").write("from python\\n")
"""


def _project(tmp_path: Path, tasks: str = TASKS) -> Path:
    write(tmp_path / "data" / "a.txt", "alpha\n")
    write(tmp_path / "data" / "b.txt", "beta\n")
    return write(tmp_path / "tasks.yml", tasks)


def test_outputs_appear_and_reapply_runs_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _project(tmp_path)
    first = cli("apply", tasks)
    assert first.code == 0, first.err
    assert (tmp_path / "results" / "a.txt").read_text() == "ALPHA\n"
    assert (tmp_path / "results" / "b.txt").read_text() == "BETA\n"
    assert (tmp_path / "py.txt").read_text() == "from python\n"
    assert count_attempts(tmp_path) == 3

    again = cli("apply", tasks, "-v")
    assert again.code == 0
    assert again.err.count("up to date:") == 3
    quiet = cli("apply", tasks)
    assert "up to date:" not in quiet.err, "without -v: one summary line, not one per task"
    assert "0 completed, 3 up to date, 0 failed" in quiet.err
    assert count_attempts(tmp_path) == 3, "a completed task must not run twice"


def test_own_outputs_inside_an_input_directory_are_not_its_input(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """inputs [x/], outputs in x/ (a file, a pattern, a directory): what the task wrote there
    does not make it run again; any other change in x/ does."""
    write(tmp_path / "x" / "data.txt", "one\n")
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: summary\n    inputs: [x/]\n"
        '    outputs: [x/y.txt, "x/parts/**/*.txt", x/logs/]\n'
        "    run: |\n      cat x/data.txt > x/y.txt\n"
        "      mkdir -p x/parts/deep x/logs\n      echo p > x/parts/deep/p.txt\n"
        "      date +%N > x/logs/run.log\n",
    )
    assert cli("apply", tasks).code == 0
    assert (tmp_path / "x" / "y.txt").read_text() == "one\n"
    again = cli("apply", tasks, "-v")
    assert again.code == 0, again.err
    assert "up to date: summary" in again.err, again.err
    assert count_attempts(tmp_path) == 1
    assert "summary" not in cli("apply", tasks, "--plan").out.replace("plan:", "")

    write(tmp_path / "x" / "data.txt", "two\n")
    planned = cli("apply", tasks, "--plan").out
    assert "input x/ changed" in planned, planned
    assert cli("apply", tasks).code == 0
    assert (tmp_path / "x" / "y.txt").read_text() == "two\n"
    write(tmp_path / "x" / "new.txt", "added\n")  # a new file is a change as well
    assert cli("apply", tasks).code == 0
    assert count_attempts(tmp_path) == 3


def test_changed_task_and_missing_output_rerun(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _project(tmp_path)
    assert cli("apply", tasks).code == 0
    (tmp_path / "data" / "a.txt").write_text("changed\n")  # input content is part of the id
    (tmp_path / "py.txt").unlink()  # a declared output missing here reruns the task
    result = cli("apply", tasks, "-v")
    assert result.code == 0, result.err
    assert (tmp_path / "results" / "a.txt").read_text() == "CHANGED\n"
    assert (tmp_path / "py.txt").exists()
    assert "up to date: upper-b" in result.err
    assert "rerun: python-task" in result.err
    assert count_attempts(tmp_path) == 5

    forced = cli("apply", tasks, "--force")
    assert forced.code == 0
    assert count_attempts(tmp_path) == 8


def test_failing_task_exits_1_and_shows_logs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: good\n    run: echo fine\n"
        "  - name: bad\n    run: |\n      echo to-stdout\n      echo to-stderr >&2\n      exit 7\n"
        "  - name: no-output\n    outputs: [never.txt]\n    run: 'true'\n",
    )
    result = cli("apply", tasks)
    assert result.code == 1
    assert "FAILED bad" in result.err and "exit code 7" in result.err
    assert "FAILED no-output" in result.err and "missing declared output: never.txt" in result.err
    assert "  stderr: to-stderr\n  logs: submitter logs bad" in result.err
    logs = cli("logs", "bad", "-C", tmp_path)
    assert "to-stdout" in logs.out and "to-stderr" in logs.out
    status = cli("status", "--json", "-C", tmp_path)
    states = {
        t["name"]: (t["state"], t["attempts"][-1]["exit_code"]) for t in json.loads(status.out)
    }
    assert states == {"good": ("completed", 0), "bad": ("failed", 7), "no-output": ("failed", 0)}
    assert status.code == 1


def test_kill_records_killed_state(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: sleeper\n    run: |\n      echo started\n      sleep 60\n",
    )
    started = cli("apply", tasks, "--detach")
    assert started.code == 0, started.err
    _wait_for_state(cli, tmp_path, "sleeper", "running")
    killed = cli("kill", "sleeper", "-C", tmp_path)
    assert killed.code == 0, killed.err
    assert "sleeper" in killed.out and "killed" in killed.out
    record = json.loads(cli("status", "sleeper", "--json", "-C", tmp_path).out)[0]
    assert record["state"] == "killed"
    assert record["reason"] == "killed by SIGTERM"
    assert record["attempts"][-1]["exit_code"] == 143


def test_detach_then_reattach_completes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: slow\n    outputs: [done.txt]\n    run: sleep 2; echo ok > done.txt\n",
    )
    began = time.monotonic()
    detached = cli("apply", tasks, "--detach")
    assert detached.code == 0
    assert time.monotonic() - began < 2, "--detach must not wait for the task"
    assert not (tmp_path / "done.txt").exists()
    attached = cli("apply", tasks)
    assert attached.code == 0, attached.err
    assert "re-attached to 1 task" in attached.err
    assert (tmp_path / "done.txt").read_text() == "ok\n"
    assert count_attempts(tmp_path) == 1


def test_status_reattaches_a_detached_apply(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: quick\n    outputs: [q.txt]\n    run: echo q > q.txt\n",
    )
    assert cli("apply", tasks, "--detach").code == 0
    _wait_for_state(cli, tmp_path, "quick", "completed")
    assert (tmp_path / "q.txt").read_text() == "q\n"


def test_max_running_is_respected(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 'p-{{ i }}'\n    for_each: {i: [1, 2, 3, 4]}\n"
        f"    env: {{TOP: '{tmp_path}'}}\n    run: |\n"
        '      mkdir -p "$TOP/running"; touch "$TOP/running/{{ i }}"\n'
        '      ls "$TOP/running" | wc -l > "$TOP/peak-{{ i }}"\n'
        '      sleep 1; rm "$TOP/running/{{ i }}"\n',
    )
    result = cli("apply", tasks, "-J", "2")
    assert result.code == 0, result.err
    peaks = [int((tmp_path / f"peak-{i}").read_text()) for i in range(1, 5)]
    assert max(peaks) <= 2


def test_purge_removes_records_and_directories(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - {name: one, run: echo 1}\n  - {name: two, run: 'echo 2; exit 1'}\n",
    )
    assert cli("apply", tasks).code == 1
    work = tmp_path / ".submitter" / "work"
    assert len(list(work.iterdir())) == 1, "a completed local task's directory is tidied away"
    result = cli("purge", "--all", "-C", tmp_path)
    assert result.code == 0
    assert "purged 2 task" in result.out
    assert not any(work.iterdir())
    assert json.loads(cli("status", "--json", "-C", tmp_path).out) == []
    import sqlite3

    with sqlite3.connect(tmp_path / ".submitter" / "state.db") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0, "events go too"
        assert db.execute("SELECT count(*) FROM attempts").fetchone()[0] == 0


def _wait_for_state(cli, project: Path, name: str, state: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = json.loads(cli("status", name, "--json", "-C", project).out)[0]["state"]
        if seen == state:
            return
        time.sleep(0.3)
    raise AssertionError(f"{name} stayed {seen}, expected {state}")


def test_walltime_enforced_on_hosts_without_scheduler(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: overrun\n    resources: {walltime: 2s}\n    run: sleep 30\n",
    )
    began = time.monotonic()
    result = cli("apply", tasks)
    assert result.code == 1
    assert time.monotonic() - began < 20
    assert "walltime exceeded" in result.err
    record = json.loads(cli("status", "overrun", "--json", "-C", tmp_path).out)[0]
    assert record["state"] == "failed"


def test_a_second_apply_in_the_same_project_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: long, run: sleep 4}\n")
    first = subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(tasks)], stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / ".submitter" / "apply.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        second = cli("apply", tasks)
        assert second.code == 2
        assert "another `submitter apply`" in second.err and str(first.pid) in second.err
    finally:
        assert first.wait(timeout=30) == 0
    assert count_attempts(tmp_path) == 1


def test_input_hashes_are_cached_and_refreshed_when_a_file_changes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from submitter.identity import SignatureCache
    from submitter.store.db import load_signatures

    tasks = _project(tmp_path)
    assert load_signatures(tmp_path / ".submitter") == {}
    assert cli("render", tasks, "--dry-run").code == 0
    assert not (tmp_path / ".submitter").exists(), "render writes nothing, not even the cache"
    assert cli("apply", tasks).code == 0
    known = load_signatures(tmp_path / ".submitter")
    assert {Path(key[0]).name for key in known} >= {"a.txt", "b.txt"}

    cache = SignatureCache(known)
    cache.file_digest(tmp_path / "data" / "a.txt")
    assert cache.added == {}, "an unchanged file is not read again"
    (tmp_path / "data" / "a.txt").write_text("ALPHA\n")  # same size, new content and mtime
    cache.file_digest(tmp_path / "data" / "a.txt")
    assert len(cache.added) == 1
    result = cli("apply", tasks)
    assert result.code == 0
    assert (tmp_path / "results" / "a.txt").read_text() == "ALPHA\n"
    assert count_attempts(tmp_path) == 4, "only the task whose input changed ran again"


def test_a_finished_task_leaves_at_most_three_files(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 'f-{{ i }}'\n    for_each: {i: [1, 2, 3, 4, 5]}\n"
        "    outputs: ['out/{{ i }}.txt']\n    run: 'mkdir -p out; echo {{ i }} > out/{{ i }}.txt'\n",
    )
    assert cli("apply", tasks).code == 0
    files = [p for p in (tmp_path / ".submitter").rglob("*") if p.is_file()]
    per_task = [p for p in files if p.parent.name != ".submitter"]
    assert len(per_task) <= 3 * 5, sorted(str(p) for p in per_task)
    logs = cli("logs", "f-3", "-C", tmp_path)
    assert logs.code == 0 and "--- stdout" in logs.out


def test_a_project_path_with_a_tab_and_a_newline_still_runs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "odd\tdir\nname"
    tasks = write(
        project / "tasks.yml",
        "tasks:\n  - {name: t, outputs: [out.txt], run: 'echo ok > out.txt'}\n",
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert (project / "out.txt").read_text() == "ok\n"


def test_many_short_tasks_leave_no_job_notice_in_the_wrapper_logs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The launcher runs each wrapper in a subshell of its own; bash's job notices ("[1]+
    Done") of the task it starts must not reach the task's logs (a few in a hundred did), where
    the wrapper's own output goes: these quiet tasks keep no logs at all."""
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 'n-{{ i }}'\n    for_each: {i: ["
        + ", ".join(map(str, range(300)))
        + "]}\n    run: 'true'\n",
    )
    assert cli("apply", tasks, "-J", "16").code == 0
    logs = sorted((tmp_path / ".submitter" / "logs").glob("*.log"))
    assert logs == [], f"a quiet task keeps no logs: {logs[0].read_text()}"


def test_the_state_dir_keeps_one_file_per_task(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """100 tasks that print, one of which fails: beside the store, one logs file per task, which
    `logs` reads back, the failed one's and a completed one's. (`work/` is this machine's
    host's work dir: a failed task's directory stays there to be looked at.)"""
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 'n-{{ i }}'\n    for_each: {i: ["
        + ", ".join(map(str, range(100)))
        + "]}\n    run: 'echo out {{ i }}; echo err {{ i }} >&2; [ {{ i }} != 7 ]'\n",
    )
    assert cli("apply", tasks).code == 1
    state = tmp_path / ".submitter"
    kept = [p for p in state.rglob("*") if not p.name.startswith("state.db")]
    per_task = [p for p in kept if p.parts[len(state.parts)] not in ("work", "apply.lock")]
    per_task.remove(state / "logs")
    assert len(per_task) == 100 and all(p.parent == state / "logs" for p in per_task), kept
    failed = cli("logs", "n-7", "-C", tmp_path)
    assert "--- stdout\nout 7\n--- stderr\nerr 7\n" in failed.out, failed.out
    assert "--- stdout\nout 3\n" in cli("logs", "n-3", "-C", tmp_path).out
    assert cli("purge", "n-3", "-C", tmp_path).code == 0
    assert len(list((state / "logs").iterdir())) == 99


def test_start_and_end_are_recorded_to_the_millisecond(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """bash 5's EPOCHREALTIME: a task of 0.3 s shows as such, not as 0 or 1 s."""
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: nap\n    run: 'sleep 0.3'\n")
    assert cli("apply", tasks).code == 0
    attempt = json.loads(cli("status", "--json", "-C", tmp_path).out)[0]["attempts"][-1]
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    assert stamp.fullmatch(attempt["started"]) and stamp.fullmatch(attempt["ended"]), attempt
    ran = parse_time(attempt["ended"]) - parse_time(attempt["started"])  # type: ignore[operator]
    assert 0.3 <= ran < 2.0, ran


def test_one_status_shows_a_detached_task_that_has_ended_as_ended(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The detaching apply may not have read the launcher's answer: the first status settles
    the start and, in the same call, asks how the task is."""
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: nap\n    run: 'sleep 0.5'\n")
    assert cli("apply", tasks, "--detach").code == 0
    time.sleep(1.5)
    shown = json.loads(cli("status", "--json", "-C", tmp_path).out)
    assert [t["state"] for t in shown] == ["completed"], shown


def test_a_local_task_runs_in_the_launchers_shared_wrapper(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The launcher reads the wrapper once, as a function, and gives each task its values:
    a task's directory gets no job.sh nor task.json of its own, and its values (quotes, a
    line break) arrive whole. A failed task's directory stays, with what the wrapper wrote."""
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 'odd-{{ i }}'\n    for_each: {i: [1, 2]}\n"
        "    env: {V: \"it's a\\n'line' {{ i }}\"}\n"
        "    run: |\n      printf '%s' \"$V\" > v.txt\n      exit 3\n",
    )
    result = cli("apply", tasks)
    assert result.code == 1, result.err
    rows = json.loads(cli("status", "--json", "-C", tmp_path).out)
    for row in rows:
        assert (row["state"], row["reason"]) == ("failed", "exit code 3"), row
        task_dir = Path(row["task_dir"])
        i = row["name"][-1]
        assert (task_dir / "v.txt").read_text() == f"it's a\n'line' {i}"
        left = {p.name for p in task_dir.iterdir()}
        assert not left & {"job.sh", "task.json", "job.out", "job.err"}, left
        assert {"status", "stdout", "stderr", "command"} <= left, left


def test_a_local_apply_makes_no_temporary_directory(cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every file of a local task is written and read where it is: its start and its
    retrieval make and remove no scratch directory (as much work as a file, per task)."""
    import tempfile

    made: list[str] = []
    real = tempfile.mkdtemp

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", counting)
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - {name: 't-{{ i }}', for_each: {i: [1, 2, 3]}, outputs: ['{{ i }}.txt'],"
        " run: 'echo {{ i }} | tee {{ i }}.txt'}\n",
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert (tmp_path / "2.txt").read_text() == "2\n"
    assert "--- stdout\n2\n" in cli("logs", "t-2", "-C", tmp_path).out
    assert made == []


def test_a_bash_command_run_in_the_wrappers_subshell_sees_what_a_new_bash_would(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """No arguments, no variable of the wrapper but what the environment has (its env's, even
    named like the wrapper's), no job control (a job it starts stays in the task's process
    group, which a kill reaches), its own clock; and a command that asks for its shell's pid
    gets its own bash."""
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n"
        "  - name: plain\n    outputs: [seen.txt]\n    run: |\n"
        "      args=$#\n"
        "      sleep 0.2 &\n"
        "      read -r stat < /proc/$!/stat; stat=${stat##*) }; set -- $stat\n"
        '      [ "$3" = "$BASHPID" ] && group=task || group=other\n'
        "      wait\n"
        '      printf \'%s %s %s %s %s\\n\' "$args" "${submitter_command-none}" "$group" '
        '"$((SECONDS < 5))" "$submitter_mine" > seen.txt\n'
        "    env: {submitter_mine: kept}\n"
        "  - name: own\n    outputs: [own.txt]\n"
        '    run: \'[ "$$" = "$BASHPID" ] && echo own > own.txt\'\n',
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert (tmp_path / "seen.txt").read_text() == "0 none task 1 kept\n"
    assert (tmp_path / "own.txt").read_text() == "own\n"


def test_a_detached_local_apply_leaves_without_waiting_for_a_slot(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """It starts what the slots allow and leaves: it hands its launcher no task to hold for a
    slot that frees only when a task ends."""
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - {name: 's-{{ i }}', for_each: {i: [1, 2, 3, 4]}, run: 'sleep 3'}\n",
    )
    began = time.monotonic()
    result = cli("apply", tasks, "-J", "1", "--detach")
    assert result.code == 0, result.err
    assert time.monotonic() - began < 2.5
    states = sorted(r["state"] for r in json.loads(cli("status", "--json", "-C", tmp_path).out))
    assert states == ["pending", "pending", "pending", "running"], states
