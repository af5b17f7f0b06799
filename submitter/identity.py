"""Task identity: a content hash of everything that decides a task's result."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

ID_LENGTH = 16
_CHUNK = 1 << 20


def file_signature(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's sorted (relative path, content) pairs."""
    if path.is_dir():
        digest = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                member = Path(root) / name
                digest.update(str(member.relative_to(path)).encode() + b"\0")
                digest.update(file_signature(member).encode())
        return "dir:" + digest.hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def shared_signature(path: Path) -> str:
    """Shared paths may be huge or absent here: size and modification time, when visible."""
    try:
        info = path.stat()
    except OSError:
        return "unseen"
    return f"{info.st_size}:{info.st_mtime_ns}"


def task_id(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:ID_LENGTH]
