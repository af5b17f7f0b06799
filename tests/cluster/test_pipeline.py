"""Pipelines on real hosts: a diamond with inferred and explicit dependencies, the
upstream outputs linked on the host rather than sent again."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from submitter.schedulers.base import scheduler_job
from submitter.states import FINAL
from submitter.store.db import Store
from tests.cluster.conftest import wait_until
from tests.conftest import write


def _diamond(log: Path) -> list[dict[str, Any]]:
    """split makes three parts; work-i reads part i (inferred); merge runs after work-*
    (explicit) and reads their outputs' directory. Every task logs its start and end."""

    def logged(name: str, body: str) -> str:
        return f'echo "start {name}" >> {log}\n{body}\necho "end {name}" >> {log}\n'

    return [
        {
            "name": "merge",
            "after": ["work-*"],
            "inputs": ["done/"],
            "outputs": ["merged.txt"],
            "run": logged("merge", "cat done/1.txt done/2.txt done/3.txt > merged.txt"),
        },
        {
            "name": "work-{{ i }}",
            "for_each": {"i": [1, 2, 3]},
            "inputs": ["parts/{{ i }}.txt"],
            "outputs": ["done/{{ i }}.txt"],
            "run": logged(
                "work-{{ i }}",
                "sleep 1\nmkdir -p done\ntr a-z A-Z < parts/{{ i }}.txt > done/{{ i }}.txt",
            ),
        },
        {
            "name": "split",
            "outputs": ["parts/"],
            "run": logged(
                "split",
                'mkdir -p parts\nfor i in 1 2 3; do echo "part $i" > parts/$i.txt; done',
            ),
        },
    ]


