"""`check-host` and `setup-host`: is a host ready, and make it so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

from submitter.check_node import NodeCheck, probe_node
from submitter.check_result import Check
from submitter.config.locations import user_config_dir
from submitter.config.models import HostConfig
from submitter.config.project import HostEntry, load_hosts, load_project
from submitter.errors import EXIT_HOST_ERROR, EXIT_OK, HostError, UsageError
from submitter.host_link import HostLink
from submitter.hostops import q
from submitter.prepare import default_work_dir, resolve_home
from submitter.seams import REAL, Seams
from submitter.shared_markers import shared_markers
from submitter.tables import print_table
from submitter.transport.base import COMMAND_TIMEOUT
from submitter.transport.failures import PLUMBUM_FAILURES, host_error
from submitter.transport.process import execute, program
from submitter.transport.ssh import host_options, liveness_options


def run_checks(
    host_name: str,
    tasks_file: Path | None,
    *,
    as_json: bool,
    node: NodeCheck | None = None,
    plain: bool = False,
    seams: Seams = REAL,
) -> int:
    """Check the host (and with `node`, a compute node through one probe job): exit 0 when
    nothing failed (warnings do not fail), 3 otherwise."""
    entry = _host_entry(host_name, tasks_file)
    checks = check_host(entry, node, seams)
    _show(host_name, checks, as_json, plain)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_HOST_ERROR


def interpreters_of(tasks_file: Path, host_name: str) -> tuple[str, ...]:
    """The interpreters of the tasks that run on `host_name`, each once, in file order."""
    project = load_project(tasks_file)
    return tuple(dict.fromkeys(t.interpreter for t in project.tasks if t.host == host_name))


def _host_entry(host_name: str, tasks_file: Path | None) -> HostEntry:
    hosts = load_hosts(tasks_file)
    if host_name not in hosts:
        raise UsageError(
            f"unknown host '{host_name}' (known: {', '.join(sorted(hosts))}; hosts come from "
            f"the tasks file, -f or else ./tasks.yml, hosts.yml beside it, and "
            f"{user_config_dir() / 'hosts.yml'})"
        )
    return hosts[host_name]


def check_host(entry: HostEntry, node: NodeCheck | None = None, seams: Seams = REAL) -> list[Check]:
    config = entry.config
    checks: list[Check] = []
    remote = bool(config.address)  # a batch host without one is this machine: no ssh, no copies
    link = HostLink(entry.name, config, seams)
    try:
        transport = link.connection()
    except HostError as exc:
        return [Check("connect", False, str(exc), "give the host an 'address'")]
    try:
        first = transport.run_script('printf "%s" "$HOME"\n')
    except HostError as exc:
        link.close()
        return [
            Check(
                "ssh key login",
                False,
                str(exc),
                f"run `submitter setup-host {entry.name}` to install a key; check address, "
                "port and that the host key is in known_hosts (ssh once by hand to accept it)",
            )
        ]
    try:
        if remote:
            checks.append(Check("ssh key login", first.ok, f"{config.address} answered", ""))
            local_rsync = shutil.which("rsync")
            checks.append(
                Check(
                    "rsync here",
                    True,
                    local_rsync or "not found: scp copies instead",
                    "install rsync on this machine (scp is used meanwhile, slower)",
                    warning=not local_rsync,
                )
            )
        home = first.stdout.strip()
        remote_checks, flavor = _remote_checks(entry, link, home)
        checks += remote_checks
        if link.ops.batch is not None and link.ops.batch.flavor is None:
            link.ops.batch.flavor = flavor
        if node is not None:
            checks += _node_checks(entry, link, home, node, checks)
    finally:
        link.close()
    return checks


def _remote_checks(entry: HostEntry, link: HostLink, home: str) -> tuple[list[Check], str | None]:
    """The host's rows, and the scheduler's flavour: the host's pbs_flavor, else detected."""
    config = entry.config
    work_dir = resolve_home(default_work_dir(config, Path.cwd()), home)
    lines = ['report() { printf \'CHECK\\t%s\\t%s\\t%s\\n\' "$1" "$2" "$3"; }']
    if config.address:
        lines.append(
            'if command -v rsync >/dev/null; then report rsync-remote 1 "$(command -v rsync)"; '
            "else report rsync-remote 0 'not found: scp copies instead'; fi"
        )
    probe = f"{q(work_dir)}/.submitter-check-$$"
    lines.append(
        f"if mkdir -p -- {q(work_dir)} && : > {probe} && rm -f -- {probe}; "
        f"then report workdir 1 {q(work_dir)}; else report workdir 0 {q(work_dir + ' is not writable')}; fi"
    )
    scheduler = link.ops.batch
    for command in scheduler.commands if scheduler else ():
        lines.append(
            f"if command -v {command} >/dev/null; then report cmd-{command} 1 "
            f"\"$(command -v {command})\"; else report cmd-{command} 0 'not on PATH'; fi"
        )
    if scheduler is not None:
        lines.append(
            f"if {scheduler.probe}; then report answering 1 ok; "
            "else report answering 0 'the status command failed'; fi"
        )
    if scheduler is not None and scheduler.accounting_probe:
        lines.append(_accounting_check(scheduler.accounting_probe, scheduler.accounting))
    if scheduler is not None and scheduler.flavor_command:
        lines.append(f"{{ {scheduler.flavor_command}\n}} 2>/dev/null")
    for local, remote_prefix in config.paths.items():
        target = resolve_home(remote_prefix, home)
        lines.append(
            f"if [ -d {q(target)} ]; then report path:{q(local)} 1 {q(target)}; "
            f"else report path:{q(local)} 0 {q(target + ' does not exist')}; fi"
        )
    with shared_markers(config.shared) as markers:
        for shared in config.shared:
            if shared in markers.failed:
                lines.append(f"report shared:{q(shared)} 0 {q(markers.failed[shared])}")
                continue
            marker = q(str(markers.written[shared]))
            lines.append(
                f'if [ "$(cat {marker} 2>/dev/null)" = {markers.token} ]; then report shared:{q(shared)} 1 '
                f"'marker written here was read there'; else report shared:{q(shared)} 0 "
                "'a marker written here is not visible there'; fi"
            )
        result = link.connection().run_script("\n".join(lines) + "\n")
    checks = _parse_checks(result.stdout, config)
    flavor = config.pbs_flavor
    if scheduler is not None and scheduler.flavor_command:
        detected = scheduler.parse_limits(result.stdout).flavor
        checks.append(_flavor_check(config, detected))
        flavor = flavor or detected
    return checks, flavor


