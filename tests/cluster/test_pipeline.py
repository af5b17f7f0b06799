"""Pipelines on real hosts: a diamond with inferred and explicit dependencies, the
upstream outputs linked on the host rather than sent again."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write


def _diamond(log: Path) -> list[dict[str, Any]]:
    """split makes three parts; work-i reads part i (inferred); merge runs after work-*
    (explicit) and reads their outputs' directory. Every task logs its start and end."""

    def logged(name: str, body: str) -> str:
        return f'echo "start {name}" >> {log}\n{body}\necho "end {name}" >> {log}\n'

    return [
        {
            "name": "merge",
            "after": ["work-*"],
            "inputs": ["done/"],
            "outputs": ["merged.txt"],
            "run": logged("merge", "cat done/1.txt done/2.txt done/3.txt > merged.txt"),
        },
        {
            "name": "work-{{ i }}",
            "for_each": {"i": [1, 2, 3]},
            "inputs": ["parts/{{ i }}.txt"],
            "outputs": ["done/{{ i }}.txt"],
            "run": logged(
                "work-{{ i }}",
                "sleep 1\nmkdir -p done\ntr a-z A-Z < parts/{{ i }}.txt > done/{{ i }}.txt",
            ),
        },
        {
            "name": "split",
            "outputs": ["parts/"],
            "run": logged(
                "split",
                'mkdir -p parts\nfor i in 1 2 3; do echo "part $i" > parts/$i.txt; done',
            ),
        },
    ]


@pytest.mark.parametrize("host", ["ssh", "slurm"])
def test_diamond_in_order_with_outputs_linked_on_the_host(
    cli, tmp_path: Path, cluster_hosts, cluster_secrets, remote, host: str
) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project"
    log: Path = cluster_secrets["shared"] / f"log-{host}-{uuid.uuid4().hex[:6]}"
    tasks = write(
        project / "tasks.yml",
        json.dumps(
            {
                "hosts": {"h": cluster_hosts[host]},
                "defaults": {"host": "h"},
                "tasks": _diamond(log),
            }
        ),
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert (project / "merged.txt").read_text() == "PART 1\nPART 2\nPART 3\n"
    lines = log.read_text().splitlines()
    assert len(lines) == 10, lines  # every task ran once
    assert lines[:2] == ["start split", "end split"]
    ends = [lines.index(f"end work-{i}") for i in (1, 2, 3)]
    assert lines.index("start merge") > max(ends), lines

    merge = json.loads(cli("status", "merge", "--json", "-C", project).out)[0]
    linked = remote(host, f"test -L {merge['run_dir']}/done/2.txt && echo linked")
    assert linked.stdout == "linked\n", "an upstream output on the host is linked, not sent"

    again = cli("apply", tasks)
    assert again.code == 0 and "5 up to date" in again.err
