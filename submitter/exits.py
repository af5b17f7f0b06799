"""Knowing at once when a task's process on this machine ends, to free its slot then.

On the local host the engine knows each task's wrapper by its pid (the START answer). A
pidfd (Linux 5.3+, Python 3.9+) becomes readable when that process ends, whoever its parent
is: the engine waits on those instead of sleeping to the next poll, and polls as soon as one
ends. A pidfd is only a hint to poll now: the poll (status file, pid start stamp) still
decides, and the usual backoff polling goes on beside it, so a wrong or missing hint (a pid
already reused, no pidfd support) costs latency, never correctness. Where pidfds are not
available, waiting is plain sleeping.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

# Each watched process holds a file descriptor: beyond this many the rest are polled only.
MAX_WATCHED = 256

K = TypeVar("K", bound=Hashable)


class ExitWatch(Generic[K]):
    def __init__(self) -> None:
        self._poller = select.poll()
        self._fds: dict[K, int] = {}  # key -> pidfd
        self._keys: dict[int, K] = {}  # pidfd -> key
        self._seen: set[K] = set()  # watched once (open or already ended): not again
        self.supported = hasattr(os, "pidfd_open")

    def watch(self, key: K, pid: int) -> None:
        """Watch process `pid` under `key`, once per key."""
        if not self.supported or key in self._seen or len(self._fds) >= MAX_WATCHED:
            return
        self._seen.add(key)
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # already gone: the next poll sees it
        except OSError:
            self.supported = False  # kernel without pidfds (ENOSYS), or not allowed
            return
        self._fds[key] = fd
        self._keys[fd] = key
        self._poller.register(fd, select.POLLIN)

    def forget(self, key: K) -> None:
        """Stop watching `key` (its task left the watch list); it may be watched again."""
        self._seen.discard(key)
        self._close(key)

    def keys(self) -> set[K]:
        return set(self._seen)

    def wait(self, timeout: float, readable: Sequence[int] = ()) -> list[K]:
        """Sleep up to `timeout` seconds, less when a watched process ends or one of the
        `readable` file descriptors has something to read; the keys of the processes that
        ended (each reported once)."""
        if not self._fds and not readable:
            time.sleep(max(timeout, 0.0))
            return []
        for fd in readable:
            self._poller.register(fd, select.POLLIN)
        try:
            ready = self._poller.poll(max(timeout, 0.0) * 1000)
        finally:
            for fd in readable:
                self._poller.unregister(fd)
        ended = [self._keys[fd] for fd, _ in ready if fd in self._keys]
        for key in ended:
            self._close(key)  # an ended process stays readable: report it once
        return ended

    def close(self) -> None:
        for key in list(self._fds):
            self._close(key)
        self._seen.clear()

    def _close(self, key: K) -> None:
        fd = self._fds.pop(key, None)
        if fd is None:
            return
        self._keys.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self._poller.unregister(fd)
        os.close(fd)
