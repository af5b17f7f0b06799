"""The pipeline's dependency graph as the report draws it: tasks (or, at scale, groups of
tasks by name prefix) layered by topological depth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from submitter.report.data import Task, group_of

NODE_LIMIT = 120
EDGE_LIMIT = 2000


@dataclass(frozen=True)
class Node:
    label: str
    title: str  # the tooltip: every name it stands for, or how many
    depth: int
    states: Counter[str]

    @property
    def size(self) -> int:
        return sum(self.states.values())


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[tuple[int, int, int]]  # upstream node, downstream node, how many task edges
    note: str  # how the view was reduced, if it was


def depths(tasks: Sequence[Task]) -> dict[str, int]:
    """Each task name's depth: 0 without upstream tasks in the report, else one more than
    its deepest upstream task. Upstream names the report does not hold are left out."""
    names = {t.name for t in tasks}
    upstream = {t.name: [u for u in t.upstream if u in names] for t in tasks}
    depth: dict[str, int] = {}
    for name in upstream:
        if name in depth:
            continue
        stack, on_stack = [name], {name}  # a chain of tasks, each an upstream of the one before
        while stack:
            current = stack[-1]
            pending = next(
                (u for u in upstream[current] if u not in depth and u not in on_stack), None
            )
            if pending is not None:
                stack.append(pending)
                on_stack.add(pending)
                continue
            stack.pop()
            on_stack.discard(current)
            depth[current] = 1 + max((depth.get(u, 0) for u in upstream[current]), default=-1)
    return depth


def build(tasks: Sequence[Task], node_limit: int = NODE_LIMIT) -> Graph:
    """One node per task when they fit; else one per name group (see `group_of`), the largest
    `node_limit` groups when even those do not fit."""
    depth = depths(tasks)
    if len(tasks) <= node_limit:
        key = {t.name: t.name for t in tasks}
        note = ""
    else:
        key = {t.name: group_of(t.name) for t in tasks}
        note = f"{len(tasks)} tasks: one node per name group (name up to its first separator)"
    members: dict[str, list[Task]] = {}
    for task in tasks:
        members.setdefault(key[task.name], []).append(task)
    if len(members) > node_limit:
        largest = sorted(members, key=lambda k: -len(members[k]))[:node_limit]
        note += f"; the {node_limit} largest of {len(members)} groups shown"
        members = {k: members[k] for k in largest}
    groups = list(members)
    index = {group: i for i, group in enumerate(groups)}
    counted: Counter[tuple[int, int]] = Counter()
    for task in tasks:
        target = index.get(key[task.name])
        for up in task.upstream:
            source = index.get(key.get(up, ""))
            if source is not None and target is not None and source != target:
                counted[(source, target)] += 1
    edges = [(s, t, n) for (s, t), n in counted.most_common(EDGE_LIMIT)]
    if len(counted) > EDGE_LIMIT:
        note += f"; the {EDGE_LIMIT} heaviest of {len(counted)} edges shown"
    nodes = [_node(group, members[group], depth) for group in groups]
    order = sorted(range(len(nodes)), key=lambda i: (nodes[i].depth, _first(members[groups[i]])))
    renumber = {old: new for new, old in enumerate(order)}
    return Graph(
        [nodes[i] for i in order],
        [(renumber[s], renumber[t], n) for s, t, n in edges],
        note.lstrip("; "),
    )


def _first(tasks: Sequence[Task]) -> float:
    submitted = [a.submitted for t in tasks for a in t.attempts[:1]]
    return min(submitted, default=float("inf"))


def _node(group: str, tasks: Sequence[Task], depth: dict[str, int]) -> Node:
    states = Counter(t.state for t in tasks)
    if len(tasks) == 1:
        task = tasks[0]
        return Node(task.name, f"{task.name}: {task.state}", depth[task.name], states)
    summary = ", ".join(f"{n} {state}" for state, n in states.most_common())
    return Node(
        f"{group} ({len(tasks)})",
        f"{group}: {len(tasks)} tasks ({summary})",
        min(depth[t.name] for t in tasks),
        states,
    )
