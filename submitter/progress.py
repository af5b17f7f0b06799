"""Live progress of an apply: a rich status line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from rich.live import Live
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


class Progress:
    """Shows done/running/failed/pending counts and elapsed time while tasks run. The clock
    starts when the command does, so the elapsed time includes preparing the tasks."""

    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, verbose: bool = False
    ) -> None:
        self.console = console(stream or sys.stderr)
        self.quiet = quiet
        self.verbose = verbose
        self._live: Live | None = None
        self._start = time.monotonic()
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
        return time.monotonic() - self._updated_at >= UPDATE_EVERY

    def update(self, states: Counter[str], notes: list[str] | None = None) -> None:
        self._updated_at = time.monotonic()
        done = states["completed"] + states["skipped"]
        failed = states["failed"] + states["killed"] + states["lost"]
        running = states["running"]
        waiting = states["queued"] + states["submitted"] + states["held"] + states["starting"]
        line = (
            f"done {done} · running {running} · queued {waiting} · failed {failed} · "
            f"pending {states['pending']}"
            + (f" · blocked {states['blocked']}" if states["blocked"] else "")
            + "".join(f" · {note}" for note in notes or [])
            + f" · elapsed {_clock(time.monotonic() - self._start)}"
        )
        if self._live is not None:
            self._live.update(Text(line))
        elif not self.quiet:
            summary = line.rsplit(" · elapsed", 1)[0]
            if summary == self._last_summary:
                return
            self._last_summary, self._last_line = summary, line
            if time.monotonic() - self._printed_at >= PLAIN_EVERY:
                self._print_plain(line)

    def _print_plain(self, line: str) -> None:
        self._printed_at = time.monotonic()
        self._last_printed = line
        self.console.print(line, markup=False, highlight=False)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif not self.quiet and self._last_line and self._last_line != self._last_printed:
            self._print_plain(self._last_line)  # the counts as they ended

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start
