"""One `apply` at a time per project: two would submit the same pending tasks twice."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from submitter.errors import UsageError

LOCK_NAME = "apply.lock"


@contextmanager
def apply_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_NAME
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise UsageError(
                f"another `submitter apply` (pid {holder}) is running in {state_dir.parent}; "
                "wait for it, or use `submitter status` to watch the same tasks"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apply_running(state_dir: Path) -> bool:
    """Whether an `apply` holds the project's lock now (its pending tasks may still start)."""
    path = state_dir / LOCK_NAME
    try:
        handle = path.open("r")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
