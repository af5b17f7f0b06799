"""`logs -f`: a running task's stdout and stderr as they are written, until the task ends.

One command runs on the task's host for the whole follow (over ssh: one session through the
host's master connection): a bash loop that reads what was appended to both files four times
a second, prefixes each line with the stream it came from, and ends by itself once the task's
status file says it ended. The status file is the truth there as everywhere; a task that ends
without writing one (a batch job gone from the queue, a dead process) is noticed by the
client's usual poll every CHECK_EVERY seconds, which then closes the loop's standard input:
the loop's sign to stop.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from submitter import task_layout as files
from submitter.errors import EXIT_OK, EXIT_TASKS_FAILED, HostError
from submitter.seams import REAL, Seams
from submitter.store.db import Store, TaskRecord
from submitter.transport.base import Transport

if TYPE_CHECKING:
    from submitter.engine import Engine

# How often the client asks the host (the scheduler, the wrapper's process) whether the task
# is still there, through the follow's own connection.
CHECK_EVERY = 5.0
# How long a stopped loop is given to say its last lines before it is ended.
STOP_GRACE = 3.0

# $1: the task directory. Lines out: `O text` (stdout), `E text` (stderr), then `END status`
# (the final status line) or `STOP` (told to stop: standard input closed).
FOLLOW_SCRIPT = files.fill(r"""
dir=$1
held=('' '' '' '' '')
# pump <fd> <tag>: every whole line appended since the last pump; a last line without its
# newline yet is held until the rest comes
follow_pump() {
  local line
  while IFS= read -r -u "$1" line; do
    printf '%s %s\n' "$2" "${held[$1]}$line"
    held[$1]=
  done
  held[$1]+=$line
}
follow_flush() {
  if [ -n "${held[$1]}" ]; then printf '%s %s\n' "$2" "${held[$1]}"; fi
  return 0
}
out=0 err=0
while :; do
  if [ "$out" = 0 ] && [ -f "$dir/@STDOUT@" ] && exec 3<"$dir/@STDOUT@"; then out=1; fi
  if [ "$err" = 0 ] && [ -f "$dir/@STDERR@" ] && exec 4<"$dir/@STDERR@"; then err=1; fi
  status=
  if [ -f "$dir/@STATUS@" ]; then IFS= read -r status <"$dir/@STATUS@"; fi
  # the status is read before the files: once it is final, what they hold is all there is
  if [ "$out" = 1 ]; then follow_pump 3 O; fi
  if [ "$err" = 1 ]; then follow_pump 4 E; fi
  case $status in
    '' | '{"state": "running"'*) ;;
    *) follow_flush 3 O; follow_flush 4 E; printf 'END %s\n' "$status"; exit 0 ;;
  esac
  read -r -t 0.25 -u 0 _
  rc=$?
  if [ "$rc" -ge 1 ] && [ "$rc" -le 128 ]; then
    follow_flush 3 O; follow_flush 4 E; printf 'STOP\n'; exit 0
  fi
done
""")


@dataclass
class Streams:
    """Where the followed lines go."""

    out: TextIO
    err: TextIO


def follow(
    store: Store,
    record: TaskRecord,
    streams: Streams | None = None,
    *,
    check_every: float = CHECK_EVERY,
    seams: Seams = REAL,
    engine: Engine | None = None,
) -> int:
    """Print the task's output as it comes until it ends; the task's exit code as `status`
    gives it (0 completed, 1 otherwise). Ctrl-C ends the follow, never the task. One engine
    (`engine`, or one made here) for the whole follow: its grace periods run on, and its
    session's connection is the follow's."""
    from submitter.engine import Engine
    from submitter.progress import Progress

    streams = streams or Streams(sys.stdout, sys.stderr)
    engine = engine or Engine(store, Progress(quiet=True), seams=seams)

    def still_active() -> bool:
        current = store.task(record.id)
        if current is None or not current.active:
            return False
        engine.refresh([current], close=False)
        current = store.task(record.id)
        return current is not None and current.active

    try:
        _say(streams.out, f"{_headline(record)} (following; Ctrl-C stops following, not the task)")
        transport = engine.session_for(record).connection()
        follow_stream(transport, record.task_dir, streams, still_active, check_every)
        final = store.task(record.id)
        if final is not None and final.active:
            # the loop saw the final status first: record it (retrieving the logs)
            engine.refresh([final], close=False)
            final = store.task(record.id)
    finally:
        engine.close()
    final = final or record
    _say(streams.out, _headline(final))
    return EXIT_OK if final.state == "completed" else EXIT_TASKS_FAILED


def follow_stream(
    transport: Transport,
    task_dir: str,
    streams: Streams,
    still_active: Callable[[], bool],
    check_every: float = CHECK_EVERY,
) -> str:
    """Run the follow loop on the host, routing its lines, until it ends; what it ended on:
    `END <status line>` or `STOP`."""
    process = transport.stream(FOLLOW_SCRIPT, [task_dir])
    assert process.stdout is not None and process.stdin is not None
    reader = _LineReader(streams)
    checked = time.monotonic()
    try:
        fd = process.stdout.fileno()
        while reader.ending is None:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                reader.feed(chunk)
            elif process.stdin.closed:
                continue
            if time.monotonic() - checked >= check_every and not process.stdin.closed:
                if not still_active():
                    process.stdin.close()  # the loop's sign to stop
                checked = time.monotonic()
        if reader.ending is None:
            raise HostError(f"following the task's logs failed: {_complaint(process)}")
        return reader.ending
    finally:
        _end(process)


class _LineReader:
    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self.partial = b""
        self.ending: str | None = None

    def feed(self, chunk: bytes) -> None:
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            text = line.decode("utf-8", "replace")
            tag, _, rest = text.partition(" ")
            if tag == "O":
                _say(self.streams.out, rest)
            elif tag == "E":
                _say(self.streams.err, rest)
            elif tag in ("END", "STOP"):
                self.ending = text
                return


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()


def _headline(record: TaskRecord) -> str:
    reason = f" - {record.reason}" if record.reason else ""
    return f"# {record.name} ({record.id}) on {record.host}: {record.state}{reason}"


def _complaint(process: subprocess.Popen[bytes]) -> str:
    from submitter.transport.failures import last_lines

    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE)
    said = last_lines(process.stderr.read() if process.stderr else b"")
    return said or f"the command ended with exit code {process.returncode}"


def _end(process: subprocess.Popen[bytes]) -> None:
    """Tell the loop to stop, give it a moment, then end what is left of it here."""
    if process.stdin is not None and not process.stdin.closed:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
