import base64

from submitter import remote_bytes


def test_each_read_is_a_keyed_line_and_any_byte_comes_back() -> None:
    script = remote_bytes.script([("a", "cat x"), ("b", "tail -c +3 -- y")])
    assert script.splitlines() == [
        "printf '%s\\t' a; { cat x; } 2>/dev/null | base64 | tr -d '\\n'; printf '\\n'",
        "printf '%s\\t' b; { tail -c +3 -- y; } 2>/dev/null | base64 | tr -d '\\n'; printf '\\n'",
    ]
    encoded = base64.b64encode(b"\xff\x00ok").decode()
    output = f"a\t{encoded}\nb\t\nnoise\nc\t!!\n"
    assert remote_bytes.parse(output) == {"a": b"\xff\x00ok", "b": b""}
