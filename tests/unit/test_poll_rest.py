"""A remote host is left alone after each poll for some multiple of what the poll took."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from submitter.polling import POLL_REST, poll_in_turn
from submitter.run_state import HostRun
from submitter.session import Polled


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _session(clock: _Clock, took: float, remote: bool) -> SimpleNamespace:
    def poll(now: float, *, ask_scheduler: bool) -> Polled:
        clock.now += took  # reading thousands of status files
        return Polled(moved=True)  # a task started: the next poll would come at once

    return SimpleNamespace(
        run=HostRun(max_running=4, poll_interval=30.0),
        ops=SimpleNamespace(batch=None),
        config=SimpleNamespace(vars={}),
        ctx=SimpleNamespace(seams=SimpleNamespace(clock=clock)),
        first_poll=0.25,
        change_poll=1.0,
        rests_after_polls=remote,
        poll=poll,
        retrieve=lambda endings: None,
    )


@pytest.mark.parametrize("remote", [True, False])
def test_a_long_poll_is_followed_by_a_rest_on_a_remote_host_only(remote: bool) -> None:
    clock = _Clock()
    session = _session(clock, 2.0, remote)
    poll_in_turn(session, clock.now)  # type: ignore[arg-type]
    wait = session.run.next_poll - clock.now
    if remote:
        assert wait == pytest.approx(POLL_REST * 2.0)
    else:
        assert wait <= 1.0


def test_a_quick_poll_keeps_the_quick_cadence() -> None:
    clock = _Clock()
    session = _session(clock, 0.01, True)
    poll_in_turn(session, clock.now)  # type: ignore[arg-type]
    assert session.run.next_poll - clock.now <= 1.0
