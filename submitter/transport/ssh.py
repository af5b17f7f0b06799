"""The ssh transport, on plumbum: the system `ssh` (so ~/.ssh/config, ProxyJump and agents
just work), one multiplexed connection per host for a whole apply, and rsync for files, batched.

plumbum's SshMachine opens the connection: its shell session is the first ssh, which becomes
the ControlMaster (authenticating once, asking a passphrase if it must; an unreachable host is
a typed plumbum error here) and, as a client that stays connected, keeps the master alive
between polls however long they are apart. Every command is a further `ssh` multiplexed over
that master, started through plumbum.local with its script on standard input.

One rsync per direction per step moves any number of files to any number of places: the
transfers are laid out as a tree of symlinks mirroring their remote absolute paths, and that
tree is synced onto `/` with links followed. Without rsync on the host, scp does the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from plumbum.commands import BaseCommand, ProcessTimedOut
from plumbum.machines import SshMachine

from submitter.config.models import HostConfig
from submitter.errors import HostError
from submitter.paths import Transfer
from submitter.transport.base import COMMAND_TIMEOUT, CommandResult, TransportStats
from submitter.transport.failures import PLUMBUM_FAILURES, host_error, last_lines
from submitter.transport.process import current_environment, execute, program, start_streaming

SSH_UNREACHABLE = 255
CONNECT_TIMEOUT = 20
# A host that stops answering without closing the connection (frozen, or a link gone
# quiet) is given up when a keepalive is due after ALIVE_COUNT unanswered ones, ALIVE_INTERVAL s
# apart: 40 s of silence. A command asking then falls back to a fresh connection, which
# ConnectTimeout ends: within a minute in all.
ALIVE_INTERVAL = 10
ALIVE_COUNT = 3
# The whole login (TCP connect, key exchange, authentication, first prompt), which
# ConnectTimeout alone does not bound.
LOGIN_TIMEOUT = 60
CONTROL_PERSIST = 120
CLOSE_TIMEOUT = 30


def control_dir() -> Path:
    """Short and private: unix socket paths are limited to about 100 bytes."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    directory = base / f"submitter-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def liveness_options() -> list[str]:
    """Neither an unreachable nor a frozen host keeps ssh waiting for long."""
    return [
        "-o",
        f"ConnectTimeout={CONNECT_TIMEOUT}",
        "-o",
        f"ServerAliveInterval={ALIVE_INTERVAL}",
        "-o",
        f"ServerAliveCountMax={ALIVE_COUNT}",
    ]


def host_options(config: HostConfig) -> list[str]:
    """Where and how to reach the host: its port, known_hosts file and own `-o` options."""
    return [*_port_options(config), *_known_hosts_and_own_options(config)]


def _port_options(config: HostConfig) -> list[str]:
    return ["-p", str(config.port)] if config.port else []


