"""Golden step scripts: what a host is sent to start, poll and cancel a fixed small batch of
tasks, for every host of tests/golden/tasks.yml (each registered scheduler, its PBS flavours,
the ssh host) and the built-in local host: `<host>.start.sh`, `<host>.poll.sh`,
`<host>.cancel.sh`, and `remove.sh` (the same for every host). Pure: scripts are compared, not
run (tests/integration runs them). Regenerate as test_golden.py says."""

from __future__ import annotations

import pytest

from submitter.config.project import load_project
from submitter.hostops import ArrayStart, HostOps, Running
from tests.conftest import GOLDEN, matches_golden

STEP_SCRIPTS = ("start.sh", "poll.sh", "cancel.sh")
WORK = "/scratch/alice/submitter"
GROUPS = f"{WORK}/.groups"
# Every host of the golden tasks file; `local` is always one of them.
HOSTS = sorted(load_project(GOLDEN / "tasks.yml").hosts)


def ops_of(host: str) -> HostOps:
    config = load_project(GOLDEN / "tasks.yml").hosts[host].config
    return HostOps.for_kind(config.kind, config.pbs_flavor)


def task(name: str, job: str | None = None, after: tuple[str, ...] = ()) -> Running:
    return Running(name, f"{WORK}/{name}", f"{name}-attempt", job, after)


def job_ids(ops: HostOps) -> dict[str, str]:
    """What each task's start answered: on a batch host a job id, the members of one job array
    (its ids as the scheduler writes them) and of one pool; on a process host a pid."""
    if ops.batch is None:
        return {f"t{i}": str(4240 + i) for i in range(1, 8)}
    member = ops.batch.array_member
    return {
        "t1": "4241",
        "t2": "4242",
        "t3": member("4243", 0),
        "t4": member("4243", 1),
        "t5": "pool:4246..4248/0",
        "t6": "pool:4246..4248/1",
        "t7": "4245",
    }


def start_script(ops: HostOps) -> str:
    """Two single tasks, a job array of two, a pool of two taken by three jobs, and a task
    chained after the first single task and a member of the array (a process host starts the
    single ones)."""
    jobs = job_ids(ops)
    singles = [task("t1"), task("t2"), task("t7", after=(jobs["t1"], jobs["t3"]))]
    groups = [
        ArrayStart(f"{GROUPS}/g1", f"{GROUPS}/g1/array.sh", (task("t3"), task("t4")), "array"),
        ArrayStart(
            f"{GROUPS}/g2", f"{GROUPS}/g2/packed.sh", (task("t5"), task("t6")), "pool", jobs=3
        ),
    ]
    return ops.start_script(singles, groups if ops.batch is not None else ())


def poll_script(ops: HostOps) -> str:
    """Every task started but the second, whose start's answer was never read; with tasks
    pending, what is free is asked too. The first and the array's start were recorded since
    the last poll: their claims go (on a batch host)."""
    jobs = job_ids(ops)
    watched = [task(t, None if t == "t2" else job) for t, job in jobs.items()]
    recorded = [w for w in watched if w.task in ("t1", "t3", "t4")]
    return ops.poll_script(watched, free=True, forget_claims=recorded)


def cancel_script(ops: HostOps) -> str:
    """Every task, and the pool's jobs as a whole: none of its members goes on."""
    started = [task(t, job) for t, job in job_ids(ops).items()]
    return ops.cancel_script(started, ("4246", "4247", "4248") if ops.batch is not None else ())


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("step", STEP_SCRIPTS)
def test_step_script_matches_golden(host: str, step: str) -> None:
    build = {"start.sh": start_script, "poll.sh": poll_script, "cancel.sh": cancel_script}[step]
    matches_golden(f"{host}.{step}", build(ops_of(host)))


def test_remove_script_matches_golden() -> None:
    directories = [f"{WORK}/t{i}" for i in range(1, 8)]
    matches_golden("remove.sh", HostOps.remove_script(directories))
