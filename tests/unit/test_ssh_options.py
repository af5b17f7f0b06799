"""The ssh command line: multiplexed, the user's config respected, host keys always checked."""

from __future__ import annotations

from submitter.config.models import HostConfig
from submitter.transport.ssh import SshTransport


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


def test_known_hosts_file_and_extra_options_are_passed_through() -> None:
    config = HostConfig(address="h", known_hosts="/k/known", ssh_options=["ProxyJump=bastion"])
    options = SshTransport("h", config).ssh_options()
    assert "UserKnownHostsFile=/k/known" in options
    assert "ProxyJump=bastion" in options


def test_scp_spells_the_port_with_a_capital_p() -> None:
    transport = SshTransport("h", HostConfig(address="h", port=2200))
    options = transport._scp_options()
    assert options[options.index("-P") + 1] == "2200" and "-p" not in options
