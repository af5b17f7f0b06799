"""Which tasks of one start step share scheduler jobs, and the drivers of those jobs.

Alike tasks (same pack, resources, directives and host vars) go together in one of two ways:
- short ones, by their walltime, go in a **pool**: its members file is a queue that several
  jobs take members from as they run (`width` at once each), each for as long as its time
  covers a member's walltime; how many jobs, and how wide, is decided by the cores the
  scheduler says are free (`size_pool`);
- the rest go as one **job array**, each member a job of its own to the scheduler.
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from submitter import task_layout as files
from submitter.config.models import HostConfig
from submitter.paths import Transfer
from submitter.prepare import PreparedTask
from submitter.render.compile import (
    ArrayGroup,
    has_array_template,
    has_packed_template,
    render_array,
    render_packed,
    render_wrapper_function,
)
from submitter.render.wrapped import task_params
from submitter.schedulers.base import SiteLimits

PACK_UNDER = 600  # seconds: tasks with a walltime up to this are packed (host key pack_under)
PACK_WALLTIME = 3600  # seconds: the longest walltime a packed job asks for (pack_walltime)
MAX_PER_JOB = 100  # most tasks in one packed job (max_per_job)
PACKED_SLACK = 60  # seconds a packed job asks for beyond its members' walltimes: the driver's


@dataclass(frozen=True)
class Packing:
    """How alike short tasks share jobs: `width` at once, at most `per_job` in one job
    (`rounds` of `width` at their declared walltimes fit the longest packed walltime)."""

    width: int
    per_job: int
    rounds: int = 1


@dataclass(frozen=True)
class Group:
    """Tasks submitted together: a job array, or a pool (`packing` set) taken by `jobs`
    jobs."""

    members: list[PreparedTask]
    packing: Packing | None = None
    jobs: int = 1

    @property
    def kind(self) -> str:
        return "array" if self.packing is None else "pool"


def alike_key(task: PreparedTask | None) -> str | None:
    """Tasks with equal keys render the same scheduler header, so one job array or packed job
    serves them; None for a task whose pack has no array driver."""
    if task is None or not has_array_template(task.chain):
        return None
    spec = task.spec
    return json.dumps(
        [
            task.chain[0].ident,
            spec.resources.model_dump(exclude_none=True),
            list(spec.directives),
            spec.host_vars,
        ],
        sort_keys=True,
        default=str,
    )


def packing_of(task: PreparedTask, config: HostConfig, limits: SiteLimits) -> Packing | None:
    """How tasks like `task` are packed on its host; None when they are not: no walltime, a
    walltime over `pack_under`, more than one node, GPUs, or a pack without a packed driver."""
    resources = task.spec.resources
    walltime = resources.walltime
    most = config.max_per_job or MAX_PER_JOB
    if (
        most < 2
        or not walltime
        or walltime > (config.pack_under if config.pack_under is not None else PACK_UNDER)
        or (resources.nodes or 1) > 1
        or resources.gpus
        or not has_packed_template(task.chain)
    ):
        return None
    cores = resources.cores or 1
    job_cores = config.pack_cores or limits.node_cores or cores
    width = max(1, job_cores // cores)
    rounds = max(1, ((config.pack_walltime or PACK_WALLTIME) - PACKED_SLACK) // walltime)
    per_job = min(most, width * rounds)
    if per_job < 2:
        return None
    return Packing(min(width, per_job), per_job, max(1, math.ceil(per_job / width)))


def size_pool(group: Group, free_cores: int | None, room: int, whole: bool = False) -> Group:
    """`group`'s pool shaped by the cluster: with `free_cores` known, as many jobs as there
    are free slots for its members (a lane each where the queue has `room`, else wider jobs),
    so that small jobs start soon and take the work among them as they run; not known, as
    many as its members fill at `per_job` each. Never more jobs than `room` or members.
    `whole` (a detached run: no client makes new pools of what the jobs leave): at least the
    jobs that run every member at its declared walltime, whatever the room."""
    packing = group.packing
    assert packing is not None
    size = len(group.members)
    if free_cores is None:
        jobs, width = math.ceil(size / packing.per_job), packing.width
    else:
        cores = group.members[0].spec.resources.cores or 1
        lanes = max(1, min(size, free_cores // cores))
        jobs = max(1, min(lanes, room))
        width = min(packing.width, math.ceil(lanes / jobs))
    jobs = max(1, min(jobs, room, size))
    width = max(1, min(width, math.ceil(size / jobs)))
    if whole:
        needed = math.ceil(size / min(packing.per_job, width * packing.rounds))
        if needed > room:  # the fewest: jobs as wide as a job of this pool may be
            width, needed = min(packing.width, size), whole_pool_jobs(group)
        jobs = max(jobs, needed)
    return Group(group.members, Packing(width, packing.per_job, packing.rounds), jobs)


def whole_pool_jobs(group: Group) -> int:
    """The fewest jobs that run every member of `group`'s pool at its declared walltime."""
    assert group.packing is not None
    return math.ceil(len(group.members) / group.packing.per_job)


