"""Which tasks share a job: short alike ones packed, other alike ones in job arrays."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from submitter.config.models import HostConfig
from submitter.config.project import load_project
from submitter.grouping import (
    Group,
    alike_key,
    group_driver,
    packed_resources,
    packing_of,
    plan_groups,
    size_pool,
)
from submitter.prepare import PreparedTask, prepare_tasks
from submitter.schedulers.base import SiteLimits


def _prepared(tmp_path: Path, tasks: list[dict[str, Any]], **host: Any) -> list[PreparedTask]:
    host = {"address": "alice@example.org", "scheduler": "slurm", **host}
    text = json.dumps({"hosts": {"h": host}, "defaults": {"host": "h"}, "tasks": tasks})
    (tmp_path / "tasks.yml").write_text(text)
    project = load_project(tmp_path / "tasks.yml")
    return prepare_tasks(project, {"h": "/home/alice"})


def _scan(n: int, walltime: str | None, **resources: Any) -> dict[str, Any]:
    resources = {"cores": 1, **resources}
    if walltime:
        resources["walltime"] = walltime
    return {
        "name": "t-{{ i }}",
        "for_each": {"i": list(range(n))},
        "resources": resources,
        "run": "echo {{ i }}\n",
    }


def test_short_tasks_go_in_one_pool_whose_jobs_are_sized_by_what_is_free(tmp_path: Path) -> None:
    tasks = _prepared(tmp_path, [_scan(150, "00:01:00")])
    singles, groups = plan_groups(tasks, HostConfig(), SiteLimits(node_cores=4), 1000)
    assert singles == [] and [len(g.members) for g in groups] == [150]
    assert groups[0].kind == "pool" and groups[0].packing and groups[0].packing.width == 4
    unknown = size_pool(groups[0], None, 200)
    assert (unknown.jobs, unknown.packing and unknown.packing.width) == (2, 4), "as packed"
    cores, mem, walltime = packed_resources(unknown)
    assert cores == 4 and mem is None
    assert walltime == 19 * 60 + 60, "19 rounds of 1 min each, and the driver's minute"
    few = size_pool(groups[0], 4, 200)
    assert (few.jobs, few.packing and few.packing.width) == (4, 1), "a lane a free core"
    assert packed_resources(few) == (1, None, 25 * 60 + 60), "at most 25 rounds a job"
    many = size_pool(groups[0], 64, 10)
    assert (many.jobs, many.packing and many.packing.width) == (10, 4), "wider: queue room"
    assert packed_resources(many) == (4, None, 4 * 60 + 60), "150 tasks over 40 lanes"
    assert size_pool(groups[0], 0, 200).jobs == 1, "nothing free: one job waits"


def test_long_or_open_ended_tasks_go_as_arrays(tmp_path: Path) -> None:
    long = _prepared(tmp_path, [_scan(5, "02:00:00")])
    _singles, groups = plan_groups(long, HostConfig(), SiteLimits(), 1000)
    assert [g.kind for g in groups] == ["array"] and len(groups[0].members) == 5
    open_ended = _prepared(tmp_path, [_scan(5, None)])
    assert packing_of(open_ended[0], HostConfig(), SiteLimits()) is None


def test_host_keys_steer_packing(tmp_path: Path) -> None:
    tasks = _prepared(tmp_path, [_scan(10, "00:05:00", cores=2)])
    config = HostConfig(pack_cores=8, pack_walltime=21 * 60, max_per_job=6)
    packing = packing_of(tasks[0], config, SiteLimits(node_cores=64))
    assert packing is not None and packing.width == 4, "pack_cores wins over the node's"
    assert packing.per_job == 6, "4 at once for 4 rounds would be 16; max_per_job is 6"
    assert packing_of(tasks[0], HostConfig(max_per_job=1), SiteLimits()) is None
    assert packing_of(tasks[0], HostConfig(pack_under=60), SiteLimits()) is None
    singles, groups = plan_groups(tasks, HostConfig(max_per_job=1, max_array=3), SiteLimits(), 3)
    assert [len(g.members) for g in groups] == [3, 3, 2, 2] and singles == []


def test_tasks_unlike_in_resources_never_share_a_job(tmp_path: Path) -> None:
    tasks = _prepared(
        tmp_path, [_scan(3, "00:01:00"), {**_scan(1, "00:01:00", cores=2), "name": "x"}]
    )
    assert len({alike_key(t) for t in tasks}) == 2
    singles, groups = plan_groups(tasks, HostConfig(), SiteLimits(), 1000)
    assert [t.name for t in singles] == ["x"] and len(groups[0].members) == 3


def test_packed_driver_runs_members_side_by_side_and_skips_cancelled(tmp_path: Path) -> None:
    """The driver, run by bash here as the scheduler would: every listed member runs once,
    at most `width` at a time; a member with a .cancel file is skipped with a killed status;
    an empty line (a member given up before its start) is passed over."""
    tasks = _prepared(tmp_path, [_scan(5, "00:01:00")], pack_cores=2)
    _singles, groups = plan_groups(tasks, HostConfig(pack_cores=2), SiteLimits(), 1000)
    driver, extras = group_driver(groups[0], tmp_path)
    assert sorted(Path(e.remote).name for e in extras) == ["params", "tasks.json", "wrapper.sh"]
    text = driver.local.read_text()
    assert "#SBATCH --cpus-per-task=2" in text and "#SBATCH --time=00:04:00" in text
    # Each member runs in the pool's wrapper, here one that notes how many members ran at
    # once while it ran, and which member its params line named.
    (tmp_path / "wrapper.sh").write_text(
        'submitter_member() {\n  eval "$1"\n'
        f"  ls {tmp_path}/run/*/.busy 2>/dev/null | wc -l >peers\n"
        "  : >.busy; sleep 0.3; ls ../*/.busy | wc -l >>peers; rm .busy\n"
        '  echo "ran $member" >>runs\n}\n'
    )
    members, params = [], []
    for n in range(5):
        directory = tmp_path / "run" / f"m{n}"
        directory.mkdir(parents=True)
        members.append(str(directory))
        params.append(f"member=m{n}")
    (tmp_path / "run" / "m3" / ".cancel").touch()
    members.insert(2, "")
    params.insert(2, "")
    group_dir = Path(driver.remote).parent
    text = text.replace(str(group_dir), str(tmp_path))  # its members, params, wrapper, logs
    (tmp_path / "members").write_text("\n".join(members) + "\n")
    (tmp_path / "params").write_text("\n".join(params) + "\n")
    (tmp_path / "driver.sh").write_text(text)
    done = subprocess.run(["bash", str(tmp_path / "driver.sh")], check=False, timeout=30)
    assert done.returncode == 1, "a member did not complete: the job fails (afterok holds)"
    for n in (0, 1, 2, 4):
        directory = tmp_path / "run" / f"m{n}"
        assert (directory / "runs").read_text() == f"ran m{n}\n"
        assert max(int(x) for x in (directory / "peers").read_text().split()) <= 2
    skipped = json.loads((tmp_path / "run" / "m3" / "status").read_text())
    assert skipped["state"] == "killed" and not (tmp_path / "run" / "m3" / "runs").exists()
    assert Group(groups[0].members, groups[0].packing).kind == "pool"


def test_purge_removes_a_group_directory_once_none_of_its_members_is_left(tmp_path: Path) -> None:
    from submitter.hostops import HostOps

    work = tmp_path / "work"
    for task in ("a", "b", "c"):
        (work / task).mkdir(parents=True)
    for group, members in (("g1", ["a", "b"]), ("g2", ["b", "c"])):
        (work / ".groups" / group).mkdir(parents=True)
        lines = "".join(f"{work / m}\n" for m in members)
        (work / ".groups" / group / "members").write_text(lines + "\n")
    script = HostOps.remove_script([str(work / "a"), str(work / "b")])
    subprocess.run(["bash", "-c", script], check=True)
    assert not (work / ".groups" / "g1").exists(), "all its members purged"
    assert (work / ".groups" / "g2" / "members").exists(), "c is still there"
    assert (work / "c").exists() and not (work / "a").exists()
