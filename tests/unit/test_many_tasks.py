"""A `for_each` product of thousands of tasks: what loading, planning and rendering it keep
in memory per task, and how many queries reading back its records takes."""

from __future__ import annotations

import io
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from submitter import commands
from submitter.cli import main
from submitter.config.project import load_project
from submitter.store.db import Store
from tests.conftest import write

ROWS, WIDTH = 40, 50  # 2,000 tasks


def _product(directory: Path, rows: int = ROWS, width: int = WIDTH) -> Path:
    """rows x width tasks, each writing one output, as bench/controller_many_tasks.py has."""
    return write(
        directory / "tasks.yml",
        "tasks:\n  - name: 't-{{ i }}-{{ j }}'\n"
        f"    for_each: {{i: {list(range(rows))}, j: {list(range(width))}}}\n"
        "    outputs: ['out/{{ i }}-{{ j }}.txt']\n"
        "    run: 'mkdir -p out; echo {{ i }} {{ j }} > out/{{ i }}-{{ j }}.txt'\n",
    )


def _peak_per_task(run: Callable[[], Any], tasks: int) -> float:
    """The most memory `run` held at once, in bytes per task (caches it fills are filled by a
    first run of a few tasks, left out)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / tasks
    finally:
        tracemalloc.stop()


@pytest.fixture
def warmed(cli, tmp_path: Path) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """A project of ROWS x WIDTH tasks, after a plan and a render of a tiny one."""
    tiny = _product(tmp_path / "tiny", 2, 2)
    assert cli("apply", tiny, "--plan").code == 0
    assert cli("render", tiny).code == 0
    yield _product(tmp_path / "big")


def test_a_product_is_loaded_without_a_large_record_per_task(warmed: Path) -> None:
    peak = _peak_per_task(lambda: load_project(warmed), ROWS * WIDTH)
    assert peak < 900, f"{peak:.0f} bytes per task"


def test_a_plan_of_a_product_keeps_no_prepared_task_for_each(cli, warmed: Path) -> None:  # type: ignore[no-untyped-def]
    result: list[Any] = []
    peak = _peak_per_task(lambda: result.append(cli("apply", warmed, "--plan")), ROWS * WIDTH)
    assert result[0].code == 0 and "plan: 2000 to run" in result[0].out
    assert peak < 1500, f"{peak:.0f} bytes per task"


def test_a_render_of_a_product_keeps_no_prepared_task_for_each(
    warmed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Counting(io.RawIOBase):
        """Counts the tasks written, keeping no more of the text than a heading's length."""

        tasks, tail = 0, b""

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            text = self.tail + bytes(data)
            self.tasks += text.count(b"# task t-")
            self.tail = text[-8:]
            return len(data)

    counted = Counting()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(counted)))
    monkeypatch.setattr(commands, "_RENDER_IN_MEMORY", 1 << 16)  # the rest spills to disk
    codes: list[int] = []
    peak = _peak_per_task(lambda: codes.append(main(["render", str(warmed)])), ROWS * WIDTH)
    sys.stdout.flush()
    assert codes == [0] and counted.tasks == ROWS * WIDTH
    assert peak < 1000, f"{peak:.0f} bytes per task"


def _count_queries(store: Store) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    return seen


def test_the_attempts_and_policies_of_many_tasks_take_a_few_queries(tmp_path: Path) -> None:
    store = Store(tmp_path / ".submitter")
    ids = [f"id{n:05}" for n in range(3000)]
    with store.transaction():
        for n, task_id in enumerate(ids):
            store.upsert_task(task_id, f"t{n}", "local", "/w", "/w", {"retry": {"retries": 1}})
            store.start_attempt(task_id, "local", "p@1", "0")
    seen = _count_queries(store)
    attempts = store.attempts_of(ids)
    policies = store.retry_records(ids)
    assert len(seen) <= 2, seen
    assert all(len(attempts[i]) == 1 and attempts[i][0].task_id == i for i in ids)
    assert all(policies[i] == '{"retries":1}' for i in ids)


def test_the_tasks_of_a_product_share_only_what_they_have_alike(tmp_path: Path) -> None:
    tasks = write(
        tmp_path / "tasks.yml",
        "defaults: {env: {A: '1'}, directives: ['-x']}\n"
        "tasks:\n  - name: 't-{{ m }}-{{ k }}'\n"
        "    for_each: {m: [1, 2], k: [a, b]}\n"
        "    run: echo {{ k }}\n"
        "    resources: {mem: '{{ m }}G'}\n"
        "    retries: '{{ m }}'\n"
        "    env: {K: '{{ k }}'}\n"
        "  - {name: plain, run: echo}\n",
    )
    loaded = {t.name: t for t in load_project(tasks).tasks}
    assert [loaded[f"t-{m}-a"].resources.mem for m in (1, 2)] == [1 << 30, 2 << 30]
    assert [loaded[f"t-{m}-b"].retry.retries for m in (1, 2)] == [1, 2]
    assert loaded["t-1-a"].env == {"A": "1", "K": "a"} and loaded["t-1-b"].env["K"] == "b"
    assert loaded["plain"].env == {"A": "1"} and loaded["plain"].directives == ("-x",)
    assert loaded["t-1-a"].retry is loaded["t-1-b"].retry  # alike: one policy for both
    assert loaded["t-1-a"].resources is loaded["t-1-b"].resources
