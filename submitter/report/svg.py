"""Inline SVG drawings for the report: timelines, occupancy bands, histograms and the
dependency graph. Pure: data in, markup out; every user string is escaped here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from submitter.report.data import Attempt, Task
from submitter.report.graph import Graph

WIDTH = 1200
LABEL_WIDTH = 200
PLOT_WIDTH = WIDTH - LABEL_WIDTH - 20
ROW_HEIGHT = 12
MIN_BAR = 3  # pixels: the shortest run still shows
BAND_BINS = 500
BAND_HEIGHT = 120

STATE_COLORS = {
    "completed": "#2e9d5b",
    "failed": "#d64545",
    "killed": "#e08a2c",
    "lost": "#8e5bd6",
    "running": "#3b82c4",
    "queued": "#9fb3c8",
    "submitted": "#9fb3c8",
    "starting": "#c3cfdb",
    "held": "#c9a227",
    "blocked": "#8a8a8a",
    "pending": "#d6d6d6",
}
QUEUED_COLOR = "#c7d3e0"
FAILED_STATES = frozenset({"failed", "killed", "lost"})

# Failed attempts are hatched, so a failed and a completed attempt differ without colour too.
DEFS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#d64545"/>'
    '<line x1="0" y1="0" x2="0" y2="6" stroke="#7a1010" stroke-width="3"/></pattern>'
    "</defs></svg>"
)


def color(state: str) -> str:
    return STATE_COLORS.get(state, "#bbbbbb")


def duration(seconds: float) -> str:
    """A short human duration: 120ms, 4.2s, 42s, 3m05s, 2h07m, 3d04h."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != whole else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


@dataclass(frozen=True)
class TimeAxis:
    """Maps epoch seconds to x pixels in the plot area."""

    start: float
    end: float

    @property
    def span(self) -> float:
        return max(self.end - self.start, 1e-9)

    def x(self, moment: float) -> float:
        return LABEL_WIDTH + (moment - self.start) / self.span * PLOT_WIDTH

    def ticks(self) -> list[tuple[float, str]]:
        """About eight round elapsed times from the start, with their labels."""
        steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
        step = next(
            (s for s in steps if self.span / s <= 10),
            steps[-1] * math.ceil(self.span / (10 * steps[-1])),
        )
        count = int(self.span // step)
        return [
            (self.x(self.start + i * step), "0" if i == 0 else "+" + duration(i * step))
            for i in range(count + 1)
        ]


def _axis(axis: TimeAxis, y: float, height: float) -> str:
    parts = []
    for x, label in axis.ticks():
        parts.append(
            f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + height}" class="grid"/>'
            f'<text x="{x:.1f}" y="{y - 3}" class="tick">{label}</text>'
        )
    return "".join(parts)


def _rect(x0: float, x1: float, y: float, h: float, fill: str, title: str = "") -> str:
    width = max(x1 - x0, 1.0)
    tip = f"<title>{escape(title)}</title>" if title else ""
    end = f">{tip}</rect>" if tip else "/>"
    return f'<rect x="{x0:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h}" fill="{fill}"{end}'


def _attempt_marks(task: Task, attempt: Attempt, axis: TimeAxis, y: float, now: float) -> str:
    """An attempt's queued span (light) and running span (its state's colour; hatched if it
    failed), a tick where a retry began, and a tooltip with its facts."""
    started = attempt.started
    # Times from the host are by the host's clock (and whole seconds before bash 5): a start
    # shown before its submission is drawn at the submission (queued 0 s), and a run of under
    # a pixel as one.
    queued_until = max(
        attempt.submitted, started if started is not None else (attempt.ended or now)
    )
    facts = (
        f"{task.name} attempt {attempt.number}/{task.max_attempts}: {attempt.state}"
        + (f" - {attempt.reason}" if attempt.reason else "")
        + (f"\nqueued {duration(attempt.queue_wait)}" if attempt.queue_wait is not None else "")
        + (f", ran {duration(attempt.run_time)}" if attempt.run_time is not None else "")
        + (f" on {attempt.exec_host}" if attempt.exec_host else "")
    )
    marks = []
    x0, x1 = axis.x(attempt.submitted), axis.x(queued_until)
    x2 = x1
    if started is None or x1 - x0 >= 1:
        marks.append(_rect(x0, x1, y + 2, ROW_HEIGHT - 4, QUEUED_COLOR, facts))
    if started is not None:
        ended = max(attempt.ended if attempt.ended is not None else now, queued_until)
        fill = "url(#hatch)" if attempt.state in FAILED_STATES else color(attempt.state)
        x2 = max(axis.x(ended), x1 + MIN_BAR)
        marks.append(_rect(x1, x2, y + 1, ROW_HEIGHT - 2, fill, facts))
    if attempt.number > 1:  # a tick where the retry began, its number where it ended
        marks.append(
            f'<line x1="{x0:.1f}" y1="{y}" x2="{x0:.1f}" y2="{y + ROW_HEIGHT}" class="retry"/>'
            f'<text x="{x2 + 3:.1f}" y="{y + ROW_HEIGHT - 2}" class="attempt">#{attempt.number}</text>'
        )
    return "".join(marks)


