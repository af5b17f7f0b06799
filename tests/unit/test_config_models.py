"""The YAML models: rules for what users write, and records the state store saved."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from submitter.config.models import Defaults, HostConfig, HostsFile, TaskSpec, validate_written


def test_host_settings_saved_by_the_store_load_again() -> None:
    written = validate_written(
        HostsFile, {"hosts": {"h": {"address": "x", "limits": {"mem": "8G", "walltime": "1h"}}}}
    ).hosts["h"]
    saved = written.model_dump(mode="json")
    assert saved["limits"]["mem"] == 8 * 1024**3
    assert HostConfig.model_validate(saved) == written


def test_records_saved_before_work_dir_had_to_be_absolute_still_load() -> None:
    assert HostConfig.model_validate({"address": "x", "work_dir": "w"}).work_dir == "w"


@pytest.mark.parametrize("work_dir", ["/scratch/w", "~", "~/w"])
def test_absolute_work_dirs(work_dir: str) -> None:
    hosts = validate_written(HostsFile, {"hosts": {"h": {"work_dir": work_dir}}})
    assert hosts.hosts["h"].work_dir == work_dir


@pytest.mark.parametrize("work_dir", ["w", "./w", "~alice/w", "$HOME/w"])
def test_work_dirs_that_are_not_absolute(work_dir: str) -> None:
    with pytest.raises(ValidationError, match="must be an absolute path or start with ~/"):
        validate_written(HostsFile, {"hosts": {"h": {"work_dir": work_dir}}})


def test_check_host_says_the_pbs_flavor() -> None:
    from submitter.checks import _flavor_check

    pbs = HostConfig(address="x", scheduler="pbs")
    assert _flavor_check(pbs, "pro").detail == "pro (detected)"
    assert _flavor_check(pbs, None).ok
    named = HostConfig(address="x", scheduler="pbs", pbs_flavor="torque")
    assert _flavor_check(named, "torque").ok
    wrong = _flavor_check(named, "pro")
    assert not wrong.ok and wrong.fix == "set 'pbs_flavor: pro' or remove it"


# Every list of names, paths or options also takes its one item bare, as `after: index` does.
BARE_AND_LISTED = [
    (TaskSpec, "after", "index"),
    (TaskSpec, "retry_on", "timeout"),
    (TaskSpec, "retry_on", 75),
    (TaskSpec, "inputs", "data/in.txt"),
    (TaskSpec, "outputs", "results/*.txt"),
    (TaskSpec, "directives", "--constraint=avx2"),
    (Defaults, "retry_on", "oom"),
    (Defaults, "directives", "--constraint=avx2"),
    (HostConfig, "ssh_options", "ServerAliveInterval=5"),
    (HostConfig, "shared", "/scratch"),
]


@pytest.mark.parametrize(("model", "key", "item"), BARE_AND_LISTED)
def test_a_list_key_takes_its_one_item_bare(model: type[BaseModel], key: str, item: object) -> None:
    base = {"name": "a", "run": "x"} if model is TaskSpec else {}
    bare = validate_written(model, {**base, key: item})
    listed = validate_written(model, {**base, key: [item]})
    assert getattr(bare, key) == getattr(listed, key) == [item]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "after",
            123,
            "expected a task name or a list of task names, got 123; quote it if you mean "
            'the text, as "123"',
        ),
        ("after", {"a": 1}, "expected a task name or a list of task names, got a mapping"),
        (
            "inputs",
            1.5,
            'expected a path or a list of paths, got 1.5; quote it if you mean the text, as "1.5"',
        ),
        (
            "retry_on",
            True,
            "expected a cause or an exit code, or a list of them (causes: timeout, oom, "
            "node_fail, lost, preempted; exit codes 1-255), got true",
        ),
    ],
)
def test_a_list_key_given_something_else_says_what_it_takes(
    key: str, value: object, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_written(TaskSpec, {"name": "a", "run": "x", key: value})
    (error,) = caught.value.errors()
    assert error["loc"] == (key,)
    assert str(error["msg"]).removeprefix("Value error, ") == message