def _flavor_check(config: HostConfig, detected: str | None) -> Check:
    """Which variant of the scheduler answers (PBS: pro or torque), and whether it is the one
    the host names."""
    label = f"{config.kind} flavour"
    named = config.pbs_flavor
    if named is None:
        if detected is None:
            return Check(label, True, "not detected: Torque resource syntax is used", "")
        return Check(label, True, f"{detected} (detected)", "")
    if detected in (None, named):
        return Check(label, True, f"{named} (pbs_flavor)", "")
    return Check(
        label,
        False,
        f"pbs_flavor says {named}, the host answers as {detected}",
        f"set 'pbs_flavor: {detected}' or remove it",
    )


def _accounting_check(probe: str, answering: str) -> str:
    """The scheduler's accounting, reported either way: without it the host still works, a
    job gone from the queue is judged by its status file alone (marked `-`: a note, not a
    failure). When it does not answer, the row says why in the probe's own words: the first
    line of what it wrote on stderr, trimmed."""
    silent = f"{probe.split()[0]} exited $submitter_rc with no message"
    return (
        f"if submitter_acct=$({probe} 2>&1 >/dev/null); then report accounting 1 {q(answering)}; "
        "else submitter_rc=$?; "
        "submitter_acct=$(printf '%s\\n' \"$submitter_acct\" | awk 'NF { $1 = $1; print; exit }'); "
        'report accounting - "no accounting: end states guessed from status files '
        f'(${{submitter_acct:-{silent}}})"; fi'
    )


def _parse_checks(output: str, config: HostConfig) -> list[Check]:
    checks = []
    for line in output.splitlines():
        parts = line.split("\t", 3)
        if len(parts) != 4 or parts[0] != "CHECK":
            continue
        _, key, ok, detail = parts
        # rsync missing on the host, or no accounting (`-`): a warning, not a failure
        warning = (key == "rsync-remote" and ok != "1") or ok == "-"
        checks.append(
            Check(_label(key), ok == "1" or warning, detail, _fix(key, config), warning=warning)
        )
    return checks


def _node_checks(
    entry: HostEntry, link: HostLink, home: str, node: NodeCheck, checks: list[Check]
) -> list[Check]:
    """The probe job's rows; none submitted when the scheduler already failed a check."""
    scheduler_rows = [
        c for c in checks if c.name.startswith("command ") or c.name == "scheduler answers"
    ]
    if not all(c.ok for c in scheduler_rows):
        return [
            Check(
                "probe job",
                False,
                "not submitted: the scheduler failed the checks above",
                "fix the scheduler's checks first",
            )
        ]
    return probe_node(entry, link, home, node)


