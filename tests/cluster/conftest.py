"""The project's dockerized clusters (docker/docker-compose.yml), started once per session.

Every test here submits real jobs over real ssh to real SLURM, to real OpenPBS (`pbs`), to
SLURM's Torque command wrapper (`torque`) and the LSF test shim, both over SLURM, and to a
plain sshd host. Nothing is mocked. If Docker is not
available these tests error out rather than skip: `bash tests/run` installs and starts it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "docker-compose.yml"

# host name in tests -> (compose service publishing ssh, scheduler)
CLUSTERS = {
    "ssh": ("sshhost", "ssh"),
    "ssh2fa": ("ssh2fa", "ssh"),  # a key, then a TOTP code
    "slurm": ("slurm-login", "slurm"),
    "pbs": ("pbs-login", "pbs"),  # OpenPBS 23.06.06: PBS Pro flavour, detected
    "torque": ("torque-login", "pbs"),  # slurm-wlm-torque over SLURM: Torque flavour, detected
    "lsf": ("lsf-login", "lsf"),
    "sge": ("sge-login", "sge"),
}

# Variants of the slurm cluster, in compose profiles of their own (the full set's `up` leaves
# them out): host name in tests -> (the login service, the compute node services).
VARIANTS = {
    "slurm-limits": ("slurm-limits-login", ("slurm-limits-c1", "slurm-limits-c2")),
    "slurm-1node": ("slurm-1node-login", ("slurm-1node-c1",)),
}

# `all.q@c1  BIP  0/0/4  ...` in `qstat -f`: Grid Engine's exec host c1 offers slots and has
# no state flag (au: unreachable, d: disabled, E: error).
_SGE_READY = re.compile(r"^all\.q@c1\s+\S+\s+\d+/\d+/[1-9]\d*\s+\S+\s+\S+\s*$", re.MULTILINE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
            # Under pytest-xdist (`--dist loadgroup`) the cluster tests run one after another
            # in one worker: that worker alone starts the clusters, and a test that freezes
            # a node or restarts slurmctld has them to itself.
            item.add_marker(pytest.mark.xdist_group("clusters"))


@pytest.fixture(scope="session")
def cluster_secrets() -> Iterator[dict[str, Path]]:
    """A key pair made for this run, and a directory mounted at the same path on every node."""
    base = Path(tempfile.mkdtemp(prefix="submitter-cluster-"))
    key = base / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "submitter-tests", "-f", str(key)],
        check=True,
    )
    public_dir = base / "public"
    public_dir.mkdir()
    shutil.copy(str(key) + ".pub", public_dir / "id_ed25519.pub")
    shared = Path(tempfile.mkdtemp(prefix="submitter-shared-"))
    shared.chmod(0o1777)
    os.environ["SUBMITTER_TEST_PUBKEY_DIR"] = str(public_dir)
    os.environ["SUBMITTER_TEST_SHARED_DIR"] = str(shared)
    yield {"key": key, "known_hosts": base / "known_hosts", "shared": shared, "base": base}
    shutil.rmtree(shared, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return "docker-compose"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"submitter-pytest-{os.getpid()}"


@pytest.fixture(scope="session")
def docker_setup(cluster_secrets: dict[str, Path]) -> list[str]:
    _remove_stale_projects()
    subprocess.run([str(ROOT / "docker" / "openpbs" / "fetch-source")], check=True)
    # The login nodes first: a cluster's nodes share its home volume, and docker fills an
    # empty volume from the first container that mounts it; two at once can collide
    # ("mkdir .../_data/alice: file exists").
    logins = " ".join(service for service, _ in CLUSTERS.values())
    return [f"up --build -d {logins}", "up --build -d"]


_PYTEST_PROJECT = re.compile(r"^submitter-pytest-(\d+)(-[\w-]+)?$")


def _remove_stale_projects() -> None:
    """Remove the containers, networks and volumes of test sessions that are gone (a killed
    run leaves them): their networks would use up docker's address pools."""
    listed = subprocess.run(
        ["docker", "network", "ls", "--format", '{{.Label "com.docker.compose.project"}}'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for project in sorted(set(listed)):
        found = _PYTEST_PROJECT.match(project)
        if not found or _alive(int(found.group(1))):
            continue
        label = f"label=com.docker.compose.project={project}"
        for kind, remove in (("container", ["rm", "-f"]), ("network", ["rm"]), ("volume", ["rm"])):
            ids = subprocess.run(
                [
                    "docker",
                    kind,
                    "ls",
                    "-q",
                    *(["-a"] if kind == "container" else []),
                    "--filter",
                    label,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            if ids:
                subprocess.run(["docker", kind, *remove, *ids], capture_output=True, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v"]


def _ssh(
    port: int, key: Path, command: str, timeout: float = 10
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-p",
            str(port),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=5",
            "alice@127.0.0.1",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ready(port: int, key: Path, name: str) -> bool:
    """ssh answers and, on a batch cluster, both execution hosts take jobs."""
    if name == "ssh2fa":  # no login without the code: the host key is there
        return bool(_keyscan(port).stdout)
    if name == "ssh":
        return _ssh(port, key, "true").returncode == 0
    if name == "sge":
        return bool(_SGE_READY.search(_ssh(port, key, "qstat -f").stdout))
    if name == "pbs":
        out = _ssh(port, key, "pbsnodes -a").stdout
        return len(re.findall(r"^\s*state = free$", out, re.MULTILINE)) == 2
    out = _ssh(port, key, "sinfo -h -N -p debug -o '%N %t'").stdout
    nodes = len(VARIANTS[name][1]) if name in VARIANTS else 2
    return out.count(" idle") == nodes


@pytest.fixture(scope="session")
def cluster_hosts(
    docker_services: Any, cluster_secrets: dict[str, Path], compose_project: str
) -> dict[str, dict[str, Any]]:
    """hosts.yml entries for the test hosts, once all of them answer."""
    key = cluster_secrets["key"]
    known_hosts = cluster_secrets["known_hosts"]
    hosts: dict[str, dict[str, Any]] = {}
    for name, (service, scheduler) in CLUSTERS.items():
        port = _ssh_port(docker_services, service, compose_project)

        def ready(port: int = port, name: str = name) -> bool:
            return _ready_in_time(port, key, name)

        docker_services.wait_until_responsive(check=ready, timeout=180.0, pause=1.0)
        scan = _keyscan(port)
        with known_hosts.open("a") as handle:
            handle.write(scan.stdout)
        hosts[name] = {
            "address": "alice@127.0.0.1",
            "port": port,
            "identity_file": str(key),
            "known_hosts": str(known_hosts),
            "scheduler": scheduler,
            "shared": [str(cluster_secrets["shared"])],
            "poll_interval": 1,
        }
    return hosts


@pytest.fixture(scope="session")
def slurm_limits_host(
    cluster_secrets: dict[str, Path], docker_compose_project_name: str
) -> Iterator[dict[str, Any]]:
    """The hosts.yml entry of the slurm cluster with small site limits (MaxArraySize=10,
    alice's MaxSubmitJobs=20, enforced), started for the tests that ask for it in a compose
    project of its own, and removed after them."""
    yield from _variant_host(
        "slurm-limits", cluster_secrets, f"{docker_compose_project_name}-limits"
    )


def _variant_host(name: str, secrets: dict[str, Path], project: str) -> Iterator[dict[str, Any]]:
    login, computes = VARIANTS[name]
    compose = ["docker-compose", "-f", str(COMPOSE_FILE), "-p", project, "--profile", name]
    try:
        # the login node first: see docker_setup
        subprocess.run([*compose, "up", "--build", "-d", login], check=True)
        subprocess.run([*compose, "up", "--build", "-d", *computes], check=True)
        port = int(
            subprocess.run(
                [*compose, "port", login, "22"], capture_output=True, text=True, check=True
            )
            .stdout.strip()
            .rpartition(":")[2]
        )
        wait_until(lambda: _ready_in_time(port, secrets["key"], name), 180, f"{name} ready")
        with secrets["known_hosts"].open("a") as handle:
            handle.write(_keyscan(port).stdout)
        yield {
            "address": "alice@127.0.0.1",
            "port": port,
            "identity_file": str(secrets["key"]),
            "known_hosts": str(secrets["known_hosts"]),
            "scheduler": "slurm",
            "shared": [str(secrets["shared"])],
            "poll_interval": 1,
        }
    finally:
        subprocess.run([*compose, "down", "-v"], check=False)


def _ready_in_time(port: int, key: Path, name: str) -> bool:
    try:
        return _ready(port, key, name)
    except subprocess.TimeoutExpired:
        return False


def _ssh_port(docker_services: Any, service: str, project: str) -> int:
    """The host port of a service's sshd. A login container that exited while the whole set
    started (each entrypoint stops at its first failing step) has its log printed, to show
    why, and is started once more."""
    try:
        return int(docker_services.port_for(service, 22))
    except Exception:
        compose = ["docker-compose", "-f", str(COMPOSE_FILE), "-p", project]
        log = subprocess.run(
            [*compose, "logs", "--tail", "80", service], capture_output=True, text=True
        )
        warnings.warn(
            f"{service} was not running, started again; its log:\n{log.stdout}{log.stderr}",
            stacklevel=1,
        )
        subprocess.run([*compose, "up", "-d", service], check=True)
        return int(docker_services.port_for(service, 22))


def _keyscan(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh-keyscan", "-p", str(port), "-t", "ed25519", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )


@pytest.fixture
def remote(cluster_hosts: dict[str, dict[str, Any]], cluster_secrets: dict[str, Path]):  # type: ignore[no-untyped-def]
    """Run a shell command on a test host as alice (to look behind submitter's back)."""

    def run(host: str, command: str) -> subprocess.CompletedProcess[str]:
        return _ssh(cluster_hosts[host]["port"], cluster_secrets["key"], command)

    return run


def docker(*args: str, timeout: float = 60) -> str:
    """A docker command that must succeed; its standard output."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def compose_project(docker_compose_project_name: str) -> str:
    """The project name as docker-compose 1.x writes it into its containers' labels."""
    return re.sub(r"[^-_a-z0-9]", "", docker_compose_project_name.lower())


@pytest.fixture
def cluster_container(docker_services: Any, compose_project: str) -> Callable[[str], str]:
    """The id of a compose service's container (running or stopped), by compose labels."""

    def find(service: str) -> str:
        ids = docker(
            "ps",
            "-aq",
            "--filter",
            f"label=com.docker.compose.project={compose_project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--filter",
            "label=com.docker.compose.oneoff=False",
        ).split()
        assert len(ids) == 1, f"{service} in {compose_project}: containers {ids}"
        return ids[0]

    return find
