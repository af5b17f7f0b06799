"""The local host's wake-up on a task's end: a hint to poll now, reported once."""

from __future__ import annotations

import subprocess
import time

import pytest

from submitter.exits import ExitWatch


@pytest.fixture
def watch() -> ExitWatch[str]:
    exits: ExitWatch[str] = ExitWatch()
    if not exits.supported:
        pytest.skip("no pidfd on this system")
    return exits


def test_a_watched_process_that_ends_wakes_the_wait_at_once(watch: ExitWatch[str]) -> None:
    process = subprocess.Popen(["sleep", "0.2"])
    watch.watch("task", process.pid)
    began = time.monotonic()
    assert watch.wait(5.0) == ["task"]
    assert time.monotonic() - began < 2.0
    process.wait()
    assert watch.wait(0.05) == []  # reported once, not again
    watch.watch("task", process.pid)  # nor watched again under the same key
    assert watch.keys() == {"task"}
    watch.close()


def test_the_wait_sleeps_its_time_when_nothing_ends(watch: ExitWatch[str]) -> None:
    process = subprocess.Popen(["sleep", "5"])
    try:
        watch.watch("task", process.pid)
        began = time.monotonic()
        assert watch.wait(0.1) == []
        assert time.monotonic() - began >= 0.09
        watch.forget("task")
        assert watch.keys() == set()
    finally:
        process.kill()
        process.wait()
        watch.close()


def test_a_process_already_gone_is_left_to_the_poll(watch: ExitWatch[str]) -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    watch.watch("gone", process.pid)
    assert watch.wait(0.01) == []
    watch.close()
