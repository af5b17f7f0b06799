"""The fake SLURM of tests/fakes/slurm as a host of the engine's, and a recording transport.

A `scheduler: slurm` host without an `address` is this machine (the local transport); these
tests wrap that transport to record every script it runs, so the engine, the step scripts
and the SLURM adapter all run for real, here.
Both reach the engine through its seams (`fake_seams`), handed to the CLI's `main`;
`python -m tests.fakes.slurm_host ARGS` is the CLI with the same seams, for tests that kill a
client process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from submitter.config.models import HostConfig
from submitter.paths import Transfer
from submitter.seams import REAL, Seams
from submitter.transport.base import CommandResult, Transport, TransportStats

FAKE_BIN = Path(__file__).parent / "slurm"
# The fake answers at once: the engine polls it this often (the config's least is 1 s),
# unless the host sets its own poll_interval.
POLL_INTERVAL = 0.2


def fast_poll(config: HostConfig) -> float:
    return float(config.poll_interval) if config.poll_interval else POLL_INTERVAL


@dataclass
class Recorded:
    """What the engine ran, per host: (kind, text) with kind `script` or `command`."""

    runs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def scripts(self, host: str) -> int:
        return sum(1 for kind, _ in self.runs.get(host, []) if kind == "script")


class RecordingTransport:
    """A transport that records each script and command before its inner transport runs it."""

    def __init__(self, inner: Transport, host: str, recorded: Recorded) -> None:
        self.inner, self.host, self.recorded = inner, host, recorded
        self.name = inner.name

    @property
    def stats(self) -> TransportStats:
        return self.inner.stats

    def _record(self, kind: str, text: str) -> None:
        self.recorded.runs.setdefault(self.host, []).append((kind, text))

    def run(self, argv: Sequence[str], **options: Any) -> CommandResult:
        self._record("command", " ".join(argv))
        return self.inner.run(argv, **options)

    def run_script(self, script: str, **options: Any) -> CommandResult:
        self._record("script", script)
        return self.inner.run_script(script, **options)

    def stream(self, script: str, args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        self._record("stream", script)
        return self.inner.stream(script, args)

    def put(self, transfers: Sequence[Transfer]) -> None:
        self.inner.put(transfers)

    def get(self, transfers: Sequence[Transfer]) -> list[Transfer]:
        return self.inner.get(transfers)

    def close(self) -> None:
        self.inner.close()


def fake_seams(recorded: Recorded) -> Seams:
    """The real transport factory's transports, recording what each runs, polled often."""

    def connect(name: str, config: HostConfig) -> Transport:
        return RecordingTransport(REAL.connect(name, config), name, recorded)

    return dataclasses.replace(REAL, connect=connect, poll_interval=fast_poll)


def kill_jobs(state_dir: Path) -> int:
    """End every process of this fake's state directory (runners, jobs and all they started:
    they carry FAKE_SLURM_DIR in their environment); no runner starts a job after this."""
    (state_dir / "stop").touch()
    marker = f"FAKE_SLURM_DIR={state_dir}".encode()
    killed = 0
    for _ in range(20):
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                if int(pid) != os.getpid() and marker in Path(
                    f"/proc/{pid}/environ"
                ).read_bytes().split(b"\0"):
                    found.append(int(pid))
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed += len(found)
        time.sleep(0.05)
    return killed


if __name__ == "__main__":
    from submitter.cli import main

    sys.exit(main(sys.argv[1:], fake_seams(Recorded())))