def task_timeline(tasks: Sequence[Task], axis: TimeAxis, now: float) -> str:
    """One row per task, each attempt a separate pair of bars on it."""
    top = 16
    height = top + ROW_HEIGHT * len(tasks) + 4
    rows = []
    for index, task in enumerate(tasks):
        y = top + index * ROW_HEIGHT
        label = task.name if len(task.name) <= 30 else task.name[:29] + "…"
        rows.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + ROW_HEIGHT - 2}" class="label">'
            f"<title>{escape(task.name)} ({escape(task.state)})</title>{escape(label)}</text>"
        )
        rows.extend(_attempt_marks(task, a, axis, y, now) for a in task.attempts)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">'
        f"{_axis(axis, top, height - top)}{''.join(rows)}</svg>"
    )


def _band_counts(spans: Sequence[tuple[float, float]], axis: TimeAxis) -> list[int]:
    """How many spans overlap each of the band's bins (a difference array: linear time)."""
    delta = [0] * (BAND_BINS + 1)
    for begin, end in spans:
        first = min(BAND_BINS - 1, max(0, int((begin - axis.start) / axis.span * BAND_BINS)))
        last = min(BAND_BINS - 1, max(first, int((end - axis.start) / axis.span * BAND_BINS)))
        delta[first] += 1
        delta[last + 1] -= 1
    counts, level = [], 0
    for change in delta[:BAND_BINS]:
        level += change
        counts.append(level)
    return counts


def _events_per_bin(moments: Sequence[float], axis: TimeAxis) -> list[int]:
    counts = [0] * BAND_BINS
    for moment in moments:
        counts[min(BAND_BINS - 1, max(0, int((moment - axis.start) / axis.span * BAND_BINS)))] += 1
    return counts


def occupancy_band(tasks: Sequence[Task], axis: TimeAxis, now: float) -> str:
    """A host with too many tasks for a row each: how many attempts ran and waited in each
    moment (stacked areas), and strips of failed attempts' ends and retries' submissions."""
    attempts = [a for t in tasks for a in t.attempts]
    running = [
        (a.started, a.ended if a.ended is not None else now)
        for a in attempts
        if a.started is not None
    ]
    queued = [
        (a.submitted, a.started if a.started is not None else (a.ended or now)) for a in attempts
    ]
    run_counts = _band_counts(running, axis)
    queue_counts = _band_counts(queued, axis)
    failures = _events_per_bin(
        [a.ended or a.submitted for a in attempts if a.state in FAILED_STATES], axis
    )
    retries = _events_per_bin([a.submitted for a in attempts if a.number > 1], axis)
    peak = max([r + q for r, q in zip(run_counts, queue_counts, strict=True)] + [1])
    top, strip = 16, 14
    base = top + BAND_HEIGHT
    step = PLOT_WIDTH / BAND_BINS

    def area(values: Sequence[int], under: Sequence[int]) -> str:
        upper = [
            (LABEL_WIDTH + i * step, base - (v + u) / peak * BAND_HEIGHT)
            for i, (v, u) in enumerate(zip(values, under, strict=True))
        ]
        lower = [
            (LABEL_WIDTH + i * step, base - u / peak * BAND_HEIGHT) for i, u in enumerate(under)
        ]
        right = LABEL_WIDTH + BAND_BINS * step
        points = [*upper, (right, upper[-1][1]), (right, lower[-1][1]), *lower[::-1]]
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)

    def ticks(counts: Sequence[int], y: float, fill: str, what: str) -> str:
        most = max([*counts, 1])
        return "".join(
            f'<rect x="{LABEL_WIDTH + i * step:.1f}" y="{y + strip - 2 - (strip - 4) * c / most:.1f}" '
            f'width="{max(step, 1):.1f}" height="{(strip - 4) * c / most:.1f}" fill="{fill}">'
            f"<title>{c} {what}</title></rect>"
            for i, c in enumerate(counts)
            if c
        )

    height = base + 2 * strip + 8
    zeros = [0] * BAND_BINS
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">'
        f"{_axis(axis, top, height - top)}"
        f'<polygon points="{area(run_counts, zeros)}" fill="{color("running")}"/>'
        f'<polygon points="{area(queue_counts, run_counts)}" fill="{QUEUED_COLOR}"/>'
        f'<text x="{LABEL_WIDTH - 6}" y="{top + 10}" class="label">{peak} at once</text>'
        f'<text x="{LABEL_WIDTH - 6}" y="{base}" class="label">0</text>'
        f'<text x="{LABEL_WIDTH - 6}" y="{base + strip - 3}" class="label">failed attempts</text>'
        f"{ticks(failures, base + 2, color('failed'), 'failed attempt(s) ended here')}"
        f'<text x="{LABEL_WIDTH - 6}" y="{base + 2 * strip - 3}" class="label">retries</text>'
        f"{ticks(retries, base + strip + 2, '#222222', 'retry attempt(s) submitted here')}"
        "</svg>"
    )


