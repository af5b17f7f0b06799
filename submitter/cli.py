"""Command line: parse arguments, call the command (`commands`), map errors to exit codes.
No logic here."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from submitter import __version__
from submitter.completion import SHELLS, autocomplete, command_parsers
from submitter.errors import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    ConfigErrors,
    SubmitterError,
    UsageError,
    error_document,
)
from submitter.state_filter import parse_states
from submitter.units import parse_duration

if TYPE_CHECKING:
    from submitter.seams import Seams

EXAMPLES = {
    "apply": "example:\n  submitter apply tasks.yml            # run what is not done, wait, show progress\n"
    "  submitter apply tasks.yml -q hpc --detach -J 50",
    "render": "example:\n  submitter render tasks.yml -q hpc --task align-a",
    "check-host": "example:\n  submitter check-host hpc --json\n"
    "  submitter check-host hpc --node -f tasks.yml   # one probe job on a compute node",
    "setup-host": "example:\n  submitter setup-host hpc            # key pair, install public key, check-host",
    "status": "example:\n  submitter status                     # every task of this project\n"
    "  submitter status align-a --json\n"
    "  submitter status --state failed,running --watch   # until they all end",
    "logs": "example:\n  submitter logs align-a               # stdout and stderr of the latest run\n"
    "  submitter logs -f align-a            # follow them until the task ends",
    "kill": "example:\n  submitter kill align-a align-b\n  submitter kill --all",
    "report": "example:\n  submitter report -o run.html           # timeline, failures, graph: open it in a browser",
    "purge": "example:\n  submitter purge --age 7d             # finished tasks older than a week\n"
    "  submitter purge --all",
    "completion": 'example:\n  eval "$(submitter completion bash)"   # in ~/.bashrc (zsh: in ~/.zshrc)',
}


class _BadArguments(Exception):
    """Arguments refused by a command's parser (or the top one), with its message."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse, but a refusal is raised to `main`, which says it as argparse would, and as
    JSON too under --json, instead of exiting from inside the parse."""

    def error(self, message: str) -> NoReturn:
        raise _BadArguments(self, message)


def _asks_for_json(parser: argparse.ArgumentParser, words: Sequence[str]) -> bool:
    """Whether `--json` (or a prefix argparse would take for it) is among the words, for a
    command that has that option."""
    options = parser._option_string_actions
    if "--json" not in options:
        return False
    words = list(words)
    words = words[: words.index("--")] if "--" in words else words
    return any(
        word.startswith("--") and [o for o in options if o.startswith(word)] == ["--json"]
        for word in words
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="submitter",
        description="Run tasks declared in YAML on this machine, ssh hosts and SLURM, PBS, LSF "
        "and Grid Engine clusters.",
        epilog="\n\n".join(f"{name}: {text}" for name, text in EXAMPLES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"submitter {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments) in _COMMANDS.items():
        add_arguments(
            commands.add_parser(
                name,
                help=help_text,
                description=help_text,
                epilog=EXAMPLES[name],
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    return parser


def _apply_arguments(apply: argparse.ArgumentParser) -> None:
    apply.add_argument("tasks_file", type=Path, metavar="TASKS.yml")
    apply.add_argument(
        "-q", "--host", dest="host", help="host for tasks that name none (overrides defaults.host)"
    )
    apply.add_argument(
        "--detach",
        action="store_true",
        help="return once submitted; `apply` or `status` re-attach later",
    )
    apply.add_argument(
        "-J", "--max-running", type=_positive, help="at most this many tasks at once per host"
    )
    apply.add_argument("--force", action="store_true", help="rerun tasks even if already completed")
    apply.add_argument(
        "--plan",
        action="store_true",
        help="touch no host: say what would run, wait or be skipped, and why",
    )
    apply.add_argument("--json", action="store_true", help="print the outcome as JSON")
    apply.add_argument(
        "-v", "--verbose", action="store_true", help="a line for every task, up-to-date ones too"
    )


def _render_arguments(render: argparse.ArgumentParser) -> None:
    render.add_argument("tasks_file", type=Path, metavar="TASKS.yml")
    # render only ever prints: --dry-run, once documented, is still accepted
    render.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    render.add_argument("-q", "--host", dest="host", help="render for this host")
    render.add_argument("--task", action="append", default=[], help="only this task (repeatable)")


def _check_host_arguments(check: argparse.ArgumentParser) -> None:
    check.add_argument("host")
    check.add_argument(
        "-f",
        "--tasks-file",
        type=Path,
        help="tasks file whose hosts to use (with --node: whose interpreters to look for)",
    )
    check.add_argument("--json", action="store_true")
    _plain_option(check)
    check.add_argument(
        "--node",
        action="store_true",
        help="also run one probe job where tasks run: paths, interpreters, setup, queue wait",
    )
    check.add_argument(
        "--timeout",
        type=_duration,
        default=300,
        help="with --node: give up on a probe job that has not reported after this (default 300s)",
    )


def _setup_host_arguments(setup: argparse.ArgumentParser) -> None:
    setup.add_argument("host")
    setup.add_argument("-f", "--tasks-file", type=Path, help="tasks file whose hosts to use")
    setup.add_argument("--json", action="store_true")
    _plain_option(setup)


def _status_arguments(status: argparse.ArgumentParser) -> None:
    status.add_argument("tasks", nargs="*", metavar="TASK")
    _retired_option(status)
    status.add_argument("--json", action="store_true")
    _plain_option(status)
    status.add_argument(
        "--state",
        action="append",
        type=_states,
        metavar="STATE",
        help="only tasks in this state (repeatable, or a comma list; also: active, final)",
    )
    status.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=_seconds,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until every shown task has ended; Ctrl-C stops",
    )
    _project_option(status)


def _logs_arguments(logs: argparse.ArgumentParser) -> None:
    logs.add_argument("task", metavar="TASK")
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="print new lines as they are written, until the task ends (exit code as status)",
    )
    _project_option(logs)


def _kill_arguments(kill: argparse.ArgumentParser) -> None:
    kill.add_argument("tasks", nargs="*", metavar="TASK")
    kill.add_argument("--all", action="store_true", help="every active task of the project")
    _project_option(kill)


def _report_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("report.html"),
        help="where to write it (default: report.html here)",
    )
    _retired_option(report)
    report.add_argument(
        "--offline",
        action="store_true",
        help="from the local store alone: do not ask the hosts about tasks still running",
    )
    _project_option(report)


def _purge_arguments(purge: argparse.ArgumentParser) -> None:
    purge.add_argument("tasks", nargs="*", metavar="TASK")
    purge.add_argument("--age", help="only tasks finished longer ago than this (e.g. 7d, 12h)")
    purge.add_argument(
        "--all", action="store_true", help="every task not active (finished, blocked, pending)"
    )
    _project_option(purge)


def _completion_arguments(completion: argparse.ArgumentParser) -> None:
    completion.add_argument("shell", choices=SHELLS)


# Each command: what it does (its help line) and what adds its arguments, in help order.
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "apply": ("Run every task that is not already done, and wait for it.", _apply_arguments),
    "render": (
        "Print each task's task file and job script without touching any host.",
        _render_arguments,
    ),
    "check-host": (
        "Check that a host is ready: ssh, rsync, work dir, scheduler, paths.",
        _check_host_arguments,
    ),
    "setup-host": ("Install an ssh key on a host, then check it.", _setup_host_arguments),
    "status": (
        "Show the state of tasks (and refresh the ones still running).",
        _status_arguments,
    ),
    "logs": ("Print a task's stdout and stderr.", _logs_arguments),
    "kill": ("Stop running tasks (scancel/qdel/bkill, or a signal).", _kill_arguments),
    "report": (
        "Write one self-contained HTML page showing how the tasks ran.",
        _report_arguments,
    ),
    "purge": (
        "Delete finished tasks: records, local copies and remote task directories.",
        _purge_arguments,
    ),
    "completion": (
        "Print the shell code that completes submitter's words.",
        _completion_arguments,
    ),
}


def _project_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("-C", "--project", type=Path, default=Path.cwd(), help="project directory")


def _retired_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--all",
        action="store_true",
        help="also tasks no longer declared in their tasks file (renamed or changed)",
    )


def _plain_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--plain",
        action="store_true",
        help="tab-separated lines under a header line (the default when stdout is not a terminal)",
    )


def _states(text: str) -> list[str]:
    try:
        return parse_states(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _duration(text: str) -> int:
    try:
        return parse_duration(int(text) if text.strip().isdigit() else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None, seams: Seams | None = None) -> int:
    """The command line; `seams` (the real ones unless a test hands fakes) reach every engine
    the command makes."""
    parser = _parser()
    autocomplete(parser)  # answers the shell's Tab and exits, before any heavy import
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the command's parser, with that command's usage
            command_parsers(parser).get(args.command, parser).error(
                f"unrecognized arguments: {' '.join(unknown)}"
            )
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except _BadArguments as exc:
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
        as_json = _asks_for_json(exc.parser, sys.argv[1:] if argv is None else argv)
        return _json_error(as_json, UsageError(exc.message), EXIT_BAD_INPUT)
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    from submitter import commands
    from submitter.interrupts import Interrupted, stop_on_signals
    from submitter.long_lived import until_done
    from submitter.seams import REAL

    stop_on_signals()
    args.seams = seams if seams is not None else REAL
    as_json = bool(getattr(args, "json", False))
    try:
        with until_done():  # what the command froze (long_lived) is let go at its end
            return int(getattr(commands, args.command.replace("-", "_"))(args))
    except ConfigErrors as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return _json_error(as_json, exc, exc.exit_code)
    except SubmitterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _json_error(as_json, exc, exc.exit_code)
    except KeyboardInterrupt as exc:
        print(
            "interrupted: tasks already started keep running; `submitter status` re-attaches",
            file=sys.stderr,
        )
        code = exc.exit_code if isinstance(exc, Interrupted) else EXIT_INTERRUPTED
        return _json_error(as_json, exc, code)
    except BrokenPipeError:
        # The reader stopped early (`| head`): the rest, and the final flush, go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _json_error(as_json: bool, exc: BaseException, code: int) -> int:
    """With --json, the error goes on stdout too, as the one JSON document there."""
    if as_json:
        print(json.dumps(error_document(exc, code), indent=2))
    return code
