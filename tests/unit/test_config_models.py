"""The YAML models: rules for what users write, and records the state store saved."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from submitter.config.models import HostConfig, HostsFile, validate_written


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
