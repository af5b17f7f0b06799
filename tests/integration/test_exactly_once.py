"""Each task runs exactly once per change, on the local host: real processes, real kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import count_attempts, write


def _status(cli, project: Path) -> list[dict]:  # type: ignore[no-untyped-def]
    return list(json.loads(cli("status", "--json", "-C", project).out))


def test_tasks_differing_only_in_name_are_separate_tasks(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n"
        "  - name: 'rep-{{ i }}'\n    for_each: {i: [1, 2, 3, 4]}\n"
        f"    env: {{TOP: '{tmp_path}'}}\n    run: |\n"
        '      mkdir -p "$TOP/running" "$TOP/ran"; touch "$TOP/running/$SUBMITTER_TASK_NAME"\n'
        '      ls "$TOP/running" | wc -l >> "$TOP/peaks"\n'
        '      echo x >> "$TOP/ran/$SUBMITTER_TASK_NAME"\n'
        '      sleep 1; rm "$TOP/running/$SUBMITTER_TASK_NAME"\n'
        "  - {name: a, run: 'echo same'}\n"
        "  - {name: b, run: 'echo same'}\n",
    )
    result = cli("apply", tasks, "-J", "2")
    assert result.code == 0, result.err
    assert "still queued or running" not in result.err
    rows = _status(cli, tmp_path)
    assert sorted(r["name"] for r in rows) == ["a", "b", "rep-1", "rep-2", "rep-3", "rep-4"]
    assert len({r["id"] for r in rows}) == 6
    assert all(r["state"] == "completed" for r in rows)
    assert max(int(line) for line in (tmp_path / "peaks").read_text().split()) <= 2
    assert sorted(p.name for p in (tmp_path / "ran").iterdir()) == [f"rep-{i}" for i in range(1, 5)]
    assert count_attempts(tmp_path) == 6


def test_a_changed_back_input_does_not_leave_a_stale_output(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: copy\n    inputs: [in.txt]\n    outputs: [out.txt]\n"
        "    run: cp in.txt out.txt\n",
    )
    write(tmp_path / "in.txt", "one\n")
    assert cli("apply", tasks).code == 0
    write(tmp_path / "in.txt", "two\n")
    assert cli("apply", tasks).code == 0
    assert (tmp_path / "out.txt").read_text() == "two\n"
    write(tmp_path / "in.txt", "one\n")
    again = cli("apply", tasks)
    assert again.code == 0, again.err
    assert (tmp_path / "out.txt").read_text() == "one\n"
    assert "rerun: copy" in again.err and "changed" in again.err

    untouched = cli("apply", tasks)
    assert "1 up to date" in untouched.err
    write(tmp_path / "out.txt", "edited by hand\n")
    edited = cli("apply", tasks)
    assert (tmp_path / "out.txt").read_text() == "one\n", edited.err


def _many_ids(cli, tmp_path: Path) -> tuple[Path, list[dict]]:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 't-{{ i }}'\n    for_each: {i: "
        + json.dumps(list(range(20)))
        + "}\n    run: 'echo {{ i }}'\n",
    )
    assert cli("apply", tasks, "-J", "20").code == 0
    return tasks, _status(cli, tmp_path)


@pytest.mark.parametrize("command", ["status", "logs", "kill", "purge"])
def test_an_ambiguous_id_prefix_is_refused_with_the_candidates(
    cli, tmp_path: Path, command: str
) -> None:  # type: ignore[no-untyped-def]
    _, rows = _many_ids(cli, tmp_path)
    firsts = Counter(r["id"][0] for r in rows)
    prefix = next(c for c, n in firsts.items() if n > 1)
    result = cli(command, prefix, "-C", tmp_path)
    assert result.code == 2, result.out + result.err
    assert "ambiguous" in result.err
    for row in rows:
        if row["id"].startswith(prefix):
            assert row["name"] in result.err and row["id"] in result.err
    assert len(_status(cli, tmp_path)) == 20, "nothing purged"


def test_exact_name_or_id_wins_and_no_match_is_an_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, rows = _many_ids(cli, tmp_path)
    by_name = {r["name"]: r for r in rows}
    # `t-1` is also a prefix of t-10 ... t-19 by name: the exact name wins
    exact = cli("status", "t-1", "--json", "-C", tmp_path)
    assert exact.code == 0 and [r["name"] for r in json.loads(exact.out)] == ["t-1"]
    full = cli("status", by_name["t-7"]["id"], "--json", "-C", tmp_path)
    assert [r["name"] for r in json.loads(full.out)] == ["t-7"]
    missing = cli("logs", "nothing-like-this", "-C", tmp_path)
    assert missing.code == 2 and "no task" in missing.err


def test_a_renamed_task_is_the_one_status_and_logs_show(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: old, run: 'echo hello'}\n")
    assert cli("apply", tasks).code == 0
    write(tmp_path / "tasks.yml", "tasks:\n  - {name: new, run: 'echo hello'}\n")
    assert cli("apply", tasks).code == 0
    assert [r["name"] for r in _status(cli, tmp_path)] == ["new"]
    logs = cli("logs", "new", "-C", tmp_path)
    assert logs.code == 0 and "hello" in logs.out
    everything = json.loads(cli("status", "--all", "--json", "-C", tmp_path).out)
    assert sorted(r["name"] for r in everything) == ["new", "old"]


def test_running_local_tasks_show_as_running(tmp_path: Path) -> None:
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: s, run: 'sleep 3'}\n")
    done = subprocess.run(
        [sys.executable, "-m", "submitter", "apply", str(tasks)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "running 1 · queued 0" in done.stderr
    assert "queued 1" not in done.stderr, "a started local task is running, not queued"


# --- the client killed while it starts tasks ------------------------------------------------

N_TASKS = 24


def _counting_tasks(project: Path) -> Path:
    return write(
        project / "tasks.yml",
        "tasks:\n"
        "  - name: 'c-{{ i }}'\n    for_each: {i: " + json.dumps(list(range(N_TASKS))) + "}\n"
        f"    env: {{TOP: '{project}'}}\n    outputs: ['out/{{{{ i }}}}.txt']\n    run: |\n"
        '      mkdir -p "$TOP/runs" out\n'
        '      echo "$$" >> "$TOP/runs/{{ i }}"\n'
        "      sleep 2\n"
        "      echo {{ i }} > out/{{ i }}.txt\n",
    )


def _kill_when_started(project: Path, tasks: Path, sig: int, started: int) -> None:
    client = subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(tasks), "-J", str(N_TASKS)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    runs = project / "runs"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if runs.is_dir() and len(os.listdir(runs)) >= started:
            break
        time.sleep(0.002)
    client.send_signal(sig)
    client.wait(timeout=30)


@pytest.mark.parametrize(
    ("sig", "started"),
    [
        (signal.SIGKILL, 1),
        (signal.SIGKILL, N_TASKS // 2),
        (signal.SIGTERM, 1),
        (signal.SIGHUP, 1),
        (signal.SIGINT, 1),
    ],
    ids=["kill-first", "kill-half", "term", "hup", "int"],
)
def test_client_killed_while_starting_never_runs_a_task_twice(
    cli, tmp_path: Path, sig: int, started: int
) -> None:  # type: ignore[no-untyped-def]
    tasks = _counting_tasks(tmp_path)
    _kill_when_started(tmp_path, tasks, sig, started)
    result = cli("apply", tasks, "-J", str(N_TASKS))
    assert result.code == 0, result.err
    runs = {p.name: p.read_text().split() for p in (tmp_path / "runs").iterdir()}
    twice = {name: pids for name, pids in runs.items() if len(pids) != 1}
    assert not twice, f"ran more than once: {twice}"
    assert len(runs) == N_TASKS
    for i in range(N_TASKS):
        assert (tmp_path / "out" / f"{i}.txt").read_text() == f"{i}\n"
    assert all(r["state"] == "completed" for r in _status(cli, tmp_path))


def test_interrupted_apply_exits_130(tmp_path: Path) -> None:
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: s, run: 'sleep 30'}\n")
    client = subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(tasks)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list((tmp_path / ".submitter").glob("work/*/status")):
        time.sleep(0.05)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=30)
    assert client.returncode == 130, err
    assert "keep running" in err


def test_an_unreachable_host_is_retried_until_reconnect_for_then_exit_3(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Nothing listens on port 1: every connection is refused at once. apply keeps the task,
    says since when the host is unreachable, retries, and gives up only after reconnect_for."""
    tasks = write(
        tmp_path / "tasks.yml",
        "hosts:\n  far: {address: nobody@127.0.0.1, port: 1, work_dir: /tmp/far, "
        "reconnect_for: 5s}\n"
        "tasks:\n  - {name: t, host: far, run: 'echo hi'}\n",
    )
    began = time.monotonic()
    result = cli("apply", tasks)
    took = time.monotonic() - began
    assert result.code == 3, result.err
    assert 5 <= took < 30, took
    assert "unreachable since" in result.err and "keeps trying" in result.err
    assert "unreachable for" in result.err
    row = _status(cli, tmp_path)[0]
    assert row["state"] == "pending" and row["attempts"] == [], "nothing was started"


