"""Step 1 of apply: bind each task to its host, compute its id and render its files."""

from __future__ import annotations

import shlex
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from submitter.config.models import HostConfig, Resources
from submitter.config.project import HostEntry, Project, TaskDefinition
from submitter.errors import ConfigError, ConfigErrors, SubmitterError, TemplateError
from submitter.identity import SignatureCache, file_signature, shared_signature, task_id
from submitter.paths import PathError, PathMapper, PlacedPath
from submitter.render.compile import JobSpec, RenderedJob, render_job
from submitter.render.packs import DEFAULT_PACK_FOR, Pack, find_pack, pack_chain
from submitter.units import format_clock, format_memory

REMOTE_DEFAULT_WORK_DIR = "~/.submitter/work"


@dataclass(frozen=True)
class PreparedTask:
    definition: TaskDefinition
    host: HostEntry
    task_id: str
    task_dir: str
    run_dir: str
    inputs: tuple[PlacedPath, ...]
    outputs: tuple[PlacedPath, ...]
    spec: JobSpec  # what is rendered, kept to render a group's driver from it
    chain: tuple[Pack, ...]

    @cached_property
    def rendered(self) -> RenderedJob:
        """The task's files from its pack, rendered when first asked for (prepare_tasks asks
        at once, but for tasks that completed earlier: one found up to date never is)."""
        return render_job(self.spec, list(self.chain))

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def kind(self) -> str:
        return self.host.config.kind


def default_work_dir(host: HostConfig, project_dir: Path) -> str:
    if host.work_dir:
        return host.work_dir
    if host.kind == "local":
        return str(project_dir / ".submitter" / "work")
    return REMOTE_DEFAULT_WORK_DIR


def needs_home(host: HostConfig, project_dir: Path) -> bool:
    """Whether rendering for this host needs the remote home directory (`~` in its paths)."""
    remote_paths = [default_work_dir(host, project_dir), *host.paths.values()]
    return host.kind != "local" and any(p == "~" or p.startswith("~/") for p in remote_paths)


def resolve_home(path: str, home: str | None) -> str:
    """Expand a leading `~` with the host's home, when it is known (not in dry-run)."""
    if home is None or not (path == "~" or path.startswith("~/")):
        return path
    return home.rstrip("/") + path[1:]


def select_pack(entry: HostEntry, project_dir: Path) -> list[Pack]:
    spec = entry.config.pack or DEFAULT_PACK_FOR[entry.config.kind]
    try:
        return pack_chain(find_pack(spec, project_dir), project_dir)
    except TemplateError as exc:
        where = f"{entry.location}: " if entry.location else ""
        raise TemplateError(f"{where}host '{entry.name}': {exc}") from None


def prepare_tasks(
    project: Project,
    homes: dict[str, str] | None = None,
    *,
    check_inputs: bool = True,
    signatures: SignatureCache | None = None,
    only: set[str] | None = None,
    done: Collection[str] = (),
) -> list[PreparedTask]:
    """Prepare every task (or those named in `only`), collecting all errors before raising
    (nothing is half-done). Tasks whose id is in `done` (completed earlier) are rendered
    only if they are used: re-applying thousands of finished tasks renders none of them."""
    homes = homes or {}
    signatures = signatures if signatures is not None else SignatureCache()
    chains: dict[str, list[Pack]] = {}
    prepared: list[PreparedTask] = []
    errors: list[ConfigError] = []
    for definition in project.tasks:
        if only is not None and definition.name not in only:
            continue
        entry = project.hosts[definition.host]
        try:
            if entry.name not in chains:
                chains[entry.name] = select_pack(entry, project.directory)
            task = prepare_task(
                definition,
                entry,
                project.directory,
                chains[entry.name],
                homes.get(entry.name),
                check_inputs=check_inputs,
                signatures=signatures,
            )
            if task.task_id not in done:
                task.rendered  # noqa: B018 (template errors now, before anything is written)
            prepared.append(task)
        except ConfigError as exc:
            errors.append(exc)
        except TemplateError:
            raise
    if errors:
        raise ConfigErrors(errors)
    return prepared


