"""Load a tasks file into validated, expanded task definitions and their hosts."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from submitter.config import dependencies
from submitter.config.dependencies import After
from submitter.config.diagnostics import closest_key, config_errors
from submitter.config.expand import combinations, substitute
from submitter.config.locations import DEFAULT_TASKS_FILE, HOSTS_FILE, user_config_dir
from submitter.config.models import (
    Defaults,
    HostConfig,
    HostsFile,
    Resources,
    Retrying,
    TasksFile,
    TaskSpec,
    validate_written,
)
from submitter.config.task_cap import check_task_count
from submitter.config.yamlfile import YamlDocument, load_yaml, to_plain
from submitter.errors import ConfigError, ConfigErrors, Location
from submitter.retry import RetryPolicy, declared_retry_policy

LOCAL_HOST = "local"
DEFAULT_INTERPRETER = "bash"
DEFAULT_RESOURCES = Resources(cores=1, nodes=1, gpus=0)


@dataclass(frozen=True)
class HostEntry:
    name: str
    config: HostConfig
    location: Location | None  # None for the built-in local host


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """A task after expansion, defaults applied and host chosen; not yet bound to paths.
    The tasks of one `for_each` product share what they have alike (env, resources, retry
    policy): a million of them are kept at once."""

    name: str
    run: str
    host: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    resources: Resources
    interpreter: str
    env: dict[str, str]
    directives: tuple[str, ...]
    location: Location
    after: tuple[After, ...] = ()  # as written
    upstream: tuple[str, ...] = ()  # the tasks it runs after: named in `after`, or implied
    derived_inputs: tuple[str, ...] = ()  # inputs (as declared) that upstream tasks produce
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # not part of the task's id


@dataclass(frozen=True)
class Project:
    tasks_file: Path
    directory: Path
    hosts: dict[str, HostEntry]
    tasks: list[TaskDefinition]


def load_project(tasks_file: Path, host_override: str | None = None) -> Project:
    """Read, validate and expand `tasks_file`; every problem found raises ConfigErrors."""
    doc = _read_tasks_file(tasks_file)
    tasks_file = doc.path
    errors: list[ConfigError] = []
    try:
        top = validate_written(TasksFile, to_plain(doc.root))
    except ValidationError as exc:
        # Report these, then keep checking the tasks against what is valid, so one run
        # shows every mistake in the file.
        errors.extend(config_errors(exc, doc, TasksFile))
        salvaged = _salvage(doc)
        if salvaged is None:  # hosts or the tasks list itself are broken: nothing to go on
            raise ConfigErrors(errors) from None
        top = salvaged

    try:
        check_task_count(doc, doc.root.get("tasks") or [], top.max_tasks)
    except ConfigError as exc:
        raise ConfigErrors([*errors, exc]) from None
    errors.extend(_escalations_never_used(doc, top.defaults, Defaults(), ("defaults",), "defaults"))
    hosts = _collect_hosts([(doc, top.hosts)], tasks_file.parent)
    default_host = top.defaults.host or LOCAL_HOST
    default_host_loc = doc.locate(("defaults", "host"))
    if host_override is not None:
        _require_host(host_override, hosts, None, "given with -q")
        default_host, default_host_loc = host_override, Location("-q", 1, 1)
    elif top.defaults.host is not None:
        try:
            _require_host(default_host, hosts, default_host_loc, "in defaults.host")
        except ConfigError as exc:
            errors.append(exc)
            default_host = LOCAL_HOST  # checked above; keep validating the tasks

    tasks = _expand_all(doc, top.defaults, hosts, (default_host, default_host_loc), errors)
    if not errors and not tasks:
        errors.append(
            ConfigError("no tasks: 'tasks' must list at least one task", doc.locate(("tasks",)))
        )
    if not errors:
        tasks = _with_upstream(tasks, tasks_file.parent, errors)
    if errors:
        raise ConfigErrors(errors)
    return Project(tasks_file, tasks_file.parent, hosts, tasks)


def _expand_all(
    doc: YamlDocument,
    defaults: Defaults,
    hosts: dict[str, HostEntry],
    default_host: tuple[str, Location | None],
    errors: list[ConfigError],
) -> list[TaskDefinition]:
    """Every task of the file expanded, each checked for its host, name and outputs; the
    errors found are added to `errors`. (The names and outputs taken are let go on return,
    before the tasks are linked.)"""
    tasks: list[TaskDefinition] = []
    claims = _Claims(doc.path.parent)
    for index, raw in enumerate(doc.root.get("tasks") or []):
        host_loc = doc.locate(("tasks", index, "host")) if _names_host(raw) else default_host[1]
        located: dict[int, Location] = {}  # one Location for each output of all expanded
        try:
            for task in _expand_task(doc, index, raw, defaults, default_host[0]):
                _require_host(task.host, hosts, host_loc, f"in task '{task.name}'")
                for i in range(len(located), len(task.outputs)):
                    located[i] = doc.locate(("tasks", index, "outputs", i))
                claims.take(task, [located[i] for i in range(len(task.outputs))])
                tasks.append(task)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        except ConfigError as exc:
            errors.append(exc)
    return tasks


def _with_upstream(
    tasks: list[TaskDefinition], directory: Path, errors: list[ConfigError]
) -> list[TaskDefinition]:
    links, found = dependencies.link(
        [t.name for t in tasks],
        [t.after for t in tasks],
        [t.inputs for t in tasks],
        [t.outputs for t in tasks],
        [t.location for t in tasks],
        directory,
    )
    errors.extend(found)
    for i, link in links.items():
        tasks[i] = replace(tasks[i], upstream=link.upstream, derived_inputs=link.derived_inputs)
    return tasks


def _names_host(raw: Any) -> bool:
    return isinstance(raw, dict) and "host" in raw


@dataclass
class _Claims:
    """Task names and output files that earlier tasks took, and where they did."""

    directory: Path
    names: dict[str, Location] = field(default_factory=dict)
    outputs: dict[str, tuple[str, Location]] = field(default_factory=dict)

    def take(self, task: TaskDefinition, output_locations: list[Location]) -> None:
        """Record the task's name and outputs; ConfigError if another task has one of them."""
        if task.name in self.names:
            raise ConfigError(
                f"duplicate task name '{task.name}' (first defined at {self.names[task.name]}); "
                "names must be unique, use {{ var }} in the name of a for_each task",
                task.location,
            )
        files = [self._file(output) for output in task.outputs]
        for output, file, where in zip(task.outputs, files, output_locations, strict=True):
            self._check_output_free(task.name, output, file, where)
        self.names[task.name] = task.location
        for file, where in zip(files, output_locations, strict=True):
            self.outputs[file] = (task.name, where)

    def _file(self, output: str) -> str:
        """The output's path here, so `a.txt`, `./a.txt` and its absolute path are one file."""
        return posixpath.normpath(posixpath.join(str(self.directory), os.path.expanduser(output)))

    def _check_output_free(self, name: str, output: str, file: str, where: Location) -> None:
        owner = self.outputs.get(file)
        if owner is None or owner[0] == name:
            return
        first, first_where = owner
        hint = ", use {{ var }} in the outputs of a for_each task" if first_where == where else ""
        raise ConfigError(
            f"task '{name}': output '{output}' is also an output of task '{first}' "
            f"(at {first_where}); each file can be the output of one task only{hint}",
            where,
        )


