"""A temporary directory made only when a file is first put in it, and removed at the end of
its `with`: a step on this machine, which writes and reads every file in place, makes none
(a directory made and removed costs a host of short tasks as much as a file)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType


class Scratch:
    def __init__(self, prefix: str, parent: Path | None = None) -> None:
        self._prefix, self._parent = prefix, parent
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        """The directory, made now if it was not yet."""
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix=self._prefix, dir=self._parent))
        return self._path

    def __enter__(self) -> Scratch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None
