"""Live progress of an apply: on a terminal a bar with the counts per state and per host, the
elapsed time and an estimate of the time left; otherwise (a pipe, a log file, NO_COLOR) plain
lines, one when the counts change, at most every few seconds."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Protocol, TextIO

from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from submitter.terminal import console, no_color


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


# Not on a terminal (a pipe, a log file), a new progress line at most this often.
PLAIN_EVERY = 3.0
# The counts are worth taking at most this often (a terminal shows them 4 times a second).
UPDATE_EVERY = 0.1
# No estimate of the time left until this many tasks ended in this run: "—" until then.
ETA_AFTER = 3
NO_ESTIMATE = "—"
BAR_WIDTH = 30

# What the user sees of each task state.
BUCKET_OF = {
    "completed": "done",
    "skipped": "done",
    "running": "running",
    "queued": "queued",
    "submitted": "queued",
    "held": "queued",
    "starting": "queued",
    "failed": "failed",
    "killed": "failed",
    "lost": "failed",
    "blocked": "blocked",
    "pending": "pending",
}
BUCKETS = ("done", "running", "queued", "failed", "blocked", "pending")
HOST_BUCKETS = ("running", "queued", "done", "failed")
ENDED_BUCKETS = ("done", "failed", "blocked")


def buckets(states: Mapping[str, int]) -> Counter[str]:
    """Task states counted as the user sees them (done, running, queued, ...)."""
    counted: Counter[str] = Counter()
    for state, count in states.items():
        counted[BUCKET_OF.get(state, "pending")] += count
    return counted


class Counted(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def state(self) -> str: ...


class Tally:
    """Counts tasks by state, overall and per host. A task that ended stays ended in a run:
    it is counted once, and each count looks only at the tasks not ended at the one before
    (counting 10,000 tasks costs, a few times a second)."""

    def __init__(self, tasks: Iterable[Counted], ended: Collection[str]) -> None:
        self._ended_states = ended
        self._ended: Counter[str] = Counter()
        self._ended_by_host: dict[str, Counter[str]] = {}
        self._unsettled = list(tasks)

    def take(
        self, launched: Mapping[str, int] | None = None
    ) -> tuple[Counter[str], dict[str, Counter[str]]]:
        """The counts now: overall, and by host. A task `starting` on a host in `launched`
        (handed to this machine's launcher, which runs as many tasks at once as the host's
        value) is as good as running while the launcher has a free slot for it."""
        counts = self._ended.copy()
        by_host = {host: counted.copy() for host, counted in self._ended_by_host.items()}
        ended_states = self._ended_states
        pairs = Counter((task.host, task.state) for task in self._unsettled)
        self._unsettled = [t for t in self._unsettled if t.state not in ended_states]
        for (host, state), number in pairs.items():
            counts[state] += number
            _counter(by_host, host)[state] += number
            if state in ended_states:
                self._ended[state] += number
                _counter(self._ended_by_host, host)[state] += number
        for host, slots in (launched or {}).items():
            counted = by_host.get(host, Counter())
            free = min(counted["starting"], max(0, slots - counted["running"]))
            for counter in (counted, counts):
                counter["starting"] -= free
                counter["running"] += free
        return counts, by_host


def _counter(counters: dict[str, Counter[str]], host: str) -> Counter[str]:
    """The host's counter, made the first time only (not a new one per task counted)."""
    counted = counters.get(host)
    if counted is None:
        counted = counters[host] = Counter()
    return counted


