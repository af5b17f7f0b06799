"""A finished task's logs kept here in one file, and read back part by part."""

from __future__ import annotations

from pathlib import Path

from submitter import task_logs


def _parts(tmp_path: Path, **texts: bytes) -> dict[str, Path]:
    parts = {}
    for key, data in texts.items():
        path = tmp_path / "in" / key
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        parts[key.replace("_", ".")] = path
    return parts


def test_the_logs_of_a_task_are_one_file_read_back_part_by_part(tmp_path: Path) -> None:
    state = tmp_path / "state"
    parts = _parts(
        tmp_path, stdout=b"out 1\nout 2\n", stderr=b"no newline", job_out=b"", job_err=b"oom\n"
    )
    kept = task_logs.keep(state, "abc", parts)
    assert kept == state / "logs" / "abc.log" and list((state / "logs").iterdir()) == [kept]
    assert task_logs.read(state, "abc") == {
        "stdout": "out 1\nout 2\n",
        "stderr": "no newline",
        "job.err": "oom\n",
    }, "an empty scheduler file is not kept"
    text = kept.read_text()
    assert text.startswith("submitter-logs 1 stdout=") and "--- stderr\nno newline\n" in text


def test_parts_that_look_like_the_files_markers_are_read_whole(tmp_path: Path) -> None:
    tricky = b"--- stderr\nsubmitter-logs 1 stdout=1\n\x00\xff\n"
    task_logs.keep(tmp_path, "t", _parts(tmp_path, stdout=tricky, stderr=b"--- stdout\n"))
    texts = task_logs.read(tmp_path, "t")
    assert texts["stdout"] == tricky.decode("utf-8", errors="replace")
    assert texts["stderr"] == "--- stdout\n"


def test_an_absent_part_is_empty_and_a_missing_file_reads_as_nothing(tmp_path: Path) -> None:
    parts = {"stdout": tmp_path / "nowhere", "stderr": _parts(tmp_path, stderr=b"e")["stderr"]}
    task_logs.keep(tmp_path, "t", parts)
    assert task_logs.read(tmp_path, "t") == {"stdout": "", "stderr": "e"}
    assert task_logs.read(tmp_path, "other") == {}


def test_a_task_that_said_nothing_keeps_no_file(tmp_path: Path) -> None:
    """Its logs read as nothing; an earlier attempt's file goes."""
    task_logs.keep(tmp_path, "t", _parts(tmp_path, stdout=b"first attempt\n"))
    quiet = _parts(tmp_path, stdout=b"", stderr=b"", job_out=b"", job_err=b"")
    assert task_logs.keep(tmp_path, "t", quiet) is None
    assert task_logs.read(tmp_path, "t") == {} and list((tmp_path / "logs").iterdir()) == []


def test_the_tail_of_a_large_part_is_its_last_64_kb(tmp_path: Path) -> None:
    big = b"".join(b"line %06d\n" % i for i in range(20000))
    task_logs.keep(tmp_path, "t", _parts(tmp_path, stdout=big, stderr=b"e"))
    tail = task_logs.read(tmp_path, "t", tail=True)
    assert big.decode().endswith(tail["stdout"]) and len(tail["stdout"]) == 64 * 1024
    assert tail["stderr"] == "e"


def test_logs_an_older_submitter_kept_as_files_are_read_and_removed(tmp_path: Path) -> None:
    old = tmp_path / "tasks" / "t"
    old.mkdir(parents=True)
    (old / "stdout").write_text("from before\n")
    assert task_logs.read(tmp_path, "t") == {"stdout": "from before\n"}
    task_logs.remove(tmp_path, "t")
    assert not old.exists()
