"""docs/architecture.md stays true: its life-cycle table is `states.TRANSITIONS`, and each step
of its "Adding a scheduler" checklist names the conformance test that enforces it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from submitter.states import TRANSITIONS, TaskState

ROOT = Path(__file__).parent.parent.parent
DOC = ROOT / "docs" / "architecture.md"
CONFORMANCE = ROOT / "tests" / "integration" / "test_scheduler_conformance.py"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_life_cycle_table_is_the_transition_table() -> None:
    table = _section("A task's life cycle")
    rows = [r for r in re.findall(r"^\| (\w+) \| ([\w, ]+) \|$", table, re.M) if r[0] != "from"]
    documented = {TaskState(f): {TaskState(t) for t in to.split(", ")} for f, to in rows}
    assert documented == {state: set(allowed) for state, allowed in TRANSITIONS.items()}


def test_every_checklist_step_names_a_conformance_test_that_exists() -> None:
    steps = re.findall(r"^\d+\. \*\*", _section("Adding a scheduler"), re.M)
    named = re.findall(r"Checked by: `(test_\w+)`", _section("Adding a scheduler"))
    tests = {
        node.name
        for node in ast.walk(ast.parse(CONFORMANCE.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }
    assert len(named) == len(steps) == 6
    assert set(named) <= tests, set(named) - tests
