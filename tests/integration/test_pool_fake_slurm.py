"""Pools on the fake SLURM of tests/fakes/slurm: alike short tasks whose jobs take them one
at a time as they run, as many jobs as the fake's `sinfo -o %C` says CPUs are free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.test_engine_fake_slurm import (  # noqa: F401 (fixtures)
    _client,
    _jobs,
    _runs,
    _status,
    _tasks,
    _wait_for,
    fake_slurm,
    recorded,
    seams,
)


def _pool(project: Path, n: int, walltime: int, body: str = "", host: str = "") -> Path:
    """`n` tasks `p-I` declaring `walltime` seconds, each appending to runs/I when it runs."""
    return _tasks(
        project,
        "  - name: 'p-{{ i }}'\n    for_each: {i: " + json.dumps(list(range(n))) + "}\n"
        f"    env: {{TOP: '{project}'}}\n    resources: {{walltime: {walltime}}}\n"
        "    run: |\n"
        '      mkdir -p "$TOP/runs"; echo "$$" >> "$TOP/runs/{{ i }}"\n' + body,
        host,
    )


def _ran_by(project: Path) -> Counter[str]:
    """How many tasks each job ran, by the job id in their status files."""
    work = project / "cluster-work"
    found = Counter[str]()
    for status in work.glob("*/status"):
        line = status.read_text()
        if line.endswith("\n"):  # else being claimed, as this reads it
            found[json.loads(line)["job_id"]] += 1
    return found


@pytest.mark.usefixtures("fake_slurm")
def test_a_pool_of_200_short_tasks_is_taken_by_its_jobs_as_they_run(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """4 CPUs free: 4 jobs of one lane; each task declares 5 minutes and runs in an instant,
    so the jobs take them all in seconds, each as many as it got to."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "4")
    began = time.monotonic()
    result = cli("apply", _pool(tmp_path, 200, 300))
    took = time.monotonic() - began
    assert result.code == 0, result.err
    assert _runs(tmp_path) == {str(i): 1 for i in range(200)}, "each task ran once"
    jobs = _jobs(tmp_path)
    assert len(jobs) == 4 and all(j["cpus"] == 1 for j in jobs)
    shares = _ran_by(tmp_path)
    assert set(shares) <= {str(j["job_id"]) for j in jobs} and sum(shares.values()) == 200
    assert took < 60, f"{took:.0f} s: a declared walltime made a job wait"
    assert all(r["state"] == "completed" for r in _status(cli, tmp_path).values())


