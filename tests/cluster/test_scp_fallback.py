"""Without rsync on this machine the ssh transport copies with scp, still one call per batch."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import write


def test_apply_without_rsync_uses_scp(
    cli, tmp_path: Path, cluster_hosts, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("ssh", "scp"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed for this test"
        os.symlink(found, tools / tool)
    monkeypatch.setenv("PATH", str(tools))
    assert shutil.which("rsync") is None

    project = tmp_path / "project"
    write(project / "in" / "data.txt", "payload\n")
    tasks = write(
        project / "tasks.yml",
        json.dumps(
            {
                "hosts": {"h": cluster_hosts["ssh"]},
                "tasks": [
                    {
                        "name": "copy",
                        "host": "h",
                        "inputs": ["in/data.txt"],
                        "outputs": ["out/data.txt", "out/**/*.log", "logs/"],
                        "run": "mkdir -p out/deep logs; tr a-z A-Z < in/data.txt > out/data.txt\n"
                        "echo one > out/deep/one.log; echo run > logs/run.txt\n",
                    }
                ],
            }
        ),
    )
    result = cli("apply", tasks, "--json")
    assert result.code == 0, result.out
    assert (project / "out" / "data.txt").read_text() == "PAYLOAD\n"
    assert (project / "out" / "deep" / "one.log").read_text() == "one\n"
    assert (project / "logs" / "run.txt").read_text() == "run\n"
    assert "copying files" not in result.err
