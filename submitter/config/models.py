"""Pydantic models of the YAML contract (see PRODUCT.md): hosts, defaults, tasks, resources."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    field_validator,
)

from submitter.units import parse_duration, parse_memory

SchedulerName = Literal["local", "ssh", "slurm", "pbs", "lsf"]
SCHEDULERS: tuple[str, ...] = ("local", "ssh", "slurm", "pbs", "lsf")
BATCH_SCHEDULERS: tuple[str, ...] = ("slurm", "pbs", "lsf")

Memory = Annotated[int, BeforeValidator(parse_memory)]
Duration = Annotated[int, BeforeValidator(parse_duration)]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line (it becomes a scheduler directive)")
    return value


def _scalar_text(value: Any) -> Any:
    """Accept numbers where YAML users naturally write them (`OMP_NUM_THREADS: 4`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


OneLine = Annotated[str, BeforeValidator(_scalar_text), BeforeValidator(_one_line)]
Text = Annotated[str, BeforeValidator(_scalar_text)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(Strict):
    """What a task asks of the scheduler; unset fields take the defaults' values."""

    cores: PositiveInt | None = None
    nodes: PositiveInt | None = None
    mem: Memory | None = None
    walltime: Duration | None = None
    queue: OneLine | None = None
    account: OneLine | None = None
    gpus: NonNegativeInt | None = None

    def overlay(self, other: Resources | None) -> Resources:
        """These resources with every field set in `other` replacing ours."""
        if other is None:
            return self
        return self.model_copy(update=other.model_dump(exclude_unset=True, exclude_none=True))


class Limits(Strict):
    """The most a single task may ask of a host; larger tasks are rejected before sending."""

    cores: PositiveInt | None = None
    nodes: PositiveInt | None = None
    mem: Memory | None = None
    walltime: Duration | None = None
    gpus: NonNegativeInt | None = None


class HostConfig(Strict):
    address: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    ssh_options: list[str] = Field(default_factory=list)
    scheduler: SchedulerName | None = None
    pack: str | None = None
    work_dir: str | None = None
    paths: dict[str, str] = Field(default_factory=dict)
    shared: list[str] = Field(default_factory=list)
    max_running: PositiveInt | None = None
    limits: Limits = Field(default_factory=Limits)
    poll_interval: Duration | None = None
    lost_after: Duration | None = None
    setup: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)

    @field_validator("paths")
    @classmethod
    def _absolute_prefixes(cls, value: dict[str, str]) -> dict[str, str]:
        for local, remote in value.items():
            if not local.startswith(("/", "~")) or not remote.startswith(("/", "~")):
                raise ValueError(f"path prefixes must be absolute: {local!r} -> {remote!r}")
        return value

    @field_validator("shared")
    @classmethod
    def _absolute_shared(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith(("/", "~")):
                raise ValueError(f"shared paths must be absolute: {path!r}")
        return value

    @property
    def kind(self) -> str:
        """The scheduler, defaulting to `ssh` for hosts with an address and `local` otherwise."""
        if self.scheduler:
            return self.scheduler
        return "ssh" if self.address else "local"


class HostsFile(Strict):
    hosts: dict[str, HostConfig] = Field(default_factory=dict)


def _env_names(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid environment variable name")
    return value


class Defaults(Strict):
    host: str | None = None
    resources: Resources | None = None
    interpreter: str | None = None
    env: dict[str, Text] = Field(default_factory=dict)
    directives: list[OneLine] = Field(default_factory=list)

    _check_env = field_validator("env")(_env_names)


class TaskSpec(Strict):
    """One task as written, after `for_each` expansion and `{{ var }}` substitution."""

    name: OneLine
    run: str
    host: str | None = None
    for_each: dict[str, list[Any]] | None = None
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    resources: Resources | None = None
    interpreter: str | None = None
    env: dict[str, Text] = Field(default_factory=dict)
    directives: list[OneLine] = Field(default_factory=list)

    _check_env = field_validator("env")(_env_names)

    @field_validator("name")
    @classmethod
    def _non_empty_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("inputs", "outputs")
    @classmethod
    def _non_empty_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.strip():
                raise ValueError("paths must not be empty")
        return value


class TasksFile(Strict):
    """The top level of a tasks file. Tasks are validated one by one after expansion."""

    hosts: dict[str, HostConfig] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    tasks: list[dict[str, Any]]
