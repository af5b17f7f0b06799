"""Pure rendering: a job description and a pack in, the task file and job script out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2

from submitter import __version__
from submitter.config.models import Resources
from submitter.errors import TemplateError
from submitter.globs import is_pattern
from submitter.quoting import directive_line, directive_value, shell_quote, shell_quote_line
from submitter.render.json_text import indented_json
from submitter.render.packs import (
    ARRAY_TEMPLATE,
    HEADER_TEMPLATE,
    JOB_TEMPLATE,
    PACKED_TEMPLATE,
    POOL_WRAPPER_TEMPLATE,
    TASK_PARAMS_TEMPLATE,
    WRAPPER_FUNCTIONS_TEMPLATE,
    Pack,
)
from submitter.schedulers.base import template_facts
from submitter.schedulers.registry import NAMES as BATCH_SCHEDULERS
from submitter.schedulers.registry import batch_scheduler
from submitter.task_layout import TEMPLATE_NAMES
from submitter.units import format_clock, format_memory, megabytes


@dataclass(frozen=True)
class JobSpec:
    """Everything a template may use; paths are as the host sees them."""

    task_id: str
    name: str
    host_name: str
    scheduler: str
    command: str
    interpreter: tuple[str, ...]
    env: dict[str, str]
    resources: Resources
    directives: tuple[str, ...]
    task_dir: str
    run_dir: str
    outputs: tuple[str, ...]
    setup: str | None = None
    host_vars: dict[str, Any] = field(default_factory=dict)
    # inputs that upstream tasks made on this host: (where the upstream output is, where this
    # task reads it), linked on the host rather than sent from here
    links: tuple[tuple[str, str], ...] = ()
    flavor: str | None = None  # the scheduler's variant (PBS: pro | torque), when known

    @property
    def job_name(self) -> str:
        """The task name reduced to characters every scheduler accepts in a job name."""
        cleaned = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in self.name)
        return (cleaned.strip("._-") or "task")[:64]


@dataclass(frozen=True)
class RenderedJob:
    job_script: str
    task_file: str
    pack: str
    sha256: str  # of job_script + task_file, recorded with each submission


@dataclass(frozen=True)
class ArrayGroup:
    """Tasks of one host with the same resources and directives, submitted as one job array
    or one packed job: member i runs the task whose directory is line i+1 of `members_file`."""

    id: str
    name: str
    size: int
    directory: str  # on the host
    members_file: str
    width: int = 1  # pool jobs: how many members each runs at once (its lanes)
    slack: int = 0  # pool jobs: seconds of a job's walltime no member may start in
    hint: str = ""  # pool jobs: the file its lanes share the place of the last claim in
    params: str = ""  # pool jobs: each member's own values for the wrapper, a line each
    wrapper: str = ""  # pool jobs: the one task wrapper its members run in
    over_dir: str = ""  # pool jobs: where a mark that a job is over appears (task_layout)


def has_array_template(chain: Sequence[Pack]) -> bool:
    return any((p.directory / ARRAY_TEMPLATE).is_file() for p in chain)


def has_packed_template(chain: Sequence[Pack]) -> bool:
    return any((p.directory / PACKED_TEMPLATE).is_file() for p in chain)


def render_array(spec: JobSpec, chain: Sequence[Pack], group: ArrayGroup) -> str:
    """The driver of a job array, with the resources of `spec` (any member's: the group's
    members share them)."""
    return _render(ARRAY_TEMPLATE, _group_context(spec, chain, group), list(chain))


def render_packed(
    spec: JobSpec, chain: Sequence[Pack], group: ArrayGroup, job_resources: Resources
) -> str:
    """The driver of a packed job: the scheduler is asked for `job_resources` (room for
    `group.width` members at once, for as long as all of them take); each member keeps the
    resources of `spec` (any member's) for itself."""
    context = _group_context(replace(spec, resources=job_resources), chain, group)
    context["member"] = _context(spec, chain[0])["resources"]
    return _render(PACKED_TEMPLATE, context, list(chain))


def _group_context(spec: JobSpec, chain: Sequence[Pack], group: ArrayGroup) -> dict[str, Any]:
    context = _context(spec, chain[0])
    context["group"] = {
        "id": group.id,
        "name": group.name,
        "size": group.size,
        "width": group.width,
        "dir": group.directory,
        "members": group.members_file,
        "slack": group.slack,
        "hint": group.hint,
        "params": group.params,
        "wrapper": group.wrapper,
        "over_dir": group.over_dir,
    }
    return context


def render_wrapper_function(
    spec: JobSpec, chain: Sequence[Pack], name: str = "submitter_member"
) -> str:
    """The task wrapper as the bash function `name`, that tasks alike in all but their own
    values share (any such task's `spec`): a pool's members, or the tasks this machine's
    launcher starts. Each call gets one task's values (`render_task_params`) as $1."""
    context = _context(spec, chain[0])
    context["pool_wrapper"] = True
    wrapper = _render(POOL_WRAPPER_TEMPLATE, context, list(chain))
    # Its functions are defined once, beside it, not again for each task: they are the same
    # for every task of the host (a pack whose wrapper.sh.j2 still defines them inside the
    # wrapper gets those, which win at each call).
    functions = ""
    if any((p.directory / WRAPPER_FUNCTIONS_TEMPLATE).is_file() for p in chain):
        functions = _render(WRAPPER_FUNCTIONS_TEMPLATE, context, list(chain))
    # a function: read once by each job, it costs a task a fork, not a bash start and a parse
    return (
        f"# submitter shared wrapper (pack {chain[0].ident}): {name} PARAMS\n"
        f"{functions}{name}() {{\n{wrapper}}}\n"
    )


def render_task_params(spec: JobSpec, chain: Sequence[Pack]) -> str:
    """A task's own values for its pool's wrapper, as one line of bash."""
    text = _render(TASK_PARAMS_TEMPLATE, _context(spec, chain[0]), list(chain))
    return text.strip().replace("\n", "; ")


def render_header(spec: JobSpec, chain: Sequence[Pack], job_out: str, job_err: str) -> str:
    """The pack's scheduler directives for a job of `spec` alone, its standard output and
    error to `job_out` and `job_err`: what the job, array and packed templates set before
    they include the header."""
    context = _context(spec, chain[0])
    context.update(job_name=spec.job_name, job_out=job_out, job_err=job_err)
    return _render(HEADER_TEMPLATE, context, list(chain))


def render_job(spec: JobSpec, chain: list[Pack]) -> RenderedJob:
    pack = chain[0]
    script = _render(JOB_TEMPLATE, _context(spec, pack), chain)
    task_file = render_task_file(spec, pack)
    digest = hashlib.sha256((script + "\0" + task_file).encode()).hexdigest()
    return RenderedJob(script, task_file, pack.ident, digest)


def render_task_file(spec: JobSpec, pack: Pack) -> str:
    """The task file (task.json) alone: what a pool sends of each task beside its params."""
    return indented_json(_task_document(spec, pack)) + "\n"


def _render(template: str, context: dict[str, Any], chain: list[Pack]) -> str:
    pack = chain[0]
    environment = _environment(chain)
    try:
        return environment.get_template(template).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name}:{exc.lineno}"
        raise TemplateError(
            f"{where}: template syntax error in pack {pack.ident}: {exc.message}"
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"{_failing_frame(exc, chain)}: template error in pack {pack.ident}: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"pack {pack.ident}: template {exc.name} not found") from None


_ENVIRONMENTS: dict[tuple[Path, ...], jinja2.Environment] = {}


def _environment(chain: Sequence[Pack]) -> jinja2.Environment:
    """One environment per pack chain, so each template is compiled once per run, not once
    per task."""
    key = tuple(p.directory for p in chain)
    if key not in _ENVIRONMENTS:
        _ENVIRONMENTS[key] = _new_environment(chain)
    return _ENVIRONMENTS[key]


def _new_environment(chain: Sequence[Pack]) -> jinja2.Environment:
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(p.directory)) for p in chain])
    environment = jinja2.Environment(
        loader=loader,
        auto_reload=False,  # a pack's files do not change during a run: no stat per render
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["q"] = shell_quote
    environment.filters["q1"] = shell_quote_line
    environment.filters["directive"] = directive_value
    environment.filters["directive_line"] = directive_line
    environment.filters["clock"] = format_clock
    return environment


class _Fields(dict[str, Any]):
    """A mapping a template reads as `task.name`: Jinja tries an attribute first, and on a
    plain dict that fails, raising AttributeError, before it looks the key up (40 times a
    task, a fifth of its rendering). The same values as the dict's, found at once."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _context(spec: JobSpec, pack: Pack) -> dict[str, Any]:
    return {name: _Fields(value) for name, value in _namespaces(spec, pack).items()}


def _namespaces(spec: JobSpec, pack: Pack) -> dict[str, dict[str, Any]]:
    r = spec.resources
    walltime = r.walltime
    resources = {
        "cores": r.cores or 1,
        "nodes": r.nodes or 1,
        "gpus": r.gpus or 0,
        "mem_bytes": r.mem,
        "mem_mb": megabytes(r.mem) if r.mem else None,
        "mem": format_memory(r.mem) if r.mem else None,
        "walltime_seconds": walltime,
        "walltime": format_clock(walltime) if walltime else None,
        "walltime_minutes": -(-walltime // 60) if walltime else None,
        "queue": r.queue,
        "account": r.account or spec.host_vars.get("account"),
    }
    return {
        "task": {
            "id": spec.task_id,
            "name": spec.name,
            "job_name": spec.job_name,
            "command": spec.command,
            "interpreter": list(spec.interpreter),
            "env": dict(spec.env),
            "outputs": list(spec.outputs),
            "output_files": [o for o in spec.outputs if not is_pattern(o)],
            "output_patterns": [o for o in spec.outputs if is_pattern(o)],
            "directives": list(spec.directives),
            "links": [{"source": source, "target": target} for source, target in spec.links],
        },
        "resources": resources,
        "paths": {"task_dir": spec.task_dir, "run_dir": spec.run_dir},
        "host": {
            "name": spec.host_name,
            "scheduler": spec.scheduler,
            "flavor": spec.flavor or "",
            "setup": spec.setup or "",
        },
        # the batch scheduler's facts (`scheduler.job_id`, `scheduler.array_index`), empty on
        # a host without one: no template needs to branch on the scheduler's name for them
        "scheduler": template_facts(
            batch_scheduler(spec.scheduler) if spec.scheduler in BATCH_SCHEDULERS else None
        ),
        "vars": dict(spec.host_vars),
        "pack": {"name": pack.meta.name, "version": pack.meta.version},
        "submitter": {"version": __version__},
        "files": TEMPLATE_NAMES,
    }


def _task_document(spec: JobSpec, pack: Pack) -> dict[str, Any]:
    return {
        "id": spec.task_id,
        "name": spec.name,
        "host": spec.host_name,
        "scheduler": spec.scheduler,
        "command": spec.command,
        "interpreter": list(spec.interpreter),
        "env": dict(spec.env),
        "resources": spec.resources.model_dump(exclude_none=True),
        "outputs": list(spec.outputs),
        "task_dir": spec.task_dir,
        "run_dir": spec.run_dir,
        "pack": pack.ident,
        "submitter_version": __version__,
    }


def _failing_frame(exc: BaseException, chain: Sequence[Pack]) -> str:
    """file:line of the template line that failed, found in the traceback."""
    roots = [str(p.directory) for p in chain]
    tb = exc.__traceback__
    where = f"{chain[0].directory / JOB_TEMPLATE}"
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if any(filename.startswith(root) for root in roots):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return str(Path(where))