def _label(key: str) -> str:
    if key.startswith("cmd-"):
        return f"command {key[4:]}"
    if key.startswith("path:"):
        return f"mapped path {key[5:]}"
    if key.startswith("shared:"):
        return f"shared path {key[7:]}"
    return {
        "rsync-remote": "rsync on host",
        "workdir": "work dir writable",
        "answering": "scheduler answers",
    }.get(key, key)


def _fix(key: str, config: HostConfig) -> str:
    if key == "rsync-remote":
        return "install rsync on the host (scp is used meanwhile, slower)"
    if key == "workdir":
        return "set 'work_dir' to a directory you can write on the host"
    if key.startswith("cmd-"):
        return f"load the {config.kind} client in 'setup' or PATH, or pick the right 'scheduler'"
    if key == "answering":
        return "the scheduler's controller may be down; try the command by hand on the host"
    if key == "accounting":
        return (
            "a job that leaves the queue without writing its status is called lost (or its "
            "end guessed); ask the admins for accounting (SLURM: slurmdbd, "
            "AccountingStorageType=accounting_storage/slurmdbd) to learn timeouts and node "
            "failures from it"
        )
    if key.startswith("path:"):
        return "create the remote directory, or fix the mapping under 'paths'"
    if key.startswith("shared:"):
        return "this path is not the same filesystem on both sides: remove it from 'shared'"
    return ""


def _show(host_name: str, checks: list[Check], as_json: bool, plain: bool = False) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "host": host_name,
                    "ok": all(c.ok for c in checks),
                    "checks": [dict(asdict(c), result=c.result) for c in checks],
                },
                indent=2,
            )
        )
        return
    shown = {"ok": "ok", "warning": "WARNING", "failed": "FAILED"}
    print_table(
        ("check", "result", "detail", "fix"),
        [(c.name, shown[c.result], c.detail, c.fix) for c in checks],
        title=f"check-host {host_name}",
        plain=plain,
        whole=("result",),
    )


def setup_host(
    host_name: str,
    tasks_file: Path | None,
    *,
    as_json: bool,
    plain: bool = False,
    seams: Seams = REAL,
) -> int:
    """Make a key pair if needed, install its public half on the host, then check the host."""
    entry = _host_entry(host_name, tasks_file)
    config = entry.config
    if config.kind == "local":
        return run_checks(host_name, tasks_file, as_json=as_json, plain=plain, seams=seams)
    key = ensure_key_pair(config)
    public = Path(str(key) + ".pub").read_text().strip()
    install = (
        "umask 077; mkdir -p ~/.ssh && touch ~/.ssh/authorized_keys && read -r key && "
        '{ grep -qxF "$key" ~/.ssh/authorized_keys || printf "%s\\n" "$key" >> ~/.ssh/authorized_keys; }'
    )
    # No multiplexing and no BatchMode: this one connection is the one that may ask a password,
    # so it stays in this terminal's session (where ssh can prompt) and gets time to be typed.
    options = ["-i", str(key), "-o", "ControlPath=none", "-o", "NumberOfPasswordPrompts=1"]
    options += [*liveness_options(), *host_options(config)]
    if not as_json:
        print(f"installing {key}.pub on {config.address} (ssh asks for the password once)")
    try:
        ssh = program("ssh").bound_command(*options, "--", str(config.address), install)
        done = execute(ssh.popen, stdin=public + "\n", timeout=COMMAND_TIMEOUT, own_session=False)
    except PLUMBUM_FAILURES as exc:
        raise host_error(exc, str(config.address), "installing the key") from exc
    if done.returncode != 0:
        raise HostError(f"{host_name}: installing the key failed: {done.stderr.strip()}")
    return run_checks(host_name, tasks_file, as_json=as_json, plain=plain, seams=seams)


def ensure_key_pair(config: HostConfig) -> Path:
    if config.identity_file:
        key = Path(config.identity_file).expanduser()
    else:
        ssh_dir = Path.home() / ".ssh"
        existing = [
            ssh_dir / n for n in ("id_ed25519", "id_ecdsa", "id_rsa") if (ssh_dir / n).is_file()
        ]
        key = existing[0] if existing else ssh_dir / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        comment = f"submitter@{os.uname().nodename}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
            check=True,
            capture_output=True,
        )
    return key
