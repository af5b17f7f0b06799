"""setup-host against a password-only account: key made, installed with one password, checked."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import write


def test_setup_host_installs_a_key_with_one_password(
    cli, tmp_path: Path, cluster_hosts, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    ssh_host = cluster_hosts["ssh"]
    key = tmp_path / "keys" / "id_ed25519"  # does not exist yet: setup-host creates it
    asked = tmp_path / "asked"
    askpass = write(tmp_path / "askpass", f"#!/bin/sh\necho x >> {asked}\necho bobpass\n")
    askpass.chmod(0o755)
    monkeypatch.setenv("SSH_ASKPASS", str(askpass))
    monkeypatch.setenv("SSH_ASKPASS_REQUIRE", "force")
    monkeypatch.setenv("DISPLAY", ":0")
    host = {
        "address": "bob@127.0.0.1",
        "port": ssh_host["port"],
        "identity_file": str(key),
        "known_hosts": ssh_host["known_hosts"],
        "scheduler": "ssh",
    }
    tasks = write(
        tmp_path / "tasks.yml",
        json.dumps({"hosts": {"bob": host}, "tasks": [{"name": "t", "run": "true"}]}),
    )

    result = cli("setup-host", "bob", "-f", tasks, "--json")
    assert result.code == 0, (result.out, result.err)
    assert key.exists() and Path(str(key) + ".pub").exists()
    assert asked.read_text().count("x") == 1, "the password is asked exactly once"
    assert json.loads(result.out)["ok"] is True

    def as_bob(command: str) -> subprocess.CompletedProcess[str]:
        argv = ["ssh", "-i", str(key), "-p", str(ssh_host["port"]), "-o", "BatchMode=yes"]
        argv += ["-o", f"UserKnownHostsFile={ssh_host['known_hosts']}", "bob@127.0.0.1", command]
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"}
        )

    login = as_bob("echo key-ok")
    assert login.stdout == "key-ok\n", login.stderr

    again = cli("setup-host", "bob", "-f", tasks, "--json")
    assert again.code == 0
    assert asked.read_text().count("x") == 1, "with the key in place no password is asked"
    authorized = as_bob("wc -l < ~/.ssh/authorized_keys")
    assert authorized.stdout.strip() == "1", "installing twice does not duplicate the key"
