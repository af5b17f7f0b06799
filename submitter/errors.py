"""The error hierarchy: each class maps to one CLI exit code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_TASKS_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_HOST_ERROR = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


class SubmitterError(Exception):
    """Root of every error submitter reports to the user."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Location:
    file: Path | str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


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