def _read_tasks_file(tasks_file: Path) -> YamlDocument:
    tasks_file = tasks_file.resolve() if tasks_file.exists() else tasks_file
    if tasks_file.is_dir():
        raise ConfigError(_directory_given(tasks_file))
    doc = load_yaml(tasks_file)
    if not isinstance(doc.root, dict):
        raise ConfigError("expected a mapping with a 'tasks' list at the top level", doc.locate(()))
    return doc


def _directory_given(directory: Path) -> str:
    inside = directory / DEFAULT_TASKS_FILE
    hint = f"; did you mean {inside}?" if inside.is_file() else ""
    return f"{directory}: is a directory, not a tasks file{hint}"


def _salvage(doc: YamlDocument) -> TasksFile | None:
    """The tasks file without its `defaults`, when only those (or unknown top keys) failed."""
    plain = to_plain(doc.root)
    defaults = plain.get("defaults")
    host = defaults.get("host") if isinstance(defaults, dict) else None
    kept = {"host": host} if isinstance(host, str) else {}
    salvaged = {"hosts": plain.get("hosts") or {}, "defaults": kept, "tasks": plain.get("tasks")}
    cap = plain.get("max_tasks")
    if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
        salvaged["max_tasks"] = cap
    try:
        return validate_written(TasksFile, salvaged)
    except ValidationError:
        return None


