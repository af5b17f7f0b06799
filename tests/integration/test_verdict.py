"""The verdict on a task (from its status file and the scheduler) and the per-host poll parsing,
on fixed inputs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from submitter.hostops import HostOps, Running
from submitter.local_steps import LocalSteps
from submitter.schedulers.base import JobState, JobStatus
from submitter.states import Cause
from submitter.verdict import LOST_GRACE_BATCH, LOST_GRACE_PROCESS, judge

DONE = {"state": "completed", "exit_code": 0, "reason": ""}
KILLED = {"state": "killed", "exit_code": 143, "reason": "killed by SIGTERM"}


def _judge(
    status, scheduler=None, alive=None, *, batch=True, now=100.0, since=None, current="running"
):  # type: ignore[no-untyped-def]
    return judge(
        status, scheduler, alive, batch=batch, now=now, waiting_since=since, current=current
    )


def test_status_file_is_the_truth() -> None:
    verdict = _judge(DONE, JobStatus(JobState.RUNNING, "R"))
    assert (verdict.state, verdict.final) == ("completed", True)


def test_scheduler_timeout_overrides_a_killed_file() -> None:
    verdict = _judge(KILLED, JobStatus(JobState.TIMEOUT, "TO"))
    assert (
        verdict.state == "failed"
        and "walltime exceeded" in verdict.reason
        and "TO" in verdict.reason
    )


def test_cancelled_job_with_killed_file_is_killed() -> None:
    verdict = _judge(KILLED, JobStatus(JobState.CANCELLED, "CA"))
    assert (verdict.state, verdict.reason) == ("killed", "killed by SIGTERM")


def test_a_command_ended_by_the_cancel_of_its_job_is_killed_not_failed() -> None:
    """An administrator's scancel signals every process of the job: the command may die of
    it before its wrapper hears it, which then records an exit code of 143."""
    ended = {"state": "failed", "exit_code": 143, "reason": "exit code 143"}
    verdict = _judge(ended, JobStatus(JobState.CANCELLED, "CA"))
    assert (verdict.state, verdict.cause) == ("killed", Cause.CANCELLED)
    assert verdict.reason == "cancelled by the scheduler or an administrator (CA)"
    own = {"state": "failed", "exit_code": 3, "reason": "exit code 3"}
    assert _judge(own, JobStatus(JobState.CANCELLED, "CA")).state == "failed", "its own exit"


def test_queued_and_held_jobs_wait() -> None:
    assert _judge(None, JobStatus(JobState.QUEUED, "PD"), current="submitted").state == "queued"
    assert _judge(None, JobStatus(JobState.HELD, "H")).state == "held"
    assert _judge({"state": "running"}, JobStatus(JobState.QUEUED, "PD")).state == "running"


def test_a_job_that_can_never_start_is_queued_with_the_schedulers_reason() -> None:
    stuck = JobStatus(JobState.QUEUED, "PD", cannot_start="PartitionConfig (too big)")
    verdict = _judge(None, stuck, current="submitted")
    assert (verdict.state, verdict.reason, verdict.final) == (
        "queued",
        "cannot start: PartitionConfig (too big)",
        False,
    )
    assert _judge(None, JobStatus(JobState.QUEUED, "PD"), current="queued").reason == ""


def test_job_gone_without_status_gets_a_grace_period_then_is_lost() -> None:
    first = _judge(None, None, now=100.0)
    assert not first.final and first.waiting_since == 100.0
    within = _judge(None, None, now=100.0 + LOST_GRACE_BATCH - 1, since=100.0)
    assert not within.final
    after = _judge(None, None, now=100.0 + LOST_GRACE_BATCH, since=100.0)
    assert (after.state, after.final) == ("lost", True)
    assert "without writing a status file" in after.reason


def test_out_of_memory_without_file_fails_with_reason_after_short_wait() -> None:
    oom = JobStatus(JobState.OUT_OF_MEMORY, "OOM")
    assert not _judge(None, oom).final
    verdict = _judge(None, oom, now=200.0, since=100.0)
    assert verdict.state == "failed" and "out of memory" in verdict.reason


def test_dead_process_without_status_is_lost_after_grace() -> None:
    assert _judge(None, alive=True, batch=False).state == "running"
    assert not _judge(None, alive=False, batch=False).final
    verdict = _judge(None, alive=False, batch=False, now=100.0 + LOST_GRACE_PROCESS, since=100.0)
    assert verdict.state == "lost"


def test_poll_output_is_parsed_per_task() -> None:
    ops = HostOps.for_kind("slurm")
    output = (
        "SCHED-BEGIN\n11 R\n12 PD\n\nSCHED-END\t0\n"
        'TASK\taaa\t-\t{"state": "running", "exit_code": null}\n'
        "TASK\tbbb\t-\t\n"
        "TASK\tccc\t-\t{half a json\n"
    )
    poll = ops.parse_poll(output)
    assert poll.scheduler is not None
    assert poll.scheduler["11"].state is JobState.RUNNING
    assert poll.tasks["aaa"].status == {"state": "running", "exit_code": None}
    assert poll.tasks["bbb"].status is None
    assert poll.tasks["ccc"].status is None, "a torn read is retried next cycle, not a crash"


def test_failed_status_query_is_reported_but_forgotten_jobs_are_not() -> None:
    ops = HostOps.for_kind("pbs")
    broken = ops.parse_poll("SCHED-BEGIN\nqstat: cannot connect to server\n\nSCHED-END\t2\n")
    assert broken.scheduler is None and broken.scheduler_error
    gone = ops.parse_poll("SCHED-BEGIN\nqstat: Unknown Job Id 7.login\n\nSCHED-END\t153\n")
    assert gone.scheduler == {} and gone.scheduler_error is None


def test_start_output_gives_job_ids_or_errors() -> None:
    ops = HostOps.for_kind("lsf")
    started = ops.parse_start(
        "START\taaa\tok\tJob <42> is submitted to queue <normal>.\n"
        "START\tbbb\terror\texit 255: Bad resource requirement syntax.\n"
    )
    assert started["aaa"].job_id == "42"
    assert started["bbb"].job_id is None and "Bad resource" in (started["bbb"].error or "")


def test_scripts_quote_every_value() -> None:
    ops = HostOps.for_kind("slurm")
    script = ops.start_script([Running("id1", "/w/dir $(touch x) 'q'", "tok", None)])
    assert "'/w/dir $(touch x) '\"'\"'q'\"'\"''" in script
    assert "sbatch --parsable job.sh" in script


def test_lost_after_is_the_hosts_to_choose() -> None:
    verdict = judge(
        None,
        None,
        None,
        batch=True,
        now=103.0,
        waiting_since=100.0,
        current="running",
        lost_after=3,
    )
    assert verdict.state == "lost"


def test_a_start_never_answered_is_settled_from_the_hosts_record() -> None:
    ops = HostOps.for_kind("slurm")
    script = ops.poll_script(
        [Running("t1", "/w/t1", "tok1", None), Running("t2", "/w/t2", "tok2", "7")]
    )
    assert "submitter_resolve tok1 t1 /w/t1" in script
    assert "submitter_report t2 /w/t2 tok2 ''" in script
    poll = ops.parse_poll(
        "RESOLVE\tt1\tok\t123\nRESOLVE\tt3\tnever\t\nRESOLVE\tt4\terror\texit 1: boom\n"
        "RESOLVE\tt5\tpending\t\n"
    )
    assert poll.resolved["t1"].outcome == "started"
    assert poll.resolved["t1"].start is not None and poll.resolved["t1"].start.job_id == "123"
    assert poll.resolved["t3"].outcome == "never"
    assert poll.resolved["t4"].outcome == "failed"
    assert poll.resolved["t5"].outcome == "pending"


def test_a_start_script_cut_short_starts_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    ops = HostOps.for_kind("local")
    tasks = []
    for name in ("t1", "t2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "job.sh").write_text("true\n")
        tasks.append(Running(name, str(tmp_path / name), "tok", None))
    script = ops.start_script(tasks)
    cut = script[: script.rindex("submitter_launch") + 20]  # the link dropped mid-way
    subprocess.run(["bash", "-s"], input=cut, text=True, capture_output=True, check=False)
    assert not list(tmp_path.glob("t*/.attempt-tok")), "a part of a start must not run"
    done = subprocess.run(["bash", "-s"], input=script, text=True, capture_output=True, check=False)
    assert done.stdout.count("\tok\t") == 2


def _fake_tool(bin_dir, name: str, output: str) -> None:  # type: ignore[no-untyped-def]
    """A stand-in for a submit command: keeps its arguments and standard input, prints output."""
    tool = bin_dir / name
    tool.write_text(
        f'#!/bin/bash\nprintf "%s\\n" "$@" > "$(dirname "$0")/{name}.args"\n'
        f'cat > "$(dirname "$0")/{name}.stdin"\nprintf "%s\\n" {output!r}\n'
    )
    tool.chmod(0o755)


def _start_array(tmp_path, kind: str, tool: str, output: str):  # type: ignore[no-untyped-def]
    import os
    import subprocess

    from submitter.hostops import ArrayStart

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, tool, output)
    group = tmp_path / "group"
    group.mkdir()
    (group / "array.sh").write_text("#!/bin/bash\n# the driver\n")
    members = []
    for name in ("t0", "t1"):
        (tmp_path / name).mkdir()
        members.append(Running(name, str(tmp_path / name), "tok", None))
    ops = HostOps.for_kind(kind)
    script = ops.start_script([], [ArrayStart(str(group), str(group / "array.sh"), tuple(members))])
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-s"], input=script, text=True, capture_output=True, env=env, check=False
    )
    return ops.parse_start(done.stdout), bin_dir


def test_lsf_array_goes_to_bsub_on_stdin_with_one_based_members(tmp_path) -> None:  # type: ignore[no-untyped-def]
    started, bin_dir = _start_array(
        tmp_path, "lsf", "bsub", "Job <5> is submitted to default queue <normal>."
    )
    assert {t: s.job_id for t, s in started.items()} == {"t0": "5[1]", "t1": "5[2]"}
    assert (bin_dir / "bsub.stdin").read_text() == "#!/bin/bash\n# the driver\n"
    assert (bin_dir / "bsub.args").read_text() == "\n"


def test_pbs_array_is_qsub_of_the_driver_with_nothing_on_stdin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    started, bin_dir = _start_array(tmp_path, "pbs", "qsub", "812[].pbs01")
    assert {t: s.job_id for t, s in started.items()} == {"t0": "812[0].pbs01", "t1": "812[1].pbs01"}
    assert (bin_dir / "qsub.stdin").read_text() == ""
    assert (bin_dir / "qsub.args").read_text() == f"{tmp_path / 'group' / 'array.sh'}\n"


def test_preempted_job_fails_with_the_preempted_cause() -> None:
    preempted = JobStatus(JobState.PREEMPTED, "PR")
    verdict = _judge(KILLED, preempted)
    assert (verdict.state, verdict.cause) == ("failed", Cause.PREEMPTED)
    assert "preempted" in verdict.reason
    unwritten = _judge(None, preempted, now=200.0, since=100.0)
    assert (unwritten.final, unwritten.cause) == (True, Cause.PREEMPTED)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schedulers"


def test_poll_takes_end_states_of_jobs_gone_from_squeue_from_sacct() -> None:
    """Captured: squeue still lists 11 (NF), 12 (CD), 13_0 and a pending member 13_3; sacct
    was asked only of 2, 3 and 7_2, and tells how they ended."""
    ops = HostOps.for_kind("slurm")
    poll = ops.parse_poll((FIXTURES / "slurm_poll_with_sacct.txt").read_text())
    assert poll.scheduler is not None
    assert {job: s.code for job, s in poll.scheduler.items()} == {
        "2": "F", "3": "TO", "7_2": "F", "11": "NF", "12": "CD", "13_3": "PD", "13_0": "R",
    }  # fmt: skip
    assert ops.batch is not None
    assert ops.batch.find_status(poll.scheduler, "12/0") == JobStatus(JobState.DONE, "CD")


def test_poll_without_accounting_keeps_the_queues_view() -> None:
    disabled = (FIXTURES / "slurm_sacct_disabled.stderr.txt").read_text()
    ops = HostOps.for_kind("slurm")
    poll = ops.parse_poll(f"SCHED-BEGIN\n12 R\nSCHED-END\t0\nDONE-BEGIN\n{disabled}\nDONE-END\t1\n")
    assert poll.scheduler == {"12": JobStatus(JobState.RUNNING, "R")}
    assert poll.scheduler_error is None


def test_poll_script_asks_sacct_only_of_jobs_squeue_does_not_list(tmp_path: Path) -> None:
    """The script run here with stand-in squeue and sacct: array members in a pending range
    and listed jobs are not asked; the rest go 100 ids per sacct call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\necho '5 R'; echo '6_[2-9%1] PD'; echo '6_1 R'\n")
    (bin_dir / "sacct").write_text(
        f"#!/bin/sh\nprintf '%s\\n' \"$*\" >>{tmp_path}/asked\necho '1|TIMEOUT|0:0'\n"
    )
    for tool in ("squeue", "sacct"):
        (bin_dir / tool).chmod(0o755)
    jobs = ["1", "5", "6_1", "6_4", "7/2", *[str(100 + i) for i in range(120)]]
    ops = HostOps.for_kind("slurm")
    script = ops.poll_script([Running(f"t{i}", f"/w/t{i}", "a", j) for i, j in enumerate(jobs)])
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        check=True,
    )
    asked = [line.split()[-1].split(",") for line in (tmp_path / "asked").read_text().splitlines()]
    assert [len(ids) for ids in asked] == [100, 22]
    assert asked[0][:2] == ["1", "7"] and "5" not in asked[0] and "6_4" not in asked[0]
    poll = ops.parse_poll(done.stdout)
    assert poll.scheduler is not None
    assert poll.scheduler["1"] == JobStatus(JobState.TIMEOUT, "TO", 0)
    assert poll.scheduler["5"].state is JobState.RUNNING