def test_a_recycled_pid_is_never_signalled_nor_taken_for_the_task(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The task's wrapper dies without a word; its pid now names an unrelated process (as
    after pid reuse). kill must leave that process alone, and status must not call the task
    running because some process has that pid."""
    import sqlite3

    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - {name: gone, run: 'sleep 60'}\n")
    assert cli("apply", tasks, "--detach").code == 0
    row = _status(cli, tmp_path)[0]
    wrapper = int(row["attempts"][-1]["job_id"])
    os.killpg(wrapper, signal.SIGKILL)
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        with sqlite3.connect(tmp_path / ".submitter" / "state.db") as db:
            db.execute("UPDATE attempts SET job_id=?", (str(bystander.pid),))
        killed = cli("kill", "gone", "-C", tmp_path)
        assert killed.code == 0, killed.err
        assert bystander.poll() is None, "an unrelated process was signalled"
        assert _status(cli, tmp_path)[0]["state"] in ("killed", "lost")
    finally:
        bystander.kill()
        bystander.wait()


def test_a_final_status_an_earlier_run_left_unrenamed_is_not_the_next_runs(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A `.status.PID` the poll would read as the truth (a wrapper killed before its rename)
    goes with the rest of what an earlier run left, when the task starts again."""
    tasks = write(
        tmp_path / "tasks.yml",
        f"tasks:\n  - name: twice\n    env: {{TOP: '{tmp_path}'}}\n"
        "    run: 'echo x >> \"$TOP/runs\"; sleep 1; exit 3'\n",
    )
    assert cli("apply", tasks).code == 1
    (first,) = _status(cli, tmp_path)
    left = Path(first["task_dir"]) / ".status.99999"
    left.write_text('{"state": "completed", "exit_code": 0, "reason": ""}\n')
    again = cli("apply", tasks)
    assert again.code == 1, again.err
    (second,) = _status(cli, tmp_path)
    assert (second["state"], second["reason"]) == ("failed", "exit code 3"), second
    assert (tmp_path / "runs").read_text() == "x\nx\n"
    assert not left.exists()


