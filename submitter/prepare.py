"""Step 1 of apply: bind each task to its host, compute its id and render its files."""

from __future__ import annotations

import dataclasses
import functools
import shlex
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from submitter.config import dependencies
from submitter.config.models import HostConfig, Resources
from submitter.config.project import HostEntry, Project, TaskDefinition
from submitter.errors import ConfigError, ConfigErrors, TemplateError
from submitter.globs import covers, glob_depth, strip_components
from submitter.identity import SignatureCache, file_signature, shared_signature, task_id
from submitter.paths import OutputPattern, PathError, PathMapper, PlacedPath, Transfer
from submitter.render.compile import JobSpec, RenderedJob, render_job, render_task_file
from submitter.render.packs import DEFAULT_PACK_FOR, Pack, find_pack, pack_chain
from submitter.render.wrapped import WrappedTask, runs_wrapped, wrapped_task
from submitter.retry import RetryPolicy, escalated_resources
from submitter.units import format_clock, format_memory

if TYPE_CHECKING:  # in annotations only (typing has it from Python 3.11)
    from typing_extensions import Unpack

REMOTE_DEFAULT_WORK_DIR = "~/.submitter/work"

Rendering = Literal["keep", "check", "later"]


@dataclass(frozen=True)
class RenderDigest:
    pack: str
    sha256: str  # of the job script and task file


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
    identity: dict[str, Any]  # what its id is the hash of
    linked_inputs: frozenset[str] = frozenset()  # inputs made on the host by upstream tasks

    @cached_property
    def digest(self) -> RenderDigest:
        """What a new attempt records of the task's files: their pack and hash. They are
        rendered to know it, and not kept (100,000 job scripts take more than a GB): a start
        step renders them again as it writes them."""
        rendered = self.render()
        return RenderDigest(rendered.pack, rendered.sha256)

    def task_file(self) -> str:
        """The task file alone, rendered anew."""
        return render_task_file(self.spec, self.chain[0])

    def render(self) -> RenderedJob:
        """The task's files rendered anew, not kept: for a caller that needs them once."""
        return render_job(self.spec, list(self.chain))

    @cached_property
    def wrapped(self) -> WrappedTask | None:
        """The task as this machine's launcher runs it (its values for a wrapper function
        alike tasks share); None for a task of another host, or whose pack's job script is
        more than the wrapper."""
        if self.kind != "local" or not runs_wrapped(self.chain):
            return None
        return wrapped_task(self.spec, self.chain)

    @property
    def submission(self) -> tuple[str, str]:
        """What its attempts record of what runs: the pack, and the sha256 of what was
        rendered (the shared wrapper and the task's values, where it runs in one)."""
        wrapped = self.wrapped
        if wrapped is not None:
            return wrapped.pack, wrapped.sha256
        return self.digest.pack, self.digest.sha256

    def check_rendering(self) -> None:
        """Render what a start sends, keeping its digest: a template error shows before
        anything runs."""
        if self.wrapped is None:
            self.digest  # noqa: B018

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def output_files(self) -> list[Transfer]:
        """The declared files and directories that come back here (shared ones need not)."""
        return [Transfer(o.local, o.remote) for o in self.outputs if o.copied and not o.pattern]

    @property
    def output_patterns(self) -> list[OutputPattern]:
        """The declared patterns whose matches come back here."""
        return [
            OutputPattern.of(_as_seen_from(self.run_dir, o), o.local, o.remote)
            for o in self.outputs
            if o.copied and o.pattern
        ]

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


@dataclass(frozen=True)
class HostPlacement:
    """Where every task of one host goes, worked out once for all of them: the host's
    config (its home resolved), its path mapping, work directory, and the project directory
    as the host sees it (None when it is not mapped: each task runs in its own directory)."""

    config: HostConfig
    mapper: PathMapper
    work_dir: str
    mapped_project: str | None

    @classmethod
    def of(cls, entry: HostEntry, project_dir: Path, home: str | None) -> HostPlacement:
        host = _with_home(entry.config, home)
        mapper = PathMapper(host, all_shared=host.kind == "local")
        work_dir = resolve_home(default_work_dir(host, project_dir), home)
        return cls(host, mapper, work_dir, mapper.mapped(PurePosixPath(project_dir)))


def select_pack(entry: HostEntry, project_dir: Path) -> list[Pack]:
    spec = entry.config.pack or DEFAULT_PACK_FOR[entry.config.kind]
    try:
        return pack_chain(find_pack(spec, project_dir), project_dir)
    except TemplateError as exc:
        where = f"{entry.location}: " if entry.location else ""
        raise TemplateError(f"{where}host '{entry.name}': {exc}") from None


