"""Automatic retries: which ended attempts are tried again, after how long, and with what
resources. Pure functions; the engine acts on them where an attempt ends."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from submitter.config.models import MAX_RESOURCE_COUNT, Limits, Resources, Retrying
from submitter.config.models import RETRY_CAUSES as NAMED_CAUSES
from submitter.schedulers.base import SiteLimits
from submitter.states import Cause
from submitter.units import MAX_DURATION, MAX_MEMORY

# The causes `retry_on` may name; an integer there is an exit code of the task itself.
RETRY_CAUSES: tuple[str, ...] = tuple(Cause(name).value for name in NAMED_CAUSES)
# The infrastructure's failures, not the task's: a timeout or an out-of-memory kill would
# only happen again with the same resources, so they are retried when the user lists them.
DEFAULT_RETRY_ON: tuple[str | int, ...] = (
    Cause.NODE_FAIL.value,
    Cause.LOST.value,
    Cause.PREEMPTED.value,
)
# A retry that asks more of a resource answers the failure that resource causes: escalating
# it retries that failure too, where `retry_on` is left to its default.
ANSWERED_BY: dict[str, str] = {"walltime": Cause.TIMEOUT.value, "mem": Cause.OUT_OF_MEMORY.value}
# What ends a series whatever `retry_on` says, as a failure's reason names it.
NEVER_RETRIED: dict[Cause, str] = {
    Cause.KILLED: "a kill",
    Cause.CANCELLED: "a cancellation",
    Cause.MISSING_OUTPUT: "a missing output",
    Cause.SUBMIT_ERROR: "a refused submission",
}
FIRST_DELAY = 5.0  # seconds before the second attempt; doubled for each one after it
MAX_DELAY = 300.0
ESCALATED = ("cores", "mem", "walltime")
# What an escalated attempt never asks past, whatever the host says: the most a tasks file
# may declare (checked at load), so every escalated value stays a finite number.
CEILINGS: dict[str, int] = {
    "cores": MAX_RESOURCE_COUNT,
    "mem": MAX_MEMORY,
    "walltime": MAX_DURATION,
}


@dataclass(frozen=True)
class RetryPolicy:
    """A task's `retries`, `retry_on`, `escalate` and `retry_delay`, defaults applied."""

    retries: int = 0
    retry_on: tuple[str | int, ...] = DEFAULT_RETRY_ON
    escalate: dict[str, float] = field(default_factory=dict)
    delay: float = FIRST_DELAY

    @property
    def attempts(self) -> int:
        """How many attempts the task may have in all."""
        return self.retries + 1

    def retries_after(self, number: int, cause: Cause, exit_code: int | None) -> bool:
        """Whether attempt `number`, ended for `cause` (with `exit_code`), is tried again."""
        if number >= self.attempts:
            return False
        if cause is Cause.EXIT_CODE:
            return exit_code is not None and exit_code in self.retry_on
        return cause.value in RETRY_CAUSES and cause.value in self.retry_on

    def attempt_note(self, number: int, cause: Cause, exit_code: int | None) -> str:
        """What a failed attempt's reason adds: that it was the last one, or why it was not
        retried though attempts were left."""
        if number >= self.attempts or self.retries_after(number, cause, exit_code):
            return f"attempt {number} of {self.attempts}"  # the second: a kill stopped it
        if cause is Cause.EXIT_CODE and exit_code is not None:
            return f"not retried: retry_on has no exit code {exit_code}"
        if cause.value in RETRY_CAUSES:
            return f"not retried: retry_on has no {cause.value}"
        if cause in NEVER_RETRIED:
            return f"not retried: {NEVER_RETRIED[cause]} is never retried"
        return f"attempt {number} of {self.attempts}, not retried"

    def delay_before(self, number: int) -> float:
        """Seconds to wait before attempt `number` (2 or more): doubling, capped (the
        doublings too, so that a thousandth attempt is no float overflow)."""
        return float(min(self.delay * 2.0 ** min(max(number - 2, 0), 30), MAX_DELAY))

    def unanswered_escalations(self) -> list[tuple[str, str]]:
        """Each escalated resource, with the cause it answers, whose cause `retry_on` leaves
        out: that escalation would never be used."""
        return [
            (name, cause)
            for name, cause in ANSWERED_BY.items()
            if name in self.escalate and cause not in self.retry_on
        ]

    def to_record(self) -> dict[str, Any]:
        """What the state store keeps, so `status` decides as `apply` would."""
        return {
            "retries": self.retries,
            "retry_on": list(self.retry_on),
            "escalate": dict(self.escalate),
            "delay": self.delay,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> RetryPolicy:
        if not record:
            return cls()
        return cls(
            int(record.get("retries", 0)),
            tuple(record.get("retry_on", DEFAULT_RETRY_ON)),
            dict(record.get("escalate", {})),
            float(record.get("delay", FIRST_DELAY)),
        )


def declared_retry_policy(task: Retrying, defaults: Retrying) -> RetryPolicy:
    """The policy of a task as written, each key taken from the task, else from defaults."""

    def pick(key: str) -> Any:
        value = getattr(task, key)
        return getattr(defaults, key) if value is None else value

    escalate = pick("escalate")
    factors = escalate.model_dump(exclude_none=True) if escalate else {}
    delay = pick("retry_delay")
    retry_on = pick("retry_on")
    if retry_on is None:
        retry_on = DEFAULT_RETRY_ON + tuple(c for n, c in ANSWERED_BY.items() if n in factors)
    return RetryPolicy(
        retries=pick("retries") or 0,
        retry_on=tuple(retry_on),
        escalate=factors,
        delay=float(delay) if delay else FIRST_DELAY,
    )


def escalated_resources(
    declared: Resources, policy: RetryPolicy, number: int, caps: dict[str, int | None]
) -> Resources:
    """The resources of attempt `number`: each escalated one times factor^(number-1),
    rounded up, no more than its cap nor its ceiling (but never less than declared)."""
    changes: dict[str, int] = {}
    for name, factor in policy.escalate.items():
        value = getattr(declared, name)
        if value is None or name not in ESCALATED:
            continue
        cap = caps.get(name)
        ceiling = CEILINGS[name] if cap is None else min(cap, CEILINGS[name])
        changes[name] = max(value, _grown(value, factor, number - 1, ceiling))
    return declared.model_copy(update=changes) if changes else declared


def _grown(value: int, factor: float, times: int, ceiling: int) -> int:
    """`value` times `factor`^`times`, rounded up, at most `ceiling`. Compared in logarithms
    first, so no factor and no number of attempts overflows; a factor that is NaN or not
    over 1 (a state store written before factors were bounded may hold one) grows nothing."""
    if not factor > 1 or times <= 0 or value <= 0:
        return value
    if value >= ceiling or math.log(value) + times * math.log(factor) >= math.log(ceiling):
        return ceiling
    return min(math.ceil(value * factor**times), ceiling)


def resource_caps(limits: Limits, site: SiteLimits) -> dict[str, int | None]:
    """The most an escalated attempt may ask: the host's `limits`, and what its scheduler
    says (the largest node's cores, the memory, the time limit), whichever is smaller where
    both say."""
    said = {"cores": site.max_node_cores, "mem": site.max_mem, "walltime": site.max_walltime}
    caps: dict[str, int | None] = {}
    for name, from_site in said.items():
        values = [v for v in (getattr(limits, name), from_site) if v is not None]
        caps[name] = min(values) if values else None
    return caps


def attempt_walltime(
    declared: int | None, policy: RetryPolicy, number: int, limits: Limits
) -> int | None:
    """The walltime attempt `number` asked for, as far as the host's limits tell (for an
    attempt an earlier run started: the scheduler's own limits are not read again for it)."""
    asked = escalated_resources(
        Resources(walltime=declared), policy, number, resource_caps(limits, SiteLimits())
    )
    return asked.walltime
