"""A scratch directory is made when first asked for, and removed at the end of its `with`."""

from __future__ import annotations

from pathlib import Path

from submitter.scratch import Scratch


def test_a_scratch_directory_is_made_only_when_asked_for(tmp_path: Path) -> None:
    with Scratch("s-", tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []
    with Scratch("s-", tmp_path) as scratch:
        (scratch.path / "a").write_text("x")
        assert scratch.path.parent == tmp_path and scratch.path.name.startswith("s-")
        assert scratch.path == scratch.path, "one directory, however often asked for"
    assert list(tmp_path.iterdir()) == []
