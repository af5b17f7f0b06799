"""Shell completion for bash and zsh through argcomplete: commands and options from the
parser, plus task names, host names and state names.

The shell runs `submitter` with argcomplete's environment for every Tab: this module is
imported before anything heavy, and each completer reads only what it needs (a few YAML keys,
one query on the state store), never preparing the project.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import argcomplete
from argcomplete.completers import FilesCompleter
from argcomplete.shell_integration import shellcode

from submitter.config.locations import DEFAULT_TASKS_FILE, HOSTS_FILE, user_config_dir
from submitter.state_filter import STATE_NAMES

SHELLS = ("bash", "zsh")

Completer = Callable[..., Iterable[str]]


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell and exit when it asks for completions; return at once otherwise."""
    attach_completers(parser)
    # options are offered once a "-" is typed: a bare Tab lists commands, tasks or hosts
    argcomplete.autocomplete(parser, always_complete_options=False)


def shell_script(shell: str) -> str:
    """The code that `eval` in bash or zsh turns into completion for `submitter`."""
    return shellcode(["submitter"], shell=shell)


def attach_completers(parser: argparse.ArgumentParser) -> None:
    """Give every command's arguments their completer by what they hold (their `dest`), so that
    a new command's TASK or --host completes with no more code."""
    for name, command in command_parsers(parser).items():
        for argument in command._actions:
            completer = _completer_for(name, argument.dest)
            if completer is not None:
                argument.completer = completer  # type: ignore[attr-defined]


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command's own parser, by command name."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _completer_for(command: str, dest: str) -> Completer | None:
    if dest in ("task", "tasks"):
        return declared_task_names if command == "render" else stored_task_names
    if dest == "host":
        return host_names
    if dest == "state":
        return lambda **_: STATE_NAMES
    if dest == "tasks_file":
        return FilesCompleter(allowednames=("yml", "yaml"), directories=True)
    return None


def stored_task_names(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The names of the tasks in the project's state store (what status, logs, kill and
    purge accept), read-only: a completion never waits on, or writes, the store."""
    from submitter.store.db import DB_NAME, find_state_dir

    project = getattr(parsed_args, "project", None) or Path.cwd()
    state_dir = find_state_dir(Path(project).resolve())
    if state_dir is None:
        return []
    try:
        db = sqlite3.connect(f"file:{state_dir / DB_NAME}?mode=ro", uri=True, timeout=0.5)
        try:
            rows = db.execute("SELECT DISTINCT name FROM tasks ORDER BY name").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return [str(name) for (name,) in rows]


def declared_task_names(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The names the tasks file declares, `for_each` expanded; tasks are not prepared."""
    from submitter.config.expand import combinations, substitute
    from submitter.errors import Location, SubmitterError

    path = _tasks_file(parsed_args)
    document = _read_yaml(path) if path else None
    tasks = document.get("tasks") if isinstance(document, dict) else None
    names: list[str] = []
    for task in tasks if isinstance(tasks, list) else []:
        name = task.get("name") if isinstance(task, dict) else None
        if not isinstance(name, str):
            continue
        for_each = task.get("for_each")
        if not isinstance(for_each, dict) or not all(
            isinstance(v, list) for v in for_each.values()
        ):
            names.append(name)
            continue
        for variables in combinations(for_each):
            with contextlib.suppress(SubmitterError):
                names.append(str(substitute(name, variables, lambda _: Location(str(path), 1, 1))))
    return names


def host_names(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The hosts the tasks file, hosts.yml beside it and the user's hosts.yml declare."""
    path = _tasks_file(parsed_args)
    directory = path.parent if path else Path.cwd()
    names = ["local"]
    for source in (path, directory / HOSTS_FILE, user_config_dir() / HOSTS_FILE):
        document = _read_yaml(source) if source else None
        hosts = document.get("hosts") if isinstance(document, dict) else None
        if isinstance(hosts, dict):
            names += [str(name) for name in hosts]
    return list(dict.fromkeys(names))


def _tasks_file(parsed_args: argparse.Namespace) -> Path | None:
    given = getattr(parsed_args, "tasks_file", None)
    if given:
        return Path(given)
    here = Path.cwd() / DEFAULT_TASKS_FILE
    return here if here.is_file() else None


def _read_yaml(path: Path) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        with path.open(encoding="utf-8") as handle:
            return YAML(typ="safe").load(handle)
    except (OSError, YAMLError, UnicodeDecodeError):
        return None
