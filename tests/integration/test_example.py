"""The example project (examples/): a pipeline, counts then a summary of the counts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_runs_its_counts_then_the_summary(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "examples"
    shutil.copytree(EXAMPLES / "books", project / "books")
    shutil.copy(EXAMPLES / "tasks.yml", project / "tasks.yml")
    planned = json.loads(cli("apply", project / "tasks.yml", "--plan", "--json").out)
    assert [(s["name"], s["action"]) for s in planned] == [
        ("count-alice", "run"),
        ("count-sherlock", "run"),
        ("summary", "wait"),
    ]
    result = cli("apply", project / "tasks.yml")
    assert result.code == 0, result.err
    summary = json.loads((project / "results" / "summary.json").read_text())
    for book in ("alice", "sherlock"):
        assert summary[book]["words"] == int((project / "counts" / f"{book}.words").read_text())
        assert len(summary[book]["top5"]) == 5
