"""plumbum's exceptions become HostErrors that name the host and say what went wrong."""

from __future__ import annotations

import pytest
from plumbum.commands import CommandNotFound, ProcessExecutionError, ProcessTimedOut
from plumbum.machines.session import HostPublicKeyUnknown, SSHCommsError

from submitter.transport.failures import host_error

ADDRESS = "alice@login.example.org"


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (
            SSHCommsError(["ssh"], 255, "", "motd\nssh: Could not resolve hostname x\n"),
            "ssh to alice@login.example.org failed: motd; ssh: Could not resolve hostname x",
        ),
        (
            HostPublicKeyUnknown(["ssh"], 6, "", ""),
            "ssh to alice@login.example.org failed: its host key is not known",
        ),
        (
            SSHCommsError(["ssh"], -9, "", ""),
            "ssh to alice@login.example.org failed: no answer before the login timed out",
        ),
        (
            ProcessTimedOut("did not finish within 30 s", ["ssh"]),
            "ssh on alice@login.example.org: did not finish within 30 s",
        ),
        (
            CommandNotFound("ssh", "/usr/bin"),
            "ssh on alice@login.example.org: ssh is not installed on this machine",
        ),
        (
            ProcessExecutionError(["uname"], 2, "", "broken\n"),
            "ssh on alice@login.example.org failed: broken",
        ),
    ],
)
def test_each_failure_names_the_host(exc: Exception, said: str) -> None:
    assert str(host_error(exc, ADDRESS, "ssh")).startswith(said)
