"""Automatic retries: the policy's decisions, and whole applies on the built-in local host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from submitter.config.models import (
    MAX_RESOURCE_COUNT,
    Defaults,
    Limits,
    Resources,
    TaskSpec,
    validate_written,
)
from submitter.config.project import load_project
from submitter.prepare import escalated_task, prepare_tasks
from submitter.retry import (
    DEFAULT_RETRY_ON,
    MAX_DELAY,
    RetryPolicy,
    declared_retry_policy,
    escalated_resources,
    resource_caps,
)
from submitter.schedulers.base import SiteLimits
from submitter.states import Cause
from submitter.units import MAX_DURATION, MAX_MEMORY
from tests.conftest import count_attempts, write

GIB = 1024**3


# --- the policy -----------------------------------------------------------------------------
def test_default_policy_never_retries() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 1
    assert not policy.retries_after(1, Cause.NODE_FAIL, None)


def test_default_causes_are_the_infrastructures_not_the_tasks() -> None:
    policy = RetryPolicy(retries=2)
    assert policy.retry_on == DEFAULT_RETRY_ON
    for cause in (Cause.NODE_FAIL, Cause.LOST, Cause.PREEMPTED):
        assert policy.retries_after(1, cause, None)
    for cause in (Cause.TIMEOUT, Cause.OUT_OF_MEMORY, Cause.KILLED, Cause.CANCELLED):
        assert not policy.retries_after(1, cause, None)
    assert not policy.retries_after(1, Cause.EXIT_CODE, 1)


def test_exit_codes_are_retried_only_when_listed() -> None:
    policy = RetryPolicy(retries=1, retry_on=("timeout", 75))
    assert policy.retries_after(1, Cause.EXIT_CODE, 75)
    assert not policy.retries_after(1, Cause.EXIT_CODE, 3)
    assert policy.retries_after(1, Cause.TIMEOUT, None)
    assert not policy.retries_after(2, Cause.EXIT_CODE, 75), "no retries left"
    assert not policy.retries_after(1, Cause.MISSING_OUTPUT, 75)


@pytest.mark.parametrize(
    ("number", "cause", "exit_code", "note"),
    [
        (3, Cause.EXIT_CODE, 75, "attempt 3 of 3"),
        (1, Cause.EXIT_CODE, 4, "not retried: retry_on has no exit code 4"),
        (1, Cause.OUT_OF_MEMORY, None, "not retried: retry_on has no oom"),
        (1, Cause.KILLED, None, "not retried: a kill is never retried"),
        (1, Cause.CANCELLED, None, "not retried: a cancellation is never retried"),
        (1, Cause.MISSING_OUTPUT, 0, "not retried: a missing output is never retried"),
        (1, Cause.SUBMIT_ERROR, None, "not retried: a refused submission is never retried"),
        (1, Cause.NONE, None, "attempt 1 of 3, not retried"),
        (1, Cause.TIMEOUT, None, "attempt 1 of 3"),  # retried but for a kill meanwhile
    ],
)
def test_a_failure_says_which_attempt_ended_the_series_or_why_it_was_not_retried(
    number: int, cause: Cause, exit_code: int | None, note: str
) -> None:
    policy = RetryPolicy(retries=2, retry_on=("timeout", 75))
    assert policy.attempt_note(number, cause, exit_code) == note


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(retries=20)
    assert [policy.delay_before(n) for n in (2, 3, 4, 5)] == [5.0, 10.0, 20.0, 40.0]
    assert policy.delay_before(15) == MAX_DELAY
    assert RetryPolicy(retries=2, delay=1.0).delay_before(3) == 2.0


def test_task_keys_win_over_defaults() -> None:
    defaults = validate_written(
        Defaults, {"retries": 3, "retry_on": [75], "retry_delay": "1m", "escalate": {"mem": 2}}
    )
    task = validate_written(TaskSpec, {"name": "a", "run": "x", "retry_on": ["timeout"]})
    assert declared_retry_policy(task, defaults) == RetryPolicy(3, ("timeout",), {"mem": 2.0}, 60.0)
    nothing = validate_written(TaskSpec, {"name": "a", "run": "x", "retry_on": []})
    assert declared_retry_policy(nothing, Defaults()).retry_on == ()


def test_escalating_a_resource_retries_the_failure_it_answers() -> None:
    """More walltime is for a timeout, more memory for an out-of-memory kill: with retry_on
    left out, escalating one retries its failure too."""
    for escalate, cause in (({"walltime": 4}, "timeout"), ({"mem": 2}, "oom")):
        task = validate_written(
            TaskSpec, {"name": "a", "run": "x", "retries": 1, "escalate": escalate}
        )
        policy = declared_retry_policy(task, Defaults())
        assert policy.retry_on == (*DEFAULT_RETRY_ON, cause)
        assert policy.retries_after(1, Cause(cause), None)
    both = validate_written(Defaults, {"retries": 1, "escalate": {"mem": 2, "walltime": 2}})
    task = validate_written(TaskSpec, {"name": "a", "run": "x"})
    assert declared_retry_policy(task, both).retry_on == (*DEFAULT_RETRY_ON, "timeout", "oom")
    cores = validate_written(TaskSpec, {"name": "a", "run": "x", "escalate": {"cores": 2}})
    assert declared_retry_policy(cores, Defaults()).retry_on == DEFAULT_RETRY_ON


def test_policy_survives_the_state_store() -> None:
    policy = RetryPolicy(2, ("oom", 137), {"mem": 2.0}, 1.0)
    assert RetryPolicy.from_record(json.loads(json.dumps(policy.to_record()))) == policy
    assert RetryPolicy.from_record(None) == RetryPolicy()


def test_escalation_grows_per_attempt_within_caps() -> None:
    declared = Resources(cores=2, mem=GIB, walltime=100)
    policy = RetryPolicy(3, escalate={"mem": 2.0, "walltime": 1.5, "cores": 2.0})
    no_caps: dict[str, int | None] = {}
    assert escalated_resources(declared, policy, 1, no_caps) == declared
    second = escalated_resources(declared, policy, 2, no_caps)
    assert (second.cores, second.mem, second.walltime) == (4, 2 * GIB, 150)
    third = escalated_resources(declared, policy, 3, {"mem": 3 * GIB, "cores": 6})
    assert (third.cores, third.mem, third.walltime) == (6, 3 * GIB, 225)
    # a cap below what the task declared never takes from it
    assert escalated_resources(declared, policy, 2, {"walltime": 50}).walltime == 100


def test_an_escalation_to_huge_values_is_capped_and_never_overflows() -> None:
    declared = Resources(cores=2, mem=GIB, walltime=3600)
    policy = RetryPolicy(2000, escalate={"mem": 100.0, "walltime": 100.0, "cores": 100.0})
    far = escalated_resources(declared, policy, 2000, {})
    assert (far.cores, far.mem, far.walltime) == (MAX_RESOURCE_COUNT, MAX_MEMORY, MAX_DURATION)
    host = {"cores": 8, "mem": 64 * GIB, "walltime": 7200}
    capped = escalated_resources(declared, policy, 2000, host)
    assert (capped.cores, capped.mem, capped.walltime) == (8, 64 * GIB, 7200)
    # the largest values a tasks file may declare, grown once more
    largest = Resources(cores=MAX_RESOURCE_COUNT, mem=MAX_MEMORY, walltime=MAX_DURATION)
    assert escalated_resources(largest, policy, 2, {}) == largest
    assert RetryPolicy(5000).delay_before(5000) == MAX_DELAY


@pytest.mark.parametrize("factor", [float("inf"), 1e308, float("nan"), -1.0, 0.0])
def test_a_stored_factor_from_before_factors_were_bounded_raises_nothing(factor: float) -> None:
    """A state store written before the bound may still hold one; status reads it."""
    policy = RetryPolicy.from_record({"retries": 2, "escalate": {"mem": factor}})
    grown = escalated_resources(Resources(mem=GIB), policy, 3, {"mem": 8 * GIB})
    assert grown.mem in (GIB, 8 * GIB)


def test_caps_are_the_smaller_of_the_hosts_limits_and_the_schedulers() -> None:
    limits = Limits(cores=8, mem=64 * GIB, walltime=7200)
    site = SiteLimits(max_walltime=3600, max_mem=128 * GIB)
    assert resource_caps(limits, site) == {"cores": 8, "mem": 64 * GIB, "walltime": 3600}
    assert resource_caps(Limits(), SiteLimits()) == {"cores": None, "mem": None, "walltime": None}


def test_escalated_cores_stop_at_the_largest_node() -> None:
    """`cores: 3` escalated by 2 on nodes of 4 CPUs asks 4, not 6 (which would pend for
    ever); the host's `limits` cap it further where lower."""
    site = SiteLimits(node_cores=2, max_node_cores=4)
    caps = resource_caps(Limits(), site)
    assert caps["cores"] == 4
    policy = RetryPolicy(1, escalate={"cores": 2.0})
    assert escalated_resources(Resources(cores=3), policy, 2, caps).cores == 4
    assert resource_caps(Limits(cores=3), site)["cores"] == 3