class Estimate:
    """The time left, from the rate at which tasks have ended in this run (up-to-date tasks,
    done at the start, do not count towards the rate)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._base: tuple[float, int] | None = None  # when, and how many had ended then

    def left(self, counted: Mapping[str, int]) -> float | None:
        ended = sum(counted.get(b, 0) for b in ENDED_BUCKETS)
        total = sum(counted.values())
        now = self.clock()
        if self._base is None:
            self._base = (now, ended)
            return None
        since, ended_then = self._base
        finished = ended - ended_then
        if finished < ETA_AFTER or now <= since:
            return None
        return (total - ended) * (now - since) / finished

    def text(self, counted: Mapping[str, int]) -> str:
        left = self.left(counted)
        return NO_ESTIMATE if left is None else _clock(left + 0.999)


def state_line(counted: Mapping[str, int]) -> str:
    line = " · ".join(f"{b} {counted.get(b, 0)}" for b in BUCKETS if b != "blocked")
    return line + (f" · blocked {counted['blocked']}" if counted.get("blocked") else "")


def host_lines(by_host: Mapping[str, Mapping[str, int]]) -> list[str]:
    """One short line per host: its running, queued, done and failed tasks."""
    lines = []
    width = max((len(host) for host in by_host), default=0)
    for host in sorted(by_host):
        counted = buckets(by_host[host])
        lines.append(f"{host:<{width}}  " + " · ".join(f"{b} {counted[b]}" for b in HOST_BUCKETS))
    return lines


class Progress:
    """Shows the counts of tasks by state and host, the elapsed time and the time left while
    tasks run. The clock starts when the command does, so the elapsed time includes preparing
    the tasks."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console(stream or sys.stderr)
        self.quiet = quiet
        self.verbose = verbose
        self.clock = clock
        self._live: Live | None = None
        self._start = clock()
        self._estimate = Estimate(clock)
        self._last_summary = ""
        self._last_line = ""
        self._last_printed = ""
        self._printed_at = -PLAIN_EVERY
        self._updated_at = -UPDATE_EVERY

    def say(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def detail(self, message: str) -> None:
        """A line per task, shown only with -v."""
        if self.verbose:
            self.say(message)

    def start(self) -> None:
        # NO_COLOR: no escape at all, so no line redrawn in place: plain lines, as in a pipe
        if self.console.is_terminal and not self.quiet and not no_color():
            self._live = Live(Text(""), console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    def due(self) -> bool:
        """Whether new counts would be shown by now: the caller may skip counting if not."""
        return self.clock() - self._updated_at >= UPDATE_EVERY

    def update(
        self,
        states: Counter[str],
        notes: list[str] | None = None,
        by_host: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self._updated_at = self.clock()
        counted = buckets(states)
        times = f"elapsed {_clock(self.elapsed)} · left {self._estimate.text(counted)}"
        if self._live is not None:
            self._live.update(self.panel(counted, times, notes or [], by_host or {}))
            return
        if self.quiet:
            return
        summary = state_line(counted) + "".join(f" · {note}" for note in notes or [])
        if summary != self._last_summary:
            self._last_summary, self._last_line = summary, f"{summary} · {times}"
        # a change held back by the pause is printed once it is over, not at the next change
        held = self._last_line != self._last_printed
        if held and self.clock() - self._printed_at >= PLAIN_EVERY:
            self._print_plain(self._last_line)

    def panel(
        self,
        counted: Mapping[str, int],
        times: str,
        notes: list[str],
        by_host: Mapping[str, Mapping[str, int]],
    ) -> RenderableType:
        """The bar of tasks done out of all, the counts per state, the times; a line per host."""
        total = sum(counted.values())
        top = Table.grid(padding=(0, 1))
        top.add_row(
            ProgressBar(total=max(total, 1), completed=counted.get("done", 0), width=BAR_WIDTH),
            Text(f"{counted.get('done', 0)}/{total} done · {times}"),
        )
        lines = [state_line(counted), *host_lines(by_host), *notes]
        return Group(top, *(Text(f"  {line}") for line in lines))

    def _print_plain(self, line: str) -> None:
        self._printed_at = self.clock()
        self._last_printed = line
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif not self.quiet and self._last_line and self._last_line != self._last_printed:
            self._print_plain(self._last_line)  # the counts as they ended

    @property
    def elapsed(self) -> float:
        return self.clock() - self._start
