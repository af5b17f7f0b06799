"""Building the objects a command keeps to its end (a hundred thousand tasks' definitions,
prepared tasks, records) without the cycle collector: left alone, it scans them again and
again as they pile up, a third of a re-apply's time, though they make no garbage cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived() -> Iterator[None]:
    """The collector paused while the block builds what stays; then what stays is left out
    of its later scans (gc.freeze), and it runs again. A garbage cycle made in the block
    stays too: blocks that make many, a run's loop, do not belong here. Nested: the outer
    block decides."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


@contextmanager
def until_done() -> Iterator[None]:
    """A command: what its blocks froze is let go when it ends, to the collector as any other
    object (a test runs many commands in one process)."""
    try:
        yield
    finally:
        gc.unfreeze()