def load_hosts(tasks_file: Path | None) -> dict[str, HostEntry]:
    """The hosts a host command sees: the tasks file's (the one given, else ./tasks.yml if
    there is one), hosts.yml beside it, then the user's.

    Only the hosts are validated: a mistake in a task does not stop checking a host.
    """
    here = Path.cwd() / DEFAULT_TASKS_FILE
    if tasks_file is None and here.is_file():
        tasks_file = here
    if tasks_file is None:
        return _collect_hosts([], Path.cwd())
    doc = _read_tasks_file(tasks_file)
    return _collect_hosts([(doc, _hosts_section(doc))], doc.path.parent)


def _hosts_section(doc: YamlDocument) -> dict[str, HostConfig]:
    section = {"hosts": to_plain(doc.root.get("hosts")) or {}}
    try:
        return validate_written(HostsFile, section).hosts
    except ValidationError as exc:
        raise ConfigErrors(config_errors(exc, doc, HostsFile)) from None


def _collect_hosts(
    declared: list[tuple[YamlDocument, dict[str, HostConfig]]], directory: Path
) -> dict[str, HostEntry]:
    """Hosts from the tasks file, then hosts.yml beside it, then the user's config; first wins."""
    hosts: dict[str, HostEntry] = {}
    sources = list(declared)
    for path in (directory / HOSTS_FILE, user_config_dir() / HOSTS_FILE):
        if path.is_file():
            sources.append(_load_hosts_file(path))
    for source, entries in sources:
        for name, config in entries.items():
            if name not in hosts:
                hosts[name] = HostEntry(name, config, source.locate(("hosts", name), key=True))
    if LOCAL_HOST not in hosts:
        hosts[LOCAL_HOST] = HostEntry(LOCAL_HOST, HostConfig(scheduler="local"), None)
    elif hosts[LOCAL_HOST].config.kind != "local":
        raise ConfigError("the host 'local' must have scheduler: local", hosts[LOCAL_HOST].location)
    return hosts


def _load_hosts_file(path: Path) -> tuple[YamlDocument, dict[str, HostConfig]]:
    doc = load_yaml(path)
    if not isinstance(doc.root, dict):
        raise ConfigError("expected a mapping with a 'hosts' section", doc.locate(()))
    try:
        return doc, validate_written(HostsFile, to_plain(doc.root)).hosts
    except ValidationError as exc:
        raise ConfigErrors(config_errors(exc, doc, HostsFile)) from None


def _require_host(
    name: str, hosts: dict[str, HostEntry], where: Location | None, context: str
) -> None:
    if name in hosts:
        return
    hint = closest_key(name, list(hosts))
    suggestion = f"; did you mean '{hint}'?" if hint else ""
    message = (
        f"unknown host '{name}' {context}{suggestion} (known hosts: {', '.join(sorted(hosts))}; "
        "hosts come from the tasks file's 'hosts:', hosts.yml beside it, "
        f"and {user_config_dir() / 'hosts.yml'})"
    )
    raise ConfigError(message, where)


