"""The logs of pool members, read back from their lanes' log files on the host.

A pool job's lane appends each finished member's logs to one file of its own (the wrapper's
`archive_logs`): a line `submitter-log <task id> stdout=N stderr=N job.out=N job.err=N`, then
the four parts as they are. The member's final status names that file and the entry's offset
(`"logs": [path, offset]`), and the member's own log files are gone: a finished task leaves
no log files on the host. One script reads every entry a retrieval needs, one read per lane
file (from the first entry wanted to the end), base64 on the way so any byte comes back.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from submitter import task_logs
from submitter.hostops import q
from submitter.run_state import Ending
from submitter.transport.base import Transport

_ENTRY = b"submitter-log"


@dataclass(frozen=True)
class LaneRef:
    path: str  # the lane's log file on the host
    offset: int  # where the task's entry starts in it


def lane_ref(status: Mapping[str, Any] | None) -> LaneRef | None:
    """Where a finished pool member's logs are, from its final status; None for a task whose
    logs are files in its own directory."""
    logs = (status or {}).get("logs")
    if (
        isinstance(logs, list)
        and len(logs) == 2
        and isinstance(logs[0], str)
        and isinstance(logs[1], int)
        and logs[1] >= 0
    ):
        return LaneRef(logs[0], logs[1])
    return None


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
    """One script printing, for each lane file the tasks' entries are in, a line
    `LANE <n> <base64 of the file from its first wanted entry on>`; n numbers the files in
    the order `lane_files` gives."""
    lines = []
    for number, (path, start) in enumerate(lane_files(refs)):
        lines.append(
            f"printf 'LANE\\t{number}\\t'; tail -c +{start + 1} -- {q(path)} 2>/dev/null"
            " | base64 | tr -d '\\n'; printf '\\n'"
        )
    return "\n".join(lines) + "\n"


def lane_files(refs: Mapping[str, LaneRef]) -> list[tuple[str, int]]:
    """Each lane file the refs name, with the smallest offset wanted in it."""
    starts: dict[str, int] = {}
    for ref in refs.values():
        starts[ref.path] = min(ref.offset, starts.get(ref.path, ref.offset))
    return sorted(starts.items())


def parse_read(output: str, refs: Mapping[str, LaneRef]) -> dict[str, dict[str, bytes]]:
    """Each task's log parts (by name) from what `read_script` printed; a task whose entry is
    not there whole, or names another task, is left out."""
    files = lane_files(refs)
    read: dict[str, tuple[int, bytes]] = {}
    for line in output.splitlines():
        tag, _, rest = line.partition("\t")
        number, _, encoded = rest.partition("\t")
        if tag != "LANE" or not number.isdigit() or int(number) >= len(files):
            continue
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        path, start = files[int(number)]
        read[path] = (start, data)
    parts: dict[str, dict[str, bytes]] = {}
    for task_id, ref in refs.items():
        if ref.path in read:
            start, data = read[ref.path]
            entry = parse_entry(data, ref.offset - start, task_id)
            if entry is not None:
                parts[task_id] = entry
    return parts


def parse_entry(data: bytes, at: int, task_id: str) -> dict[str, bytes] | None:
    """The parts of the entry at `at` in `data`, if it is `task_id`'s and whole."""
    end_of_line = data.find(b"\n", at)
    if at < 0 or end_of_line < 0:
        return None
    words = data[at:end_of_line].split(b" ")
    if words[:2] != [_ENTRY, task_id.encode()]:
        return None
    parts: dict[str, bytes] = {}
    place = end_of_line + 1
    for word in words[2:]:
        name, _, size = word.partition(b"=")
        if not size.isdigit() or place + int(size) > len(data):
            return None
        parts[name.decode()] = data[place : place + int(size)]
        place += int(size)
    return parts
