"""Starting a local program through plumbum: with the environment as it is now, in a session
of its own, and never for longer than its deadline."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, cast

from plumbum import local
from plumbum.commands import CommandNotFound, ProcessTimedOut
from plumbum.machines import LocalCommand

from submitter.transport.base import CommandResult

# How long a killed command's pipes are drained before they are given up on.
REAP_GRACE = 5.0

Start = Callable[..., Any]
"""A plumbum popen (a command's, or SshMachine's): Popen keyword arguments in, a process out."""


@contextlib.contextmanager
def current_environment() -> Iterator[None]:
    """plumbum's `local.env` is a copy of os.environ taken when plumbum was imported; what it
    starts must see the environment as it is now (PATH, SSH_AUTH_SOCK, SSH_ASKPASS, ...)."""
    with local.env():
        local.env.clear()
        local.env.update(os.environ)
        yield


def program(name: str) -> LocalCommand:
    """A local program, looked up on the current PATH; raises plumbum's CommandNotFound.

    Looked up with shutil.which, not local.which: that one would also accept `my-tool` or
    `my.tool` for `my_tool`.
    """
    path = shutil.which(name)
    if path is None:
        raise CommandNotFound(name, os.environ.get("PATH", ""))
    return local[path]


def execute(
    start: Start,
    *,
    stdin: str | None = None,
    timeout: float | None = None,
    own_session: bool = True,
    stdin_file: bool = False,
) -> CommandResult:
    """Run a program to its end: `stdin` on its standard input (nothing when None), its exit
    code and output returned whatever the code; plumbum's ProcessTimedOut after `timeout`.

    In its own session (own_session) a Ctrl-C or hang-up sent to the terminal's process group
    cannot stop it half-way, and at the deadline the whole session is killed: killing only
    the leader would leave its children holding the output pipes, and the wait would go on.

    With `stdin_file`, standard input is a temporary file rather than a pipe: bash reads a
    script from a pipe one byte at a time (so as not to take its commands' input), from a
    file in blocks.
    """
    with contextlib.ExitStack() as stack:
        source: Any = subprocess.PIPE
        data: bytes | None = (stdin or "").encode()
        if stdin_file:
            source = stack.enter_context(tempfile.TemporaryFile())
            source.write(data)
            source.seek(0)
            data = None
        with current_environment():
            # plumbum types its popen as text; these pipes carry bytes (no text=True).
            process = cast(
                "subprocess.Popen[bytes]",
                start(
                    stdin=source,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    new_session=own_session,
                ),
            )
    try:
        out, err = process.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process, own_session)
        raise ProcessTimedOut(f"did not finish within {timeout:g} s", process.args) from None
    return CommandResult(process.returncode, _text(out), _text(err))


def start_streaming(start: Start) -> subprocess.Popen[bytes]:
    """Start a program whose output is read as it comes: pipes on all three streams, in a
    session of its own (a Ctrl-C at the terminal does not reach it; its caller ends it)."""
    with current_environment():
        return cast(
            "subprocess.Popen[bytes]",
            start(
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                new_session=True,
            ),
        )


def _kill(process: subprocess.Popen[bytes], own_session: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if own_session:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    try:
        process.communicate(timeout=REAP_GRACE)
    except subprocess.TimeoutExpired:
        # Something that left the session still holds the pipes: stop reading them.
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.wait()


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")
