"""What every registered scheduler must come with, checked over the registry: adding a
scheduler to `schedulers/registry.py` without its pack, captured output or goldens fails here
(README: "Adding a scheduler")."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from submitter.config.project import load_project
from submitter.prepare import prepare_tasks
from submitter.render.packs import (
    ARRAY_TEMPLATE,
    HEADER_TEMPLATE,
    JOB_TEMPLATE,
    PACKED_TEMPLATE,
    find_pack,
)
from submitter.schedulers.registry import NAMES, batch_scheduler
from tests.conftest import golden_hosts

TESTS = Path(__file__).parent.parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures" / "schedulers"
GOLDEN = TESTS / "golden"
# Compared with what is made now by tests/unit: test_golden.py (the renders),
# test_probe_job.py (check-host's probe job), test_step_scripts_golden.py (the step scripts).
GOLDEN_FILES = (
    *("job.sh", "task.json", "array.sh", "packed.sh"),
    "probe.sh",
    *("start.sh", "poll.sh", "cancel.sh"),
)


def fixture_scheduler(path: Path) -> str | None:
    """The scheduler a captured output belongs to, from its name: `<scheduler>_<command>...`,
    or `doc_<scheduler>_...` for output copied from the scheduler's documentation; a variant
    may prefix the name (`openpbs_qsub.txt` is PBS's)."""
    first = path.name.removeprefix("doc_").split("_", 1)[0]
    return next((name for name in NAMES if first.endswith(name)), None)


def fixtures_of(scheduler: str) -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*.txt") if fixture_scheduler(p) == scheduler)


def test_every_captured_output_belongs_to_a_registered_scheduler() -> None:
    strays = [p.name for p in FIXTURES.glob("*.txt") if fixture_scheduler(p) is None]
    assert not strays, f"name these <scheduler>_<command>...: {strays}"


@pytest.mark.parametrize("name", NAMES)
def test_the_registry_names_each_scheduler_by_its_own_name(name: str) -> None:
    assert batch_scheduler(name).name == name


@pytest.mark.parametrize("name", NAMES)
def test_its_pack_has_a_header_and_the_job_array_and_packed_templates(name: str) -> None:
    pack = find_pack(batch_scheduler(name).default_pack, None)
    for template in (HEADER_TEMPLATE, JOB_TEMPLATE, ARRAY_TEMPLATE, PACKED_TEMPLATE):
        assert (pack.directory / template).is_file(), f"{pack.ident}: no {template}"


@pytest.mark.parametrize("name", NAMES)
def test_every_captured_output_of_it_parses(name: str) -> None:
    """Each parser reads any of the scheduler's output without raising (what it cannot read
    is simply absent); the submit command's output gives a job id, unless it is an error."""
    scheduler = batch_scheduler(name)
    fixtures = fixtures_of(name)
    assert fixtures, f"no captured output of {name} in {FIXTURES}"
    submit = scheduler.submit_argv("job.sh")[0]
    for path in fixtures:
        text = path.read_text()
        scheduler.parse_status(text)
        scheduler.parse_finished(text)
        scheduler.parse_limits(text)
        if path.name.removeprefix("doc_").split("_")[1] != submit:
            continue
        if "error" in path.name:
            with pytest.raises(ValueError):
                scheduler.parse_job_id(text)
        else:
            assert scheduler.parse_job_id(text), path.name


@pytest.mark.parametrize("name", NAMES)
def test_its_renders_probe_and_step_scripts_have_goldens(name: str) -> None:
    """A host of tests/golden/tasks.yml uses it, and tests/unit compares with stored files
    its job script, task file and drivers, check-host's probe job (its directives from the
    pack's header), and the scripts that start, poll and cancel its jobs."""
    hosts = golden_hosts(name)
    assert hosts, f"no host with scheduler: {name} in {GOLDEN / 'tasks.yml'}"
    for host in hosts:
        for suffix in GOLDEN_FILES:
            assert (GOLDEN / f"{host}.{suffix}").is_file(), f"no golden {host}.{suffix}"


def _job_script(tmp_path: Path, name: str) -> tuple[str, Path]:
    """The job script of one task on a host of scheduler `name`, and its task directory."""
    tasks = tmp_path / "tasks.yml"
    tasks.write_text(
        f"hosts:\n  h: {{address: a@b, scheduler: {name}, work_dir: {tmp_path / 'work'}}}\n"
        "tasks:\n  - {name: t, host: h, run: 'true'}\n"
    )
    task = prepare_tasks(load_project(tasks), check_inputs=False)[0]
    task_dir = Path(task.task_dir)
    task_dir.mkdir(parents=True)
    return task.render().job_script, task_dir


@pytest.mark.parametrize(
    ("name", "variable"),
    [(name, v) for name in NAMES for v in batch_scheduler(name).job_id_variables],
)
def test_the_job_id_its_scheduler_sets_reaches_the_status_file(
    tmp_path: Path, name: str, variable: str
) -> None:
    script, task_dir = _job_script(tmp_path, name)
    (task_dir / "job.sh").write_text(script)
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), variable: "4242"}
    ran = subprocess.run(
        ["bash", "job.sh"], cwd=task_dir, env=environment, capture_output=True, timeout=20
    )
    assert ran.returncode == 0, ran.stderr
    status = json.loads((task_dir / "status").read_text())
    assert status["state"] == "completed" and status["job_id"] == "4242"


@pytest.mark.parametrize("name", NAMES)
def test_it_has_a_test_cluster(name: str) -> None:
    """`docker/cluster up <name>` starts a login node (and compute nodes) running it: the
    cluster tests' proof, which this test cannot run (no Docker here), only find."""
    compose = YAML(typ="safe").load((ROOT / "docker" / "docker-compose.yml").read_text())
    assert f"{name}-login" in compose["services"], f"no {name}-login in docker-compose.yml"
