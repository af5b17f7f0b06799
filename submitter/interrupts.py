"""Signals that stop the client: Ctrl-C, a closed terminal, `kill`. Each ends `apply` as
Ctrl-C does, and none of them can cut a start in two: while jobs are being started and their
ids stored, they are held and acted on once the step is done.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The client was asked to stop by a signal; the exit code is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP stop the client as Ctrl-C does, with the same clean-up."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOPPING_SIGNALS:
            signal.signal(signum, _raise)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, remember) for signum in STOPPING_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise Interrupted(received[0])
