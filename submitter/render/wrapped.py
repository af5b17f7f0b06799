"""A task as this machine's launcher runs it: its own values, one line of bash, given to a
wrapper function that every alike task shares. The launcher reads the function once, not a
job script per task: a task costs it a fork, not the parse of 15 KB of bash, and leaves no
`job.sh` nor `task.json` in its directory."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from submitter.render.compile import JobSpec, render_task_params, render_wrapper_function
from submitter.render.packs import JOB_TEMPLATE, Pack

# A job template that is the wrapper and nothing else (comments aside) can run as the
# wrapper function: what a task runs is the same either way.
_ONLY_THE_WRAPPER = re.compile(r"""\{%-?\s*include\s+["']wrapper\.sh\.j2["']\s*-?%\}""")


@dataclass(frozen=True)
class SharedWrapper:
    """The wrapper as a bash function: its name, and the bash that defines it."""

    function: str
    definition: str


@dataclass(frozen=True)
class WrappedTask:
    """A task's values for its shared wrapper, and what its attempts record: the pack, and
    the sha256 of what runs (the wrapper's definition and the task's values)."""

    wrapper: SharedWrapper
    params: str
    pack: str
    sha256: str


def runs_wrapped(chain: Sequence[Pack]) -> bool:
    """Whether the chain's job script is only the wrapper (the wrapper pack's own)."""
    return _only_the_wrapper(tuple(p.directory for p in chain))


@functools.lru_cache(maxsize=32)
def _only_the_wrapper(directories: tuple[Path, ...]) -> bool:
    template = next((d / JOB_TEMPLATE for d in directories if (d / JOB_TEMPLATE).is_file()), None)
    if template is None:
        return False
    lines = [
        line.strip()
        for line in template.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return len(lines) == 1 and _ONLY_THE_WRAPPER.fullmatch(lines[0]) is not None


# What a `run` text may use that tells a script run in the wrapper's own subshell from one
# run by a new bash: the shell's pid and its parent's ($$, $PPID: the launcher's, shared by
# every task it starts), $0, the shell's level and call stack, `local` and `return` outside a
# function, the listing of every variable and function, the shell's flags.
_NEEDS_ITS_OWN_BASH = re.compile(
    r"\$\$|\$\{\$|PPID|\$0|\$\{0|\$-|\$\{-|SHLVL|BASH_(SUBSHELL|SOURCE|LINENO|ARGV|ARGC|"
    r"EXECUTION_STRING|COMMAND)|FUNCNAME|(?<![\w/.-])(caller|declare|typeset|compgen|local|return)(?![\w/.-])"
)


def runs_in_subshell(spec: JobSpec) -> bool:
    """A bash command that runs as well in the subshell the wrapper forks for it as in a new
    bash: it saves the bash start (1.5 ms, as much as the rest of a short task). Run by the
    `bash` its env does not change the PATH of, and using nothing that tells the two apart."""
    return (
        spec.interpreter == ("bash",)
        and "PATH" not in spec.env
        and not _NEEDS_ITS_OWN_BASH.search(spec.command)
    )


def task_params(spec: JobSpec, chain: Sequence[Pack]) -> str:
    """The task's values for a shared wrapper (this machine's launcher's, a pool's), as one
    line of bash; a bash command that can is run in the wrapper's subshell
    (`submitter_in_subshell`)."""
    params = render_task_params(spec, chain)
    return params + "; submitter_in_subshell=1" if runs_in_subshell(spec) else params


def wrapped_task(spec: JobSpec, chain: Sequence[Pack]) -> WrappedTask:
    """The task's values and its shared wrapper, rendered once for all the tasks alike."""
    wrapper, digest = _shared_wrapper(spec, chain)
    params = task_params(spec, chain)
    sha256 = hashlib.sha256(f"{digest}\0{params}".encode()).hexdigest()
    return WrappedTask(wrapper, params, chain[0].ident, sha256)


# What the wrapper is rendered from besides each task's own values (the tasks that share
# these share the wrapper), to its function and its definition's digest.
_WRAPPERS: dict[tuple[object, ...], tuple[SharedWrapper, str]] = {}


def _shared_wrapper(spec: JobSpec, chain: Sequence[Pack]) -> tuple[SharedWrapper, str]:
    key = (
        tuple(p.directory for p in chain),
        spec.host_name,
        spec.scheduler,
        spec.flavor,
        spec.setup,
        spec.resources,
        spec.directives,
        json.dumps(spec.host_vars, sort_keys=True, default=str),
    )
    if key not in _WRAPPERS:
        body = render_wrapper_function(spec, chain, "submitter_wrapper")
        digest = hashlib.sha256(body.encode()).hexdigest()
        name = f"submitter_wrapper_{digest[:16]}"
        definition = render_wrapper_function(spec, chain, name)
        _WRAPPERS[key] = (SharedWrapper(name, definition), digest)
    return _WRAPPERS[key]
