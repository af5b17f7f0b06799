"""What the engine reaches the world through: a host's transport, the time, how often a host is
polled. The defaults are the real ones; tests hand the engine (or the CLI's `main`) fakes here
rather than patching module globals."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from submitter.config.models import HostConfig
from submitter.run_state import default_poll_interval
from submitter.transport.base import Transport
from submitter.transport.factory import connect


@dataclass(frozen=True)
class Seams:
    connect: Callable[[str, HostConfig], Transport] = connect  # (host name, config): transport
    clock: Callable[[], float] = time.time  # seconds since the epoch
    poll_interval: Callable[[HostConfig], float] = default_poll_interval  # seconds


REAL = Seams()  # this machine's clock, the real transports, each host's own poll interval
