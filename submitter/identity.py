"""Task identity: a content hash of everything that decides a task's result."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

ID_LENGTH = 16
_CHUNK = 1 << 20


FileKey = tuple[str, int, int, int]  # path, size, mtime_ns, inode


class SignatureCache:
    """Content hashes of files already hashed, keyed by what changes when the file does.

    `known` comes from the state store; `added` holds what this run hashed, saved by the
    caller once the run is valid (a dry-run or a bad tasks file writes nothing).
    """

    def __init__(self, known: dict[FileKey, str] | None = None) -> None:
        self.known = known or {}
        self.added: dict[FileKey, str] = {}

    def file_digest(self, path: Path | str, info: os.stat_result | None = None) -> str:
        """The sha256 of a file; `info` is its stat, when the caller has it already."""
        info = info or os.stat(path)
        # Most paths arrive already resolved: look them up as given before paying for a
        # realpath (an lstat per component). Size, mtime and inode still decide a hit.
        cached = self._cached((os.fspath(path), info.st_size, info.st_mtime_ns, info.st_ino))
        if cached is not None:
            return cached
        key = (os.path.realpath(path), info.st_size, info.st_mtime_ns, info.st_ino)
        cached = self._cached(key)
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        self.added[key] = digest.hexdigest()
        return self.added[key]

    def _cached(self, key: FileKey) -> str | None:
        return self.known.get(key) or self.added.get(key)


def file_signature(
    path: Path | str,
    cache: SignatureCache | None = None,
    info: os.stat_result | None = None,
    leave_out: Callable[[str], bool] | None = None,
) -> str:
    """sha256 of a file's bytes, or of a directory's sorted (relative path, content) pairs;
    `info` is the path's stat, when the caller has it already. In a directory, the files and
    directories whose path `leave_out` answers True for are left out (a task's own outputs)."""
    cache = cache if cache is not None else SignatureCache()
    info = info or os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        digest = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            if leave_out is not None:
                dirs[:] = [d for d in dirs if not leave_out(os.path.join(root, d))]
                files = [f for f in files if not leave_out(os.path.join(root, f))]
            dirs.sort()
            for name in sorted(files):
                member = Path(root) / name
                digest.update(str(member.relative_to(Path(path))).encode() + b"\0")
                digest.update(cache.file_digest(member).encode())
        return "dir:" + digest.hexdigest()
    return cache.file_digest(path, info)


def shared_signature(path: Path) -> str:
    """Shared paths may be huge or absent here: size and modification time, when visible."""
    try:
        info = path.stat()
    except OSError:
        return "unseen"
    return f"{info.st_size}:{info.st_mtime_ns}"


# One encoder for every id: json.dumps with these arguments would make a new one each call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def task_id(fields: dict[str, Any]) -> str:
    return hashlib.sha256(_CANONICAL.encode(fields).encode()).hexdigest()[:ID_LENGTH]


# How the fields of an id read when they differ between two versions of a task.
_FIELD_NAMES = {
    "command": "command",
    "interpreter": "interpreter",
    "env": "env",
    "resources": "resources",
    "directives": "directives",
    "host": "host",
    "setup": "host setup",
    "outputs": "declared outputs",
    "upstream": "upstream",
}


def fingerprint(fields: dict[str, Any]) -> dict[str, Any]:
    """A short hash of each field of a task's id, and of each input's signature: kept with the
    task, to say later what changed when its id does."""
    kept: dict[str, Any] = {name: _short(value) for name, value in fields.items()}
    kept["inputs"] = {declared: _short(signature) for declared, signature in fields["inputs"]}
    return kept


def what_changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, said for a person: `input data/a.txt changed`."""
    said: list[str] = []
    old_inputs, new_inputs = before.get("inputs", {}), now.get("inputs", {})
    for declared, signature in new_inputs.items():
        if declared not in old_inputs:
            said.append(f"input {declared} added")
        elif old_inputs[declared] != signature:
            said.append(f"input {declared} changed")
    said += [f"input {declared} removed" for declared in old_inputs if declared not in new_inputs]
    for field, name in _FIELD_NAMES.items():
        if before.get(field) != now.get(field):
            said.append(f"{name} changed")
    return said


def _short(value: Any) -> str:
    return hashlib.sha256(_CANONICAL.encode(value).encode()).hexdigest()[:12]
