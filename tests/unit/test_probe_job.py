"""check-host's probe job script on every registered scheduler: its directives come from the
host's pack header, as a task's do. `<host>.probe.sh` beside the other goldens holds it for
every host of tests/golden/tasks.yml."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from submitter.check_node import NodeCheck, probe_node
from submitter.config.models import HostConfig
from submitter.config.project import HostEntry, load_project
from submitter.host_link import HostLink
from submitter.node_probe import Probe, job_script, probe_header, targets_for
from submitter.prepare import select_pack
from submitter.schedulers.registry import NAMES
from submitter.seams import Seams
from submitter.transport.base import Transport
from tests.conftest import GOLDEN, SCHEDULER_HOSTS, matches_golden

HOME = "/home/alice"


def probe_of(entry: HostEntry) -> Probe:
    """A fixed probe: one mapped and one shared path, a setup line, an interpreter."""
    targets, login = targets_for(
        "t0k", "/scratch/alice/submitter", [("/proj", "/scratch/alice/proj")], [("/data", "")]
    )
    probe = Probe(
        f"{HOME}/.submitter-probe-t0k", "t0k", targets, login, ("module load x",), ("python3",)
    )
    if entry.config.kind in NAMES:
        chain = select_pack(entry, GOLDEN)
        header = probe_header(probe, entry, chain, entry.config.pbs_flavor)
        probe = replace(probe, header=header)
    return probe


def directives(script: str) -> list[str]:
    """The lines between the shebang and the first line of shell."""
    lines = script.splitlines()[1:]
    return lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]


@pytest.mark.parametrize(
    "host", [host for _, host in SCHEDULER_HOSTS] + ["plain"], ids=lambda host: host
)
def test_probe_job_matches_golden(host: str) -> None:
    entry = load_project(GOLDEN / "tasks.yml").hosts[host]
    matches_golden(f"{host}.probe.sh", job_script(probe_of(entry)))


@pytest.mark.parametrize("name", NAMES)
def test_probe_asks_for_its_name_its_output_file_and_little(name: str) -> None:
    """Named, its output and error in its own directory (never mailed, never in a default
    place), no memory asked (the site's default); its cores and walltime are in the goldens."""
    entry = HostEntry("h", HostConfig(address="a@b", scheduler=name), None)
    probe = probe_of(entry)
    lines = directives(job_script(probe))
    assert lines, f"{name}: the probe has no directives"
    assert any("submitter-probe" in line for line in lines), lines
    assert any(f"{probe.directory}/job.out" in line for line in lines), lines
    assert any(f"{probe.directory}/job.err" in line for line in lines), lines
    assert not any("mem" in line.lower() for line in lines), lines


def test_probe_uses_the_host_account_and_flavour() -> None:
    config = HostConfig(address="a@b", scheduler="pbs", vars={"account": "proj123"})
    entry = HostEntry("h", config, None)
    probe = probe_of(entry)
    pro = probe_header(probe, entry, select_pack(entry, Path.cwd()), "pro").splitlines()
    torque = probe_header(probe, entry, select_pack(entry, Path.cwd()), None).splitlines()
    assert "#PBS -A proj123" in pro and "#PBS -l select=1:ncpus=1" in pro
    assert "#PBS -l nodes=1:ppn=1" in torque


def test_a_process_host_probe_has_no_directives() -> None:
    entry = HostEntry("h", HostConfig(address="a@b", scheduler="ssh"), None)
    assert directives(job_script(probe_of(entry))) == []


def test_a_pack_without_a_header_fails_the_probe_with_a_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is sent to the host: the probe's directives could not be made."""
    pack = tmp_path / "mine" / "1"
    pack.mkdir(parents=True)
    (pack / "pack.yml").write_text(
        'name: mine\nversion: "1.0"\nmin_submitter: "0.1.0"\ndescription: no header\n'
    )
    (pack / "job.sh.j2").write_text("#!/bin/bash\n")
    monkeypatch.setenv("SUBMITTER_PACK_PATH", str(tmp_path))
    entry = HostEntry("h", HostConfig(address="a@b", scheduler="slurm", pack="mine"), None)
    link = HostLink("h", entry.config, Seams(connect=_nothing_is_sent))
    rows = probe_node(entry, link, HOME, NodeCheck())
    assert [(r.name, r.ok) for r in rows] == [("probe job", False)]
    assert "header.sh.j2" in rows[0].detail and "header.sh.j2" in rows[0].fix


def _nothing_is_sent(name: str, config: HostConfig) -> Transport:
    raise AssertionError(f"{name} was connected to")
