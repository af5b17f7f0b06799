"""Shared test helpers: run the CLI in-process and capture its exit code and output."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from submitter.cli import main
from submitter.config.project import load_project
from submitter.schedulers.registry import NAMES
from submitter.seams import REAL, Seams
from submitter.store.db import Store

GOLDEN = Path(__file__).parent / "golden"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def seams() -> Seams:
    """What the `cli` fixture's engines reach the world through: a module of tests with a fake
    host overrides this fixture."""
    return REAL


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], seams: Seams):  # type: ignore[no-untyped-def]
    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in argv], seams)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(autouse=True)
def isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Never read the developer's own ~/.config/submitter."""
    monkeypatch.setenv("SUBMITTER_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("SUBMITTER_PACK_PATH", raising=False)
    yield


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


os.environ.setdefault("COLUMNS", "200")


def matches_golden(name: str, text: str) -> None:
    """`text` is what tests/golden/<name> holds; with SUBMITTER_REGENERATE_GOLDEN=1 it is
    written there first (then review the diff of tests/golden/ before committing)."""
    expected = GOLDEN / name
    if os.environ.get("SUBMITTER_REGENERATE_GOLDEN"):
        expected.write_text(text)
    assert expected.exists(), (
        f"missing {expected}; regenerate: SUBMITTER_REGENERATE_GOLDEN=1 pytest tests/unit"
    )
    assert text == expected.read_text(), (
        f"{name}: differs from {expected}; if intended, regenerate with "
        "SUBMITTER_REGENERATE_GOLDEN=1 pytest tests/unit and review the diff"
    )


def golden_hosts(scheduler: str) -> list[str]:
    """The hosts of tests/golden/tasks.yml that use `scheduler`."""
    hosts = load_project(GOLDEN / "tasks.yml").hosts
    return sorted(name for name, entry in hosts.items() if entry.config.kind == scheduler)


# Every registered scheduler with each of its golden hosts: what scheduler tests run over.
SCHEDULER_HOSTS: list[tuple[str, str]] = [
    (name, host) for name in NAMES for host in golden_hosts(name)
]


def count_attempts(project: Path) -> int:
    """How many times anything was started in this project: proves what did not run again."""
    store = Store(project / ".submitter")
    try:
        return sum(len(store.attempts(t.id)) for t in store.tasks())
    finally:
        store.close()
