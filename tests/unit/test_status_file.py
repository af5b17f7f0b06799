"""Reading a task directory's status on this machine, as the poll script does on a host."""

from __future__ import annotations

from pathlib import Path

from submitter import task_layout as files
from submitter.hostops import read_status_file

RUNNING = '{"state": "running", "exit_code": null}\n'
DONE = '{"state": "completed", "exit_code": 0}\n'


def test_a_final_status_left_in_a_temporary_file_is_the_truth(tmp_path: Path) -> None:
    (tmp_path / files.STATUS).write_text(RUNNING)
    (tmp_path / f"{files.STATUS_TEMP}41").write_text(DONE)
    assert read_status_file(str(tmp_path)) == {"state": "completed", "exit_code": 0}


def test_a_temporary_file_gone_between_listing_and_reading_is_passed_over(
    tmp_path: Path,
) -> None:
    """The wrapper renames its temporary file into place at any moment: one listed, then gone
    (here: one that cannot be read as a file), is no status, and no error."""
    (tmp_path / files.STATUS).write_text(RUNNING)
    (tmp_path / f"{files.STATUS_TEMP}41").mkdir()
    assert read_status_file(str(tmp_path)) == {"state": "running", "exit_code": None}
    (tmp_path / f"{files.STATUS_TEMP}42").write_text(DONE[:-1])  # half written: no newline
    assert read_status_file(str(tmp_path)) == {"state": "running", "exit_code": None}
