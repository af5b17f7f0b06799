"""The task directory's files are named once, in `submitter.task_layout`: the code, the step
scripts and the templates use those names, and none spells them again."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import submitter
from submitter import task_layout
from submitter.config.project import load_project
from submitter.prepare import PreparedTask, prepare_tasks
from submitter.render import compile as render_compile
from submitter.render.compile import ArrayGroup, render_job, render_packed

PACKAGE = Path(submitter.__file__).parent
TEMPLATES = PACKAGE.parent / "templates"
GOLDEN = Path(__file__).parent.parent / "golden"

# Names no module but the layout has a reason to spell: file names only (`status`, `command`
# and `upstream` are also keys of the task's record, and a command's name).
FILE_NAMES = {
    task_layout.JOB_SCRIPT,
    task_layout.TASK_FILE,
    task_layout.STDOUT,
    task_layout.STDERR,
    task_layout.JOB_OUT,
    task_layout.JOB_ERR,
    task_layout.CANCEL,
    task_layout.STOPPED,
    task_layout.STATUS_TEMP,
    task_layout.ATTEMPT,
    task_layout.GROUPS,
}
# Where a template uses a name as a path: after a directory, a redirection or `bash`.
_PATH_USE = re.compile(r"(?:/|[<>]|\bbash |\. \./)(?P<name>[.\w-]+)")


def test_no_module_but_the_layout_spells_a_task_file_name() -> None:
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "task_layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in FILE_NAMES:
                spelled.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
    assert spelled == []


@pytest.fixture(scope="module")
def prepared() -> dict[str, PreparedTask]:
    project = load_project(GOLDEN / "tasks.yml")
    return {t.host.name: t for t in prepare_tasks(project, check_inputs=False)}


def _renamed() -> dict[str, str | tuple[str, ...]]:
    return {
        key: tuple(f"renamed{n}" for n in value) if isinstance(value, tuple) else f"renamed{value}"
        for key, value in task_layout.TEMPLATE_NAMES.items()
    }


def _code(script: str) -> str:
    """The script without its comment lines (they may say a file's name in words)."""
    return "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))


def test_the_wrapper_names_the_task_files_as_the_layout_does(
    prepared: dict[str, PreparedTask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendered with every name changed, the wrapper and the packed-job driver use only the
    changed names."""
    renamed = _renamed()
    monkeypatch.setattr(render_compile, "TEMPLATE_NAMES", renamed)
    process = prepared["plain"]
    batch = prepared["hpc-slurm"]
    group = ArrayGroup("g1", "align+2", 3, "/w/.groups/g1", "/w/.groups/g1/members", 2)
    scripts = {
        "wrapper": render_job(process.spec, process.chain).job_script,
        "batch wrapper": render_job(batch.spec, batch.chain).job_script,
        "packed": render_packed(batch.spec, batch.chain, group, batch.spec.resources),
    }
    for which, script in scripts.items():
        code = _code(script)
        used = {m["name"] for m in _PATH_USE.finditer(code)}
        left = used & {v for v in task_layout.TEMPLATE_NAMES.values() if isinstance(v, str)}
        assert not left, f"{which} spells {sorted(left)} instead of taking them from files"
    wrapper = _code(scripts["wrapper"])
    assert "$SUBMITTER_TASK_DIR/renamedstatus" in wrapper
    assert " | ".join(renamed["wrapper_files"]) in wrapper


def test_the_scheduler_packs_literal_names_are_the_layouts() -> None:
    """The scheduler packs spell the job's own files (job.sh, job.out, job.err) where their
    headers and array drivers need them: those are the layout's names."""
    known = {task_layout.JOB_SCRIPT, task_layout.JOB_OUT, task_layout.JOB_ERR}
    found = set()
    for path in sorted(TEMPLATES.rglob("*.j2")):
        for match in re.finditer(r"(?<![\w.%-])job\.[a-z]+\b", path.read_text(encoding="utf-8")):
            found.add(match.group(0))
            assert match.group(0) in known, f"{path}: {match.group(0)}"
    assert found == known


def test_the_step_scripts_placeholders_are_all_filled() -> None:
    from submitter.follow import FOLLOW_SCRIPT
    from submitter.hostops import ArrayStart, HostOps, Running

    task = Running("t1", "/w/t1", "token", None)
    group = ArrayStart("/w/.groups/g", "/w/.groups/g/job.sh", (task,))
    scripts = [FOLLOW_SCRIPT, HostOps.remove_script(["/w/t1"])]
    for kind in ("local", "slurm"):
        ops = HostOps.for_kind(kind)
        scripts += [ops.start_script([task], [group] if ops.batch else []), ops.poll_script([task])]
    for script in scripts:
        assert not re.search(r"@[A-Z_]+@", script)
    assert f'"$1/{task_layout.STATUS}"' in scripts[-1]
    with pytest.raises(KeyError, match="@NO_SUCH@"):
        task_layout.fill('cat "$1/@NO_SUCH@"')