@pytest.mark.parametrize("host", ["ssh", "slurm"])
def test_diamond_in_order_with_outputs_linked_on_the_host(
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, remote, host: str
) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project"
    log: Path = cluster_secrets["shared"] / f"log-{host}-{uuid.uuid4().hex[:6]}"
    tasks = write(
        project / "tasks.yml",
        json.dumps(
            {
                "hosts": {"h": cluster_hosts[host]},
                "defaults": {"host": "h"},
                "tasks": _diamond(log),
            }
        ),
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert (project / "merged.txt").read_text() == "PART 1\nPART 2\nPART 3\n"
    lines = log.read_text().splitlines()
    assert len(lines) == 10, lines  # every task ran once
    assert lines[:2] == ["start split", "end split"]
    ends = [lines.index(f"end work-{i}") for i in (1, 2, 3)]
    assert lines.index("start merge") > max(ends), lines

    merge = json.loads(cli("status", "merge", "--json", "-C", project).out)[0]
    linked = remote(host, f"test -L {merge['run_dir']}/done/2.txt && echo linked")
    assert linked.stdout == "linked\n", "an upstream output on the host is linked, not sent"

    again = cli("apply", tasks)
    assert again.code == 0 and "5 up to date" in again.err


def _chain(fail_first: bool = False) -> list[dict[str, Any]]:
    """a -> b -> c, each reading the one before's output (inferred dependencies)."""
    first = "exit 1" if fail_first else "sleep 3; echo a > out/a.txt"
    return [
        {"name": "a", "outputs": ["out/a.txt"], "run": f"mkdir -p out; {first}"},
        {
            "name": "b",
            "inputs": ["out/a.txt"],
            "outputs": ["out/b.txt"],
            "run": "mkdir -p out; (cat out/a.txt; echo b) > out/b.txt",
        },
        {
            "name": "c",
            "inputs": ["out/b.txt"],
            "outputs": ["out/c.txt"],
            "run": "mkdir -p out; (cat out/b.txt; echo c) > out/c.txt",
        },
    ]


def _project(tmp_path: Path, host: dict[str, Any], tasks: list[dict[str, Any]]) -> Path:
    """A tasks file whose tasks all run on `host`."""
    return write(
        tmp_path / "project" / "tasks.yml",
        json.dumps({"hosts": {"h": host}, "defaults": {"host": "h"}, "tasks": tasks}),
    )


def _chain_project(tmp_path: Path, host: dict[str, Any], fail_first: bool = False) -> Path:
    return _project(tmp_path, host, _chain(fail_first))


def _records(cli, project: Path) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {r["name"]: r for r in json.loads(cli("status", "--json", "-C", project).out)}


@pytest.mark.parametrize("host", ["slurm", "pbs", "sge", "lsf"])
def test_a_detached_chain_completes_with_the_client_gone(
    cli, tmp_path: Path, cluster_hosts, remote, host: str
) -> None:  # type: ignore[no-untyped-def]
    tasks = _chain_project(tmp_path, cluster_hosts[host])
    project = tasks.parent
    result = cli("apply", tasks, "--detach")
    assert result.code == 0, result.err
    submitted = {r["name"]: r for r in _records_without_refresh(project)}
    assert all(submitted[n]["attempts"][0]["job_id"] for n in "abc"), submitted
    c_dir = submitted["c"]["run_dir"]
    wait_until(
        lambda: remote(host, f"cat {c_dir}/out/c.txt 2>/dev/null").stdout == "a\nb\nc\n",
        timeout=90,
        what="the last step's output on the host, with no client running",
    )
    done = cli("apply", tasks)
    assert done.code == 0, done.err
    assert (project / "out" / "c.txt").read_text() == "a\nb\nc\n"
    assert all(r["state"] == "completed" for r in _records(cli, project).values())


@pytest.mark.parametrize("host", ["slurm", "pbs", "sge", "lsf"])
def test_a_detached_chain_whose_first_step_fails_leaves_the_queue(
    cli, tmp_path: Path, cluster_hosts, remote, host: str
) -> None:  # type: ignore[no-untyped-def]
    tasks = _chain_project(tmp_path, cluster_hosts[host], fail_first=True)
    project = tasks.parent
    assert cli("apply", tasks, "--detach").code in (0, 1)  # 1: it saw the first step fail
    jobs = {r["name"]: r["attempts"][0]["job_id"] for r in _records_without_refresh(project)}
    queue = {
        "slurm": "squeue -h -o %i",
        "pbs": "qstat 2>/dev/null | awk 'NR > 2 {print $1}'",
        "sge": "qstat 2>/dev/null | awk 'NR > 2 {print $1}'",
        "lsf": "bjobs -noheader -o jobid 2>/dev/null",
    }[host]

    def left_the_queue() -> bool:
        listed = remote(host, queue).stdout.split()
        return not any(jobs[name] in listed for name in "bc")

    wait_until(left_the_queue, timeout=90, what="the dependent jobs to end")
    records = _records(cli, project)
    assert records["a"]["state"] == "failed"
    for name in "bc":
        assert records[name]["state"] == "blocked", records[name]
        assert records[name]["reason"] == "blocked: upstream task 'a' failed", records[name]
    fixed = write(tasks, json.dumps(json.loads(tasks.read_text()) | {"tasks": _chain()}))
    again = cli("apply", fixed)
    assert again.code == 0, again.err
    assert (project / "out" / "c.txt").read_text() == "a\nb\nc\n"


def _records_without_refresh(project: Path) -> list[dict[str, Any]]:
    """The store as it is, not polling the host (status would)."""
    store = Store(project / ".submitter")
    return [
        {
            "name": r.name,
            "run_dir": r.run_dir,
            "task_dir": r.task_dir,
            "attempts": [{"job_id": a.job_id} for a in store.attempts(r.id)],
        }
        for r in store.tasks()
    ]


def _chain_over_packed() -> list[dict[str, Any]]:
    """gen-1..4 packed into one job, gen-2 exits 5; step-I reads gen-I's output."""
    return [
        {
            "name": "gen-{{ i }}",
            "for_each": {"i": [1, 2, 3, 4]},
            "resources": {"walltime": 60},
            "outputs": ["g/{{ i }}.txt"],
            "run": "sleep 2; mkdir -p g; echo {{ i }} > g/{{ i }}.txt; [ {{ i }} != 2 ] || exit 5",
        },
        {
            "name": "step-{{ i }}",
            "for_each": {"i": [1, 2, 3, 4]},
            "resources": {"walltime": 60},
            "inputs": ["g/{{ i }}.txt"],
            "outputs": ["s/{{ i }}.txt"],
            "run": "mkdir -p s; cat g/{{ i }}.txt > s/{{ i }}.txt",
        },
    ]


@pytest.mark.parametrize("host", ["slurm", "pbs", "sge", "lsf"])
def test_a_detached_chain_over_a_packed_group_waits_for_each_task_not_its_neighbours(
    cli, tmp_path: Path, cluster_hosts, remote, host: str
) -> None:  # type: ignore[no-untyped-def]
    """Each step depends on its own upstream task, not on the job it shared: steps 1, 3 and
    4 complete with no client running, step 2 is blocked naming gen-2."""
    tasks = _project(tmp_path, cluster_hosts[host], _chain_over_packed())
    project = tasks.parent
    assert cli("apply", tasks, "--detach").code in (0, 1)
    submitted = {r["name"]: r for r in _records_without_refresh(project)}
    jobs = {n: r["attempts"][-1]["job_id"] for n, r in submitted.items()}
    assert len({scheduler_job(j) for j in jobs.values()}) == 2, jobs  # one packed job each
    steps = {i: submitted[f"step-{i}"] for i in (1, 2, 3, 4)}

    def ended_on_the_host() -> bool:
        found = remote(
            host,
            " ; ".join(f"cat {steps[i]['task_dir']}/status 2>/dev/null; echo" for i in steps),
        ).stdout
        return found.count('"state": "completed"') == 3 and '"state": "blocked"' in found

    wait_until(ended_on_the_host, timeout=120, what="the steps to end with no client running")
    for i in (1, 3, 4):
        made = remote(host, f"cat {steps[i]['run_dir']}/s/{i}.txt").stdout
        assert made == f"{i}\n", (i, made)
    records = _records(cli, project)
    assert records["gen-2"]["state"] == "failed"
    assert records["step-2"]["state"] == "blocked", records["step-2"]
    assert records["step-2"]["reason"] == "blocked: upstream task 'gen-2' failed"
    for i in (1, 3, 4):
        assert records[f"step-{i}"]["state"] == "completed", records[f"step-{i}"]
        assert (project / "s" / f"{i}.txt").read_text() == f"{i}\n"


def _glob_into_directory() -> list[dict[str, Any]]:
    return [
        {
            "name": "split",
            "outputs": ["parts/*.txt"],
            "run": "sleep 1; mkdir -p parts; for i in 1 2 3; do echo $i > parts/$i.txt; done",
        },
        {
            "name": "useall",
            "inputs": ["parts/"],
            "outputs": ["all.txt"],
            "run": "cat parts/*.txt > all.txt",
        },
    ]


@pytest.mark.parametrize(
    ("host", "detach"), [("ssh", False), ("slurm", False), ("slurm", True), ("pbs", True)]
)
def test_glob_outputs_feed_a_directory_input(
    cli, tmp_path: Path, cluster_hosts, host: str, detach: bool
) -> None:  # type: ignore[no-untyped-def]
    """As on the local host: the directory the upstream pattern's matches lie in is the
    downstream task's input, linked on the host."""
    tasks = _project(tmp_path, cluster_hosts[host], _glob_into_directory())
    project = tasks.parent
    first = cli("apply", tasks, *(["--detach"] if detach else []))
    assert first.code == 0, first.err
    if detach:
        wait_until(
            lambda: all(r["state"] in FINAL for r in _records(cli, project).values()),
            timeout=90,
            what="both tasks to end",
        )
    records = _records(cli, project)
    assert {n: r["state"] for n, r in records.items()} == {
        "split": "completed",
        "useall": "completed",
    }, records
    assert (project / "all.txt").read_text() == "1\n2\n3\n"
