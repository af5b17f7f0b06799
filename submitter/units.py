"""Parsing of memory sizes and durations as users write them in YAML."""

from __future__ import annotations

import re

_MEM_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(I?B)?\s*$", re.IGNORECASE)
_CLOCK_RE = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2})(?::(\d{1,2}))?$")
_SUFFIX_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$", re.IGNORECASE)
_SUFFIX_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

MEMORY_FORMS = "a size such as 512M, 8G or 1T (units K, M, G, T; powers of 1024)"
# Schedulers read a bare number as megabytes (SLURM) or bytes (PBS): either guess would surprise.
_NO_UNIT = "has no unit; give a unit, as 4G or 4096M"
DURATION_FORMS = "a duration such as HH:MM:SS, D-HH:MM:SS, 90m, 2h or 30s"
# Past any machine and any queue: larger values are slips, and refusing them here keeps every
# later product (escalation, packing, clocks) a finite number.
MAX_MEMORY = 1024 * _MEM_UNITS["T"]
MAX_DURATION_DAYS = 3650
MAX_DURATION = MAX_DURATION_DAYS * _SUFFIX_SECONDS["d"]


def parse_memory(value: object) -> int:
    """Return a memory size in bytes; raise ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"expected {MEMORY_FORMS}")
    if isinstance(value, int | float):
        raise ValueError(f"{value} {_NO_UNIT}")
    match = _MEM_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not {MEMORY_FORMS}")
    if not match.group(2) and not match.group(3):
        raise ValueError(f"{value!r} {_NO_UNIT}")
    number, unit = float(match.group(1)), match.group(2).upper()
    if not number * _MEM_UNITS[unit] <= MAX_MEMORY:  # infinity too, from 400 digits
        raise ValueError(
            f"{abridged_repr(value)} is more than the largest size accepted, {format_memory(MAX_MEMORY)}"
        )
    size = int(number * _MEM_UNITS[unit])
    if size <= 0:
        raise ValueError(f"expected a positive size, {MEMORY_FORMS}")
    return size


def parse_duration(value: str | int) -> int:
    """Return a duration in seconds; bare integers are seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_FORMS}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"expected a positive duration, {DURATION_FORMS}")
        return _within_bound(value, value)
    text = str(value).strip()
    clock = _CLOCK_RE.match(text)
    if clock:
        days, first, second, third = clock.groups()
        if third is None:  # H:MM, as `2:30`
            hours, minutes, seconds = int(first), int(second), 0
        else:
            hours, minutes, seconds = int(first), int(second), int(third)
        if minutes >= 60 or seconds >= 60:
            raise ValueError(f"{value!r} has minutes or seconds over 59; expected {DURATION_FORMS}")
        total = int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
    else:
        suffix = _SUFFIX_RE.match(text)
        if not suffix:
            raise ValueError(f"{value!r} is not {DURATION_FORMS}")
        seconds_float = float(suffix.group(1)) * _SUFFIX_SECONDS[suffix.group(2).lower()]
        total = int(min(seconds_float, MAX_DURATION + 1))  # infinity too, from 400 digits
    if total <= 0:
        raise ValueError(f"expected a positive duration, {DURATION_FORMS}")
    return _within_bound(total, value)


def _within_bound(seconds: int, written: str | int) -> int:
    if seconds > MAX_DURATION:
        raise ValueError(
            f"{abridged_repr(written)} is longer than the longest duration accepted, "
            f"{MAX_DURATION_DAYS} days"
        )
    return seconds


def abridged_repr(written: object) -> str:
    """A value as the user wrote it, for a message: cut short when it runs to hundreds of
    digits."""
    text = repr(written)
    return text if len(text) <= 40 else f"{text[:30]}...{text[-5:]}"


def format_clock(seconds: int) -> str:
    """HH:MM:SS, hours unbounded (accepted by SLURM, PBS and as LSF's -W minutes base)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def format_memory(size: int) -> str:
    """Largest exact unit, as 8G or 1536M."""
    for unit in ("T", "G", "M", "K"):
        factor = _MEM_UNITS[unit]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def megabytes(size: int) -> int:
    """Memory in whole megabytes, rounded up: what scheduler directives take."""
    return -(-size // _MEM_UNITS["M"])


def format_span(seconds: float) -> str:
    """A duration as people say it: `45s`, `2m05s`, `1h10m`."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"
