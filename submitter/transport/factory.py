"""Pick the transport for a host: this machine, or ssh."""

from __future__ import annotations

from submitter.config.models import HostConfig
from submitter.errors import HostError
from submitter.transport.base import Transport
from submitter.transport.local import LocalTransport


def connect(name: str, config: HostConfig) -> Transport:
    if config.kind == "local":
        return LocalTransport()
    if not config.address:
        raise HostError(f"host '{name}' has no 'address' to connect to")
    from submitter.transport.ssh import SshTransport

    return SshTransport(name, config)
