"""Where a task's files live on its host: run directory, path mapping, shared paths."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from submitter.config.models import HostConfig
from submitter.globs import glob_depth, is_pattern, strip_components


@dataclass(frozen=True)
class Transfer:
    """One file or directory to copy between this machine and the host."""

    local: Path
    remote: str


@dataclass(frozen=True)
class PlacedPath:
    """A declared input or output: the path the task uses and whether it is copied."""

    declared: str
    local: Path
    remote: str  # as the task sees it on the host (absolute)
    copied: bool  # False for paths under a shared prefix

    @property
    def pattern(self) -> bool:
        return is_pattern(self.declared)


@dataclass(frozen=True)
class OutputPattern:
    """A declared output pattern: the host lists its matches under `key` (the pattern as the
    wrapper has it), each a path below `base`; below `local_base` here and `remote_base` on
    the host is where one goes."""

    key: str
    base: str
    local_base: Path
    remote_base: str

    @classmethod
    def of(cls, key: str, local: Path, remote: str) -> OutputPattern:
        """From the pattern as the wrapper has it, and where it lies here and on the host."""
        depth = glob_depth(key)
        return cls(
            key,
            strip_components(key, depth),
            Path(strip_components(local.as_posix(), depth)),
            strip_components(remote, depth),
        )

    def transfer(self, match: str) -> Transfer | None:
        """Where a path the host reported goes; None for one that is not below the pattern's
        base (a status file is the host's word, not to be trusted to write anywhere here)."""
        below = _below(self.base, match)
        if below is None:
            return None
        return Transfer(self.local_base / below, posixpath.join(self.remote_base, below))


def _below(base: str, path: str) -> str | None:
    """`path` relative to `base`, if it lies strictly below it without `..`."""
    if not path or ".." in path.split("/"):
        return None
    if base:
        prefix = base.rstrip("/") + "/"
        if not path.startswith(prefix):
            return None
        path = path[len(prefix) :]
    elif path.startswith("/"):
        return None
    normal = posixpath.normpath(path)
    return None if normal in (".", "") or normal.startswith("/") else normal


class PathError(ValueError):
    """A path that cannot be placed on the host; the message says why."""


def _under(path: PurePosixPath, prefix: PurePosixPath) -> bool:
    return path == prefix or prefix in path.parents


def _expand(prefix: str) -> PurePosixPath:
    return PurePosixPath(posixpath.normpath(str(Path(prefix).expanduser())))


class PathMapper:
    """Maps local absolute paths to the host's, following its `paths` and `shared` settings."""

    def __init__(self, host: HostConfig, *, all_shared: bool = False) -> None:
        self._paths = sorted(
            ((_expand(local), remote.rstrip("/") or "/") for local, remote in host.paths.items()),
            key=lambda pair: len(str(pair[0])),
            reverse=True,
        )
        self._shared = [_expand(p) for p in host.shared]
        self._all_shared = all_shared  # the local host sees this machine's files as they are

    def is_shared(self, local: PurePosixPath) -> bool:
        return self._all_shared or any(_under(local, prefix) for prefix in self._shared)

    def mapped(self, local: PurePosixPath) -> str | None:
        for prefix, remote in self._paths:
            if _under(local, prefix):
                relative = local.relative_to(prefix)
                return remote if str(relative) == "." else posixpath.join(remote, str(relative))
        return None

    def place(self, declared: str, project_dir: Path, run_dir: str) -> PlacedPath:
        """Where a declared path is here and on the host.

        A relative path is below the run directory (the YAML models refuse `..` out of it).
        """
        expanded = os.path.expanduser(declared) if declared.startswith("~") else declared
        if not expanded.startswith("/"):
            normal = posixpath.normpath(declared)
            return PlacedPath(declared, project_dir / normal, posixpath.join(run_dir, normal), True)
        local = PurePosixPath(posixpath.normpath(expanded))
        if self.is_shared(local):
            return PlacedPath(declared, Path(local), str(local), False)
        remote = self.mapped(local)
        if remote is not None:
            return PlacedPath(declared, Path(local), remote, True)
        raise PathError(
            f"'{declared}' is outside the project directory and under none of the host's "
            "'paths' prefixes or 'shared' paths; add a mapping for it under the host's 'paths', "
            "or list its directory in 'shared' if the host sees it at the same path"
        )
