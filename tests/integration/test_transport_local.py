"""The local transport: real processes through plumbum, in a session of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from submitter.errors import HostError
from submitter.paths import Transfer
from submitter.transport.local import LocalTransport


def test_run_passes_arguments_as_data_and_stdin_through() -> None:
    transport = LocalTransport()
    assert transport.run(["printf", "%s|", "a b", "$(no)", "'q'"]).stdout == "a b|$(no)|'q'|"
    assert transport.run(["cat"], stdin="piped\n").stdout == "piped\n"
    assert transport.run(["no-such-program-here"]).returncode == 127
    assert transport.stats.commands == 3


def test_run_script_returns_the_exit_code_and_both_outputs() -> None:
    result = LocalTransport().run_script("echo out; echo err >&2; exit 4\n")
    assert (result.returncode, result.stdout, result.stderr) == (4, "out\n", "err\n")


def test_commands_see_the_environment_as_it_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBMITTER_TEST_LATE_VARIABLE", "set after plumbum was imported")
    result = LocalTransport().run_script('printf "%s" "$SUBMITTER_TEST_LATE_VARIABLE"\n')
    assert result.stdout == "set after plumbum was imported"


def test_a_script_runs_in_its_own_session() -> None:
    result = LocalTransport().run_script("ps -o sid= -p $$\n")
    assert result.ok, result.stderr
    assert int(result.stdout) != os.getsid(0)


def test_ctrl_c_to_the_clients_process_group_does_not_stop_a_start_half_way(
    tmp_path: Path,
) -> None:
    started, finished = tmp_path / "started", tmp_path / "finished"
    client = (
        "from submitter.transport.local import LocalTransport\n"
        f"LocalTransport().run_script('touch {started}; sleep 1; touch {finished}\\n')\n"
    )
    # The client leads its own process group, as a shell's foreground job does.
    process = subprocess.Popen([sys.executable, "-c", client], start_new_session=True)
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists()
    os.killpg(process.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
    assert process.wait(timeout=20) != 0, "the client itself was interrupted"
    while not finished.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert finished.exists(), "the script it had started ran to its end"


def test_a_script_past_its_deadline_is_stopped_with_its_children() -> None:
    started = time.monotonic()
    with pytest.raises(HostError, match=r"timed out after 0\.5 s"):
        # The background sleep holds the output pipe: killing bash alone would not end the wait.
        LocalTransport().run_script("sleep 60 & sleep 60\n", timeout=0.5)
    assert time.monotonic() - started < 10


def test_put_and_get_copy_files_and_directories(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    remote = tmp_path / "remote"
    transport = LocalTransport()
    transport.put(
        [
            Transfer(source, str(remote / "dir")),
            Transfer(tmp_path / "b.txt", str(remote / "b.txt")),
        ]
    )
    assert (remote / "dir" / "sub" / "a.txt").read_text() == "a\n"
    back = tmp_path / "back"
    missing = transport.get(
        [
            Transfer(back / "b.txt", str(remote / "b.txt")),
            Transfer(back / "none", str(remote / "none")),
        ]
    )
    assert (back / "b.txt").read_text() == "b\n"
    assert [m.remote for m in missing] == [str(remote / "none")]
    assert (transport.stats.transfers, transport.stats.files) == (2, 3)


def test_inputs_are_linked_not_copied(tmp_path: Path) -> None:
    from submitter.paths import Transfer
    from submitter.transport.local import LocalTransport

    source = tmp_path / "project" / "big.dat"
    source.parent.mkdir()
    source.write_bytes(b"x" * 1024)
    folder = tmp_path / "project" / "refs"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    run = tmp_path / "work" / "task"
    LocalTransport().put(
        [Transfer(source, str(run / "big.dat")), Transfer(folder, str(run / "refs"))]
    )
    assert (run / "big.dat").stat().st_ino == source.stat().st_ino
    assert (run / "refs" / "a.txt").stat().st_ino == (folder / "a.txt").stat().st_ino


def test_a_directory_output_staged_as_an_input_comes_back(tmp_path: Path) -> None:
    """inputs [x/] and outputs [x/logs/]: the run directory's x/logs holds links to the
    project's files, which the task may rewrite in place and add to: bringing x/logs back
    copies what is new and leaves what is already the very file."""
    logs = tmp_path / "project" / "x" / "logs"
    logs.mkdir(parents=True)
    (logs / "run.log").write_text("first run\n")
    run = tmp_path / "work" / "task" / "x"
    transport = LocalTransport()
    transport.put([Transfer(tmp_path / "project" / "x", str(run))])
    (run / "logs" / "run.log").write_text("second run\n")  # through the link
    (run / "logs" / "new.log").write_text("new\n")
    assert transport.get([Transfer(logs, str(run / "logs"))]) == []
    assert (logs / "run.log").read_text() == "second run\n"
    assert (logs / "new.log").read_text() == "new\n"
