"""The ssh transport: the system `ssh` (so ~/.ssh/config, ProxyJump and agents just work),
one multiplexed connection per host for a whole apply, and rsync for files, batched.

One rsync per direction per step moves any number of files to any number of places: the
transfers are laid out as a tree of symlinks mirroring their remote absolute paths, and that
tree is synced onto `/` with links followed. Without rsync on the host, scp does the same.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from submitter.config.models import HostConfig
from submitter.errors import HostError
from submitter.paths import Transfer
from submitter.transport.base import CommandResult, TransportStats

SSH_UNREACHABLE = 255
CONNECT_TIMEOUT = 20


def control_dir() -> Path:
    """Short and private: unix socket paths are limited to about 100 bytes."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    directory = base / f"submitter-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def host_options(config: HostConfig) -> list[str]:
    """Where and how to reach the host: its port, known_hosts file and own `-o` options."""
    options: list[str] = []
    if config.port:
        options += ["-p", str(config.port)]
    if config.known_hosts:
        options += ["-o", f"UserKnownHostsFile={Path(config.known_hosts).expanduser()}"]
    for option in config.ssh_options:
        options += ["-o", option]
    return options


class SshTransport:
    name = "ssh"

    def __init__(self, host_name: str, config: HostConfig) -> None:
        if not config.address:
            raise HostError(f"host '{host_name}' has no address")
        self.host_name = host_name
        self.config = config
        self.address = config.address
        self.stats = TransportStats()
        key = f"{config.address}:{config.port}:{config.identity_file}:{os.getpid()}"
        self.control_path = control_dir() / hashlib.sha256(key.encode()).hexdigest()[:16]
        self._connected = False
        self._remote_rsync: bool | None = None

    # ssh ---------------------------------------------------------------------------------
    def ssh_options(self) -> list[str]:
        options = [
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            "ControlPersist=120",
            "-o",
            f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-o",
            "ServerAliveInterval=30",
        ]
        if not sys.stdin.isatty():
            options += ["-o", "BatchMode=yes"]
        if self.config.identity_file:
            options += [
                "-i",
                str(Path(self.config.identity_file).expanduser()),
                "-o",
                "IdentitiesOnly=yes",
            ]
        return options + host_options(self.config)

    def _ssh(self, remote_command: str, stdin: str | None, timeout: float | None) -> CommandResult:
        if not self._connected:
            self.stats.connections += 1
            self._connected = True
        self.stats.commands += 1
        argv = ["ssh", *self.ssh_options(), "--", self.address, remote_command]
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except FileNotFoundError:
            raise HostError("the ssh client is not installed on this machine") from None
        except subprocess.TimeoutExpired:
            raise HostError(f"remote command timed out after {timeout}s") from None
        if done.returncode == SSH_UNREACHABLE:
            self._connected = False
            raise HostError(f"ssh to {self.address} failed: {done.stderr.strip()}")
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float | None = None
    ) -> CommandResult:
        return self._ssh(shlex.join(argv), stdin, timeout)

    def run_script(self, script: str, *, timeout: float | None = None) -> CommandResult:
        return self._ssh("bash -s", script, timeout)

    def close(self) -> None:
        if self._connected or self.control_path.exists():
            subprocess.run(
                ["ssh", *self.ssh_options(), "-O", "exit", "--", self.address],
                capture_output=True,
                check=False,
                timeout=30,
            )
            self._connected = False

    # files -------------------------------------------------------------------------------
    def _has_rsync(self) -> bool:
        if self._remote_rsync is None:
            local = shutil.which("rsync") is not None
            remote = self.run_script("command -v rsync >/dev/null\n").ok
            self._remote_rsync = local and remote
        return self._remote_rsync

    def _ssh_command_for_rsync(self) -> str:
        return shlex.join(["ssh", *self.ssh_options()])

    def put(self, transfers: Sequence[Transfer]) -> None:
        if not transfers:
            return
        with tempfile.TemporaryDirectory(prefix="submitter-put-") as tmp:
            stage = Path(tmp)
            for transfer in transfers:
                _require_absolute(transfer.remote)
                link = stage / transfer.remote.lstrip("/")
                link.parent.mkdir(parents=True, exist_ok=True)
                if link.is_symlink():
                    link.unlink()
                link.symlink_to(transfer.local.resolve())
            self.stats.transfers += 1
            self.stats.files += len(transfers)
            if self._has_rsync():
                argv = [
                    "rsync",
                    "-r",
                    "-L",
                    "-t",
                    "--omit-dir-times",
                    "--partial",
                    "-e",
                    self._ssh_command_for_rsync(),
                    f"{stage}/",
                    f"{self.address}:/",
                ]
            else:
                tops = [str(p) for p in sorted(stage.iterdir())]
                argv = ["scp", "-q", "-r", *self._scp_options(), *tops, f"{self.address}:/"]
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise HostError(f"copying files to the host failed: {done.stderr.strip()}")

    def get(self, transfers: Sequence[Transfer]) -> list[Transfer]:
        if not transfers:
            return []
        for transfer in transfers:
            _require_absolute(transfer.remote)
        self.stats.transfers += 1
        with tempfile.TemporaryDirectory(prefix="submitter-get-") as tmp:
            stage = Path(tmp)
            if self._has_rsync():
                listing = stage / ".files"
                listing.write_text("".join(t.remote.lstrip("/") + "\n" for t in transfers))
                argv = [
                    "rsync",
                    "-r",
                    "-t",
                    "--omit-dir-times",
                    "--files-from",
                    str(listing),
                    "-e",
                    self._ssh_command_for_rsync(),
                    f"{self.address}:/",
                    f"{stage}/root/",
                ]
                done = subprocess.run(argv, capture_output=True, text=True, check=False)
                # 23: some sources missing (logs a task never wrote); the rest were copied.
                if done.returncode not in (0, 23):
                    raise HostError(f"copying files back failed: {done.stderr.strip()}")
            else:
                self._scp_get(transfers, stage / "root")
            missing = []
            for transfer in transfers:
                source = stage / "root" / transfer.remote.lstrip("/")
                if not source.exists():
                    missing.append(transfer)
                    continue
                _move(source, transfer.local)
                self.stats.files += 1
            return missing

    def _scp_options(self) -> list[str]:
        """The ssh options, with the port spelled -P as scp wants it."""
        return ["-P" if option == "-p" else option for option in self.ssh_options()]

    def _scp_get(self, transfers: Sequence[Transfer], root: Path) -> None:
        for transfer in transfers:
            target = root / transfer.remote.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            argv = [
                "scp",
                "-q",
                "-r",
                "-p",
                *self._scp_options(),
                f"{self.address}:{transfer.remote}",
                str(target),
            ]
            subprocess.run(argv, capture_output=True, text=True, check=False)


def _require_absolute(remote: str) -> None:
    if not remote.startswith("/"):
        raise HostError(f"internal: remote path {remote!r} is not absolute")


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        if target.is_dir():
            shutil.rmtree(target)
        shutil.move(str(source), str(target))
