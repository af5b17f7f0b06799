"""A host with two-factor login (a key, then a TOTP code asked by PAM): one apply asks for
the code once, its whole watch and retrieval included."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

from tests.conftest import write

# The compose file's default for the ssh2fa service.
SECRET = os.environ.get("SUBMITTER_TEST_TOTP_SECRET", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")

# SSH_ASKPASS program: counts each question, answers with the current TOTP code (RFC 6238).
ASKPASS = """\
#!{python}
import base64, hashlib, hmac, struct, sys, time
with open({count!r}, "a") as count:
    count.write(" ".join(sys.argv[1:]) + "\\n")
key = base64.b32decode({secret!r})
digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
offset = digest[-1] & 15
code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000
print(f"{{code:06d}}")
"""


def test_one_apply_of_twenty_tasks_asks_for_the_code_once(
    cli, tmp_path: Path, cluster_hosts, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    base64.b32decode(SECRET)  # a valid secret, or the test is wrong
    asked = tmp_path / "asked"
    askpass = write(
        tmp_path / "askpass",
        ASKPASS.format(python=sys.executable, count=str(asked), secret=SECRET),
    )
    askpass.chmod(askpass.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("SSH_ASKPASS", str(askpass))
    monkeypatch.setenv("SSH_ASKPASS_REQUIRE", "force")
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    project = tmp_path / "project"
    tasks = write(
        project / "tasks.yml",
        json.dumps(
            {
                "hosts": {"h": dict(cluster_hosts["ssh2fa"], poll_interval=1)},
                "defaults": {"host": "h"},
                "tasks": [
                    {
                        "name": "t-{{ i }}",
                        "for_each": {"i": list(range(20))},
                        "outputs": ["out/{{ i }}.txt"],
                        "run": "mkdir -p out; sleep 1; echo {{ i }} > out/{{ i }}.txt",
                    }
                ],
            }
        ),
    )
    result = cli("apply", tasks, "-J", "5")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (project / "out").iterdir()) == sorted(
        f"{i}.txt" for i in range(20)
    )
    questions = asked.read_text().splitlines()
    assert len(questions) == 1, f"asked {len(questions)} times: {questions}"
    assert "code" in questions[0].lower() or "verification" in questions[0].lower()
