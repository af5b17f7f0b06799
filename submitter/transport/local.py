"""The local transport: commands run through plumbum.local, files copied on this machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from plumbum.commands import CommandNotFound, ProcessTimedOut

from submitter.errors import HostError
from submitter.paths import Transfer
from submitter.transport.base import COMMAND_TIMEOUT, CommandResult, TransportStats
from submitter.transport.process import execute, program, start_streaming


class LocalTransport:
    name = "local"

    def __init__(self) -> None:
        self.stats = TransportStats()

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout: float | None = COMMAND_TIMEOUT,
        stdin_file: bool = False,
    ) -> CommandResult:
        self.stats.commands += 1
        try:
            command = program(argv[0]).bound_command(*argv[1:])
            return execute(command.popen, stdin=stdin, timeout=timeout, stdin_file=stdin_file)
        except CommandNotFound:
            return CommandResult(127, "", f"{argv[0]}: command not found")
        except PermissionError as exc:
            return CommandResult(126, "", f"{argv[0]}: {exc.strerror}")
        except ProcessTimedOut:
            raise HostError(f"local command timed out after {timeout:g} s: {argv[0]}") from None

    def run_script(self, script: str, *, timeout: float | None = COMMAND_TIMEOUT) -> CommandResult:
        return self.run(["bash", "-s"], stdin=script, timeout=timeout, stdin_file=True)

    def stream(self, script: str, args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        self.stats.commands += 1
        return start_streaming(program("bash").bound_command("-c", script, "bash", *args).popen)

    def put(self, transfers: Sequence[Transfer]) -> None:
        if not transfers:
            return
        self.stats.transfers += 1
        for transfer in transfers:
            _link(transfer.local, Path(transfer.remote))
            self.stats.files += 1

    def get(self, transfers: Sequence[Transfer]) -> list[Transfer]:
        if not transfers:
            return []
        self.stats.transfers += 1
        missing = []
        for transfer in transfers:
            if not _fetch(Path(transfer.remote), transfer.local):
                missing.append(transfer)
                continue
            self.stats.files += 1
        return missing

    def close(self) -> None:
        return None


def _link(source: Path, target: Path) -> None:
    """Inputs reach a task's directory on this machine as hard links: no bytes are copied,
    however large the input. Across filesystems (where no hard link can be made) they are
    copied. A task reads its inputs; one that rewrote an input in place would change the
    original too, as it would with the file in its project directory."""
    found = source.stat()
    try:
        if os.path.samestat(found, target.stat()):
            return  # the very file or directory (the run directory is the project's)
    except FileNotFoundError:
        pass
    if stat.S_ISDIR(found.st_mode):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True, copy_function=_link_file)
        return
    try:
        _link_file(str(source), str(target))
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_file(str(source), str(target))


def _link_file(source: str, target: str) -> None:
    """Raises FileNotFoundError when the target's directory does not exist."""
    with contextlib.suppress(OSError):  # not there yet; anything else: copy2 says
        os.unlink(target)
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError:
        shutil.copy2(source, target)


def _copy_file(source: str, target: str) -> None:
    """A file of a directory coming back; one that is the very file already (an input linked
    into the run directory, which the task rewrote in place) is left as it is."""
    with contextlib.suppress(shutil.SameFileError):
        shutil.copy2(source, target)


def _fetch(source: Path, target: Path) -> bool:
    """Bring a task's file back; False when it is not there. A file comes back as a hard link
    (no bytes copied), else as a copy: what comes back is final on the host side (a task's
    logs and outputs once it ended; a new attempt removes the old files before it starts,
    it does not write into them). A directory is copied, but for the files in it that are
    already the very file here."""
    try:
        found = source.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISDIR(found.st_mode):
        if source.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(
                source, target, dirs_exist_ok=True, symlinks=True, copy_function=_copy_file
            )
        return True
    try:
        if os.path.samestat(found, target.stat()):
            return True  # the very file (a path the host shares with this machine)
        target.unlink()
    except FileNotFoundError:
        pass
    try:
        os.link(source, target, follow_symlinks=True)
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(source, target)
    except OSError:
        shutil.copy2(source, target)
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target, follow_symlinks=True)
    except OSError:
        shutil.copy2(source, target)
