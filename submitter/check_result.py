"""One row of check-host's table: passed, warned or failed, and the fix for the last two."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    # A warning does not fail the host (`ok` stays True) but, like a failure, shows its fix.
    warning: bool = False

    def __post_init__(self) -> None:
        if self.ok and not self.warning and self.fix:
            object.__setattr__(self, "fix", "")  # a row that passes needs no fix

    @property
    def result(self) -> str:
        if not self.ok:
            return "failed"
        return "warning" if self.warning else "ok"