def prepare_task(
    definition: TaskDefinition,
    entry: HostEntry,
    project_dir: Path,
    chain: list[Pack],
    home: str | None,
    *,
    check_inputs: bool = True,
    signatures: SignatureCache | None = None,
) -> PreparedTask:
    host = entry.config
    if home is not None:
        host = host.model_copy(
            update={"paths": {k: resolve_home(v, home) for k, v in host.paths.items()}}
        )
    where = definition.location
    _check_limits(definition, entry)
    mapper = PathMapper(host, all_shared=host.kind == "local")
    work_dir = resolve_home(default_work_dir(host, project_dir), home)
    try:
        interpreter = tuple(shlex.split(definition.interpreter))
    except ValueError as exc:
        raise ConfigError(f"task '{definition.name}': interpreter: {exc}", where) from None
    if not interpreter:
        raise ConfigError(f"task '{definition.name}': interpreter must not be empty", where)

    # The id cannot depend on where the task runs on the host, so place paths provisionally
    # against a placeholder task directory first, then again once the id is known.
    placeholder = f"{work_dir}/<task>"
    inputs, outputs = _place_all(definition, mapper, project_dir, placeholder, where)
    input_signatures = _input_signatures(definition, inputs, check_inputs, signatures)
    identity = task_id(
        {
            "name": definition.name,
            "command": definition.run,
            "interpreter": list(interpreter),
            "env": definition.env,
            "resources": definition.resources.model_dump(exclude_none=True),
            "directives": list(definition.directives),
            "host": entry.name,
            "setup": host.setup,
            "inputs": input_signatures,
            "outputs": list(definition.outputs),
        }
    )
    task_dir = f"{work_dir.rstrip('/')}/{identity}"
    run_dir = mapper.run_dir(project_dir, task_dir)
    inputs, outputs = _place_all(definition, mapper, project_dir, run_dir, where)
    spec = JobSpec(
        task_id=identity,
        name=definition.name,
        host_name=entry.name,
        scheduler=host.kind,
        command=definition.run,
        interpreter=interpreter,
        env=definition.env,
        resources=definition.resources,
        directives=definition.directives,
        task_dir=task_dir,
        run_dir=run_dir,
        outputs=tuple(_as_seen_from(run_dir, o) for o in outputs),
        setup=host.setup,
        host_vars=host.vars,
        flavor=host.pbs_flavor,
    )
    return PreparedTask(
        definition, entry, identity, task_dir, run_dir, inputs, outputs, spec, tuple(chain)
    )


def _as_seen_from(run_dir: str, placed: PlacedPath) -> str:
    """Relative to the run directory where possible, so messages name the declared path."""
    prefix = run_dir.rstrip("/") + "/"
    return placed.remote[len(prefix) :] if placed.remote.startswith(prefix) else placed.remote


def _place_all(
    definition: TaskDefinition,
    mapper: PathMapper,
    project_dir: Path,
    run_dir: str,
    where: object,
) -> tuple[tuple[PlacedPath, ...], tuple[PlacedPath, ...]]:
    placed: list[tuple[PlacedPath, ...]] = []
    for kind, declared in (("inputs", definition.inputs), ("outputs", definition.outputs)):
        items = []
        for path in declared:
            try:
                items.append(mapper.place(path, project_dir, run_dir))
            except PathError as exc:
                raise ConfigError(
                    f"task '{definition.name}': {kind}: {exc}", definition.location
                ) from None
        placed.append(tuple(items))
    return placed[0], placed[1]


def _input_signatures(
    definition: TaskDefinition,
    inputs: tuple[PlacedPath, ...],
    check_inputs: bool,
    cache: SignatureCache | None,
) -> list[tuple[str, str]]:
    signatures = []
    for placed in inputs:
        if not placed.copied:
            signatures.append((placed.declared, shared_signature(placed.local)))
        elif placed.local.exists():
            signatures.append((placed.declared, file_signature(placed.local, cache)))
        elif check_inputs:
            raise ConfigError(
                f"task '{definition.name}': input '{placed.declared}' does not exist "
                f"(looked for {placed.local})",
                definition.location,
            )
        else:
            signatures.append((placed.declared, "missing"))
    return signatures


def _check_limits(definition: TaskDefinition, entry: HostEntry) -> None:
    limits = entry.config.limits
    asked: Resources = definition.resources
    over = []
    for field, show in (
        ("cores", str),
        ("nodes", str),
        ("gpus", str),
        ("mem", format_memory),
        ("walltime", format_clock),
    ):
        limit = getattr(limits, field)
        value = getattr(asked, field)
        if limit is not None and value is not None and value > limit:
            over.append(f"{field} {show(value)} > {show(limit)}")
    if over:
        raise ConfigError(
            f"task '{definition.name}' asks more than host '{entry.name}' allows: "
            + ", ".join(over)
            + " (the host's 'limits')",
            definition.location,
        )


__all__ = ["PreparedTask", "SubmitterError", "prepare_tasks"]
