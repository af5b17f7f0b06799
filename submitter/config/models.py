"""Pydantic models of the tasks file (README, "The YAML"): hosts, defaults, tasks, resources."""

from __future__ import annotations

import difflib
import posixpath
import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from submitter.globs import is_pattern, pattern_problem
from submitter.schedulers.pbs import FLAVORS as PBS_FLAVORS
from submitter.schedulers.registry import NAMES as BATCH_SCHEDULERS
from submitter.units import abridged_repr, parse_duration, parse_memory

# Hosts without a scheduler run processes; the rest come from the scheduler registry.
SCHEDULERS: tuple[str, ...] = ("local", "ssh", *BATCH_SCHEDULERS)


def _known_scheduler(value: str) -> str:
    if value not in SCHEDULERS:
        raise ValueError(f"expected one of {', '.join(SCHEDULERS)}, got {value!r}")
    return value


SchedulerName = Annotated[str, AfterValidator(_known_scheduler)]


def _known_pbs_flavor(value: str) -> str:
    if value not in PBS_FLAVORS:
        raise ValueError(f"expected one of {', '.join(PBS_FLAVORS)}, got {value!r}")
    return value


PbsFlavor = Annotated[str, AfterValidator(_known_pbs_flavor)]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Some rules hold for what users write but not for what the state store saved with
# `model_dump` (memory in bytes) or saved before the rule existed: those records must load.
_WRITTEN_BY_USER = {"written_by_user": True}

ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_written(model: type[ModelT], data: Any) -> ModelT:
    """Validate what a user wrote (a YAML file), with every rule for user input."""
    return model.model_validate(data, context=_WRITTEN_BY_USER)


def _written_by_user(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("written_by_user"))


def _memory(value: Any, info: ValidationInfo) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and not _written_by_user(info):
        return value
    return parse_memory(value)


def _not_bool(value: Any) -> Any:
    # Lax mode would read `cores: true` as 1.
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {str(value).lower()}")
    return value


Memory = Annotated[int, BeforeValidator(_memory)]
Duration = Annotated[int, BeforeValidator(parse_duration)]
Count = Annotated[PositiveInt, BeforeValidator(_not_bool)]
CountOrZero = Annotated[NonNegativeInt, BeforeValidator(_not_bool)]
# Cores, nodes and GPUs of one task: past any machine is a slip, refused rather than carried
# into an escalation.
MAX_RESOURCE_COUNT = 1_000_000
ResourceCount = Annotated[Count, Field(le=MAX_RESOURCE_COUNT)]
ResourceCountOrZero = Annotated[CountOrZero, Field(le=MAX_RESOURCE_COUNT)]
Port = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=65535)]


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line (it becomes a scheduler directive)")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _scalar_text(value: Any) -> Any:
    """Accept numbers where YAML users naturally write them (`OMP_NUM_THREADS: 4`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


OneLine = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_one_line)]
Text = Annotated[str, BeforeValidator(_scalar_text)]
# No numbers taken as text here: `name: 5` is more likely a slip than a name.
TaskName = Annotated[str, AfterValidator(_one_line), AfterValidator(_not_blank)]


def _stays_inside(path: str) -> str:
    """Relative paths mean the same place here and on the host only below the run directory."""
    if not path.strip():
        raise ValueError("paths must not be empty")
    normal = posixpath.normpath(path)
    if not path.startswith(("/", "~")) and (normal == ".." or normal.startswith("../")):
        raise ValueError(
            f"{path!r} leaves the run directory: a relative path must stay inside it; give a "
            "file elsewhere as an absolute path (on a remote host, under its 'paths' or 'shared')"
        )
    return path


def _well_formed_pattern(path: str) -> str:
    problem = pattern_problem(path) if is_pattern(path) else None
    if problem is not None:
        raise ValueError(problem)
    return path


InputPath = Annotated[str, AfterValidator(_stays_inside)]
OutputPath = Annotated[str, AfterValidator(_stays_inside), AfterValidator(_well_formed_pattern)]


def one_or_many(expected: str, *bare: type) -> BeforeValidator:
    """A list key that also takes its one item bare (`after: index` is `after: [index]`), an
    item being of a type in `bare` (default: text). Anything else is refused saying what the
    key takes, `expected` ("a path or a list of paths")."""
    kinds = bare or (str,)

    def listed(value: Any) -> Any:
        if value is None or isinstance(value, list):
            return value
        if isinstance(value, kinds) and not isinstance(value, bool):
            return [value]
        raise ValueError(f"expected {expected}, got {_given(value, text=str in kinds)}")

    return BeforeValidator(listed)


def _given(value: Any, *, text: bool) -> str:
    """A value a message quotes back, with the way to write it as text where text is taken."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool):
        return str(value).lower()
    shown = abridged_repr(value)
    if text and isinstance(value, int | float):
        return f'{shown}; quote it if you mean the text, as "{shown}"'
    return shown


