"""plumbum's exceptions told as the project's HostError, naming the host that failed.

A remote command's non-zero exit is not among them: that is a CommandResult, for the caller
to judge. These are the cases where the host could not be asked at all.
"""

from __future__ import annotations

from plumbum.commands import CommandNotFound, ProcessExecutionError, ProcessTimedOut
from plumbum.machines.session import (
    HostPublicKeyUnknown,
    IncorrectLogin,
    ShellSessionError,
    SSHCommsChannel2Error,
    SSHCommsError,
)

from submitter.errors import HostError

# What reaching a host or starting a program can raise, for `except` clauses.
PLUMBUM_FAILURES: tuple[type[Exception], ...] = (
    ProcessExecutionError,  # SSHCommsError and its kinds are ProcessExecutionErrors
    ProcessTimedOut,
    CommandNotFound,
    ShellSessionError,
    EOFError,
    OSError,
)


def host_error(exc: Exception, address: str, doing: str) -> HostError:
    """`doing` says what was being done ("ssh", "copying files to the host", ...)."""
    if isinstance(exc, ProcessTimedOut):
        return HostError(f"{doing} on {address}: {exc.args[0]}")
    if isinstance(exc, CommandNotFound):
        return HostError(f"{doing} on {address}: {exc.program} is not installed on this machine")
    if isinstance(exc, SSHCommsError):
        return HostError(f"ssh to {address} failed: {_ssh_reason(exc)}")
    if isinstance(exc, ProcessExecutionError):
        detail = last_lines(exc.stderr) or f"exit code {exc.retcode}"
        return HostError(f"{doing} on {address} failed: {detail}")
    return HostError(f"{doing} on {address} failed: {exc}")


def _ssh_reason(exc: SSHCommsError) -> str:
    said = last_lines(exc.stderr)
    if said:
        return said
    if isinstance(exc, HostPublicKeyUnknown):
        return "its host key is not known (ssh to it once by hand to accept it)"
    if isinstance(exc, IncorrectLogin):
        return "the login was refused"
    if isinstance(exc, SSHCommsChannel2Error):
        return "no error channel: the host's login shell may not be a POSIX shell"
    if exc.retcode is None or (isinstance(exc.retcode, int) and exc.retcode < 0):
        return "no answer before the login timed out"
    return f"ssh exited with {exc.retcode} without saying why"


def last_lines(text: str | bytes, count: int = 3) -> str:
    """ssh's own complaint is at the end of its stderr, after any login banner."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[-count:])