def histogram(values: Sequence[float], bins: int = 30, width: int = 560, height: int = 200) -> str:
    """Bars of how many values fall in each of `bins` equal spans from 0 to the largest; in
    whole seconds when every value is whole and the largest under `bins` seconds (a host
    whose bash is older than 5 reports whole seconds)."""
    if not values:
        return '<p class="note">no attempt has both of these times yet</p>'
    largest = max(values)
    if largest < bins and all(value == int(value) for value in values):
        bins, step = int(largest) + 1, 1.0
    else:
        step = (largest or 1.0) / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int(value / step))] += 1
    left, bottom, top = 44, height - 22, 10
    plot_w, plot_h = width - left - 10, bottom - top
    most = max(counts)
    bar = plot_w / max(bins, 10)  # a few whole seconds' bars stay narrow
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" class="axis"/>',
        f'<text x="{left - 4}" y="{top + 8}" class="label">{most}</text>',
        f'<text x="{left - 4}" y="{bottom}" class="label">0</text>',
    ]
    for i, count in enumerate(counts):
        if count:
            h = count / most * plot_h
            low, high = duration(i * step), duration((i + 1) * step)
            parts.append(
                f'<rect x="{left + i * bar + 1:.1f}" y="{bottom - h:.1f}" width="{max(bar - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="#3b82c4"><title>{count} from {low} to under {high}</title></rect>'
            )
    marks = range(bins + 1) if bins <= 10 else [round(bins * f) for f in (0, 0.25, 0.5, 0.75, 1)]
    for mark in marks:
        x = left + mark * bar
        anchor = "end" if mark == bins else "middle" if mark else "start"
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 15}" class="tick" text-anchor="{anchor}">'
            f"{duration(mark * step)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


NODE_W, NODE_H, COLUMN_GAP, ROW_GAP = 170, 24, 70, 8


def dependency_graph(graph: Graph) -> str:
    """Nodes in columns by depth, left to right, each filled by the share of its tasks in each
    state; edges as curves from the right side of the upstream node to the left of the next."""
    columns: dict[int, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        columns.setdefault(node.depth, []).append(index)
    position: dict[int, tuple[float, float]] = {}
    for depth, members in sorted(columns.items()):
        for row, index in enumerate(members):
            position[index] = (10 + depth * (NODE_W + COLUMN_GAP), 10 + row * (NODE_H + ROW_GAP))
    width = 20 + (max(columns, default=0) + 1) * (NODE_W + COLUMN_GAP)
    height = 20 + max((len(m) for m in columns.values()), default=1) * (NODE_H + ROW_GAP)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    ]
    for source, target, count in graph.edges:
        x0, y0 = position[source]
        x1, y1 = position[target]
        x0, y0, y1 = x0 + NODE_W, y0 + NODE_H / 2, y1 + NODE_H / 2
        middle = (x0 + x1) / 2
        stroke = min(1 + math.log2(count), 6)
        parts.append(
            f'<path d="M{x0:.0f},{y0:.0f} C{middle:.0f},{y0:.0f} {middle:.0f},{y1:.0f} {x1:.0f},{y1:.0f}" '
            f'class="edge" stroke-width="{stroke:.1f}"/>'
        )
    for index, node in enumerate(graph.nodes):
        x, y = position[index]
        parts.append(
            f'<g transform="translate({x:.0f},{y:.0f})"><title>{escape(node.title)}</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" class="node"/>'
        )
        offset = 0.0
        for state, count in node.states.most_common():
            share = count / node.size * NODE_W
            parts.append(
                f'<rect x="{offset:.1f}" y="{NODE_H - 6}" width="{share:.1f}" height="6" '
                f'fill="{color(state)}"/>'
            )
            offset += share
        label = node.label if len(node.label) <= 26 else node.label[:25] + "…"
        parts.append(f'<text x="6" y="13" class="nodetext">{escape(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
