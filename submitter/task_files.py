"""A finished task's files: which come back here, and writing and removing them on this
machine."""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from submitter.paths import Transfer
from submitter.run_state import Tracked


def produced(tracked: Tracked, status: dict[str, Any]) -> tuple[list[Transfer], list[str]]:
    """What a completed task's outputs are: its declared files and what the host says its
    patterns matched (a directory and what lies in it come back once); and the patterns the
    host reported no match for."""
    reported = status.get("matched")
    matched = reported if isinstance(reported, dict) else {}
    outputs = list(tracked.outputs)
    unmatched = []
    for pattern in tracked.patterns:
        paths = matched.get(pattern.key)
        listed = paths if isinstance(paths, list) else []
        found = [pattern.transfer(p) for p in listed if isinstance(p, str)]
        if not any(found):
            unmatched.append(f"{pattern.key} (no match reported)")
        outputs += [t for t in found if t is not None]
    return outermost(outputs), unmatched


def outermost(transfers: list[Transfer]) -> list[Transfer]:
    """Each transfer once, leaving out those inside another (a directory comes back whole)."""
    remotes = {t.remote.rstrip("/") for t in transfers}
    kept: dict[str, Transfer] = {}
    for transfer in transfers:
        remote = transfer.remote.rstrip("/")
        if remote not in kept and not any(a in remotes for a in _ancestors(remote)):
            kept[remote] = transfer
    return list(kept.values())


def _ancestors(path: str) -> Iterable[str]:
    parent = posixpath.dirname(path)
    while parent not in (path, ""):
        yield parent
        path, parent = parent, posixpath.dirname(parent)


def remove_tree(path: Path | str) -> None:
    """Remove a directory and all in it; what cannot be removed stays. A task directory
    holds files only, most often: those are unlinked without shutil's checks of each."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def empty_or_absent(path: str) -> bool:
    """A file of this machine that is empty or not there."""
    try:
        return os.stat(path).st_size == 0
    except OSError:
        return True


def write_new(path: str, text: str) -> None:
    """Write a file as a new one: an earlier attempt still reading the old file (a wrapper
    reading its job.sh) keeps reading that one."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
