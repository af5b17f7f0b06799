"""Shell completion run for real: the CLI answering argcomplete's protocol, and the code
`submitter completion bash|zsh` prints, loaded in bash and zsh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write

TASKS = """\
hosts:
  hpc: {address: me@login.example.org, scheduler: slurm}
tasks:
  - name: "align-{{ sample }}"
    for_each: {sample: [s1, s2]}
    run: echo {{ sample }}
  - name: merge
    run: echo merged
"""


@pytest.fixture
def project(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A project with a real state store: its tasks ran here."""
    tasks = write(tmp_path / "tasks.yml", TASKS)
    assert cli("apply", tasks, "-q", "local").code == 0
    config = Path(os.environ["SUBMITTER_CONFIG_DIR"])
    write(config / "hosts.yml", "hosts:\n  lab: {address: me@lab.example.org}\n")
    return tmp_path


@pytest.fixture
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `submitter` on PATH that runs this checkout, as the shells call it by name."""
    directory = tmp_path_factory.mktemp("bin")
    command = directory / "submitter"
    command.write_text(f'#!/bin/sh\nexec {sys.executable} -m submitter "$@"\n')
    command.chmod(0o755)
    return directory


def _complete(line: str, cwd: Path) -> list[str]:
    """What the CLI answers when the shell asks for the words completing `line`."""
    answer = cwd / ".completions"
    env = dict(
        os.environ,
        _ARGCOMPLETE="1",
        _ARGCOMPLETE_SHELL="bash",
        _ARGCOMPLETE_IFS="\n",
        _ARGCOMPLETE_STDOUT_FILENAME=str(answer),
        COMP_LINE=line,
        COMP_POINT=str(len(line)),
    )
    done = subprocess.run(
        [sys.executable, "-m", "submitter"], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "a completion writes nothing on stdout"
    return [word.strip() for word in answer.read_text().split("\n") if word.strip()]


def test_commands_and_options(project: Path) -> None:
    assert {"apply", "status", "logs", "kill", "purge", "check-host", "completion"} <= set(
        _complete("submitter ", project)
    )
    assert _complete("submitter st", project) == ["status"]
    assert {"--state", "--watch", "--plain", "--json", "--project"} <= set(
        _complete("submitter status --", project)
    )
    assert set(_complete("submitter status --state f", project)) == {"failed", "final"}


def test_task_names_come_from_the_state_store(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert set(_complete("submitter status ", project)) == {"align-s1", "align-s2", "merge"}
    assert set(_complete("submitter logs al", project)) == {"align-s1", "align-s2"}
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert _complete("submitter kill ", elsewhere) == [], "no store here or above"
    assert set(_complete(f"submitter kill -C {project} m", elsewhere)) == {"merge"}


def test_task_names_of_render_come_from_the_tasks_file(project: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "other" / "more.yml", "tasks:\n  - name: fresh\n    run: 'true'\n")
    assert set(_complete("submitter render tasks.yml --task ", project)) == {
        "align-s1",
        "align-s2",
        "merge",
    }
    assert _complete(f"submitter render {other} --task ", project) == ["fresh"]


def test_host_names_come_from_the_tasks_file_and_the_users_hosts(project: Path) -> None:
    assert set(_complete("submitter check-host ", project)) == {"local", "hpc", "lab"}
    assert set(_complete("submitter apply tasks.yml -q ", project)) == {"local", "hpc", "lab"}
    assert set(_complete("submitter apply tasks.yml --host h", project)) == {"hpc"}


def test_the_completion_path_imports_nothing_heavy() -> None:
    """A Tab waits for Python to start and import the CLI, not for the engine."""
    probe = (
        "import sys, submitter.cli; "
        "heavy = {'pydantic', 'jinja2', 'rich', 'plumbum', 'submitter.engine'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_bash_completes_with_the_printed_script(project: Path, bin_dir: Path) -> None:
    script = """
eval "$(submitter completion bash)"
complete -p submitter
for line in "submitter sta" "submitter status " "submitter check-host l"; do
  read -ra COMP_WORDS <<< "$line"
  [[ $line == *" " ]] && COMP_WORDS+=("")
  COMP_LINE=$line COMP_POINT=${#line} COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMPREPLY=()
  _python_argcomplete submitter "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  echo "$line|${COMPREPLY[*]}"
done
"""
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "--norc", "-c", script], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("-F _python_argcomplete submitter")
    replies = {line.split("|")[0]: set(line.split("|")[1].split()) for line in lines[1:]}
    assert replies["submitter sta"] == {"status"}
    assert replies["submitter status "] == {"align-s1", "align-s2", "merge"}
    assert replies["submitter check-host l"] == {"local", "lab"}


@pytest.mark.skipif(
    shutil.which("zsh") is None, reason="zsh is not installed (tests/run installs it)"
)
def test_zsh_completes_with_the_printed_script(project: Path, bin_dir: Path) -> None:
    """zsh's completion system is loaded for real; only `_describe`, which needs a live
    command line to draw on, is replaced by one that prints what it was given."""
    script = """
autoload -U compinit && compinit -D -u
eval "$(submitter completion zsh)"
print -r -- "registered: $_comps[submitter]"
_describe() { print -rl -- "${(@P)2}" }
for line in "submitter status " "submitter status --wa" "submitter check-host h"; do
  BUFFER=$line CURSOR=${#line} words=(${=line})
  [[ $line == *" " ]] && words+=("")
  print -r -- "== $line"
  _python_argcomplete
done
"""
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", ZDOTDIR=str(project))
    done = subprocess.run(
        ["zsh", "-f", "-c", script], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "registered: _python_argcomplete" in done.stdout
    replies: dict[str, set[str]] = {}
    for block in done.stdout.split("== ")[1:]:
        line, *words = block.splitlines()
        replies[line] = {word.split(":")[0] for word in words}  # zsh's "word:description"
    assert replies["submitter status "] == {"align-s1", "align-s2", "merge"}
    assert replies["submitter status --wa"] == {"--watch"}
    assert replies["submitter check-host h"] == {"hpc"}


def test_completion_prints_the_script_for_each_shell(cli) -> None:  # type: ignore[no-untyped-def]
    bash = cli("completion", "bash")
    assert bash.code == 0 and "complete " in bash.out and "_ARGCOMPLETE" in bash.out
    zsh = cli("completion", "zsh")
    assert zsh.code == 0 and "compdef" in zsh.out
    wrong = cli("completion", "fish")
    assert wrong.code == 2 and wrong.err.startswith("usage: submitter completion")
