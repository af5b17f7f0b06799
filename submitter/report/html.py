"""The report page: one self-contained HTML file (inline styles and SVG, no script, nothing
fetched), assembled from `ReportData`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape
from pathlib import Path

from submitter import task_layout as files
from submitter.report import graph, svg
from submitter.report.data import Failure, ReportData, Task, gather
from submitter.states import ACTIVE
from submitter.store.db import Store

ROWS_PER_HOST = 500  # above this a host's timeline is an occupancy band, not a row per task
ROWS_IN_ALL = 2000  # and once this many rows are drawn, every further host's is a band
SLOWEST = 20
FAILURES_SHOWN = 50
FAILURES_OPEN = 5  # the first failures' logs are unfolded

STYLE = """
body{font:14px/1.4 "DejaVu Sans",system-ui,sans-serif;margin:20px 28px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde3ea}
h3{font-size:15px;margin:16px 0 4px}.note{color:#5a6473;margin:2px 0 8px}
table{border-collapse:collapse;margin:4px 0}td,th{padding:3px 10px;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.chip{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.bar{display:inline-block;height:11px;vertical-align:-1px}
.cards{display:flex;gap:28px;flex-wrap:wrap}.cards>div{min-width:300px}
pre{background:#f6f8fa;border:1px solid #e1e6eb;padding:6px 8px;margin:4px 0;max-height:420px;overflow:auto;font-size:12px;white-space:pre-wrap}
details{margin:6px 0 12px}summary{cursor:pointer}.failure{border-left:4px solid #d64545;padding:2px 10px;margin:10px 0}
svg.chart{display:block;max-width:100%;height:auto}
svg text{font-family:"DejaVu Sans",sans-serif}.tick{font-size:10px;fill:#5a6473}
.label{font-size:11px;fill:#1d2430;text-anchor:end}.grid{stroke:#e6eaef}.axis{stroke:#8a93a0}
.retry{stroke:#111;stroke-width:2}.attempt{font-size:10px;font-weight:bold;fill:#1d2430}.edge{fill:none;stroke:#8a93a0;opacity:.7}
.node{fill:none;stroke:#5a6473}.nodetext{font-size:11px;fill:#1d2430}
.legend>span{margin-right:16px}
"""


def write_report(store: Store, output: Path, *, include_retired: bool = False) -> Path:
    """Gather what the store holds and write the page to `output`; returns its path."""
    page = render(gather(store, FAILURES_SHOWN, include_retired=include_retired))
    output.write_text(page, encoding="utf-8")
    return output


def render(data: ReportData) -> str:
    sections = [
        _header(data),
        _counts(data),
        _timelines(data),
        _distributions(data.tasks),
        _slowest(data.tasks),
        _failures(data),
        _dependencies(data.tasks),
    ]
    title = f"submitter report: {data.project.name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"{svg.DEFS}{''.join(sections)}</body></html>\n"
    )


def _clock(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def _span(tasks: Sequence[Task], now: float) -> svg.TimeAxis | None:
    """From the first submission to the last end (or now, while tasks are active). Hosts'
    times before a submission are drawn at it (see svg), so they do not widen the span."""
    attempts = [attempt for task in tasks for attempt in task.attempts]
    if not attempts:
        return None
    first = min(a.submitted for a in attempts)
    last = max(max(a.submitted, a.started or 0.0, a.ended or 0.0) for a in attempts)
    if any(t.state in ACTIVE for t in tasks):
        last = max(last, now)
    return svg.TimeAxis(first, max(last, first + 1))


def _header(data: ReportData) -> str:
    axis = _span(data.tasks, data.generated)
    attempts = sum(len(t.attempts) for t in data.tasks)
    span = f", from {_clock(axis.start)} over {svg.duration(axis.span)}" if axis is not None else ""
    return (
        f"<h1>submitter report: {escape(data.project.name)}</h1>"
        f'<p class="note">{escape(str(data.project))} · {len(data.tasks)} tasks, {attempts} '
        f"attempts on {len(data.hosts)} host(s){span} · generated {_clock(data.generated)}</p>"
    )


def _counts(data: ReportData) -> str:
    total = max(len(data.tasks), 1)
    rows = "".join(
        f'<tr><td><span class="chip" style="background:{svg.color(state)}"></span>'
        f'{escape(state)}</td><td class="num">{count}</td><td><span class="bar" '
        f'style="width:{max(1, round(300 * count / total))}px;background:{svg.color(state)}">'
        f"</span></td></tr>"
        for state, count in data.counts.most_common()
    )
    by_host = "".join(
        f"<tr><td>{escape(host)}</td><td class='num'>{len(tasks)}</td><td>"
        + ", ".join(
            f"{n} {escape(s)}" for s, n in sorted(_state_counts(tasks).items(), key=_by_count)
        )
        + "</td></tr>"
        for host, tasks in sorted(data.hosts.items())
    )
    return (
        '<h2 id="counts">Tasks by state</h2><div class="cards">'
        f"<div><table><tr><th>state</th><th>tasks</th><th></th></tr>{rows}</table></div>"
        f"<div><table><tr><th>host</th><th>tasks</th><th>states</th></tr>{by_host}</table></div>"
        "</div>"
    )


def _state_counts(tasks: Sequence[Task]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    return counts


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _timelines(data: ReportData) -> str:
    axis = _span(data.tasks, data.generated)
    legend = (
        '<p class="note legend">'
        f'<span><span class="chip" style="background:{svg.QUEUED_COLOR}"></span>queued</span>'
        f'<span><span class="chip" style="background:{svg.color("completed")}"></span>ran, completed</span>'
        f'<span><span class="chip" style="background:{svg.color("running")}"></span>running</span>'
        '<span><svg width="11" height="11" style="vertical-align:-1px"><rect width="11" '
        'height="11" fill="url(#hatch)"/></svg> ran, failed / killed / lost</span>'
        "<span><b>|</b> … <b>#2</b> a retry: where it began, its number</span>"
        "<span>hover a bar for its attempt, state, times</span></p>"
    )
    if axis is None:
        return '<h2 id="timeline">Timeline</h2><p class="note">no attempt recorded yet</p>'
    parts = ['<h2 id="timeline">Timeline per host</h2>', legend]
    drawn = 0
    for host, tasks in sorted(data.hosts.items()):
        ordered = sorted(tasks, key=_first_submitted)
        attempts = sum(len(t.attempts) for t in tasks)
        parts.append(f"<h3>{escape(host)}: {len(tasks)} tasks, {attempts} attempts</h3>")
        if len(tasks) <= ROWS_PER_HOST and drawn + len(tasks) <= ROWS_IN_ALL:
            drawn += len(tasks)
            parts.append(svg.task_timeline(ordered, axis, data.generated))
        else:
            parts.append(
                f'<p class="note">too many tasks for a row each: how many attempts ran '
                f"(blue) and waited (grey) at each moment, failed attempts' ends and "
                f"retries below</p>{svg.occupancy_band(ordered, axis, data.generated)}"
            )
    return "".join(parts)


def _first_submitted(task: Task) -> tuple[float, str]:
    return (task.attempts[0].submitted if task.attempts else float("inf"), task.name)


def _distributions(tasks: Sequence[Task]) -> str:
    attempts = [a for t in tasks for a in t.attempts]
    runs = [a.run_time for a in attempts if a.run_time is not None]
    waits = [a.queue_wait for a in attempts if a.queue_wait is not None]
    return (
        '<h2 id="distributions">Run time and queue wait (every attempt)</h2><div class="cards">'
        f"<div><h3>run time</h3>{_summary(runs)}{svg.histogram(runs)}</div>"
        f"<div><h3>queue wait</h3>{_summary(waits)}{svg.histogram(waits)}</div></div>"
    )


def _summary(values: Sequence[float]) -> str:
    if not values:
        return ""
    ordered = sorted(values)

    def at(fraction: float) -> str:
        return svg.duration(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])

    return (
        f'<p class="note">{len(ordered)} attempts · median {at(0.5)} · p90 {at(0.9)} · '
        f"max {svg.duration(ordered[-1])}</p>"
    )


def _slowest(tasks: Sequence[Task]) -> str:
    timed = sorted((t for t in tasks if t.run_time is not None), key=_slowest_first)[:SLOWEST]
    if not timed:
        return '<h2 id="slowest">Slowest tasks</h2><p class="note">no task has run yet</p>'
    rows = "".join(
        f"<tr><td>{escape(t.name)}</td><td>{escape(t.host)}</td><td>{escape(t.state)}</td>"
        f'<td class="num">{len(t.attempts)} of {t.max_attempts}</td>'
        f'<td class="num">{svg.duration(t.run_time or 0)}</td>'
        f'<td class="num">{_wait(t)}</td></tr>'
        for t in timed
    )
    return (
        f'<h2 id="slowest">Slowest tasks (top {len(timed)} by run time)</h2><table><tr>'
        "<th>task</th><th>host</th><th>state</th><th>attempts</th><th>run time</th>"
        f"<th>queue wait</th></tr>{rows}</table>"
    )


def _slowest_first(task: Task) -> tuple[float, str]:
    return (-(task.run_time or 0.0), task.name)


def _wait(task: Task) -> str:
    latest = task.latest
    wait = latest.queue_wait if latest is not None else None
    return "" if wait is None else svg.duration(wait)


def _failures(data: ReportData) -> str:
    if not data.failures_total:
        return '<h2 id="failures">Failures</h2><p class="note">no task failed</p>'
    parts = [f'<h2 id="failures">Failures ({data.failures_total})</h2>']
    parts.extend(_failure(f, open_=i < FAILURES_OPEN) for i, f in enumerate(data.failures))
    rest = data.failures_total - len(data.failures)
    if rest > 0:
        parts.append(
            f'<p class="note">and {rest} more failed tasks: '
            "<code>submitter status</code> lists them all, <code>submitter logs TASK</code> "
            "shows their output</p>"
        )
    return "".join(parts)


def _failure(failure: Failure, open_: bool) -> str:
    task = failure.task
    latest = task.latest
    facts = [
        ("state", task.state),
        ("reason", task.reason or (latest.reason if latest else "")),
        ("exit code", "" if latest is None or latest.exit_code is None else str(latest.exit_code)),
        ("cause", latest.cause if latest else ""),
        ("host", task.host),
        ("execution host", (latest.exec_host or "") if latest else ""),
        ("attempt", f"{latest.number if latest else 0} of {task.max_attempts}"),
        ("id", task.id),
    ]
    cells = " · ".join(f"<b>{k}</b> {escape(v)}" for k, v in facts if v)
    logs = "".join(
        f"<div><b>{name}</b> (last lines)<pre>{escape(text) if text else '(empty or not retrieved)'}</pre></div>"
        for name, text in ((files.STDOUT, failure.stdout_tail), (files.STDERR, failure.stderr_tail))
    )
    return (
        f'<div class="failure"><h3>{escape(task.name)}</h3><p>{cells}</p>'
        f"<details{' open' if open_ else ''}><summary>stdout and stderr</summary>"
        f'<div class="cards">{logs}</div></details></div>'
    )


def _dependencies(tasks: Sequence[Task]) -> str:
    heading = '<h2 id="dependencies">Dependency graph</h2>'
    if not any(t.upstream for t in tasks):
        return heading + '<p class="note">no task runs after another</p>'
    drawn = graph.build(tasks)
    note = f'<p class="note">{escape(drawn.note)}</p>' if drawn.note else ""
    legend = (
        '<p class="note">left to right by depth; the strip under each node: its tasks\' '
        "states; hover a node for its tasks</p>"
    )
    return heading + note + legend + svg.dependency_graph(drawn)
