"""A pool member's job id, what its start answers, and how a poll judges it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from submitter.grouping import Group, Packing, size_pool, whole_pool_jobs
from submitter.hostops import HostOps, PollResult, Running, TaskReport
from submitter.poll_verdict import judge_ending, stuck_reasons
from submitter.run_state import Ending, Tracked
from submitter.schedulers.base import (
    JobState,
    JobStatus,
    is_packed,
    pool_id,
    pool_jobs,
    scheduler_jobs,
)
from submitter.schedulers.slurm import Slurm
from submitter.verdict import CANNOT_START


@pytest.mark.parametrize(
    ("jobs", "written"),
    [
        (["101", "102", "103", "109"], "pool:101..103,109/7"),
        (["5"], "pool:5/7"),
        (["7.pbs", "8.pbs"], "pool:7.pbs,8.pbs/7"),
    ],
)
def test_a_pool_member_is_known_by_its_pools_jobs_and_its_index(
    jobs: list[str], written: str
) -> None:
    assert pool_id(jobs, 7) == written
    assert pool_jobs(written) == jobs == scheduler_jobs(written)
    assert is_packed(written) and pool_jobs("123/4") is None and scheduler_jobs("123/4") == ["123"]


def test_the_idle_cpus_of_every_partition_are_free() -> None:
    assert Slurm().parse_free("10/6/0/16\n0/4/0/4\n") == 10
    assert Slurm().parse_free("") is None


def test_a_pool_start_answers_each_member_with_all_the_pools_jobs() -> None:
    ops = HostOps.for_kind("slurm")
    started = ops.parse_start("START\tt1\tpool\t3\t41\x1f42\x1f43\n")
    assert started["t1"].job_id == "pool:41..43/3"


def _seen(status: dict[str, Any] | None, queue: dict[str, JobStatus], since: float | None = None):  # type: ignore[no-untyped-def]
    tracked = Tracked("t", "t", "h", "/w/t", [], state="queued", job_id="pool:41..42/0")
    tracked.waiting_since = since  # its end awaited since then
    poll = PollResult(queue, None, {"t": TaskReport(None, status)}, {})
    return judge_ending(tracked, poll, Slurm(), None, 100.0)


def test_a_pool_member_no_job_took_waits_while_a_job_of_its_pool_may_take_it() -> None:
    running = JobStatus(JobState.RUNNING, "R")
    done = JobStatus(JobState.DONE, "CD")
    assert _seen(None, {"41": running, "42": done}).state == "queued"
    assert _seen(None, {"41": JobStatus(JobState.QUEUED, "PD")}).state == "queued"
    gone = _seen(None, {"41": done})
    assert gone.unstarted and gone.ending is None, "never ran: back to pending"


def test_a_pool_member_a_job_took_is_judged_by_that_job() -> None:
    claimed = {"state": "running", "job_id": "42", "reason": "claimed"}
    running = JobStatus(JobState.RUNNING, "R")
    assert _seen(claimed, {"41": JobStatus(JobState.DONE, "CD"), "42": running}).state == "running"
    lost = _seen(claimed, {"41": running})  # its job left without a final status
    assert not lost.unstarted and lost.waiting_since == 100.0, "lost after the grace"


def test_a_status_an_earlier_attempts_job_wrote_is_not_the_pool_members() -> None:
    """A job of the attempt before (its node failed, then thawed) may still write the
    member's status: neither its end nor its claim is this attempt's."""
    for state in ("completed", "killed", "running"):
        stale = {"state": state, "exit_code": 0, "job_id": "7", "end": "", "reason": ""}
        waiting = _seen(stale, {"41": JobStatus(JobState.RUNNING, "R")})
        assert (waiting.state, waiting.ending) == ("queued", None), state
        assert _seen(stale, {}).unstarted, "no job of its pool left: it never ran under them"


def test_a_pool_member_over_without_completing_names_its_pools_jobs_the_queue_lost() -> None:
    """Those jobs get their `over` mark at the next start: should one come back (its node
    thawed), it takes no member that starts again elsewhere."""
    assert _seen(None, {"41": JobStatus(JobState.NODE_FAIL, "NF")}).over == ("41", "42")
    running = {"state": "running", "job_id": "42", "start": "2026-12-07T10:00:00Z", "end": ""}
    lost = {"41": JobStatus(JobState.RUNNING, "R"), "42": JobStatus(JobState.NODE_FAIL, "NF")}
    failed = _seen(running, lost, since=0.0)
    assert failed.ending is not None and failed.over == ("42",), failed
    done = {"state": "completed", "exit_code": 0, "job_id": "42", "end": "", "reason": ""}
    assert _seen(done, {"42": JobStatus(JobState.DONE, "CD")}).over == (), "completed"
    assert _seen(running, {"42": JobStatus(JobState.RUNNING, "R")}).over == (), "running on"


def test_a_start_marks_the_pool_jobs_that_are_over_before_it_starts_anything() -> None:
    script = HostOps("slurm", Slurm()).start_script(
        [Running("t", "/w/t", "a1", None)], (), ["/w/.groups/.over/7", "/w/.groups/.over/8"]
    )
    marks = "mkdir -p -- /w/.groups/.over && : >/w/.groups/.over/7 >/w/.groups/.over/8\n"
    assert marks in script and script.index(marks) < script.index("submitter_submit a1")


def _group(size: int, width: int, per_job: int, rounds: int) -> Group:
    """A pool of `size` one-core members (size_pool reads nothing else of them)."""
    member = SimpleNamespace(spec=SimpleNamespace(resources=SimpleNamespace(cores=1)))
    return Group([member] * size, Packing(width, per_job, rounds))  # type: ignore[list-item]


def test_a_detached_pool_gets_the_jobs_its_declared_walltimes_need() -> None:
    group = _group(30, 4, 16, 4)  # 4 lanes a job, 4 rounds: 16 tasks a job at most
    assert size_pool(group, 2, 100).jobs == 2, "attached: as many as the free cores"
    detached = size_pool(group, 2, 100, whole=True)  # 2 one-lane jobs cover 8: 8 jobs
    assert (detached.jobs, detached.packing) == (8, Packing(1, 16, 4))
    narrow = size_pool(group, 2, 3, whole=True)  # then as wide as a job may be
    assert (narrow.jobs, narrow.packing) == (whole_pool_jobs(group), Packing(4, 16, 4))
    assert narrow.jobs == 2


def test_a_pool_job_a_member_names_is_not_spare_though_the_queue_said_it_waits() -> None:
    """The queue is asked before the status files are read: a job seen waiting may have
    started and taken a member in between. Only a waiting job no member names is spare."""
    from submitter.poll_verdict import spare_pool_jobs

    members = [
        Tracked(f"t{i}", f"t{i}", "h", f"/w/t{i}", [], state="queued", job_id=f"pool:41..42/{i}")
        for i in range(2)
    ]
    waiting = JobStatus(JobState.QUEUED, "PD")
    statuses = {
        "t0": {"state": "running", "job_id": "41"},
        "t1": {"state": "running", "job_id": "42"},
    }
    reports = {t: TaskReport(None, status) for t, status in statuses.items()}
    poll = PollResult({"41": JobStatus(JobState.RUNNING, "R"), "42": waiting}, None, reports, {})
    assert spare_pool_jobs(members, poll, Slurm()) == []
    statuses["t1"]["job_id"] = "41"  # job 41 took both: 42 would find nothing
    reports = {t: TaskReport(None, status) for t, status in statuses.items()}
    poll = PollResult({"41": JobStatus(JobState.RUNNING, "R"), "42": waiting}, None, reports, {})
    assert spare_pool_jobs(members, poll, Slurm()) == ["42"]


def test_a_task_whose_end_the_poll_saw_is_no_longer_counted_as_unable_to_start() -> None:
    """The progress line's `3 queued: cannot start: ...` was left from the last poll once
    those tasks had run and ended in it."""
    reason = f"{CANNOT_START}ReqNodeNotAvail"
    waiting, ended = (
        Tracked(name, name, "h", f"/w/{name}", [], state="queued", reason=reason)
        for name in ("a", "b")
    )
    finished = Ending(ended, "completed", "", {})
    assert stuck_reasons([waiting, ended], [finished]) == {reason: 1}
