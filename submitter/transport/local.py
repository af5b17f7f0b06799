"""The local transport: commands run as subprocesses, files copied on this machine."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from submitter.errors import HostError
from submitter.paths import Transfer
from submitter.transport.base import CommandResult, TransportStats


class LocalTransport:
    name = "local"

    def __init__(self) -> None:
        self.stats = TransportStats()

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float | None = None
    ) -> CommandResult:
        self.stats.commands += 1
        try:
            done = subprocess.run(
                list(argv),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            return CommandResult(127, "", f"{argv[0]}: {exc.strerror}")
        except subprocess.TimeoutExpired:
            raise HostError(f"local command timed out after {timeout}s: {argv[0]}") from None
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def run_script(self, script: str, *, timeout: float | None = None) -> CommandResult:
        return self.run(["bash", "-s"], stdin=script, timeout=timeout)

    def put(self, transfers: Sequence[Transfer]) -> None:
        if not transfers:
            return
        self.stats.transfers += 1
        for transfer in transfers:
            _copy(transfer.local, Path(transfer.remote))
            self.stats.files += 1

    def get(self, transfers: Sequence[Transfer]) -> list[Transfer]:
        if not transfers:
            return []
        self.stats.transfers += 1
        missing = []
        for transfer in transfers:
            source = Path(transfer.remote)
            if not source.exists():
                missing.append(transfer)
                continue
            _copy(source, transfer.local)
            self.stats.files += 1
        return missing

    def close(self) -> None:
        return None


def _copy(source: Path, target: Path) -> None:
    if source.resolve() == target.resolve():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
    else:
        shutil.copy2(source, target)