@pytest.mark.usefixtures("fake_slurm")
def test_a_pool_job_still_queued_when_every_task_was_taken_leaves_the_queue(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The pool's second job waits while the first takes all 20 tasks: it would find
    nothing when it starts, so it is cancelled, not left to hold a queue place and a node."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "2")
    state = tmp_path / "slurm-state"
    (state / "hold-2").touch()  # the pool's second job waits
    result = cli("apply", _pool(tmp_path, 20, 300))
    assert result.code == 0, result.err
    assert _runs(tmp_path) == {str(i): 1 for i in range(20)}
    assert _ran_by(tmp_path) == {"1": 20}
    assert {j["id"]: j["state"] for j in _jobs(tmp_path)} == {"1": "CD", "2": "CA"}


@pytest.mark.usefixtures("fake_slurm")
def test_a_pool_job_that_starts_late_finds_nothing_and_ends_at_once(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Detached, with no client to cancel it: the second job starts after the first took
    every task, and ends at once."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "2")
    state = tmp_path / "slurm-state"
    (state / "hold-2").touch()
    assert cli("apply", _pool(tmp_path, 20, 300), "--detach").code == 0
    _wait_for(lambda: _ran_by(tmp_path) == {"1": 20}, "job 1 took every task")
    (state / "hold-2").unlink()
    began = time.monotonic()
    _wait_for(lambda: {j["id"]: j["state"] for j in _jobs(tmp_path)}["2"] == "CD", "job 2")
    assert time.monotonic() - began < 10
    assert _runs(tmp_path) == {str(i): 1 for i in range(20)}


@pytest.mark.usefixtures("fake_slurm")
def test_a_job_takes_a_task_only_while_its_time_covers_the_tasks_walltime(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Jobs of 2 minutes (the driver keeps one for its slack) and tasks declaring one: each
    job runs one task and ends; what no job took goes back to pending and the next start
    makes a new pool of it, until every task ran, once."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "2")
    tasks = _pool(tmp_path, 6, 60, "      sleep 1.2\n", ", pack_cores: 2, pack_walltime: 120")
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert _runs(tmp_path) == {str(i): 1 for i in range(6)}
    assert len(_jobs(tmp_path)) == 6 and set(_ran_by(tmp_path).values()) == {1}


@pytest.mark.usefixtures("fake_slurm")
def test_a_client_killed_mid_run_then_applied_again_runs_each_pool_task_once(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_SLURM_CPUS", "2")
    tasks = _pool(tmp_path, 40, 300, "      sleep 0.1\n")
    client = _client(tasks, tmp_path / "apply.log")
    _wait_for(lambda: len(list((tmp_path / "runs").glob("*"))) >= 5, "a few runs")
    client.kill()
    client.wait(timeout=30)
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert _runs(tmp_path) == {str(i): 1 for i in range(40)}
    assert all(r["state"] == "completed" for r in _status(cli, tmp_path).values())


@pytest.mark.usefixtures("fake_slurm")
def test_a_pool_job_cancelled_mid_way_leaves_its_untaken_tasks_to_the_others(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """scancel of one of two jobs: the task it was running is killed (reported as today)
    and runs again at the next apply; the others ran once, by the job left."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "2")
    tasks = _pool(tmp_path, 12, 300, "      sleep 0.5\n")
    client = _client(tasks, tmp_path / "apply.log")
    try:
        _wait_for(lambda: _ran_by(tmp_path)["1"] >= 2, "job 1 took two tasks")
        subprocess.run(["scancel", "1"], check=True)
        assert client.wait(timeout=60) == 1, (tmp_path / "apply.log").read_text()
    finally:
        client.kill()
    rows = _status(cli, tmp_path)
    killed = [name for name, row in rows.items() if row["state"] != "completed"]
    assert len(killed) == 1 and rows[killed[0]]["state"] == "killed", rows
    assert cli("apply", tasks).code == 0
    runs = _runs(tmp_path)
    assert runs == {str(i): 2 if f"p-{i}" in killed else 1 for i in range(12)}


@pytest.mark.usefixtures("fake_slurm")
def test_a_kill_of_every_task_of_a_pool_ends_those_no_job_took_as_killed(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """One CPU free: one job, running the first task; the kill cancels the job, and the three
    tasks it never took are killed too, not put back to run."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "1")
    tasks = _pool(tmp_path, 4, 300, "      sleep 30\n")
    assert cli("apply", tasks, "--detach").code == 0
    _wait_for(lambda: (tmp_path / "runs").is_dir() and len(_runs(tmp_path)) == 1, "one running")
    killed = cli("kill", "--all", "-C", tmp_path)
    assert killed.code == 0, killed.err
    rows = _status(cli, tmp_path)
    assert {row["state"] for row in rows.values()} == {"killed"}, rows
    assert [j["state"] for j in _jobs(tmp_path)] == ["CA"]
    assert len(_runs(tmp_path)) == 1


@pytest.mark.usefixtures("fake_slurm")
def test_a_pool_whose_jobs_wait_through_a_controller_outage_is_not_started_again(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """squeue fails while the pool's two jobs wait: a failed query is not "every job of the
    pool is gone", so no task goes back to be started again; when the controller answers,
    the same two jobs take all 20 tasks, each once."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "2")
    state = tmp_path / "slurm-state"
    holds = [state / "hold-1", state / "hold-2"]
    for hold in holds:
        hold.touch()
    log = tmp_path / "apply.log"
    client = _client(_pool(tmp_path, 20, 300), log)
    try:
        _wait_for(lambda: len(_jobs(tmp_path)) == 2, "the pool's two jobs")
        (state / "controller-down").touch()
        _wait_for(lambda: "its scheduler is not answering" in log.read_text(), "the outage seen")
        time.sleep(1.0)  # a few more failed polls
        (state / "controller-down").unlink()
        _wait_for(lambda: "reachable again" in log.read_text(), "the controller back")
        for hold in holds:
            hold.unlink()
        assert client.wait(timeout=60) == 0, log.read_text()
    finally:
        client.kill()
    assert "slurm_load_jobs error: Unable to contact slurm controller" in log.read_text()
    assert len(_jobs(tmp_path)) == 2, "a job was submitted again"
    assert _runs(tmp_path) == {str(i): 1 for i in range(20)}


@pytest.mark.usefixtures("fake_slurm")
def test_a_detached_pool_has_jobs_enough_for_every_task_at_its_declared_walltime(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """With no client to make new pools of what the jobs did not take, a detached pool asks
    the jobs its members' declared walltimes need (2 CPUs free, jobs of one task at 60 s
    each: 6 jobs, not 2), and every task runs, once, without the client."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "2")
    tasks = _pool(tmp_path, 6, 60, "      sleep 1.2\n", ", pack_cores: 2, pack_walltime: 120")
    result = cli("apply", tasks, "--detach")
    assert result.code == 0, result.err
    _wait_for(lambda: (tmp_path / "runs").is_dir() and len(_runs(tmp_path)) == 6, "every task", 30)
    _wait_for(lambda: all(j["state"] == "CD" for j in _jobs(tmp_path)), "the jobs' ends")
    assert len(_jobs(tmp_path)) == 6
    assert _runs(tmp_path) == {str(i): 1 for i in range(6)}
    assert all(r["state"] == "completed" for r in _status(cli, tmp_path).values())


@pytest.mark.usefixtures("fake_slurm")
def test_a_pool_leaves_two_entries_a_task_on_the_host_and_its_logs_come_back_whole(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """30 pooled tasks, each printing its own lines (one with bytes that are not UTF-8) and
    one failing: once they ended, each task's directory on the host holds its status and
    its outputs, nothing else; what the pool's jobs keep beside them (`.groups/`) is a few
    files a job. `logs` shows each task's own output, and the failure its stderr."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "3")
    body = (
        '      echo "out of {{ i }}"; echo "err of {{ i }}" >&2; printf \'raw \\377\\n\'\n'
        "      echo made > out-{{ i }}.txt\n"
        '      [ "{{ i }}" != 7 ] || exit 4\n'
    )
    tasks = _pool(tmp_path, 30, 300, body)
    tasks.write_text(
        tasks.read_text().replace("    run: |", "    outputs: ['out-{{ i }}.txt']\n    run: |")
    )
    result = cli("apply", tasks)
    assert result.code == 1, result.err
    assert "err of 7" in result.err, "the failure's last stderr lines"
    work = tmp_path / "cluster-work"
    per_task = {
        d.name: sorted(p.name for p in d.iterdir()) for d in work.iterdir() if d.name != ".groups"
    }
    assert len(per_task) == 30
    for name, entries in per_task.items():
        assert [e for e in entries if not e.startswith("out-")] == ["status"], (name, entries)
    groups = [p for p in (work / ".groups").rglob("*")]
    assert len(groups) <= 4 + 3 * 6, sorted(str(p.relative_to(work)) for p in groups)
    for i in (3, 7):
        shown = cli("logs", "--project", str(tmp_path), f"p-{i}")
        assert f"out of {i}" in shown.out and f"err of {i}" in shown.out, shown.out
        assert f"out of {i + 1}" not in shown.out


@pytest.mark.usefixtures("fake_slurm")
def test_logs_follow_of_a_pool_task_shows_its_lines_as_written_then_its_kept_logs(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A pooled task, detached, prints a line, waits to be let go, prints another: `logs -f`
    shows the first before the second is written, ends with the task completed, and the
    task's logs kept here (from its lane's log file on the host) hold both lines."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "2")
    go = tmp_path / "go"
    body = (
        '      echo "first {{ i }}"\n'
        f"      [ \"{{{{ i }}}}\" != 1 ] || until [ -e '{go}' ]; do sleep 0.1; done\n"
        '      echo "second {{ i }}"\n'
    )
    assert cli("apply", _pool(tmp_path, 3, 60, body), "--detach").code == 0
    follow = subprocess.Popen(
        [sys.executable, "-m", "submitter", "logs", "-f", "p-1", "-C", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert follow.stdout is not None
    lines = []
    for line in follow.stdout:
        lines.append(line.rstrip("\n"))
        if lines[-1] == "first 1":
            go.touch()
    assert follow.wait(timeout=60) == 0, lines
    assert lines[1:3] == ["first 1", "second 1"] and lines[-1].endswith(": completed"), lines
    kept = cli("logs", "p-1", "-C", tmp_path)
    assert "first 1\nsecond 1\n" in kept.out, kept.out


@pytest.mark.usefixtures("fake_slurm")
def test_a_pool_task_run_in_its_wrappers_subshell_sees_none_of_its_lanes_variables(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """One lane runs four plain bash tasks one after another: each sees no argument and
    none of the lane's own variables (what the last task's status said, the files it
    left), as a new bash would not."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "1")
    tasks = _tasks(
        tmp_path,
        "  - name: 'v-{{ i }}'\n    for_each: {i: [0, 1, 2, 3]}\n"
        f"    env: {{TOP: '{tmp_path}'}}\n    resources: {{walltime: 60}}\n"
        "    run: |\n"
        '      echo "$# ${line-none} ${litter-none} ${failed-none} ${submitter_line-none}"'
        ' > "$TOP/seen-{{ i }}"\n',
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    seen = {(tmp_path / f"seen-{i}").read_text() for i in range(4)}
    assert seen == {"0 none none none none\n"}, seen


@pytest.mark.usefixtures("fake_slurm")
def test_a_pool_job_whose_task_was_cleared_under_it_writes_no_end_there(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A job writes a task's status only over its own claim. Here the claim goes while the
    task runs, as a retry's start clears it after the job's node failed: the job, back,
    ends the task and writes nothing, and the task runs again in the next pool."""
    monkeypatch.setenv("FAKE_SLURM_CPUS", "1")
    tasks = _pool(tmp_path, 3, 60, "      sleep 1\n")
    client = _client(tasks, tmp_path / "apply.log")
    try:
        _wait_for(lambda: (tmp_path / "runs").exists(), "the first task running")
        (status,) = (tmp_path / "cluster-work").glob("*/status")
        first = json.loads(status.read_text())
        status.unlink()
        assert client.wait(timeout=60) == 0, (tmp_path / "apply.log").read_text()
    finally:
        client.kill()
    runs = _runs(tmp_path)
    assert sorted(runs.values()) == [1, 1, 2], runs
    ended = json.loads(status.read_text())
    assert ended["state"] == "completed" and ended["job_id"] != first["job_id"], (first, ended)
