"""Scheduler name -> scheduler, for the `scheduler:` key of a host."""

from __future__ import annotations

from collections.abc import Callable

from submitter.schedulers.base import BatchScheduler
from submitter.schedulers.lsf import Lsf
from submitter.schedulers.pbs import Pbs
from submitter.schedulers.sge import Sge
from submitter.schedulers.slurm import Slurm

_SCHEDULERS: dict[str, Callable[[], BatchScheduler]] = {
    "slurm": Slurm,
    "pbs": Pbs,
    "lsf": Lsf,
    "sge": Sge,
}

NAMES: tuple[str, ...] = tuple(sorted(_SCHEDULERS))


def batch_scheduler(name: str) -> BatchScheduler:
    """The scheduler called `name`; ValueError naming the valid ones otherwise."""
    factory = _SCHEDULERS.get(name)
    if factory is None:
        raise ValueError(f"unknown batch scheduler {name!r}; valid: {', '.join(NAMES)}")
    return factory()