def _known_hosts_and_own_options(config: HostConfig) -> list[str]:
    options: list[str] = []
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
        if config.address.startswith("-"):
            # ssh would read it as an option (SshMachine puts no `--` before the address).
            raise HostError(f"host '{host_name}': address {config.address!r} starts with '-'")
        self.host_name = host_name
        self.config = config
        self.address = config.address
        self.stats = TransportStats()
        key = f"{config.address}:{config.port}:{config.identity_file}:{os.getpid()}"
        self.control_path = control_dir() / hashlib.sha256(key.encode()).hexdigest()[:16]
        self._machine: SshMachine | None = None
        self._remote_tools: set[str] | None = None

    # ssh ---------------------------------------------------------------------------------
    def ssh_options(self) -> list[str]:
        """Everything before the address, as SshMachine lays it out from its port, keyfile
        and ssh_opts; rsync and scp reach the host with the same."""
        identity = self._identity_file()
        return [
            *_port_options(self.config),
            *(["-i", identity] if identity else []),
            *self._machine_options(),
        ]

    def _identity_file(self) -> str | None:
        if not self.config.identity_file:
            return None
        return str(Path(self.config.identity_file).expanduser())

    def _machine_options(self) -> list[str]:
        """SshMachine's ssh_opts: multiplexing, liveness, the key only, known hosts, the
        host's own options. Host keys are always checked: StrictHostKeyChecking is left to
        the user's ssh config."""
        options = [
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            f"ControlPersist={CONTROL_PERSIST}",
            *liveness_options(),
        ]
        if not sys.stdin.isatty() and not _asks_through_askpass():
            options += ["-o", "BatchMode=yes"]
        if self.config.identity_file:
            options += ["-o", "IdentitiesOnly=yes"]
        return options + _known_hosts_and_own_options(self.config)

    def _connection(self) -> SshMachine:
        if self._machine is None:
            self.stats.connections += 1
            try:
                with current_environment():
                    self._machine = SshMachine(
                        self.address,
                        port=self.config.port,
                        keyfile=self._identity_file(),
                        ssh_opts=self._machine_options(),
                        connect_timeout=LOGIN_TIMEOUT,
                    )
            except BrokenPipeError as exc:
                # ssh ended before the session could write to it (a refused connection can
                # beat the first write): ask ssh once more, plainly, for what it says.
                raise HostError(
                    f"ssh to {self.address} failed: {self._why_unreachable() or exc}"
                ) from exc
            except PLUMBUM_FAILURES as exc:
                raise host_error(exc, self.address, "ssh") from exc
        return self._machine

    def _why_unreachable(self) -> str:
        try:
            result = execute(self._command("true").popen, timeout=LOGIN_TIMEOUT + 5)
        except PLUMBUM_FAILURES:
            return ""
        return last_lines(result.stderr) if result.returncode == SSH_UNREACHABLE else ""

    def _command(self, remote_command: str) -> BaseCommand:
        """The system ssh with this host's options and master, running `remote_command`."""
        return program("ssh").bound_command(*self.ssh_options(), "--", self.address, remote_command)

    def _drop_connection(self) -> None:
        if self._machine is not None:
            self._machine.close()
            self._machine = None

    def _ssh(self, remote_command: str, stdin: str | None, timeout: float | None) -> CommandResult:
        self._connection()
        self.stats.commands += 1
        # Not SshMachine.popen: it would prefix `cd <login dir> && env PATH=<its own copy>`,
        # and its copy rewrites relative and empty PATH entries ('.' becomes the home
        # directory). The same ssh, options and master, with the command as the one quoted
        # word the remote shell is to read.
        try:
            result = execute(self._command(remote_command).popen, stdin=stdin, timeout=timeout)
        except ProcessTimedOut as exc:
            raise HostError(
                f"a command on {self.address} did not finish within {timeout:g} s"
            ) from exc
        except PLUMBUM_FAILURES as exc:
            raise host_error(exc, self.address, "ssh") from exc
        if result.returncode == SSH_UNREACHABLE:
            self._drop_connection()
            # A session cut by the host (sshd gone) ends its client with 255 and no word.
            said = result.stderr.strip() or "the connection was closed (ssh said nothing)"
            raise HostError(f"ssh to {self.address} failed: {said}")
        return result

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout: float | None = COMMAND_TIMEOUT,
    ) -> CommandResult:
        return self._ssh(shlex.join(argv), stdin, timeout)

    def run_script(self, script: str, *, timeout: float | None = COMMAND_TIMEOUT) -> CommandResult:
        return self._ssh("bash -s", script, timeout)

    def stream(self, script: str, args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        """The script and its arguments go as one quoted command line (`bash -c`), not on
        standard input, which stays the caller's: through the master, no new login."""
        self._connection()
        self.stats.commands += 1
        command = self._command(shlex.join(["bash", "-c", script, "bash", *args]))
        try:
            return start_streaming(command.popen)
        except PLUMBUM_FAILURES as exc:
            raise host_error(exc, self.address, "ssh") from exc

    def close(self) -> None:
        """End the session, then the master (it would otherwise linger ControlPersist s)."""
        self._drop_connection()
        if self.control_path.exists():
            with contextlib.suppress(*PLUMBUM_FAILURES):
                stop = program("ssh").bound_command(
                    *self.ssh_options(), "-O", "exit", "--", self.address
                )
                execute(stop.popen, timeout=CLOSE_TIMEOUT)

    # files -------------------------------------------------------------------------------
    def _has_rsync(self) -> bool:
        return "rsync" in self._tools()

    def _has_gnu_tar(self) -> bool:
        return "gnu-tar" in self._tools()

    def _tools(self) -> set[str]:
        """The copy tools both ends have, asked of the host once."""
        if self._remote_tools is None:
            probe = self.run_script(
                "command -v rsync >/dev/null && echo rsync\n"
                "tar --version 2>/dev/null | grep -q 'GNU tar' && echo gnu-tar\n"
                "true\n"
            )
            self._remote_tools = {
                tool
                for tool in probe.stdout.split()
                if shutil.which("rsync" if tool == "rsync" else "tar")
            }
        return self._remote_tools

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
                command = program("rsync")[
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
                command = program("scp").bound_command(
                    "-q", "-r", *self._scp_options(), *tops, f"{self.address}:/"
                )
            done = self._copy(command, "copying files to the host")
            if not done.ok:
                raise HostError(f"copying files to {self.address} failed: {done.stderr.strip()}")

    def get(self, transfers: Sequence[Transfer]) -> list[Transfer]:
        if not transfers:
            return []
        for transfer in transfers:
            _require_absolute(transfer.remote)
        self.stats.transfers += 1
        with tempfile.TemporaryDirectory(prefix="submitter-get-") as tmp:
            stage = Path(tmp)
            if self._has_gnu_tar():
                self._tar_get(transfers, stage / "root")
            elif self._has_rsync():
                listing = stage / ".files"
                listing.write_text("".join(t.remote.lstrip("/") + "\n" for t in transfers))
                command = program("rsync")[
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
                done = self._copy(command, "copying files back")
                # 23: some sources missing (logs a task never wrote); the rest were copied.
                if done.returncode not in (0, 23):
                    raise HostError(
                        f"copying files back from {self.address} failed: {done.stderr.strip()}"
                    )
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

    def _tar_get(self, transfers: Sequence[Transfer], root: Path) -> None:
        """All of `transfers` in one stream: tar on the host, tar here. Linear in the number
        of files (rsync --files-from grows about with its square: 25,000 small files took it
        45 s, tar 6 s). What the host does not have is left out (--ignore-failed-read) and
        reported by get() from what did not arrive."""
        root.mkdir(parents=True)
        listing = "".join(t.remote.lstrip("/") + "\n" for t in transfers)
        remote = "tar -C / -cf - --ignore-failed-read --files-from=- 2>/dev/null"
        ssh = shlex.join([str(program("ssh")), *self.ssh_options(), "--", self.address, remote])
        extract = shlex.join([str(program("tar")), "-C", str(root), "-xf", "-"])
        # One local shell joins the two ends: the listing goes to the host's tar on stdin.
        command = program("bash")["-o", "pipefail", "-c", f"{ssh} | {extract}"]
        self._connection()
        self.stats.commands += 1
        try:
            done = execute(command.popen, stdin=listing)
        except PLUMBUM_FAILURES as exc:
            raise host_error(exc, self.address, "copying files back") from exc
        if done.returncode == SSH_UNREACHABLE:
            self._drop_connection()
            raise HostError(f"copying files back from {self.address} failed: ssh said nothing")
        if done.returncode != 0:
            raise HostError(f"copying files back from {self.address} failed: {done.stderr.strip()}")

    def _copy(self, command: BaseCommand, doing: str) -> CommandResult:
        """rsync or scp, through the master connection; no deadline: a silent host ends
        the master, and with it the copy, within a minute."""
        try:
            return execute(command.popen)
        except PLUMBUM_FAILURES as exc:
            raise host_error(exc, self.address, doing) from exc

    def _scp_options(self) -> list[str]:
        """The ssh options, with the port spelled -P as scp wants it."""
        return ["-P" if option == "-p" else option for option in self.ssh_options()]

    def _scp_get(self, transfers: Sequence[Transfer], root: Path) -> None:
        for transfer in transfers:
            target = root / transfer.remote.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            source = f"{self.address}:{transfer.remote}"
            copy = program("scp").bound_command(
                "-q", "-r", "-p", *self._scp_options(), source, str(target)
            )
            # A missing source is reported by get() from what did not arrive.
            self._copy(copy, "copying files back")


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


def _asks_through_askpass() -> bool:
    """Whether ssh may ask its questions (a passphrase, a one-time code) through the program
    in SSH_ASKPASS without a terminal: only then is it let to ask at all."""
    return bool(os.environ.get("SSH_ASKPASS")) and os.environ.get("SSH_ASKPASS_REQUIRE") in (
        "force",
        "prefer",
    )