def plan_groups(
    tasks: Sequence[PreparedTask],
    config: HostConfig,
    limits: SiteLimits,
    largest_array: int,
) -> tuple[list[PreparedTask], list[Group]]:
    """The tasks that go as jobs of their own, and the groups the rest go in. Packed jobs of
    one kind, and arrays, are made equally full: 150 tasks at most 100 a job make two jobs
    of 75."""
    singles: list[PreparedTask] = []
    alike: dict[str, list[PreparedTask]] = {}
    for task in tasks:
        key = alike_key(task)
        if key is None:
            singles.append(task)
        else:
            alike.setdefault(key, []).append(task)
    groups: list[Group] = []
    for members in alike.values():
        packing = packing_of(members[0], config, limits)
        if packing is not None and len(members) > 1:
            groups.append(Group(members, packing))  # one pool: size_pool decides its jobs
            continue
        size = largest_array
        if size < 2 or len(members) < 2:
            singles += members
            continue
        jobs = math.ceil(len(members) / size)
        smaller, larger = divmod(len(members), jobs)
        start = 0
        for job in range(jobs):
            end = start + smaller + (1 if job < larger else 0)
            if end - start > 1:
                groups.append(Group(members[start:end], packing))
            else:
                singles += members[start:end]
            start = end
    return singles, groups


def plan_jobs(
    batches: Sequence[Sequence[PreparedTask]],
    config: HostConfig,
    limits: SiteLimits,
    largest_array: int,
) -> list[list[PreparedTask] | Group]:
    """The jobs that start `batches` of tasks, each batch grouped apart (tasks chained after
    different jobs never share one): a task alone, or a group."""
    jobs: list[list[PreparedTask] | Group] = []
    for batch in batches:
        singles, groups = plan_groups(batch, config, limits, largest_array)
        jobs += [[t] for t in singles]
        jobs += groups
    return jobs


def packed_resources(group: Group) -> tuple[int, int | None, int]:
    """Cores, memory (bytes) and walltime (seconds) each job of a pool asks for: room for
    `width` members at once, for as many rounds as its share of the members needs at their
    declared walltimes (at most `rounds`), and the driver's slack."""
    assert group.packing is not None
    resources = group.members[0].spec.resources
    width = min(group.packing.width, len(group.members))
    share = math.ceil(len(group.members) / (width * group.jobs))
    walltime = min(share, group.packing.rounds) * (resources.walltime or 0) + PACKED_SLACK
    mem = resources.mem * width if resources.mem else None
    return (resources.cores or 1) * width, mem, walltime


def group_driver(group: Group, scratch: Path) -> tuple[Transfer, list[Transfer]]:
    """The driver of one job array or pool, rendered into `scratch`, and where it goes on
    the host: `<work_dir>/.groups/<id>/job.sh`, beside the `members` file the start step
    writes (a pool's jobs all run this one driver); and a pool's other files: the wrapper
    its members run in, their params and their task files."""
    members = group.members
    first = members[0]
    ident = hashlib.sha256(
        (" ".join(m.task_id for m in members) + str(time.time())).encode()
    ).hexdigest()[:12]
    directory = posixpath.join(posixpath.dirname(first.task_dir), files.GROUPS, ident)
    width = min(group.packing.width, len(members)) if group.packing else 1
    described = ArrayGroup(
        ident,
        f"{first.spec.job_name[:48]}+{len(members) - 1}",
        len(members),
        directory,
        files.on_host(directory, files.MEMBERS),
        width,
        PACKED_SLACK,
        files.on_host(directory, files.POOL_HINT),
        files.on_host(directory, files.POOL_PARAMS),
        files.on_host(directory, files.POOL_WRAPPER),
        files.over_dir(first.task_dir),
    )
    extras: list[Transfer] = []
    if group.packing is None:
        text = render_array(first.spec, first.chain, described)
    else:
        extras = _pool_files(group, directory, scratch / ident)
        cores, mem, walltime = packed_resources(group)
        job_resources = first.spec.resources.model_copy(
            update={"cores": cores, "mem": mem, "walltime": walltime}
        )
        text = render_packed(first.spec, first.chain, described, job_resources)
    local = scratch / f"{ident}.sh"
    local.write_text(text, encoding="utf-8")
    return Transfer(local, files.on_host(directory, files.JOB_SCRIPT)), extras


def _pool_files(group: Group, directory: str, scratch: Path) -> list[Transfer]:
    """The wrapper a pool's members run in, their params (a line each, in the members'
    order) and their task files, written into `scratch`-prefixed files."""
    first = group.members[0]
    texts = {
        files.POOL_WRAPPER: render_wrapper_function(first.spec, first.chain),
        files.POOL_PARAMS: "".join(task_params(m.spec, m.chain) + "\n" for m in group.members),
        files.POOL_TASKS: "".join(m.task_file() for m in group.members),
    }
    transfers = []
    for name, text in texts.items():
        local = scratch.with_name(f"{scratch.name}-{name}")
        local.write_text(text, encoding="utf-8")
        transfers.append(Transfer(local, files.on_host(directory, name)))
    return transfers