class PrepareOptions(TypedDict, total=False):
    """What `iter_prepared` takes besides the project and the hosts' homes."""

    check_inputs: bool
    signatures: SignatureCache | None
    only: set[str] | None
    done: Collection[str]
    rendering: Rendering


def prepare_tasks(
    project: Project, homes: dict[str, str] | None = None, **options: Unpack[PrepareOptions]
) -> list[PreparedTask]:
    """Prepare every task (or those named in `only`), in the order declared, collecting all
    errors before raising (nothing is half-done); as `iter_prepared`."""
    found = {task.name: task for task in iter_prepared(project, homes, **options)}
    return [found[d.name] for d in project.tasks if d.name in found]


def iter_prepared(
    project: Project,
    homes: dict[str, str] | None = None,
    *,
    check_inputs: bool = True,
    signatures: SignatureCache | None = None,
    only: set[str] | None = None,
    done: Collection[str] = (),
    rendering: Rendering = "keep",
) -> Iterator[PreparedTask]:
    """Each task (or those named in `only`) prepared, upstream tasks first, one at a time:
    only those that later tasks run after are kept here, so a caller that lets each go keeps
    none of 100,000. Every error is raised (ConfigErrors) after the last task, so a caller
    acts once the iteration is over. Tasks whose id is in `done` (completed earlier) are
    rendered only if they are used: re-applying thousands of finished tasks renders none of
    them. `rendering`: "keep" the others' digests (what their attempts record), only "check"
    that they render (a plan), or leave it to the caller ("later")."""
    signatures = signatures if signatures is not None else SignatureCache()
    preparer = _Preparer(project, homes or {}, check_inputs, signatures)
    by_name = {d.name: d for d in project.tasks}
    # Upstream tasks first: a task's id includes theirs. With `only`, the upstream tasks of
    # those named are prepared too, for their ids, but not rendered nor returned.
    wanted = set(by_name) if only is None else _with_upstream(only, by_name)
    needed = {up for name in wanted for up in by_name[name].upstream}
    kept: dict[str, PreparedTask] = {}
    for name in dependencies.order({n: by_name[n].upstream for n in by_name if n in wanted}):
        definition = by_name[name]
        if any(up not in kept for up in definition.upstream):
            continue  # an upstream task failed to prepare: reported already
        task = preparer.prepare(definition, [kept[up] for up in definition.upstream])
        if task is None:
            continue
        if name in needed:
            kept[name] = task
        if only is not None and name not in only:
            continue
        if task.task_id not in done:  # template errors now, before anything is written
            if rendering == "keep":
                task.check_rendering()
            elif rendering == "check":
                task.render()
        yield task
    if preparer.errors:
        raise ConfigErrors(preparer.errors)


class _Preparer:
    """Prepares tasks one by one with what their hosts share: pack chains, placements."""

    def __init__(
        self,
        project: Project,
        homes: dict[str, str],
        check_inputs: bool,
        signatures: SignatureCache,
    ) -> None:
        self.project, self.homes = project, homes
        self.check_inputs, self.signatures = check_inputs, signatures
        self.chains: dict[str, list[Pack]] = {}
        self.placements: dict[str, HostPlacement] = {}
        self.errors: list[ConfigError] = []

    def prepare(
        self, definition: TaskDefinition, upstream: list[PreparedTask]
    ) -> PreparedTask | None:
        """The task prepared, or None with its error kept (a template error is raised)."""
        entry = self.project.hosts[definition.host]
        directory = self.project.directory
        try:
            if entry.name not in self.chains:
                self.chains[entry.name] = select_pack(entry, directory)
                home = self.homes.get(entry.name)
                self.placements[entry.name] = HostPlacement.of(entry, directory, home)
            return prepare_task(
                definition,
                entry,
                directory,
                self.chains[entry.name],
                self.homes.get(entry.name),
                check_inputs=self.check_inputs,
                signatures=self.signatures,
                upstream=upstream,
                placement=self.placements[entry.name],
            )
        except ConfigError as exc:
            self.errors.append(exc)
            return None


def in_declared_order(
    tasks: Iterable[PreparedTask], names: Iterable[str]
) -> Iterator[PreparedTask]:
    """`tasks` (upstream first, as `iter_prepared` gives them) in the order of `names`: a
    task comes as soon as every one named before it came, so only those prepared ahead of
    their turn (upstream tasks declared after theirs) wait here."""
    order = iter(names)
    turn = next(order, None)
    ahead: dict[str, PreparedTask] = {}
    for task in tasks:
        ahead[task.name] = task
        while turn is not None and turn in ahead:
            yield ahead.pop(turn)
            turn = next(order, None)
    yield from ahead.values()  # past a name that never came (none does once all prepared)