# A wrapper stopped between writing its final status to `.status.PID` and renaming it into
# place (a SIGKILL, a node that died) leaves the final status there, complete.
_FINAL_TEMP = (
    '{"state": "completed", "exit_code": 0, "hostname": "c1", "pid": 41, "job_id": "7", '
    '"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z", "reason": "", '
    '"matched": {}}\n'
)
_RUNNING = '{"state": "running", "exit_code": null, "pid": 41}\n'


def _half_written(directory: Path, status: str | None, temp: str) -> None:
    directory.mkdir()
    if status is not None:
        (directory / "status").write_text(status)
    (directory / ".status.41").write_text(temp)


def _polled_here(kind: str, tasks: list[Running]) -> dict[str, dict | None]:  # type: ignore[type-arg]
    """Each task's status as the poll script of a `kind` host, run here, reports it."""
    ops = HostOps.for_kind(kind)
    done = subprocess.run(
        ["bash", "-c", ops.poll_script(tasks)], capture_output=True, text=True, check=False
    )
    return {name: report.status for name, report in ops.parse_poll(done.stdout).tasks.items()}


def test_a_final_status_left_unrenamed_is_read_as_the_truth(tmp_path: Path) -> None:
    _half_written(tmp_path / "only-temp", None, _FINAL_TEMP)
    _half_written(tmp_path / "still-running", _RUNNING, _FINAL_TEMP)
    _half_written(tmp_path / "torn", _RUNNING, _FINAL_TEMP.rstrip("\n")[:40])
    _half_written(tmp_path / "final", '{"state": "failed", "reason": "exit code 2"}\n', _FINAL_TEMP)
    names = ("only-temp", "still-running", "torn", "final")
    expected = {
        "only-temp": "completed",
        "still-running": "completed",
        "torn": "running",  # half a temporary file is no status: the next poll reads it whole
        "final": "failed",  # a renamed final status stands
    }
    for kind in ("slurm", "ssh"):
        tasks = [Running(n, str(tmp_path / n), "a", "7" if kind == "slurm" else "") for n in names]
        reported = _polled_here(kind, tasks)
        assert {n: (reported[n] or {}).get("state") for n in names} == expected, kind
    steps = LocalSteps(HostOps.for_kind("local"), 1)
    local = steps.poll([Running(n, str(tmp_path / n), "a", "1") for n in names])
    assert {n: (local.tasks[n].status or {}).get("state") for n in names} == expected
