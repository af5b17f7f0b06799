"""When a batch host is polled, and when its scheduler is asked (submitter.poll_timing)."""

from __future__ import annotations

import math

import pytest

from submitter.poll_timing import (
    Cadence,
    NextPoll,
    Queries,
    WatchedTask,
    after_poll,
    asks_scheduler,
    began,
    next_poll,
    query_due,
)

CADENCE = Cadence(first=0.25, longest=30.0, end_grace=15.0)
RUNNING = WatchedTask(began=100.0)  # no walltime: no end is ever due
QUEUED = WatchedTask()  # no status file yet


def test_the_first_poll_of_a_run_asks_the_scheduler() -> None:
    assert query_due([RUNNING], Queries(), CADENCE) == -math.inf


@pytest.mark.parametrize(
    "task",
    [
        WatchedTask(unseen=True),  # just submitted: a refusal is seen at once
        WatchedTask(awaiting_end=True),  # its grace period ends on the scheduler's word
        WatchedTask(began=100.0, cancelled=True),  # a kill waits for the end
    ],
    ids=["submitted", "grace", "cancelled"],
)
def test_some_tasks_have_every_poll_ask_the_scheduler(task: WatchedTask) -> None:
    assert asks_scheduler(101.0, [RUNNING, task], Queries(last=100.9), CADENCE)


def test_with_nothing_due_the_scheduler_is_asked_once_a_poll_interval() -> None:
    queries = Queries(last=100.0)
    assert query_due([RUNNING, QUEUED], queries, CADENCE) == 130.0
    assert not asks_scheduler(129.9, [RUNNING, QUEUED], queries, CADENCE)
    assert asks_scheduler(130.0, [RUNNING, QUEUED], queries, CADENCE)


def test_the_interval_is_the_hosts_even_when_short() -> None:
    short = Cadence(first=0.25, longest=1.0)
    assert query_due([QUEUED], Queries(last=100.0, ends_seen=True), short) == 101.0


def test_a_task_past_its_walltime_without_an_end_has_the_scheduler_asked() -> None:
    """Its node may have died: asked once its walltime and grace have passed, then at most
    every QUICK_CAP seconds until it ends."""
    late = WatchedTask(began=100.0, walltime=60.0)
    assert query_due([late], Queries(last=150.0), CADENCE) == 175.0  # 100 + 60 + 15
    assert query_due([late], Queries(last=176.0), CADENCE) == 186.0


def test_waiting_tasks_after_ends_have_the_scheduler_asked_sooner() -> None:
    """A pool's jobs may have left with members no job took: asked within QUICK_CAP."""
    queries = Queries(last=100.0, ends_seen=True)
    assert query_due([QUEUED], queries, CADENCE) == 110.0
    assert query_due([RUNNING], queries, CADENCE) == 130.0, "nothing waits"


def test_a_job_seen_running_without_a_status_file_has_the_scheduler_asked_sooner() -> None:
    task = WatchedTask(started_unwritten=True)
    assert query_due([task], Queries(last=100.0), CADENCE) == 110.0


def test_ends_held_for_the_schedulers_word_have_it_asked_soon() -> None:
    assert query_due([RUNNING], Queries(last=100.0, ends_to_confirm=True), CADENCE) == 102.0


def test_a_query_already_due_brings_the_next_poll_soon() -> None:
    """A status-only poll held back an end for the scheduler's word: the polls had backed
    off, the query comes at once."""
    held = Queries(last=100.0, ends_to_confirm=True)
    plan = next_poll(110.0, 100.0, [RUNNING], held, CADENCE, delay=20.0, changed=False)
    assert plan.at == 110.25


def test_polls_back_off_while_nothing_changes() -> None:
    plan = next_poll(
        110.0, 109.0, [RUNNING], Queries(last=100.0), CADENCE, delay=4.0, changed=False
    )
    assert plan == NextPoll(114.0, 6.0)
    plan = next_poll(
        110.0, 109.0, [RUNNING], Queries(last=100.0), CADENCE, delay=25.0, changed=False
    )
    assert plan == NextPoll(130.0, 30.0), "no later than the next query, and no longer wait"


def test_a_change_brings_polls_back_to_quick() -> None:
    plan = next_poll(
        110.0, 109.0, [RUNNING], Queries(last=100.0), CADENCE, delay=20.0, changed=True
    )
    assert plan == NextPoll(110.25, 0.375)


def test_an_end_due_before_the_next_poll_brings_the_poll_to_just_after_it() -> None:
    ending = WatchedTask(began=100.0, walltime=15.0)
    plan = next_poll(
        110.0, 108.0, [ending], Queries(last=109.0), CADENCE, delay=20.0, changed=False
    )
    assert plan.at == 115.25
    # the poll just after it: the end fell due since the poll before, so polls are quick again
    plan = next_poll(
        115.25, 110.0, [ending], Queries(last=109.0), CADENCE, delay=30.0, changed=False
    )
    assert plan == NextPoll(115.5, 0.375)


def test_an_end_far_off_does_not_bring_the_poll_sooner() -> None:
    far = WatchedTask(began=100.0, walltime=3600.0)
    plan = next_poll(110.0, 109.0, [far], Queries(last=100.0), CADENCE, delay=8.0, changed=False)
    assert plan.at == 118.0


def test_a_query_due_for_every_poll_does_not_make_polls_quick() -> None:
    """A grace period asks the scheduler at each poll, at the polls' own pace."""
    waiting = WatchedTask(awaiting_end=True)
    plan = next_poll(
        110.0, 109.0, [waiting], Queries(last=110.0), CADENCE, delay=8.0, changed=False
    )
    assert plan.at == 118.0


def test_a_task_began_when_its_status_file_says_but_never_after_it_was_seen_begun() -> None:
    assert began(95.0, None, 100.0) == 95.0
    assert began(105.0, None, 100.0) == 100.0, "the host's clock runs ahead"
    assert began(105.0, 100.0, 101.0) == 100.0
    assert began(None, None, 100.0) == 100.0


def test_a_query_forgets_what_the_polls_before_it_saw() -> None:
    seen = Queries(last=100.0, ends_seen=True, ends_to_confirm=True)
    assert after_poll(seen, 120.0, asked=True, ended=True, held=True) == Queries(last=120.0)


def test_a_status_only_poll_adds_what_it_saw() -> None:
    queries = after_poll(Queries(last=100.0), 101.0, asked=False, ended=True, held=False)
    assert queries == Queries(last=100.0, ends_seen=True)
    queries = after_poll(queries, 102.0, asked=False, ended=False, held=True)
    assert queries == Queries(last=100.0, ends_seen=True, ends_to_confirm=True)