def test_an_interrupted_apply_starts_nothing_more(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The local launcher holds tasks ahead of its slots: once its client is gone (Ctrl-C), it
    starts none of them; the next apply runs them, each once."""
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 'c-{{ i }}'\n    for_each: {i: [0, 1, 2, 3, 4, 5]}\n"
        f"    env: {{TOP: '{tmp_path}'}}\n    run: |\n"
        '      mkdir -p "$TOP/runs"; echo x >> "$TOP/runs/{{ i }}"\n'
        "      sleep 1\n",
    )
    client = subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(tasks), "-J", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (runs.is_dir() and os.listdir(runs)):
        time.sleep(0.01)
    client.send_signal(signal.SIGINT)
    assert client.wait(timeout=30) == 130
    time.sleep(2.5)  # the task running then ends; the launcher would have started the next
    assert len(os.listdir(runs)) == 1, sorted(os.listdir(runs))
    again = cli("apply", tasks, "-J", "3")
    assert again.code == 0, again.err
    counts = {p.name: len(p.read_text().split()) for p in runs.iterdir()}
    assert counts == {str(i): 1 for i in range(6)}, counts


def _apply_in_background(tasks: Path, jobs: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(tasks), "-J", str(jobs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_status_while_an_apply_runs_leaves_the_tasks_it_holds_to_it(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The apply's launcher holds tasks it has not started yet (their attempts recorded): a
    `status` meanwhile does not settle them as never started, the apply starts them."""
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - {name: 's-{{ i }}', for_each: {i: [1, 2, 3, 4, 5]}, run: 'sleep 0.5'}\n",
    )
    client = _apply_in_background(tasks, 1)
    time.sleep(0.8)
    assert cli("status", "-C", tmp_path).code == 0
    _, err = client.communicate(timeout=60)
    assert client.returncode == 0, err
    assert [r["state"] for r in _status(cli, tmp_path)] == ["completed"] * 5


def test_a_task_killed_while_the_apply_holds_it_never_starts(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`kill` of a task the running apply's launcher holds: it stays killed, it never runs,
    and the apply goes on with the others."""
    tasks = write(
        tmp_path / "tasks.yml",
        "tasks:\n  - name: 's-{{ i }}'\n    for_each: {i: [1, 2, 3]}\n"
        f"    env: {{TOP: '{tmp_path}'}}\n"
        '    run: \'mkdir -p "$TOP/ran"; touch "$TOP/ran/{{ i }}"; sleep 1\'\n',
    )
    client = _apply_in_background(tasks, 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (tmp_path / "ran").is_dir():
        time.sleep(0.02)
    killed = cli("kill", "s-3", "-C", tmp_path)
    assert killed.code == 0, killed.err
    _, err = client.communicate(timeout=60)
    states = {r["name"]: r["state"] for r in _status(cli, tmp_path)}
    assert states == {"s-1": "completed", "s-2": "completed", "s-3": "killed"}, (states, err)
    assert sorted(p.name for p in (tmp_path / "ran").iterdir()) == ["1", "2"]
