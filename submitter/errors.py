"""The error hierarchy: each class maps to one CLI exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_TASKS_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_HOST_ERROR = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that stopped early


class SubmitterError(Exception):
    """Root of every error submitter reports to the user."""

    exit_code = EXIT_BAD_INPUT


class Location:
    """A place in a file: 1-based line and column."""

    def __init__(self, file: Path | str, line: int, column: int) -> None:
        self._where: tuple[Path | str, int, int] | None = (file, line, column)

    def _place(self) -> tuple[Path | str, int, int]:
        assert self._where is not None
        return self._where

    @property
    def file(self) -> Path | str:
        return self._place()[0]

    @property
    def line(self) -> int:
        return self._place()[1]

    @property
    def column(self) -> int:
        return self._place()[2]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and self._place() == other._place()

    def __hash__(self) -> int:
        return hash(self._place())

    def __repr__(self) -> str:
        return f"Location({self.file!r}, {self.line}, {self.column})"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class PendingLocation(Location):
    """A Location worked out when first read: most are never read, and finding one in a
    YAML file costs a second, slower parse of it."""

    def __init__(self, resolve: Callable[[], Location]) -> None:
        self._where = None
        self._resolve = resolve

    def _place(self) -> tuple[Path | str, int, int]:
        if self._where is None:
            self._where = self._resolve()._place()
        return self._where


class ConfigError(SubmitterError):
    """Bad input in a YAML file, with the place it was found."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class ConfigErrors(SubmitterError):
    """Several configuration errors found in one pass, reported together."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class UsageError(SubmitterError):
    """Bad command-line arguments (unknown task, missing state store, ...)."""

    exit_code = EXIT_BAD_INPUT


class TemplateError(SubmitterError):
    """A template pack is missing, incompatible or failed to render."""

    exit_code = EXIT_BAD_INPUT


class HostError(SubmitterError):
    """A host could not be reached or a remote command failed."""

    exit_code = EXIT_HOST_ERROR


class SchedulerUnavailable(HostError):
    """The host answers, but its scheduler does not (restarting, overloaded)."""


# The `error` of a JSON error document, by exit code.
ERROR_KINDS = {
    EXIT_BAD_INPUT: "bad_input",
    EXIT_HOST_ERROR: "host_error",
    EXIT_INTERRUPTED: "interrupted",
}


def error_document(exc: BaseException, exit_code: int) -> dict[str, Any]:
    """What `--json` prints on stdout when a command fails: the kind, the exit code, and each
    error with its place in a YAML file when it has one (file, line and column, else null)."""
    items = exc.errors if isinstance(exc, ConfigErrors) else [exc]
    return {
        "error": ERROR_KINDS.get(exit_code, "interrupted" if exit_code > 128 else "error"),
        "exit_code": exit_code,
        "errors": [_error_item(item) for item in items],
    }


def _error_item(exc: BaseException) -> dict[str, Any]:
    location = exc.location if isinstance(exc, ConfigError) else None
    message = exc.message if isinstance(exc, ConfigError) else str(exc) or type(exc).__name__
    return {
        "file": str(location.file) if location else None,
        "line": location.line if location else None,
        "column": location.column if location else None,
        "message": message,
    }
