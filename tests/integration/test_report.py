"""`submitter report`: the page made from a real local run (a pipeline with a failed task and a
retried one), and its pieces on synthetic data: grouping, depths, times, log tails, size."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.report_many_tasks import build_store
from submitter.cli import main
from submitter.report import graph, svg
from submitter.report.data import Attempt, Task, group_of, parse_time, tail
from submitter.report.html import write_report
from submitter.store.db import Store
from tests.conftest import write

# prepare -> weird<name>& and broken (explicit `after`); flaky fails once with 75 and is retried
PIPELINE = """\
defaults:
  env: {TOP: '%(top)s'}
  retry_delay: 1s
tasks:
  - name: prepare
    outputs: [parts/]
    run: |
      mkdir -p parts
      echo one > parts/1.txt
  - name: 'weird<name>&'
    after: [prepare]
    run: echo fine
  - name: broken
    after: [prepare]
    run: |
      for i in $(seq 1 30); do echo "stdout line $i"; done
      echo "the last words on stderr" >&2
      exit 3
  - name: flaky
    retries: 1
    retry_on: [75]
    run: |
      echo x >> "$TOP/count-flaky"
      if [ "$(wc -l < "$TOP/count-flaky")" -le 1 ]; then exit 75; fi
      echo second time lucky
