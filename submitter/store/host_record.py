"""The project's own record of a host's settings, kept with each task in the state store.

`status`, `logs`, `kill` and `purge` reach a task's host without the tasks file, from this
record. It is written in its own versioned shape, not as the YAML model, so a renamed or
newly validated YAML key never makes an older state store unreadable.
"""

from __future__ import annotations

from typing import Any

from submitter.config.models import HostConfig, Limits

HOST_RECORD_VERSION = 1

# What a later command needs to reach the host and judge its tasks, by record key.
_KEPT = (
    "address",
    "port",
    "identity_file",
    "known_hosts",
    "ssh_options",
    "scheduler",
    "pbs_flavor",
    "pack",
    "work_dir",
    "paths",
    "shared",
    "max_running",
    "max_array",
    "poll_interval",
    "lost_after",
    "reconnect_for",
    "setup",
    "vars",
)


def host_record(config: HostConfig) -> dict[str, Any]:
    record: dict[str, Any] = {"version": HOST_RECORD_VERSION, "scheduler": config.kind}
    for key in _KEPT:
        value = getattr(config, key, None)
        if key == "scheduler":
            continue
        if value not in (None, [], {}):
            record[key] = value
    return record


def host_config(record: dict[str, Any]) -> HostConfig:
    """The settings a record holds, as the engine uses them. Records written before the
    versioned shape (the YAML model's dump) hold the same keys, plus some no longer kept."""
    fields = {key: record[key] for key in _KEPT if record.get(key) is not None}
    fields = {k: v for k, v in fields.items() if k in HostConfig.model_fields}
    return HostConfig.model_construct(limits=Limits(), **fields)
