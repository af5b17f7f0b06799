"""A batch host's poll removes the claim files of the starts the client has recorded, in one
rm; a process host's keeps them (its poll reads the wrapper's pid stamp there)."""

from __future__ import annotations

import pytest

from submitter import task_layout as files
from submitter.hostops import HostOps, Running, q
from submitter.schedulers.registry import NAMES

WATCHED = [Running("t1", "/w/t1", "a1", "41"), Running("t2", "/w/it's", "a2", "42")]


@pytest.mark.parametrize("scheduler", NAMES)
def test_a_batch_poll_removes_the_recorded_claims_in_one_rm(scheduler: str) -> None:
    ops = HostOps.for_kind(scheduler)
    plain = ops.poll_script(WATCHED)
    script = ops.poll_script(WATCHED, forget_claims=WATCHED)
    assert script.count("rm -f --") == plain.count("rm -f --") + 1
    for task in WATCHED:
        assert q(files.on_host(task.task_dir, files.attempt_file(task.attempt))) in script


@pytest.mark.parametrize("scheduler", NAMES)
def test_no_rm_when_no_claim_is_to_go(scheduler: str) -> None:
    ops = HostOps.for_kind(scheduler)
    assert ops.poll_script(WATCHED, forget_claims=()) == ops.poll_script(WATCHED)


@pytest.mark.parametrize("kind", ["local", "ssh"])
def test_a_process_hosts_poll_keeps_the_claims(kind: str) -> None:
    ops = HostOps.for_kind(kind)
    assert ops.poll_script(WATCHED, forget_claims=WATCHED) == ops.poll_script(WATCHED)
