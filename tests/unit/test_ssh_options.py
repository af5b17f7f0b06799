"""The ssh command line: multiplexed, the user's config respected, host keys always checked."""

from __future__ import annotations

import io

import pytest

from submitter.config.models import HostConfig
from submitter.errors import HostError
from submitter.transport.ssh import SshTransport


def _option_values(options: list[str]) -> dict[str, str]:
    values = [options[i + 1] for i, flag in enumerate(options) if flag == "-o"]
    return dict(value.split("=", 1) for value in values)


def test_one_multiplexed_connection_and_host_keys_checked() -> None:
    transport = SshTransport(
        "hpc", HostConfig(address="alice@login", port=2222, identity_file="~/.ssh/k")
    )
    options = transport.ssh_options()
    joined = " ".join(options)
    assert "ControlMaster=auto" in joined and f"ControlPath={transport.control_path}" in joined
    assert "StrictHostKeyChecking" not in joined and "UserKnownHostsFile" not in joined
    assert options[options.index("-p") + 1] == "2222"
    assert "~" not in options[options.index("-i") + 1]
    assert _option_values(options)["IdentitiesOnly"] == "yes"


def test_a_frozen_host_is_given_up_within_a_minute() -> None:
    values = _option_values(SshTransport("h", HostConfig(address="h")).ssh_options())
    silence = int(values["ServerAliveInterval"]) * (int(values["ServerAliveCountMax"]) + 1)
    assert silence + int(values["ConnectTimeout"]) <= 60


def test_known_hosts_file_and_extra_options_are_passed_through() -> None:
    config = HostConfig(address="h", known_hosts="/k/known", ssh_options=["ProxyJump=bastion"])
    options = SshTransport("h", config).ssh_options()
    assert "UserKnownHostsFile=/k/known" in options
    assert "ProxyJump=bastion" in options


def test_batch_mode_only_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = SshTransport("h", HostConfig(address="h"))
    monkeypatch.setattr("sys.stdin", io.StringIO())
    assert _option_values(transport.ssh_options())["BatchMode"] == "yes"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    assert "BatchMode" not in _option_values(transport.ssh_options())


def test_scp_spells_the_port_with_a_capital_p() -> None:
    transport = SshTransport("h", HostConfig(address="h", port=2200))
    options = transport._scp_options()
    assert options[options.index("-P") + 1] == "2200" and "-p" not in options


def test_an_address_that_ssh_would_read_as_an_option_is_refused() -> None:
    with pytest.raises(HostError, match="starts with '-'"):
        SshTransport("h", HostConfig(address="-oProxyCommand=touch /tmp/x"))