def _with_upstream(names: Collection[str], by_name: dict[str, TaskDefinition]) -> set[str]:
    found: set[str] = set()
    todo = [n for n in names if n in by_name]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(by_name[name].upstream)
    return found


def prepare_task(
    definition: TaskDefinition,
    entry: HostEntry,
    project_dir: Path,
    chain: list[Pack],
    home: str | None,
    *,
    check_inputs: bool = True,
    signatures: SignatureCache | None = None,
    upstream: Sequence[PreparedTask] = (),
    placement: HostPlacement | None = None,
) -> PreparedTask:
    """One task bound to its host; `placement`, the host's, when the caller has it already."""
    place = placement or HostPlacement.of(entry, project_dir, home)
    host = place.config
    where = definition.location
    _check_limits(definition, entry)
    interpreter = _interpreter(definition)
    # The id cannot depend on where the task runs on the host, so place paths provisionally
    # against a placeholder task directory first, then move them once the id is known.
    placeholder = f"{place.work_dir}/<task>"
    inputs, outputs = _place_all(definition, place.mapper, project_dir, placeholder, where)
    input_signatures = _input_signatures(definition, inputs, outputs, check_inputs, signatures)
    fields = _identity_fields(definition, entry.name, host, interpreter, input_signatures, upstream)
    identity = task_id(fields)
    task_dir = f"{place.work_dir.rstrip('/')}/{identity}"
    run_dir = place.mapped_project or task_dir
    inputs = _rebased(inputs, placeholder, run_dir)
    outputs = _rebased(outputs, placeholder, run_dir)
    links, linked = _links(definition, inputs, entry.name, host.kind, upstream)
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
        links=links,
        flavor=host.pbs_flavor,
    )
    return PreparedTask(
        definition, entry, identity, task_dir, run_dir, inputs, outputs, spec, tuple(chain),
        fields, linked,
    )  # fmt: skip


def _with_home(host: HostConfig, home: str | None) -> HostConfig:
    """The host's path mapping with `~` resolved to its home directory, once known."""
    if home is None:
        return host
    return host.model_copy(
        update={"paths": {k: resolve_home(v, home) for k, v in host.paths.items()}}
    )


def _interpreter(definition: TaskDefinition) -> tuple[str, ...]:
    try:
        interpreter = _split_command(definition.interpreter)
    except ValueError as exc:
        raise ConfigError(
            f"task '{definition.name}': interpreter: {exc}", definition.location
        ) from None
    if not interpreter:
        raise ConfigError(
            f"task '{definition.name}': interpreter must not be empty", definition.location
        )
    return interpreter


def _identity_fields(
    definition: TaskDefinition,
    host_name: str,
    host: HostConfig,
    interpreter: tuple[str, ...],
    input_signatures: Any,
    upstream: Sequence[PreparedTask],
) -> dict[str, Any]:
    """What a task's id is made of. What upstream tasks produce is known by their ids (which
    change with anything that changes their result), not by its content: the id is the same
    before and after they ran."""
    upstream_ids = {"upstream": sorted(u.task_id for u in upstream)} if upstream else {}
    return {
        **upstream_ids,
        "name": definition.name,
        "command": definition.run,
        "interpreter": list(interpreter),
        "env": definition.env,
        "resources": _resources_record(definition.resources),
        "directives": list(definition.directives),
        "host": host_name,
        "setup": host.setup,
        "inputs": input_signatures,
        "outputs": list(definition.outputs),
    }


def escalated_task(
    task: PreparedTask, policy: RetryPolicy, number: int, caps: dict[str, int | None]
) -> PreparedTask:
    """The task rendered for attempt `number`: its id stays, only what it asks changes."""
    resources = escalated_resources(task.definition.resources, policy, number, caps)
    if resources == task.spec.resources:
        return task
    return dataclasses.replace(task, spec=dataclasses.replace(task.spec, resources=resources))


@functools.lru_cache(maxsize=256)
def _resources_record(resources: Resources) -> dict[str, Any]:
    """The resources as a task's id has them; thousands of tasks share a handful (the
    dict is shared too: it is only read)."""
    return resources.model_dump(exclude_none=True)


