"""The logs of pool members, read back from their lanes' log files on the host.

A pool job's lane appends each finished member's logs to one file of its own (the wrapper's
`archive_logs`): its stdout, its stderr and the wrapper's own output and errors, one after
another. The member's final status names that file, where its parts start and their lengths
(`"logs": [path, start, stdout, stderr, job.out, job.err]`), and the lane removes the
member's own log files: a finished task leaves no log files on the host. One script reads
every entry a retrieval needs, one read per lane file (from the first entry wanted to the
end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from submitter import remote_bytes, task_logs
from submitter.hostops import q
from submitter.run_state import Ending
from submitter.task_layout import JOB_ERR, JOB_OUT, STDERR, STDOUT
from submitter.transport.base import Transport

# the parts of a task's logs, in the order its lane's file holds them
PARTS = (STDOUT, STDERR, JOB_OUT, JOB_ERR)


@dataclass(frozen=True)
class LaneRef:
    path: str  # the lane's log file on the host
    offset: int  # where the task's parts start in it
    sizes: tuple[int, ...]  # the length of each of PARTS


def lane_ref(status: Mapping[str, Any] | None) -> LaneRef | None:
    """Where a finished pool member's logs are, from its final status; None for a task whose
    logs are files in its own directory."""
    logs = (status or {}).get("logs")
    if not isinstance(logs, list) or len(logs) != 2 + len(PARTS) or not isinstance(logs[0], str):
        return None
    numbers = logs[1:]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        return None
    return LaneRef(logs[0], numbers[0], tuple(numbers[1:]))


def keep_from_lanes(connection: Transport, state_dir: Path, finished: Sequence[Ending]) -> set[str]:
    """Keep here the logs of the pool members among `finished`, read from their lanes' log
    files in one script; the ids of the tasks whose logs were kept."""
    refs = {e.tracked.id: r for e in finished if (r := lane_ref(e.status))}
    if not refs:
        return set()
    read = parse_read(connection.run_script(read_script(refs)).stdout, refs)
    for task_id, parts in read.items():
        task_logs.keep(state_dir, task_id, parts)
    return set(read)


def read_script(refs: Mapping[str, LaneRef]) -> str:
    """One script reading each lane file the tasks' entries are in, from its first wanted
    entry on; the files are keyed by their number in the order `lane_files` gives."""
    return remote_bytes.script(
        (f"LANE{number}", f"tail -c +{start + 1} -- {q(path)}")
        for number, (path, start) in enumerate(lane_files(refs))
    )


def lane_files(refs: Mapping[str, LaneRef]) -> list[tuple[str, int]]:
    """Each lane file the refs name, with the smallest offset wanted in it."""
    starts: dict[str, int] = {}
    for ref in refs.values():
        starts[ref.path] = min(ref.offset, starts.get(ref.path, ref.offset))
    return sorted(starts.items())


def parse_read(output: str, refs: Mapping[str, LaneRef]) -> dict[str, dict[str, bytes]]:
    """Each task's log parts (by name) from what `read_script` printed; a task whose parts
    are not all there is left out."""
    raw = remote_bytes.parse(output)
    read = {
        path: (start, raw[f"LANE{number}"])
        for number, (path, start) in enumerate(lane_files(refs))
        if f"LANE{number}" in raw
    }
    parts: dict[str, dict[str, bytes]] = {}
    for task_id, ref in refs.items():
        if ref.path in read:
            start, data = read[ref.path]
            place = ref.offset - start
            if place + sum(ref.sizes) <= len(data):
                parts[task_id] = {}
                for name, size in zip(PARTS, ref.sizes, strict=True):
                    parts[task_id][name] = data[place : place + size]
                    place += size
    return parts
