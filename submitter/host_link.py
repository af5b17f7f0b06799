"""A host as a connection and its step scripts: what every session is built on, and all that
`check-host` needs of a host."""

from __future__ import annotations

from submitter import remote_bytes
from submitter.config.models import HostConfig
from submitter.hostops import HostOps, q
from submitter.seams import Seams
from submitter.task_layout import TASK_LOGS, on_host
from submitter.transport.base import Transport


class HostLink:
    def __init__(self, name: str, config: HostConfig, seams: Seams) -> None:
        self.name, self.config, self.seams = name, config, seams
        self.ops = HostOps.for_kind(config.kind, config.pbs_flavor)
        self.transport: Transport | None = None  # made at the first step that needs it

    def connection(self) -> Transport:
        if self.transport is None:
            self.transport = self.seams.connect(self.name, self.config)
        return self.transport

    def drop_connection(self) -> None:
        """Close the connection: the next step makes a fresh one."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def read_logs(self, task_dir: str) -> dict[str, str]:
        """A running task's stdout and stderr as they are now on the host, read in one
        script (base64 on the way: any byte comes back)."""
        script = remote_bytes.script(
            (name, f"cat {q(on_host(task_dir, name))}") for name in TASK_LOGS
        )
        read = remote_bytes.parse(self.connection().run_script(script).stdout)
        texts = {name: read.get(name, b"").decode("utf-8", "replace") for name in TASK_LOGS}
        return texts

    def close(self) -> None:
        self.drop_connection()
