"""Markers written on this machine in `shared` paths, for the host (or a node) to read back."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SharedMarkers:
    token: str
    written: dict[str, Path] = field(default_factory=dict)  # shared path -> marker here
    failed: dict[str, str] = field(default_factory=dict)  # shared path -> why not written

    def name(self) -> str:
        return f".submitter-shared-check-{self.token}"


@contextmanager
def shared_markers(shared: Sequence[str], token: str | None = None) -> Iterator[SharedMarkers]:
    """Write one marker holding the token in each shared path; remove them all afterwards."""
    markers = SharedMarkers(token or secrets.token_hex(8))
    try:
        for path in shared:
            marker = Path(path).expanduser() / markers.name()
            try:
                marker.write_text(markers.token)
            except OSError as exc:
                markers.failed[path] = f"cannot write a marker here: {exc.strerror or exc}"
                continue
            markers.written[path] = marker
        yield markers
    finally:
        for marker in markers.written.values():
            marker.unlink(missing_ok=True)