# --- on the local host, through the CLI --------------------------------------------------------
# Exits with CODE on its first attempt (counted in a file beside the tasks file), then 0.
FLAKY = """\
    run: |
      echo x >> "$TOP/count-{name}"
      if [ "$(wc -l < "$TOP/count-{name}")" -le {fail_times} ]; then exit {code}; fi
      echo ok > "$TOP/{name}.txt"
"""


def _tasks(tmp_path: Path, *tasks: dict[str, Any]) -> Path:
    text = f"defaults:\n  env: {{TOP: '{tmp_path}'}}\n  retry_delay: 1s\ntasks:\n"
    for task in tasks:
        keys = {k: v for k, v in task.items() if k not in ("code", "fail_times")}
        text += "  - " + "\n    ".join(f"{k}: {json.dumps(v)}" for k, v in keys.items()) + "\n"
        text += FLAKY.format(
            name=task["name"], code=task.get("code", 75), fail_times=task.get("fail_times", 1)
        )
    return write(tmp_path / "tasks.yml", text)


def _status(cli, project: Path) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    result = cli("status", "--json", "-C", project)
    return {t["name"]: t for t in json.loads(result.out)}


def _runs(tmp_path: Path, name: str) -> int:
    return len((tmp_path / f"count-{name}").read_text().splitlines())