Paths = one_or_many("a path or a list of paths")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(Strict):
    """What a task asks of the scheduler; unset fields take the defaults' values."""

    cores: ResourceCount | None = None
    nodes: ResourceCount | None = None
    mem: Memory | None = None
    walltime: Duration | None = None
    queue: OneLine | None = None
    account: OneLine | None = None
    gpus: ResourceCountOrZero | None = None

    def overlay(self, other: Resources | None) -> Resources:
        """These resources with every field set in `other` replacing ours."""
        if other is None:
            return self
        return self.model_copy(update=other.model_dump(exclude_unset=True, exclude_none=True))


class Limits(Strict):
    """The most a single task may ask of a host; larger tasks are rejected before sending."""

    cores: ResourceCount | None = None
    nodes: ResourceCount | None = None
    mem: Memory | None = None
    walltime: Duration | None = None
    gpus: ResourceCountOrZero | None = None


class HostConfig(Strict):
    address: str | None = None
    port: Port | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    ssh_options: Annotated[list[str], one_or_many("an ssh option or a list of ssh options")] = (
        Field(default_factory=list)
    )
    scheduler: SchedulerName | None = None
    pbs_flavor: PbsFlavor | None = None  # PBS hosts: pro | torque (default: detected)
    pack: str | None = None
    work_dir: str | None = None
    paths: dict[str, str] = Field(default_factory=dict)
    shared: Annotated[list[str], Paths] = Field(default_factory=list)
    max_running: Count | None = None
    max_array: Count | None = None  # most tasks in one job array (1: no arrays)
    max_per_job: Count | None = None  # most tasks in one packed job (1: none packed)
    max_queued: Count | None = None  # most of this run's scheduler jobs in the queue at once
    pack_under: Duration | None = None  # tasks with a walltime up to this are packed
    pack_walltime: Duration | None = None  # the longest walltime a packed job asks for
    pack_cores: Count | None = None  # the cores a packed job asks for (default: a node's)
    limits: Limits = Field(default_factory=Limits)
    poll_interval: Duration | None = None
    lost_after: Duration | None = None
    reconnect_for: Duration | None = None  # how long an unreachable host is waited for
    setup: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _flavor_of_pbs(self) -> HostConfig:
        if self.pbs_flavor is not None and self.scheduler != "pbs":
            raise ValueError(
                f"pbs_flavor is for hosts with scheduler: pbs, not {self.kind}: remove it"
            )
        return self

    @field_validator("work_dir")
    @classmethod
    def _absolute_work_dir(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or _is_remote_absolute(value) or not _written_by_user(info):
            return value
        raise ValueError(
            f"must be an absolute path or start with ~/ (the host's home), got {value!r}"
        )

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


def _is_remote_absolute(path: str) -> bool:
    """Absolute once the host's home replaces a leading `~` (`~user` is not expanded there)."""
    return path.startswith("/") or path == "~" or path.startswith("~/")


class HostsFile(Strict):
    hosts: dict[str, HostConfig] = Field(default_factory=dict)


def _env_names(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid environment variable name")
    return value


# What `retry_on` may name besides exit codes (submitter.retry.RETRY_CAUSES, kept here so
# the config does not depend on the engine's modules).
RETRY_CAUSES = ("timeout", "oom", "node_fail", "lost", "preempted")


def _retry_cause(value: Any) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 255:
            raise ValueError(f"exit code {value} is not between 1 and 255")
        return value
    if isinstance(value, str) and value in RETRY_CAUSES:
        return value
    word = str(value).lower() if isinstance(value, bool) else str(value)
    matches = difflib.get_close_matches(word, RETRY_CAUSES, n=1, cutoff=0.5)
    hint = f"; did you mean '{matches[0]}'?" if matches else ""
    raise ValueError(
        f"unknown cause {word!r}{hint} (expected one of {', '.join(RETRY_CAUSES)}, "
        "or an exit code 1-255)"
    )


RetryCause = Annotated[str | int, BeforeValidator(_retry_cause)]

# A retry asks at most this many times more than the attempt before it: past that it is a slip
# (`1e308`), and a bound keeps every escalated value a finite number.
MAX_FACTOR = 100
FACTOR_FORMS = f"a factor greater than 1 and at most {MAX_FACTOR}"


def _factor(value: Any) -> float:
    """A finite growth factor within (1, MAX_FACTOR]; NaN, infinities and 400 digits refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {FACTOR_FORMS}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        number = float("nan")
    if not 1 < number <= MAX_FACTOR:  # NaN compares false
        raise ValueError(f"expected {FACTOR_FORMS}, got {abridged_repr(value)}")
    return number


Factor = Annotated[float, BeforeValidator(_factor)]


class Escalate(Strict):
    """Each retry asks this many times more of a resource than the attempt before it."""

    cores: Factor | None = None
    mem: Factor | None = None
    walltime: Factor | None = None


RetryCauses = Annotated[
    list[RetryCause],
    one_or_many(
        f"a cause or an exit code, or a list of them (causes: {', '.join(RETRY_CAUSES)}; "
        "exit codes 1-255)",
        str,
        int,
    ),
]
Directives = Annotated[list[OneLine], one_or_many("a directive line or a list of them")]


class Retrying(Strict):
    """The retry keys, the same in `defaults` and in a task (the task's win)."""

    retries: CountOrZero | None = None
    retry_on: RetryCauses | None = None
    retry_delay: Duration | None = None  # before the second attempt; doubled each time after
    escalate: Escalate | None = None


class Defaults(Retrying):
    host: str | None = None
    resources: Resources | None = None
    interpreter: str | None = None
    env: dict[str, Text] = Field(default_factory=dict)
    directives: Directives = Field(default_factory=list)

    _check_env = field_validator("env")(_env_names)


class TaskSpec(Retrying):
    """One task as written, after `for_each` expansion and `{{ var }}` substitution."""

    name: TaskName
    run: str
    host: str | None = None
    for_each: dict[str, list[Any]] | None = None
    inputs: Annotated[list[InputPath], Paths] = Field(default_factory=list)
    outputs: Annotated[list[OutputPath], Paths] = Field(default_factory=list)
    resources: Resources | None = None
    interpreter: str | None = None
    env: dict[str, Text] = Field(default_factory=dict)
    directives: Directives = Field(default_factory=list)
    after: Annotated[list[TaskName], one_or_many("a task name or a list of task names")] = Field(
        default_factory=list
    )

    _check_env = field_validator("env")(_env_names)


# The most tasks one tasks file declares unless its `max_tasks` allows more: past it, a
# `for_each` product is more likely a slip (a list given twice) than a plan.
DEFAULT_MAX_TASKS = 1_000_000


class TasksFile(Strict):
    """The top level of a tasks file. Tasks are validated one by one after expansion."""

    max_tasks: Count = DEFAULT_MAX_TASKS
    hosts: dict[str, HostConfig] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    tasks: list[dict[str, Any]]
