"""What came back of a finished task's logs, kept here in one file per task.

`<state dir>/logs/<task id>.log` holds the task's stdout and stderr and, when they say
something, the scheduler's files of its job: a first line naming each part and its length in
bytes, then each part under a `--- NAME` line. It reads as it is (`less`), and `logs`, the
report and the apply's failure lines read it back part by part. A project whose logs an
older submitter kept as files in `<state dir>/tasks/<task id>/` is read from there.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from submitter.paths import Transfer
from submitter.task_layout import LOG_FILES, SCHEDULER_LOGS, local_copy

LOGS_DIR = "logs"
_HEADER = b"submitter-logs 1"
_TAIL_BYTES = 64 * 1024


def logs_file(state_dir: Path, task_id: str) -> Path:
    return state_dir / LOGS_DIR / f"{task_id}.log"


def keep(state_dir: Path, task_id: str, parts: Mapping[str, Path | bytes]) -> Path | None:
    """Write the task's logs file from `parts` (by log name: a file, or the part itself), in
    one rename: a reader finds the earlier one or this one. An absent part is empty; a
    scheduler's file is kept only when it says something. A task that said nothing at all
    keeps no file (None): it reads as empty parts, and thousands of quiet tasks make none."""
    sizes = {name: len(p) if isinstance(p, bytes) else _size(p) for name, p in parts.items()}
    kept = [
        name for name in LOG_FILES if name in parts and (name not in SCHEDULER_LOGS or sizes[name])
    ]
    target = logs_file(state_dir, task_id)
    if not any(sizes[name] for name in kept):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # an earlier attempt's
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    lengths = dict.fromkeys(kept, 0)
    with temporary.open("wb") as out:
        out.write(_header(lengths))  # again once the lengths are known: it keeps its width
        for name in kept:
            out.write(b"--- %s\n" % name.encode())
            start = out.tell()
            part = parts[name]
            if isinstance(part, bytes):
                out.write(part)
            elif sizes[name]:  # an empty part is not opened: thousands of tasks feel it
                with contextlib.suppress(FileNotFoundError), part.open("rb") as source:
                    shutil.copyfileobj(source, out)
            lengths[name] = out.tell() - start
            out.write(b"\n")
        out.seek(0)
        out.write(_header(lengths))
    os.replace(temporary, target)
    return target


def keep_all(state_dir: Path, brought: Mapping[str, Sequence[Transfer]]) -> None:
    """`keep` for each task of `brought` (by task id: its logs as they were brought here)."""
    for task_id, parts in brought.items():
        keep(state_dir, task_id, {posixpath.basename(t.remote): t.local for t in parts})


def _header(lengths: Mapping[str, int]) -> bytes:
    return (
        _HEADER + b"".join(b" %s=%012d" % (n.encode(), size) for n, size in lengths.items()) + b"\n"
    )


def read(state_dir: Path, task_id: str, *, tail: bool = False) -> dict[str, str]:
    """Each log part of the task (empty when it has none); with `tail`, only the last 64 KB
    of each."""
    path = logs_file(state_dir, task_id)
    try:
        with path.open("rb") as file:
            return _parts(file, tail)
    except FileNotFoundError:
        return _legacy(local_copy(state_dir, task_id), tail)
    except (OSError, ValueError):
        return {}


def remove(state_dir: Path, task_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(logs_file(state_dir, task_id))
    legacy = local_copy(state_dir, task_id)
    if os.path.lexists(legacy):  # most projects never had one: no walk of nothing
        shutil.rmtree(legacy, ignore_errors=True)


def _parts(file: BinaryIO, tail: bool) -> dict[str, str]:
    header = file.readline().split()
    if header[:2] != _HEADER.split():
        raise ValueError("not a submitter logs file")
    texts: dict[str, str] = {}
    for entry in header[2:]:
        name, _, size = entry.decode().partition("=")
        length = int(size)
        file.readline()  # --- NAME
        start = file.tell()
        if tail and length > _TAIL_BYTES:
            file.seek(start + length - _TAIL_BYTES)
        texts[name] = file.read(start + length - file.tell()).decode("utf-8", errors="replace")
        file.readline()  # the part's closing newline
    return texts


def _legacy(directory: Path, tail: bool) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name in LOG_FILES:
        with contextlib.suppress(OSError), (directory / name).open("rb") as file:
            if tail:
                file.seek(max(0, file.seek(0, 2) - _TAIL_BYTES))
            texts[name] = file.read().decode("utf-8", errors="replace")
    return texts


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
