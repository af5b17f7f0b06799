"""The cores PBS says are free now, from `pbsnodes -a`. No I/O.

`pbsnodes -a` prints a block per node: its name alone on a line, then indented
`attribute = value` lines. What each flavour says of a node's cores:
- PBS Pro and OpenPBS: `resources_available.ncpus = 32` and, once a job has run there,
  `resources_assigned.ncpus = 12` (its `jobs` line is not needed);
- Torque: `np = 16` and, while jobs run there, `jobs = 0/12.srv, 1/13.srv, 2-5/14.srv`: each
  core a job holds, by core number or range;
- SLURM's Torque wrapper (slurm-wlm-torque): `np = 4` and never a `jobs` line; its node in
  `state = free` is one SLURM calls idle, while a partly used node says `state = mixed`, with
  nothing telling how much of it is left: such a node is counted as having none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ATTRIBUTE = re.compile(r"^\s+([A-Za-z_][\w.]*)\s*=\s*(.*?)\s*$")
# A core range in a Torque `jobs` entry, before its `/job id`: `3` or `2-5`.
_CORES = re.compile(r"^([0-9]+)(?:-([0-9]+))?$")
_DIGITS = re.compile(r"^\s*([0-9]+)\s*$")


@dataclass(frozen=True)
class Node:
    """A node as `pbsnodes -a` describes it: its state and what it says of its cores."""

    name: str
    attributes: dict[str, str]

    @property
    def usable(self) -> bool:
        """Taking jobs now. Only `free`: `job-busy`, `job-exclusive`, `busy`, `offline`,
        `down`, `resv-exclusive` and their comma lists (`down,offline`) take none; a free
        node may be partly used."""
        return self.attributes.get("state", "").strip().lower() == "free"

    def free_cores(self) -> int | None:
        """What the node has left; None when it does not say its size."""
        pro = _number(self.attributes.get("resources_available.ncpus"))
        if pro is not None:
            assigned = _number(self.attributes.get("resources_assigned.ncpus"))
            return max(0, pro - (assigned or 0))
        torque = _number(self.attributes.get("np"))
        if torque is not None:
            return max(0, torque - _cores_in_jobs(self.attributes.get("jobs", "")))
        return None


def parse_pbsnodes(output: str) -> list[Node]:
    """`pbsnodes -a` text -> its nodes, in order. A line at the margin names a node (or is
    something else: a qmgr line, an error); indented `name = value` lines are its attributes."""
    nodes: list[Node] = []
    for line in output.splitlines():
        if line.strip() and not line[:1].isspace():
            nodes.append(Node(line.strip(), {}))
            continue
        attribute = _ATTRIBUTE.match(line)
        if attribute and nodes:
            nodes[-1].attributes[attribute.group(1).lower()] = attribute.group(2)
    return nodes


def free_cores(output: str) -> int | None:
    """The cores of usable nodes that no job holds, summed; an unusable node counts 0, a usable
    one of unknown size is left out. None when no node said anything of its cores."""
    counts: list[int] = []
    for node in parse_pbsnodes(output):
        if "state" not in node.attributes:
            continue  # not a node: a server block, a qmgr line, an error
        free = node.free_cores() if node.usable else 0
        if free is not None:
            counts.append(free)
    return sum(counts) if counts else None


def _cores_in_jobs(jobs: str) -> int:
    """The cores a Torque `jobs` value lists: `0/12.srv, 1/13.srv, 2-5/14.srv` -> 6."""
    held = 0
    for entry in jobs.split(","):
        cores = _CORES.match(entry.split("/", 1)[0].strip())
        if cores:
            first, last = int(cores.group(1)), int(cores.group(2) or cores.group(1))
            held += max(0, last - first) + 1
    return held


def _number(value: str | None) -> int | None:
    digits = _DIGITS.match(value or "")
    return int(digits.group(1)) if digits else None
