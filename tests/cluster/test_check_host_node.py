"""check-host --node: one probe job on each test host, reporting from where it ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import CLUSTERS
from tests.conftest import write

HOSTS = [name for name in CLUSTERS if name != "ssh2fa"]  # that one needs its code asked
# Where a probe may run: the compute nodes (OpenPBS's login node runs a mom too).
EXECUTION_HOSTS = {"ssh": ("sshhost",), "pbs": ("login", "c1"), "sge": ("c1",)}


def _tasks(project: Path, host: dict[str, Any], interpreters: list[str], **extra: Any) -> Path:
    tasks = [
        {"name": f"t{i}", "host": "h", "run": "true", "interpreter": interpreter}
        for i, interpreter in enumerate(interpreters)
    ]
    return write(
        project / "tasks.yml", json.dumps({"hosts": {"h": dict(host, **extra)}, "tasks": tasks})
    )


def _rows(result: Any) -> dict[str, dict[str, Any]]:
    assert result.out, result.err
    return {c["name"]: c for c in json.loads(result.out)["checks"]}


@pytest.mark.parametrize("host", HOSTS)
def test_check_host_node_passes_and_names_the_compute_node(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, host: str
) -> None:
    tasks = _tasks(
        tmp_path,
        cluster_hosts[host],
        ["bash", "/usr/bin/env sh"],
        paths={str(tmp_path): "/home/alice"},
        setup="export PROBE_SEEN=1\n",
    )
    result = cli("check-host", "h", "-f", tasks, "--node", "--timeout", "120", "--json")
    rows = _rows(result)
    assert result.code == 0, [c for c in rows.values() if not c["ok"]]
    node = rows["ran on"]["detail"].split()[0]
    assert node in EXECUTION_HOSTS.get(host, ("c1", "c2")), node
    assert "s from submit to start" in rows["queue wait"]["detail"]
    for name in ("work dir on node", "mapped path on node " + str(tmp_path), "setup line 1"):
        assert rows[name]["ok"], rows[name]
    assert any(n.startswith("shared path on node") and c["ok"] for n, c in rows.items())
    assert rows["interpreter bash"]["ok"] and rows["interpreter /usr/bin/env sh"]["ok"]


@pytest.mark.parametrize("host", HOSTS)
def test_check_host_node_reports_what_the_node_lacks_with_fixes(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, cluster_hosts, remote, host: str
) -> None:
    """A shared path only this machine has, an interpreter the nodes lack, a failing setup
    line: each its own failed row with a fix; the probe leaves nothing behind."""
    tasks = _tasks(
        tmp_path,
        cluster_hosts[host],
        ["bash", "Rscript"],
        shared=[str(tmp_path)],
        setup="true\nfalse\n",
    )
    result = cli("check-host", "h", "-f", tasks, "--node", "--timeout", "120", "--json")
    assert result.code == 3
    rows = _rows(result)
    assert rows["ran on"]["ok"]
    shared = rows[f"shared path on node {tmp_path}"]
    assert not shared["ok"] and "mount" in shared["fix"] and "'shared'" in shared["fix"]
    rscript = rows["interpreter Rscript"]
    assert not rscript["ok"] and "module load R" in rscript["fix"]
    assert rows["setup line 1"]["ok"]
    setup = rows["setup line 2"]
    assert not setup["ok"] and "exited 1" in setup["detail"] and setup["fix"]
    assert rows["interpreter bash"]["ok"]
    left = remote(host, "ls -a ~ | grep -c submitter-probe; true").stdout.strip()
    assert left == "0", "the probe removed its directory"
