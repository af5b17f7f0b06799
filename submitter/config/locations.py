"""Where configuration is looked for. Free of heavy imports: shell completion reads it."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TASKS_FILE = "tasks.yml"
HOSTS_FILE = "hosts.yml"  # beside the tasks file, and in the user's config directory


def user_config_dir() -> Path:
    override = os.environ.get("SUBMITTER_CONFIG_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "submitter"