@functools.lru_cache(maxsize=64)
def _split_command(text: str) -> tuple[str, ...]:
    """A command line's words; thousands of tasks share a handful of interpreters."""
    return tuple(shlex.split(text))


def _links(
    definition: TaskDefinition,
    inputs: tuple[PlacedPath, ...],
    host: str,
    kind: str,
    upstream: Sequence[PreparedTask],
) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
    """For the inputs that upstream tasks on the same host produce: where each of their
    outputs is on the host and where this task reads it (pairs that differ), and the inputs
    so covered, which are not sent from here. An input some of whose makers run elsewhere
    comes from here, after their outputs came back. On this machine every input is linked
    from the project, where outputs come back to."""
    if kind == "local":
        return (), frozenset()
    pairs: list[tuple[str, str]] = []
    linked: set[str] = set()
    for placed in inputs:
        if placed.declared not in definition.derived_inputs or not placed.copied:
            continue
        found = [
            (maker, pair)
            for maker in upstream
            for output in maker.outputs
            if output.copied and (pair := _reached(output, placed)) is not None
        ]
        if not found or any(maker.host.name != host for maker, _ in found):
            continue
        linked.add(placed.declared)
        pairs += [pair for _, pair in found if pair[0] != pair[1]]
    return tuple(pairs), frozenset(linked)


def _reached(output: PlacedPath, wanted: PlacedPath) -> tuple[str, str] | None:
    """(output on the host, where the task reads it) when the output is the input, lies in
    it, or holds it; None otherwise. An output pattern (`parts/*.txt`) is known on the host
    by the directory its matches lie in (`parts`)."""
    made_here, made_there = output.local, output.remote
    if output.pattern:
        depth = glob_depth(output.declared)
        made_here = Path(strip_components(str(made_here), depth))
        made_there = strip_components(made_there, depth)
    if made_here == wanted.local:
        return made_there, wanted.remote
    if wanted.local in made_here.parents:
        inside = made_here.relative_to(wanted.local).as_posix()
        return made_there, f"{wanted.remote.rstrip('/')}/{inside}"
    if made_here in wanted.local.parents:
        inside = wanted.local.relative_to(made_here).as_posix()
        return f"{made_there.rstrip('/')}/{inside}", wanted.remote
    return None


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


def _rebased(
    placed: tuple[PlacedPath, ...], placeholder: str, run_dir: str
) -> tuple[PlacedPath, ...]:
    """The paths placed against the placeholder directory, placed against `run_dir`."""
    prefix = placeholder + "/"
    base = run_dir.rstrip("/")
    return tuple(
        PlacedPath(p.declared, p.local, base + p.remote[len(placeholder) :], p.copied)
        if p.remote.startswith(prefix)
        else p
        for p in placed
    )


def _input_signatures(
    definition: TaskDefinition,
    inputs: tuple[PlacedPath, ...],
    outputs: tuple[PlacedPath, ...],
    check_inputs: bool,
    cache: SignatureCache | None,
) -> list[tuple[str, str]]:
    signatures = []
    for placed in inputs:
        if placed.declared in definition.derived_inputs:
            signatures.append((placed.declared, "from upstream"))
        elif not placed.copied:
            signatures.append((placed.declared, shared_signature(placed.local)))
        elif placed.local.exists():
            own = _own_outputs_in(placed.local, outputs)
            signature = file_signature(placed.local, cache, leave_out=own)
            signatures.append((placed.declared, signature))
        elif check_inputs:
            raise ConfigError(
                f"task '{definition.name}': input '{placed.declared}' does not exist "
                f"(looked for {placed.local})",
                definition.location,
            )
        else:
            signatures.append((placed.declared, "missing"))
    return signatures


def _own_outputs_in(
    directory: Path, outputs: tuple[PlacedPath, ...]
) -> Callable[[str], bool] | None:
    """Which paths inside an input directory are the task's own outputs (declared paths or
    patterns; None: no output lies there). What the task writes there is not its input, or
    each run would change the next one's id. An output that is the directory itself is not
    one of them: its content stays an input."""
    inside = str(directory).rstrip("/") + "/"
    own = []
    for output in outputs:
        path = str(output.local)
        fixed = strip_components(path, glob_depth(path)) + "/"
        if path.startswith(inside) or (output.pattern and inside.startswith(fixed)):
            own.append(path)
    if not own:
        return None
    return lambda member: any(covers(output, member) for output in own)


def _check_limits(definition: TaskDefinition, entry: HostEntry) -> None:
    limits = entry.config.limits
    if not limits.model_fields_set:  # most hosts set none
        return
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
