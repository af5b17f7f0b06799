"""A poll that reads the status files only, the scheduler not asked: its script, its parse,
and what it means for each task (no job is "gone" for want of the scheduler's view)."""

from __future__ import annotations

from typing import Any

import pytest

from submitter.hostops import HostOps, PollResult, Running, TaskReport
from submitter.poll_verdict import judge_ending
from submitter.run_state import Tracked
from submitter.schedulers.registry import NAMES, batch_scheduler
from submitter.states import Cause
from submitter.verdict import CANNOT_START

STUCK = f"{CANNOT_START}PartitionConfig"
WATCHED = [Running("t1", "/w/t1", "a1", "41"), Running("t2", "/w/t2", "a2", None)]


@pytest.mark.parametrize("scheduler", NAMES)
def test_the_status_only_script_asks_the_scheduler_nothing(scheduler: str) -> None:
    ops = HostOps.for_kind(scheduler)
    full = ops.poll_script(WATCHED, free=True)
    script = ops.poll_script(WATCHED, free=True, scheduler=False)
    assert "SCHED-BEGIN" in full and "SCHED-BEGIN" not in script
    assert "FREE-BEGIN" not in script
    assert "submitter_report t1 /w/t1 a1 ''" in script
    assert "submitter_resolve a2 t2 /w/t2" in script, "unanswered starts are still settled"


def test_a_status_only_answer_is_neither_no_scheduler_nor_a_failed_query() -> None:
    poll = HostOps.for_kind("slurm").parse_poll(
        'TASK\tt1\t-\t{"state": "running"}\n', status_only=True
    )
    assert poll.status_only and poll.scheduler is None and poll.scheduler_error is None
    assert poll.tasks["t1"].status == {"state": "running"}


def _tracked(state: str = "queued", reason: str = "", job: str = "41") -> Tracked:
    tracked = Tracked("t1", "t1", "fake", "/w/t1", [], state=state, reason=reason)
    tracked.job_id = job
    return tracked


def _seen(tracked: Tracked, status: dict[str, Any] | None):  # type: ignore[no-untyped-def]
    poll = PollResult(None, None, {"t1": TaskReport(None, status)}, {}, status_only=True)
    return judge_ending(tracked, poll, batch_scheduler("slurm"), None, 100.0)


def test_no_status_file_keeps_the_schedulers_last_word() -> None:
    seen = _seen(_tracked(reason=STUCK), None)
    assert seen.state is None and seen.ending is None, "not moved, not ended"
    assert not seen.vanished and seen.waiting_since is None, "not gone from the queue"


def test_a_pool_member_no_job_took_is_not_taken_for_one_whose_jobs_left() -> None:
    seen = _seen(_tracked(job="pool:41..42/3"), None)
    assert not seen.unstarted and seen.ending is None


def test_a_status_file_that_says_running_moves_a_queued_task_to_running() -> None:
    seen = _seen(_tracked(reason=STUCK), {"state": "running"})
    assert (seen.state, seen.reason, seen.ending) == ("running", "", None)


def test_a_completed_status_file_ends_the_task() -> None:
    seen = _seen(_tracked("running"), {"state": "completed", "exit_code": 0, "reason": ""})
    assert seen.ending is not None and seen.ending.state == "completed"


def test_a_walltime_kill_by_the_wrapper_ends_the_task_as_a_timeout() -> None:
    status = {"state": "failed", "exit_code": 143, "reason": "walltime exceeded: killed after 5s"}
    seen = _seen(_tracked("running"), status)
    assert seen.ending is not None and seen.ending.cause is Cause.TIMEOUT


@pytest.mark.parametrize(
    "status",
    [
        {"state": "failed", "exit_code": 137, "reason": "exit code 137"},  # out of memory?
        {"state": "killed", "exit_code": 143, "reason": "killed by SIGTERM"},  # preempted?
    ],
    ids=["exit-code", "signal"],
)
def test_a_failure_the_scheduler_may_explain_waits_for_its_word(status: dict[str, Any]) -> None:
    seen = _seen(_tracked("running"), status)
    assert seen.ending is None and seen.confirm