def test_a_listed_exit_code_is_retried_and_the_second_attempt_completes(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks(tmp_path, {"name": "flaky", "retries": 1, "retry_on": [75]})
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert "flaky: attempt 1 of 2 failed: exit code 75; retry in 1s" in result.err
    assert (tmp_path / "flaky.txt").read_text() == "ok\n"
    assert _runs(tmp_path, "flaky") == 2
    record = _status(cli, tmp_path)["flaky"]
    assert (record["state"], record["attempt"], record["max_attempts"]) == ("completed", 2, 2)
    first, second = record["attempts"]
    assert (first["number"], first["state"], first["exit_code"], first["cause"]) == (
        1,
        "failed",
        75,
        "exit_code",
    )
    assert (second["number"], second["state"], second["exit_code"]) == (2, "completed", 0)
    table = cli("status", "-C", tmp_path)
    assert "2 of 2" in table.out and "attempt" in table.out
    again = cli("apply", tasks)
    assert "1 up to date" in again.err and count_attempts(tmp_path) == 2


def test_an_unlisted_exit_code_is_not_retried(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks(tmp_path, {"name": "broken", "retries": 2, "retry_on": [75], "code": 3})
    result = cli("apply", tasks)
    assert result.code == 1
    record = _status(cli, tmp_path)["broken"]
    assert record["state"] == "failed"
    assert record["reason"] == "exit code 3 (not retried: retry_on has no exit code 3)"
    assert _runs(tmp_path, "broken") == 1


def test_exhausted_retries_fail_the_task_naming_the_attempt(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks(tmp_path, {"name": "doomed", "retries": 2, "retry_on": [75], "fail_times": 9})
    result = cli("apply", tasks)
    assert result.code == 1
    assert "FAILED doomed" in result.err and "attempt 3 of 3" in result.err
    record = _status(cli, tmp_path)["doomed"]
    assert (record["state"], record["attempt"]) == ("failed", 3)
    assert record["reason"] == "exit code 75 (attempt 3 of 3)"
    assert [a["number"] for a in record["attempts"]] == [1, 2, 3]
    assert _runs(tmp_path, "doomed") == 3
    # the next seconds between attempts: 1 s, then 2 s (retry_delay doubled)
    submitted = [a["submitted"] for a in record["attempts"]]
    assert submitted[1] - submitted[0] >= 1.0
    assert submitted[2] - submitted[1] >= 2.0
    table = cli("status", "-C", tmp_path)
    assert "3 of 3" in table.out

    # Applying a failed task again is the user's decision: a new series, all retries again.
    again = cli("apply", tasks)
    assert again.code == 1
    numbers = [a["number"] for a in _status(cli, tmp_path)["doomed"]["attempts"]]
    assert numbers == [1, 2, 3, 1, 2, 3]


def test_a_retry_left_by_a_detached_apply_continues_at_the_next_apply(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks(tmp_path, {"name": "later", "retries": 1, "retry_on": [75]})
    assert cli("apply", tasks, "--detach").code == 0
    for _ in range(100):
        record = _status(cli, tmp_path)["later"]
        if record["state"] == "pending":
            break
    assert record["state"] == "pending", record
    assert record["reason"].endswith("the next apply retries it"), record
    assert record["attempt"] == 1
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    record = _status(cli, tmp_path)["later"]
    assert (record["state"], record["attempt"]) == ("completed", 2)
    assert _runs(tmp_path, "later") == 2


def _timed_out_then_completed(
    cli, tmp_path: Path, host: str, retrying: str, body: str
) -> tuple[dict[str, Any], dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Apply task `slow` (walltime 1s, one retry after 1s, `retrying` keys, then `body`) on
    the local host (`host` keys); its two attempts, after checking that the first timed out
    and the second completed, each counted in $TOP/count."""
    tasks = write(
        tmp_path / "tasks.yml",
        f"hosts:\n  local: {{scheduler: local, vars: {{kill_grace: 1}}{host}}}\n"
        f"tasks:\n  - name: slow\n    env: {{TOP: '{tmp_path}'}}\n"
        "    resources: {walltime: 1s}\n    retries: 1\n    retry_delay: 1s\n"
        f"{retrying}    run: |\n"
        '      echo x >> "$TOP/count"\n' + body,
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    assert "attempt 1 of 2 failed: walltime exceeded" in result.err
    first, second = _status(cli, tmp_path)["slow"]["attempts"]
    assert (first["cause"], second["state"]) == ("timeout", "completed")
    assert len((tmp_path / "count").read_text().splitlines()) == 2
    return first, second


def test_escalation_renders_the_retry_with_more_walltime_under_the_same_id(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    first, second = _timed_out_then_completed(
        cli,
        tmp_path,
        ", limits: {walltime: 5s}",
        "    retry_on: [timeout]\n    escalate: {walltime: 3}\n",
        '      if [ "$(wc -l < "$TOP/count")" -eq 1 ]; then sleep 30; fi\n      sleep 1.5\n',
    )
    assert first["script_sha256"] != second["script_sha256"], "attempt 2 is rendered anew"


def test_a_timeout_is_retried_with_more_walltime_when_escalate_names_walltime(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """No retry_on written: `escalate: {walltime: 10}` is enough for a timeout to be retried;
    both attempts run the same 5 s, the second within its 10 s."""
    _timed_out_then_completed(
        cli, tmp_path, "", "    escalate: {walltime: 10}\n", "      sleep 5\n"
    )


@pytest.mark.parametrize("retries", [0, 2])
def test_no_retry_without_retries(cli, tmp_path: Path, retries: int) -> None:  # type: ignore[no-untyped-def]
    tasks = _tasks(tmp_path, {"name": "once", "retries": retries, "retry_on": [], "code": 75})
    assert cli("apply", tasks).code == 1
    assert _runs(tmp_path, "once") == 1


def test_a_lost_task_is_retried_by_default(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Its wrapper killed with SIGKILL on the first attempt: no status file, the task is lost;
    `lost` is among the default causes."""
    tasks = write(
        tmp_path / "tasks.yml",
        "hosts:\n  local: {scheduler: local, lost_after: 1s}\n"
        f"tasks:\n  - name: orphan\n    env: {{TOP: '{tmp_path}'}}\n    retries: 1\n"
        "    retry_delay: 1s\n    run: |\n"
        '      echo x >> "$TOP/count-orphan"\n'
        '      if [ "$(wc -l < "$TOP/count-orphan")" -eq 1 ]; then kill -9 "$PPID"; fi\n',
    )
    result = cli("apply", tasks)
    assert result.code == 0, result.err
    record = _status(cli, tmp_path)["orphan"]
    assert [(a["state"], a["cause"]) for a in record["attempts"]] == [
        ("lost", "lost"),
        ("completed", ""),
    ]
    assert _runs(tmp_path, "orphan") == 2


def test_an_escalated_attempt_is_rendered_with_its_resources_under_the_same_id(
    tmp_path: Path,
) -> None:
    tasks = write(
        tmp_path / "tasks.yml",
        "hosts:\n  hpc: {address: nowhere.example.org, scheduler: slurm, work_dir: /w,\n"
        "        limits: {mem: 3G}}\n"
        "tasks:\n  - name: grows\n    host: hpc\n    resources: {walltime: 10s, mem: 1G}\n"
        "    retries: 2\n    escalate: {walltime: 3, mem: 2}\n    run: 'true'\n",
    )
    (task,) = prepare_tasks(load_project(tasks), check_inputs=False)
    caps = resource_caps(task.host.config.limits, SiteLimits(max_walltime=60))
    second = escalated_task(task, task.definition.retry, 2, caps)
    third = escalated_task(task, task.definition.retry, 3, caps)
    assert "#SBATCH --time=00:00:10" in task.render().job_script
    assert "#SBATCH --time=00:00:30" in second.render().job_script
    assert "#SBATCH --mem=2048M" in second.render().job_script
    assert "#SBATCH --time=00:01:00" in third.render().job_script, "the scheduler's limit"
    assert "#SBATCH --mem=3072M" in third.render().job_script, "the host's limit"
    assert task.task_id == second.task_id == third.task_id
    assert escalated_task(task, task.definition.retry, 1, caps) is task