"""


def run_pipeline(project: Path) -> Path:
    """Apply the pipeline on the local host, then write its report; returns the report."""
    tasks = write(project / "tasks.yml", PIPELINE % {"top": project})
    assert main(["apply", str(tasks)]) == 1  # broken fails
    output = project / "report.html"
    assert main(["report", "-C", str(project), "-o", str(output)]) == 0
    return output


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    project = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SUBMITTER_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
        patch.delenv("SUBMITTER_PACK_PATH", raising=False)
        yield run_pipeline(project).read_text()


def test_the_report_names_every_task_and_state(report: str) -> None:
    for name in ("prepare", "broken", "flaky"):
        assert name in report
    assert re.search(r"completed</td><td class=\"num\">3<", report)
    assert re.search(r"failed</td><td class=\"num\">1<", report)
    assert "4 tasks, 5 attempts on 1 host(s)" in report


def test_a_failure_shows_its_reason_exit_code_host_and_log_tails(report: str) -> None:
    failure = report[report.index('id="failures"') : report.index('id="dependencies"')]
    assert "broken" in failure and "flaky" not in failure
    assert "<b>exit code</b> 3" in failure
    assert "<b>reason</b> exit code 3" in failure
    assert "<b>execution host</b> " in failure
    assert "stdout line 30" in failure and "stdout line 11" in failure
    assert "stdout line 10\n" not in failure, "only the last 20 lines"
    assert "the last words on stderr" in failure


def test_retries_are_marked_on_the_timeline(report: str) -> None:
    timeline = report[report.index('id="timeline"') : report.index('id="distributions"')]
    assert "flaky attempt 1/2: failed" in timeline
    assert "flaky attempt 2/2: completed" in timeline
    assert 'fill="url(#hatch)"' in timeline, "the failed attempt is hatched"
    assert 'class="retry"' in timeline, "the retry's start is marked"
    assert 'class="attempt">#2<' in timeline, "and its number"


def test_the_dependency_graph_layers_tasks_by_depth(report: str) -> None:
    graph_part = report[report.index('id="dependencies"') :]
    assert graph_part.count("<path ") == 2  # prepare -> weird<name>&, prepare -> broken
    assert "translate(10,10)" in graph_part  # depth 0 in the first column
    assert "translate(250," in graph_part  # depth 1 in the second


def test_user_strings_are_escaped(report: str) -> None:
    assert "weird&lt;name&gt;&amp;" in report
    assert "weird<name>" not in report


def test_the_page_fetches_nothing(report: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", report, re.IGNORECASE)
    assert "<script" not in report and "<link" not in report
    assert "@import" not in report and "url(http" not in report


def test_report_without_a_store_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["report", "-C", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 2
    assert not (tmp_path / "r.html").exists()


def test_an_empty_or_unstarted_project_still_has_a_page(tmp_path: Path) -> None:
    store = Store(tmp_path / ".submitter")
    try:
        empty = write_report(store, tmp_path / "empty.html").read_text()
        store.upsert_task("abc123", "waiting", "local", "/w/abc123", "/w/abc123", {})
        pending = write_report(store, tmp_path / "pending.html").read_text()
    finally:
        store.close()
    assert "0 tasks, 0 attempts" in empty and "no attempt recorded yet" in empty
    assert "waiting" not in empty
    assert "pending</td>" in pending and "no task has run yet" in pending


def test_an_unwritable_output_is_a_usage_error(tmp_path: Path) -> None:
    Store(tmp_path / ".submitter").close()
    output = tmp_path / "no" / "such" / "dir" / "r.html"
    assert main(["report", "-C", str(tmp_path), "-o", str(output)]) == 2


def test_ten_thousand_tasks_make_a_page_of_reasonable_size(tmp_path: Path) -> None:
    project = build_store(tmp_path, 10_000)
    store = Store(project / ".submitter")
    try:
        page = write_report(store, tmp_path / "report.html").read_text()
    finally:
        store.close()
    assert len(page.encode()) < 3_000_000
    assert "too many tasks for a row each" in page  # the large hosts are bands
    assert "one node per name group" in page and "sim-* (" in page
    assert "more failed tasks" in page  # the list is capped
    assert page.count('class="failure"') == 50


# --- the pieces -----------------------------------------------------------------------------
def _task(name: str, upstream: tuple[str, ...] = (), state: str = "completed") -> Task:
    attempt = Attempt(1, state, "", "", 0, "n1", 100.0, 110.0, 170.0)
    return Task(name, name, "h", state, "", upstream, 1, (attempt,))


def test_groups_are_name_prefixes() -> None:
    assert group_of("align-a") == "align-*"
    assert group_of("sim_0001") == "sim-*"
    assert group_of("summary") == "summary"


def test_depth_is_one_more_than_the_deepest_upstream_task() -> None:
    tasks = [_task("d", ("b", "c")), _task("c", ("a",)), _task("b", ("c",)), _task("a")]
    tasks.append(_task("x", ("gone",)))  # an upstream task the report does not hold
    assert graph.depths(tasks) == {"a": 0, "b": 2, "c": 1, "d": 3, "x": 0}


def test_many_tasks_are_drawn_as_groups_with_counted_edges() -> None:
    tasks = [_task("prep")]
    tasks += [
        _task(f"sim-{i}", ("prep",), "failed" if i % 10 == 0 else "completed") for i in range(300)
    ]
    drawn = graph.build(tasks, node_limit=50)
    assert [n.label for n in drawn.nodes] == ["prep", "sim-* (300)"]
    assert drawn.edges == [(0, 1, 300)]
    assert drawn.nodes[1].states == {"completed": 270, "failed": 30}
    assert "one node per name group" in drawn.note


def test_times_are_read_as_the_wrapper_writes_them() -> None:
    assert parse_time("1970-01-01T00:01:40Z") == 100.0
    assert parse_time("") is None and parse_time(None) is None and parse_time("soon") is None


def test_tail_is_the_last_lines_of_a_log() -> None:
    assert tail("".join(f"{i}\n" for i in range(100)), 3) == "97\n98\n99"
    assert tail(None) == "" and tail("") == ""


def test_durations_are_short() -> None:
    assert [svg.duration(s) for s in (1.5, 42, 185, 7620, 3 * 86400 + 4 * 3600)] == [
        "1.5s",
        "42s",
        "3m05s",
        "2h07m",
        "3d04h",
    ]


def test_the_report_asks_the_hosts_about_running_tasks_first(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A detached task that has since ended shows as ended, as `status` would show it;
    `--offline` reads the store alone."""
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: nap\n    run: 'sleep 0.5'\n")
    assert cli("apply", tasks, "--detach").code == 0
    time.sleep(1.5)
    offline = tmp_path / "offline.html"
    assert cli("report", "--offline", "-C", tmp_path, "-o", offline).code == 0
    assert _states_shown(offline.read_text()) & {"starting", "submitted", "running"}, "stale"
    fresh = tmp_path / "fresh.html"
    assert cli("report", "-C", tmp_path, "-o", fresh).code == 0
    assert _states_shown(fresh.read_text()) == {"completed"}


def test_retired_tasks_are_shown_with_all(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = write(tmp_path / "tasks.yml", "tasks:\n  - name: old-name\n    run: 'true'\n")
    assert cli("apply", tasks).code == 0
    write(tasks, "tasks:\n  - name: new-name\n    run: 'echo changed'\n")
    assert cli("apply", tasks).code == 0
    page = tmp_path / "r.html"
    assert cli("report", "-C", tmp_path, "-o", page).code == 0
    assert "old-name" not in page.read_text()
    assert cli("report", "--all", "-C", tmp_path, "-o", page).code == 0
    assert "old-name" in page.read_text() and "new-name" in page.read_text()


def _states_shown(page: str) -> set[str]:
    """The states of the 'Tasks by state' table."""
    table = page.split("Tasks by state", 1)[1].split("</table>", 1)[0]
    return set(re.findall(r"</span>\s*([a-z]+)\s*</td>", table)) or set(
        re.findall(
            r">(pending|starting|submitted|queued|held|running|completed|failed|killed|lost|blocked)<",
            table,
        )
    )
