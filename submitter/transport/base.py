"""The seam between the engine and a host: the engine never knows which transport it holds."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from submitter.paths import Transfer

# No command runs longer unless its caller says so: a hung scheduler command or filesystem
# must not hang `apply`. A silent host is noticed sooner, by the ssh keepalives.
COMMAND_TIMEOUT = 300.0


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class TransportStats:
    """Counted for the benchmark and `--json` output: how hard the host was asked."""

    connections: int = 0
    commands: int = 0
    transfers: int = 0  # copy operations (one rsync call counts once, whatever it moves)
    files: int = 0
    failures: list[str] = field(default_factory=list)


class Transport(Protocol):
    name: str
    stats: TransportStats

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout: float | None = COMMAND_TIMEOUT,
    ) -> CommandResult:
        """Run one command on the host; raise HostError only when the host cannot be reached
        or the command outlives `timeout` seconds (None: no limit)."""

    def run_script(self, script: str, *, timeout: float | None = COMMAND_TIMEOUT) -> CommandResult:
        """Run a bash script on the host (sent on standard input, never spliced into argv)."""

    def stream(self, script: str, args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        """Start a bash script (`args` its positional parameters) and hand back its process,
        to read its output as it comes. Its standard input is left open and unused: closing
        it tells the script to stop."""

    def put(self, transfers: Sequence[Transfer]) -> None:
        """Copy local files and directories to the host, all in one operation."""

    def get(self, transfers: Sequence[Transfer]) -> list[Transfer]:
        """Copy host files back in one operation; returns the transfers whose source was missing."""

    def close(self) -> None: ...
