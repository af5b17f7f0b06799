"""Pick the transport for a host: this machine, or ssh.

How a host is reached and what runs its jobs are two questions: a batch host without an
`address` is this machine (submitter run on a cluster's login node, `sbatch` on PATH here).
"""

from __future__ import annotations

from submitter.config.models import HostConfig
from submitter.errors import HostError
from submitter.transport.base import Transport
from submitter.transport.local import LocalTransport


def connect(name: str, config: HostConfig) -> Transport:
    if config.kind == "local" or (not config.address and config.kind != "ssh"):
        return LocalTransport()
    if not config.address:
        raise HostError(f"host '{name}' has no 'address' to connect to")
    from submitter.transport.ssh import SshTransport

    return SshTransport(name, config)
