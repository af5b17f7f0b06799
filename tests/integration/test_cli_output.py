"""What the CLI prints for a person on a terminal and for a program on a pipe: plain tables,
NO_COLOR, status --state and --watch, usage errors and JSON errors. Terminal cases run the
real CLI on a pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from submitter.errors import ConfigError, ConfigErrors, HostError, Location, error_document
from tests.conftest import write

TASKS = """\
tasks:
  - name: "echo-{{ s }}"
    for_each: {s: [a, b]}
    run: echo {{ s }}
  - name: broken
    run: |
      printf 'tab\\there\\n' >&2
      exit 4
"""
ESC = "\x1b["


def _applied(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", TASKS)
    assert cli("apply", tasks).code == 1  # `broken` fails
    return tasks


def _on_terminal(
    tmp_path: Path, *argv: str, no_color: bool = False, timeout: float = 60, columns: int = 200
) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal: exit code and all it wrote."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS=str(columns), LINES="50")
    if no_color:
        env["NO_COLOR"] = "1"
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "submitter", *argv],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the terminal's last writer has gone
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_status_on_a_pipe_is_tab_separated_under_a_header(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _applied(cli, tmp_path)
    result = cli("status", "-C", tmp_path)  # captured: not a terminal
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].split("\t") == [
        "task", "id", "host", "state", "attempt", "job", "exit", "reason",
    ]  # fmt: skip
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert set(rows) == {"echo-a", "echo-b", "broken"}
    assert all(len(row) == 8 for row in rows.values())
    assert rows["broken"][3:7] == ["failed", "1 of 1", rows["broken"][5], "4"]
    assert ESC not in result.out and "│" not in result.out and "…" not in result.out


def test_plain_cells_keep_tabs_and_line_breaks_escaped() -> None:
    from submitter.tables import plain_text

    text = plain_text(("a", "b"), [("x\ty", "line1\nline2 \\ end")])
    assert text == "a\tb\nx\\ty\tline1\\nline2 \\\\ end\n"


def test_on_a_terminal_a_table_unless_plain(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _applied(cli, tmp_path)
    code, shown = _on_terminal(tmp_path, "status")
    assert code == 1
    assert "┃" in shown or "│" in shown, shown
    assert f"{ESC}1m" in shown, "the header is bold on a terminal"
    code, plain = _on_terminal(tmp_path, "status", "--plain")
    assert code == 1
    assert plain.splitlines()[0].split("\t")[:4] == ["task", "id", "host", "state"]
    assert ESC not in plain and "│" not in plain


def test_no_color_means_no_escape_on_a_terminal(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _applied(cli, tmp_path)
    code, shown = _on_terminal(tmp_path, "status", no_color=True)
    assert code == 1 and "echo-a" in shown
    assert "│" in shown, "still a table, without styles"
    assert ESC not in shown, repr(shown)
    (tmp_path / ".submitter").rename(tmp_path / "old-state")  # run everything again
    code, applied = _on_terminal(tmp_path, "apply", str(tasks), no_color=True)
    assert code == 1
    assert "FAILED broken" in applied and "2 completed" in applied
    assert ESC not in applied, repr(applied)


def test_without_no_color_a_terminal_gets_escapes_from_apply(tmp_path: Path) -> None:
    """The other side of the test above: it could fail."""
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: a\n    run: sleep 1\n")
    code, applied = _on_terminal(tmp_path, "apply", str(tasks))
    assert code == 0 and "1 completed" in applied
    assert ESC in applied


def _drawn(table: object, width: int = 80) -> list[str]:
    from rich.console import Console

    out = Console(file=io.StringIO(), width=width, color_system=None)
    out.print(table)
    return out.file.getvalue().splitlines()  # type: ignore[attr-defined]


def _cells(lines: list[str]) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("│┃").split("│" if "│" in line else "┃")] for line in lines
    ]


ID = "d45b62af4c0671ec"
DONE = ["align-sample-01", ID, "local", "completed", "1 of 1", "", "0", ""]


def test_an_80_column_status_gives_no_width_to_empty_columns() -> None:
    from submitter.status_view import status_table

    lines = _drawn(status_table([DONE, [*DONE[:1], "9485b0d4c0105e2b", *DONE[2:]]]))
    assert all(len(line) <= 80 for line in lines)
    header, *rows = [cells for cells in _cells(lines) if len(cells) > 1]
    assert header == ["task", "id", "host", "state", "attempt", "exit"], "no job, no reason"
    assert rows == [
        ["align-sample-01", ID, "local", "completed", "1 of 1", "0"],
        ["align-sample-01", "9485b0d4c0105e2b", "local", "completed", "1 of 1", "0"],
    ]


def test_an_80_column_status_wraps_names_and_reasons_and_keeps_ids_whole() -> None:
    from submitter.status_view import status_table

    failed = ["merge-all", "9485b0d4c0105e2b", "hpc", "failed", "1 of 3", "4242", "4"]
    reason = "exit code 4 (attempt 1 of 3): not retried, 4 is not in retry_on"
    lines = _drawn(status_table([DONE, [*failed, reason]]))
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in "".join(lines), "nothing cut"
    body = [
        cells
        for cells in _cells(lines[lines.index(next(x for x in lines if "╇" in x)) :])
        if len(cells) > 1
    ]
    assert [cells[1] for cells in body if cells[1]] == [ID, "9485b0d4c0105e2b"]
    assert "".join(cells[0] for cells in body) == "align-sample-01merge-all", "wrapped, whole"
    assert "".join(cells[-1] for cells in body).replace(" ", "") == reason.replace(" ", "")


def test_a_narrow_status_leaves_out_job_attempt_and_exit_before_squeezing_names() -> None:
    from submitter.status_view import status_table

    failed = ["after-broken", "a53304c30d5f6187", "local", "blocked", "", "", ""]
    reason = "blocked: upstream task 'broken' failed"
    rows = [[*DONE[:5], "17501", "0", ""], [*failed, reason]]
    lines = _drawn(status_table(rows, 80))
    assert all(len(line) <= 80 for line in lines)
    header = next(c for c in _cells(lines) if "task" in c)
    assert header == ["task", "id", "host", "state", "reason"], header
    assert "left out for width: job, attempt, exit" in "".join(lines)
    body = [c for c in _cells(lines[lines.index(next(x for x in lines if "╇" in x)) :])]
    names = "".join(c[0] for c in body if len(c) > 1)
    assert names == "align-sample-01after-broken", "names whole: each fits its column"
    wide = _drawn(status_table(rows, 160), 160)
    assert next(c for c in _cells(wide) if "task" in c) == [
        "task", "id", "host", "state", "attempt", "job", "exit", "reason"
    ]  # fmt: skip
    assert "left out" not in "".join(wide)


def test_a_table_without_rows_keeps_its_header() -> None:
    from submitter.status_view import COLUMNS, status_table

    (header,) = [c for c in _cells(_drawn(status_table([]), 200)) if len(c) > 1]
    assert header == list(COLUMNS)


def test_status_on_an_80_column_terminal_shows_whole_ids(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(
        tmp_path / "tasks.yml",
        'tasks:\n  - name: "align-sample-{{ s }}"\n    for_each: {s: ["01", "02"]}\n'
        "    run: 'true'\n",
    )
    assert cli("apply", tasks).code == 0
    ids = [t["id"] for t in json.loads(cli("status", "--json", "-C", tmp_path).out)]
    code, shown = _on_terminal(tmp_path, "status", columns=80)
    assert code == 0
    assert all(task_id in shown for task_id in ids), shown
    assert "…" not in shown and "reason" not in shown, shown


def test_check_host_table_is_plain_on_a_pipe(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("check-host", "local", "--plain")
    assert result.out.splitlines()[0] == "check\tresult\tdetail\tfix"
    assert "check-host local" not in result.out, "no title line above the header"
    assert ESC not in result.out and "│" not in result.out


def test_status_state_filters_table_and_json(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _applied(cli, tmp_path)
    failed = cli("status", "--state", "failed", "-C", tmp_path)
    assert [line.split("\t")[0] for line in failed.out.splitlines()] == ["task", "broken"]
    assert failed.code == 1
    done = cli("status", "--state", "completed", "--json", "-C", tmp_path)
    assert sorted(t["name"] for t in json.loads(done.out)) == ["echo-a", "echo-b"]
    assert done.code == 0, "no failed task among those shown"
    both = cli("status", "--state", "completed,failed", "--json", "-C", tmp_path)
    repeated = cli("status", "--state", "completed", "--state", "failed", "--json", "-C", tmp_path)
    assert len(json.loads(both.out)) == len(json.loads(repeated.out)) == 3
    final = cli("status", "--state", "final", "--json", "-C", tmp_path)
    assert len(json.loads(final.out)) == 3
    assert json.loads(cli("status", "--state", "running", "--json", "-C", tmp_path).out) == []


def test_a_bad_state_is_a_usage_error_naming_the_nearest(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("status", "--state", "faild", "-C", tmp_path)
    assert result.code == 2
    assert result.err.startswith("usage: submitter status")
    assert "did you mean 'failed'?" in result.err


def test_watch_prints_a_block_when_something_changed_until_all_end(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: nap\n    run: sleep 2\n")
    assert cli("apply", tasks, "--detach").code == 0
    began = time.monotonic()
    watched = cli("status", "--watch", "0.2", "-C", tmp_path)
    assert watched.code == 0, watched.err
    assert time.monotonic() - began < 30
    blocks = watched.out.split("\n\n")
    assert len(blocks) >= 2, watched.out
    assert len(blocks) < 10, "a block only when something changed, not every 0.2 s"
    assert "\tcompleted\t" in blocks[-1]
    assert all("\tcompleted\t" not in block for block in blocks[:-1])


def test_watch_on_a_terminal_redraws_and_ends(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: nap\n    run: sleep 1\n")
    assert cli("apply", tasks, "--detach").code == 0
    code, shown = _on_terminal(tmp_path, "status", "--watch", "0.2")
    assert code == 0
    assert "completed" in shown and "│" in shown


def test_ctrl_c_ends_watch_cleanly(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: long\n    run: sleep 60\n")
    assert cli("apply", tasks, "--detach").code == 0
    watching = subprocess.Popen(
        [sys.executable, "-m", "submitter", "status", "--watch", "0.2", "-C", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watching.stdout is not None
        assert watching.stdout.readline().startswith("task\t")
        watching.send_signal(signal.SIGINT)
        assert watching.wait(timeout=30) == 0
        terminated = subprocess.Popen(watching.args, stdout=subprocess.PIPE, text=True)
        assert terminated.stdout is not None
        assert terminated.stdout.readline().startswith("task\t")
        terminated.terminate()
        assert terminated.wait(timeout=30) == 143, "SIGTERM is not a way to end watching"
    finally:
        watching.kill()
        cli("kill", "--all", "-C", tmp_path)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["status", "--bogus"], "status"),
        (["apply", "tasks.yml", "--nope"], "apply"),
        (["kill", "--all", "-x"], "kill"),
        (["status", "--watch", "soon"], "status"),
    ],
)
def test_bad_arguments_show_the_command_usage(cli, argv: list[str], command: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*argv)
    assert result.code == 2
    assert result.err.startswith(f"usage: submitter {command} "), result.err
    assert f"submitter {command}: error:" in result.err


def test_apply_json_with_a_bad_config_prints_a_json_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: x\n    runn: echo\n")
    result = cli("apply", tasks, "--json")
    assert result.code == 2
    document = json.loads(result.out)  # nothing else on stdout
    assert document["error"] == "bad_input" and document["exit_code"] == 2
    unknown = next(e for e in document["errors"] if "runn" in e["message"])
    assert (unknown["file"], unknown["line"], unknown["column"]) == (str(tasks), 3, 5)
    assert not unknown["message"].startswith(str(tasks)), "the place is in its own fields"
    missing = json.loads(cli("apply", tmp_path / "absent.yml", "--json").out)
    assert missing["exit_code"] == 2 and "absent.yml" in missing["errors"][0]["message"]
    assert cli("apply", tasks).out == "", "without --json, errors stay on stderr"


def test_other_commands_with_json_print_their_errors_as_json(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("check-host", "nowhere", "--json")
    assert result.code == 2
    assert "unknown host 'nowhere'" in json.loads(result.out)["errors"][0]["message"]
    result = cli("status", "--json", "-C", tmp_path)
    assert result.code == 2 and json.loads(result.out)["error"] == "bad_input"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["status", "--state", "faild", "--json"], "did you mean 'failed'?"),
        (["status", "--json", "--bogus"], "unrecognized arguments: --bogus"),
        (["status", "--watch", "soon", "--json"], "expected seconds"),
        (["apply", "tasks.yml", "--js", "-J", "0"], "expected a positive integer"),
        (["check-host", "--json"], "the following arguments are required: host"),
        (["setup-host", "h", "--json", "--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_bad_arguments_with_json_print_a_json_error(cli, argv: list[str], says: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*argv)
    assert result.code == 2
    document = json.loads(result.out)  # the one JSON document on stdout
    assert document["error"] == "bad_input" and document["exit_code"] == 2
    [error] = document["errors"]
    assert says in error["message"]
    assert (error["file"], error["line"], error["column"]) == (None, None, None)
    assert result.err.startswith(f"usage: submitter {argv[0]} "), "stderr as without --json"
    assert f"submitter {argv[0]}: error: " in result.err


def test_bad_arguments_without_json_print_nothing_on_stdout(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("status", "--state", "faild").out == ""
    logs = cli("logs", "x", "--json")  # logs has no --json: an unknown option like any other
    assert logs.code == 2 and logs.out == "" and "unrecognized arguments: --json" in logs.err


def test_error_documents_carry_the_exit_code_and_kind() -> None:
    host = error_document(HostError("h: ssh: connection refused"), 3)
    assert host == {
        "error": "host_error",
        "exit_code": 3,
        "errors": [
            {"file": None, "line": None, "column": None, "message": "h: ssh: connection refused"}
        ],
    }
    config = ConfigErrors([ConfigError("bad", Location("t.yml", 4, 2))])
    assert error_document(config, 2)["errors"] == [
        {"file": "t.yml", "line": 4, "column": 2, "message": "bad"}
    ]


def test_a_reader_that_stops_early_gets_no_traceback(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`submitter logs TASK | head -1`: the pipe closes under a long output."""
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: long\n    run: 'seq 1 200000'\n")
    assert cli("apply", tasks).code == 0
    shell = f"{sys.executable} -m submitter logs long -C {tmp_path} | head -1"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("# long "), done.stdout
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
