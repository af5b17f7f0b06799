"""`status --state`: the state names a user may filter on, read from the command line.
Kept free of heavy imports: argparse and shell completion use it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from submitter.states import ACTIVE, FINAL, TaskState

# Besides each state: the groups a person asks for ("what is still going", "what ended").
GROUPS: dict[str, frozenset[str]] = {"active": ACTIVE, "final": FINAL}
STATE_NAMES: tuple[str, ...] = (*(s.value for s in TaskState), *GROUPS)


def parse_states(text: str) -> list[str]:
    """One `--state` value: a state, a group, or a comma list of them. ValueError names the
    nearest valid name."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("expected a state name")
    for name in names:
        if name not in STATE_NAMES:
            near = difflib.get_close_matches(name, STATE_NAMES, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ValueError(f"unknown state '{name}'{hint} (states: {', '.join(STATE_NAMES)})")
    return names


def expand(names: Iterable[str]) -> frozenset[str]:
    """The states the names mean, groups spelled out."""
    states: set[str] = set()
    for name in names:
        states |= GROUPS.get(name, {name})
    return frozenset(states)