def _expand_task(
    doc: YamlDocument,
    index: int,
    raw: Any,
    defaults: Defaults,
    default_host: str,
) -> list[TaskDefinition]:
    base: tuple[str | int, ...] = ("tasks", index)
    where = doc.locate(base)
    if not isinstance(raw, dict):
        raise ConfigError("expected a task: a mapping with at least 'name' and 'run'", where)
    plain = to_plain(raw)
    for_each = plain.pop("for_each", None)
    if for_each is None:
        for_each = {}
    if not isinstance(for_each, dict) or not all(
        isinstance(values, list) and values for values in for_each.values()
    ):
        raise ConfigError(
            "for_each: expected a mapping of variable names to non-empty lists, "
            "as {sample: [a, b]}",
            doc.locate((*base, "for_each")),
        )

    def locate(loc: tuple[str | int, ...]) -> Location:
        return doc.locate(base + loc)

    expanded: list[TaskDefinition] = []
    alike = _Alike(defaults)
    for variables in combinations(for_each):
        values = substitute(plain, variables, locate)
        try:
            spec = validate_written(TaskSpec, values)
        except ValidationError as exc:
            label = _label(values.get("name"), index)
            raise ConfigErrors(
                config_errors(exc, doc, TaskSpec, base, what=f"task '{label}'")
            ) from None
        label = f"task '{spec.name}'"
        unused = _escalations_never_used(doc, spec, defaults, base, label)
        if unused:
            raise ConfigErrors(unused)
        after = tuple(
            After(
                pattern, locate(("after", i) if isinstance(raw.get("after"), list) else ("after",))
            )
            for i, pattern in enumerate(spec.after)
        )
        expanded.append(alike.definition(spec, default_host, where, after))
    return expanded


_FAILURES = {"timeout": "a timeout", "oom": "an out-of-memory kill"}


def _escalations_never_used(
    doc: YamlDocument,
    written: Retrying,
    defaults: Retrying,
    base: tuple[str | int, ...],
    what: str,
) -> list[ConfigError]:
    """An `escalate` of a resource whose failure `retry_on` (as written) leaves out. Checked
    where one of the two keys is written: in `defaults` once, in a task that writes either."""
    if written.retry_on is None and written.escalate is None:
        return []

    def where(key: str) -> tuple[str | int, ...]:
        return (*base, key) if getattr(written, key) is not None else ("defaults", key)

    return [
        ConfigError(
            f"{what}: retry_on does not list {cause}, yet escalate.{resource} "
            f"(at {doc.locate((*where('escalate'), resource))}) asks more {resource} of a retry "
            f"after {_FAILURES[cause]}: add {cause} to retry_on (a retry_on left out has it)",
            doc.locate(where("retry_on")),
        )
        for resource, cause in declared_retry_policy(written, defaults).unanswered_escalations()
    ]


def _label(name: Any, index: int) -> str:
    """How an error names a task: its name when that is usable, else its position."""
    if isinstance(name, str) and name.strip() and "\n" not in name and "\r" not in name:
        return name
    return f"#{index + 1}"


class _Alike:
    """Makes the definitions of one task entry, sharing among them what they have alike."""

    def __init__(self, defaults: Defaults) -> None:
        self.defaults = defaults
        self.directives = tuple(defaults.directives)
        self.policies: dict[tuple[Any, ...], RetryPolicy] = {}
        self.resources: dict[Resources | None, Resources] = {}

    def definition(
        self, spec: TaskSpec, default_host: str, where: Location, after: tuple[After, ...]
    ) -> TaskDefinition:
        defaults = self.defaults
        return TaskDefinition(
            name=spec.name,
            run=spec.run,
            host=spec.host or default_host,
            inputs=tuple(spec.inputs),
            outputs=tuple(spec.outputs),
            resources=self._resources(spec.resources),
            interpreter=spec.interpreter or defaults.interpreter or DEFAULT_INTERPRETER,
            env={**defaults.env, **spec.env} if spec.env else defaults.env,
            directives=self.directives + tuple(spec.directives)
            if spec.directives
            else self.directives,
            location=where,
            after=after,
            retry=self._policy(spec),
        )

    def _resources(self, written: Resources | None) -> Resources:
        if written not in self.resources:
            overlaid = DEFAULT_RESOURCES.overlay(self.defaults.resources).overlay(written)
            self.resources[written] = overlaid
        return self.resources[written]

    def _policy(self, spec: TaskSpec) -> RetryPolicy:
        retry_on = tuple(spec.retry_on) if spec.retry_on is not None else None
        key = (spec.retries, retry_on, spec.retry_delay, spec.escalate)
        if key not in self.policies:
            self.policies[key] = declared_retry_policy(spec, self.defaults)
        return self.policies[key]
