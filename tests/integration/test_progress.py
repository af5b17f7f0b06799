"""apply's progress: the counts per state and host, the time left, on a terminal and not."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from submitter.progress import PLAIN_EVERY, Estimate, Progress, Tally, host_lines
from tests.conftest import write


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Task:
    host: str
    state: str


def test_no_estimate_until_a_few_tasks_ended_then_from_their_rate() -> None:
    clock = FakeClock()
    estimate = Estimate(clock)
    assert estimate.text({"done": 5, "pending": 10}) == "—", "the first count is the baseline"
    clock.now += 10
    assert estimate.text({"done": 7, "running": 8}) == "—", "two ended: too few to tell"
    clock.now += 10
    # 5 ended in 20 s: 4 s each; 6 left -> 24 s
    assert estimate.left({"done": 9, "failed": 1, "running": 5, "pending": 1}) == pytest.approx(24)
    assert estimate.text({"done": 9, "failed": 1, "running": 5, "pending": 1}) == "0:00:24"


def test_up_to_date_tasks_do_not_make_the_estimate_optimistic() -> None:
    clock = FakeClock()
    estimate = Estimate(clock)
    estimate.left({"done": 1000, "pending": 10})  # skipped at the start: done in no time
    clock.now += 60
    assert estimate.left({"done": 1005, "running": 5}) == pytest.approx(60)


def test_tally_counts_per_host_and_each_ended_task_once() -> None:
    tasks = [Task("hpc", "running"), Task("hpc", "completed"), Task("local", "starting")]
    tally = Tally(tasks, {"completed", "failed"})
    counts, by_host = tally.take(launched={"local": 2})
    assert counts == Counter({"running": 2, "completed": 1})
    assert by_host == {"hpc": Counter(running=1, completed=1), "local": Counter(running=1)}
    tasks[0].state = "failed"
    tasks[1].state = "changed after it ended: not looked at again"
    counts, by_host = tally.take()
    assert counts == Counter({"completed": 1, "failed": 1, "starting": 1})
    assert by_host["hpc"] == Counter(completed=1, failed=1)


def test_a_launchers_tasks_count_as_running_up_to_its_slots() -> None:
    """The local launcher holds a few tasks beyond those it runs: those wait (queued)."""
    tasks = [Task("local", "running"), *(Task("local", "starting") for _ in range(4))]
    counts, by_host = Tally(tasks, {"completed"}).take(launched={"local": 3})
    assert counts == by_host["local"] == Counter(running=3, starting=2)


def test_host_lines_are_short_and_aligned() -> None:
    lines = host_lines(
        {
            "hpc": Counter(running=3, queued=2, submitted=1, completed=4, skipped=1, lost=1),
            "b": Counter(pending=2),
        }
    )
    assert lines == [
        "b    running 0 · queued 0 · done 0 · failed 0",
        "hpc  running 3 · queued 3 · done 5 · failed 1",
    ]


def test_the_terminal_panel_has_the_bar_states_hosts_and_times() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    progress = Progress(stream, clock=clock)
    counted = Counter(done=3, running=1, pending=4)
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(
        progress.panel(
            counted,
            "elapsed 0:00:10 · left 0:00:20",
            ["hpc: unreachable since 10:00:00"],
            {"hpc": Counter(completed=3, running=1), "local": Counter(pending=4)},
        )
    )
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert "3/8 done · elapsed 0:00:10 · left 0:00:20" in lines[0]
    assert "━" in lines[0]
    assert lines[1].strip() == "done 3 · running 1 · queued 0 · failed 0 · pending 4"
    assert lines[2].strip() == "hpc    running 1 · queued 0 · done 3 · failed 0"
    assert lines[3].strip() == "local  running 0 · queued 0 · done 0 · failed 0"
    assert lines[4].strip() == "hpc: unreachable since 10:00:00"


def test_plain_lines_only_when_counts_change_with_the_time_left() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    progress = Progress(stream, clock=clock)
    progress.update(Counter(pending=4))
    clock.now += 1
    progress.update(Counter(pending=4))  # the same counts: nothing new
    for done in range(1, 5):
        clock.now += PLAIN_EVERY
        progress.update(Counter(completed=done, pending=4 - done))
    progress.stop()
    lines = stream.getvalue().splitlines()
    assert (
        lines[0]
        == "done 0 · running 0 · queued 0 · failed 0 · pending 4 · elapsed 0:00:00 · left —"
    )
    # 3 ended in 10 s, 1 left: 3.3 s, rounded up
    assert lines[3].endswith("elapsed 0:00:10 · left 0:00:04"), lines
    assert len(lines) == 5
    assert "\x1b" not in stream.getvalue()


def test_a_change_held_back_by_the_pause_is_printed_once_the_pause_is_over() -> None:
    """A note that comes soon after a line (a job that cannot start) is not kept back until
    the counts change again, which they may never do."""
    clock = FakeClock()
    stream = io.StringIO()
    progress = Progress(stream, clock=clock)
    progress.update(Counter(queued=1))
    clock.now += 1
    progress.update(Counter(queued=1), ["hpc: 1 queued: cannot start: X"])
    assert len(stream.getvalue().splitlines()) == 1
    clock.now += PLAIN_EVERY
    progress.update(Counter(queued=1), ["hpc: 1 queued: cannot start: X"])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "· hpc: 1 queued: cannot start: X ·" in lines[1], lines
    clock.now += PLAIN_EVERY
    progress.update(Counter(queued=1), ["hpc: 1 queued: cannot start: X"])
    progress.stop()
    assert len(stream.getvalue().splitlines()) == 2


def _apply_on_a_terminal(project: Path, env: dict[str, str]) -> tuple[int, str]:
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "submitter", "apply", str(project / "tasks.yml")],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**os.environ, "COLUMNS": "120", "LINES": "40", **env},
        close_fds=True,
    )
    os.close(child)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end closed
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(main)
    return process.wait(timeout=10), output.decode("utf-8", "replace")


def _two_hosts(project: Path) -> None:
    write(
        project / "tasks.yml",
        "hosts:\n  other: {scheduler: local, max_running: 1}\n"
        "tasks:\n"
        "  - name: 'a-{{ i }}'\n    for_each: {i: [1, 2, 3, 4, 5, 6]}\n    run: sleep 0.4\n"
        "  - name: 'b-{{ i }}'\n    host: other\n    for_each: {i: [1, 2, 3]}\n    run: sleep 0.6\n",
    )


def test_apply_on_a_terminal_shows_the_bar_with_hosts_and_the_time_left(tmp_path: Path) -> None:
    _two_hosts(tmp_path)
    code, output = _apply_on_a_terminal(tmp_path, {"NO_COLOR": "", "TERM": "xterm"})
    assert code == 0, output
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    assert "━" in plain, "a bar"
    assert re.search(r"\d+/9 done · elapsed 0:00:\d\d · left 0:00:\d\d", plain), plain
    assert re.search(r"local\s+running \d · queued \d · done \d · failed 0", plain), plain
    assert re.search(r"other\s+running \d · queued \d · done \d · failed 0", plain), plain
    assert "9 completed, 0 up to date, 0 failed" in plain


def test_no_color_on_a_terminal_writes_no_escapes(tmp_path: Path) -> None:
    _two_hosts(tmp_path)
    code, output = _apply_on_a_terminal(tmp_path, {"NO_COLOR": "1", "TERM": "xterm"})
    assert code == 0, output
    assert "\x1b" not in output
    assert "9 completed, 0 up to date, 0 failed" in output
    assert re.search(r"done \d · running \d · .* · left ", output), output
