"""The ssh transport without a host: a stand-in `ssh` on PATH logs its arguments and runs the
remote command on this machine, so what SshMachine runs, and how often, can be read back."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plumbum.machines import SshMachine

from submitter.config.models import HostConfig
from submitter.errors import HostError
from submitter.transport.ssh import SshTransport

FAKE_SSH = r"""#!/bin/bash
printf '%q ' "$@" >> "$FAKE_SSH_LOG"; echo >> "$FAKE_SSH_LOG"
while [ $# -gt 0 ]; do
  case $1 in
    -O) echo "Exit request sent." >&2; exit 0 ;;
    -p|-i|-o) shift 2 ;;
    -T) shift ;;
    --) shift; break ;;
    -*) echo "fake ssh: unexpected option $1" >&2; exit 255 ;;
    *) break ;;
  esac
done
address=$1; shift
if [ -e "$FAKE_SSH_DOWN" ]; then
  echo "ssh: connect to host $address port 22: Connection refused" >&2; exit 255
fi
if [ -e "$FAKE_SSH_DOWN.silent" ]; then exit 255; fi
exec bash -c "$*"
"""


@pytest.fixture
def ssh_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Set after plumbum was imported: the transport must still find this `ssh`."""
    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "ssh"
    fake.write_text(FAKE_SSH)
    fake.chmod(0o755)
    log = tmp_path / "ssh.log"
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_LOG", str(log))
    monkeypatch.setenv("FAKE_SSH_DOWN", str(tmp_path / "down"))
    yield log


def _calls(log: Path) -> list[list[str]]:
    return [shlex.split(line) for line in log.read_text().splitlines()]


@pytest.fixture
def transport(ssh_log: Path) -> Iterator[SshTransport]:
    transport = SshTransport(
        "hpc", HostConfig(address="alice@hpc", port=2222, identity_file="/keys/id")
    )
    yield transport
    transport.close()


def test_the_session_and_every_command_use_the_same_options(
    transport: SshTransport, ssh_log: Path
) -> None:
    assert transport.run_script("echo one\n").stdout == "one\n"
    assert transport.run(["printf", "%s|", "a b", "$(no)"]).stdout == "a b|$(no)|"
    session, script, command = _calls(ssh_log)
    options = transport.ssh_options()
    assert session == [*options, "-T", "alice@hpc", "/bin/sh"], "SshMachine's own session"
    assert script == [*options, "--", "alice@hpc", "bash -s"], "the script went on stdin"
    assert command == [*options, "--", "alice@hpc", "printf '%s|' 'a b' '$(no)'"]


def test_one_connection_for_many_commands(transport: SshTransport) -> None:
    for n in range(4):
        assert transport.run_script(f"exit {n}\n").returncode == n, "an exit code is no error"
    assert transport.stats.connections == 1 and transport.stats.commands == 4


def test_a_lost_host_is_a_host_error_and_the_next_command_reconnects(
    transport: SshTransport, tmp_path: Path
) -> None:
    transport.run_script("true\n")
    (tmp_path / "down").touch()
    with pytest.raises(HostError, match=r"alice@hpc.*Connection refused"):
        transport.run_script("true\n")
    (tmp_path / "down").unlink()
    assert transport.run_script("echo back\n").stdout == "back\n"
    assert transport.stats.connections == 2


def test_a_connection_cut_without_a_word_says_so(transport: SshTransport, tmp_path: Path) -> None:
    transport.run_script("true\n")
    (tmp_path / "down.silent").touch()
    with pytest.raises(HostError, match=r"alice@hpc failed: the connection was closed"):
        transport.run_script("true\n")


def test_a_host_that_cannot_be_reached_at_all(ssh_log: Path, tmp_path: Path) -> None:
    (tmp_path / "down").touch()
    transport = SshTransport("hpc", HostConfig(address="alice@hpc"))
    with pytest.raises(HostError, match=r"ssh to alice@hpc failed: .*Connection refused"):
        transport.run_script("true\n")


def test_a_login_refused_before_its_shell_was_written_to_says_why(
    ssh_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh ended before plumbum wrote its first command to the shell: ssh's words, not the
    broken pipe the write ran into."""
    start = SshMachine.popen

    def ended(self: SshMachine, *args: Any, **kwargs: Any) -> Any:
        process = start(self, *args, **kwargs)
        process.wait()
        return process

    monkeypatch.setattr(SshMachine, "popen", ended)
    (tmp_path / "down").touch()
    transport = SshTransport("hpc", HostConfig(address="alice@hpc"))
    with pytest.raises(HostError, match=r"ssh to alice@hpc failed: .*Connection refused"):
        transport.run_script("true\n")


def test_a_command_past_its_deadline_is_a_host_error(transport: SshTransport) -> None:
    started = time.monotonic()
    with pytest.raises(HostError, match=r"alice@hpc did not finish within 0\.5 s"):
        transport.run_script("sleep 30\n", timeout=0.5)
    assert time.monotonic() - started < 10


def test_close_ends_the_session_and_the_master(transport: SshTransport, ssh_log: Path) -> None:
    transport.run_script("true\n")
    transport.control_path.touch()  # where a real master would have its socket
    try:
        transport.close()
    finally:
        transport.control_path.unlink(missing_ok=True)
    stop = _calls(ssh_log)[-1]
    assert stop == [*transport.ssh_options(), "-O", "exit", "--", "alice@hpc"]


def test_an_unreachable_address_fails_fast_and_names_the_address() -> None:
    """The real ssh client, against a port where nothing listens."""
    transport = SshTransport("nowhere", HostConfig(address="127.0.0.1", port=1))
    started = time.monotonic()
    with pytest.raises(HostError, match=r"127\.0\.0\.1") as raised:
        transport.run_script("true\n")
    transport.close()
    assert time.monotonic() - started < 10
    assert "refused" in str(raised.value)
