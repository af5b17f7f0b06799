"""Grid Engine's argv builders and parsers, on output captured from the project's docker
cluster (Debian's gridengine 8.1.9: `docker/cluster up sge`); provenance in
tests/fixtures/schedulers/README.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from submitter.hostops import HostOps, Running
from submitter.schedulers.base import JobState, JobStatus, SiteLimits
from submitter.schedulers.registry import batch_scheduler
from submitter.schedulers.sge import STATE_TABLE, Sge, finished_status, parse_qacct, parse_qstat

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schedulers"
SGE = Sge()


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_registered_as_sge() -> None:
    assert isinstance(batch_scheduler("sge"), Sge)


def test_qsub_terse_job_and_array_ids() -> None:
    assert SGE.parse_job_id(fixture("sge_qsub.txt")) == "1"
    assert SGE.parse_job_id(fixture("sge_qsub_array.txt")) == "4.1-10:1"
    assert SGE.parse_job_id("warning: no h_rt given\n7\n") == "7"
    with pytest.raises(ValueError):
        SGE.parse_job_id('Unable to run job: denied: host "x" is no submit host.\nExiting.\n')


def test_array_members_count_from_one() -> None:
    assert SGE.array_member("4.1-10:1", 0) == "4.1"
    assert SGE.array_member("4.1-10:1", 9) == "4.10"
    with pytest.raises(ValueError):
        SGE.array_member("Your job 4 has been submitted", 0)


def test_submit_argv_holds_on_whole_jobs() -> None:
    assert SGE.submit_argv("job.sh") == ["qsub", "-terse", "job.sh"]
    assert SGE.submit_argv("job.sh", ["7", "4.2", "4.3", "9/1"]) == [
        "qsub",
        "-terse",
        "-hold_jid",
        "7,4,9",
        "job.sh",
    ]


def test_qstat_running_queued_and_held() -> None:
    statuses = parse_qstat(fixture("sge_qstat_pending.txt"))
    assert statuses == {
        "8": JobStatus(JobState.RUNNING, "r"),
        "10.1": JobStatus(JobState.RUNNING, "r"),
        "9": JobStatus(JobState.HELD, "hqw"),
        "10.2,3": JobStatus(JobState.QUEUED, "qw"),
    }
    assert SGE.find_status(statuses, "10.3") == JobStatus(JobState.QUEUED, "qw")
    assert SGE.find_status(statuses, "10.4") is None, "another member's line is not this one's"


def test_qstat_array_ranges_hold_their_members() -> None:
    statuses = parse_qstat(fixture("sge_qstat_array.txt"))
    assert list(statuses) == ["4.1-6:1,8-10:1"]
    assert SGE.find_status(statuses, "4.5") is not None
    assert SGE.find_status(statuses, "4.7") is None, "task 7 was qdel'ed"
    running = parse_qstat(fixture("sge_qstat_array_running.txt"))
    assert running["4.1"].state is JobState.RUNNING
    assert SGE.find_status(running, "4.9") == JobStatus(JobState.QUEUED, "qw")
    assert SGE.job_key("4.3") == "4.3" and SGE.job_key("4.1-10:1") == "4"


def test_state_codes_are_case_sensitive() -> None:
    assert STATE_TABLE["t"] is JobState.RUNNING and STATE_TABLE["T"] is JobState.HELD
    assert STATE_TABLE["Eqw"] is JobState.FAILED
    assert parse_qstat("  3 0.5 x alice zz 11/26/2026 20:53:47   1\n")["3"].state is (
        JobState.UNKNOWN
    )


def test_qacct_ends() -> None:
    def end(name: str) -> JobStatus:
        (record,) = parse_qacct(fixture(name))
        return finished_status(record)

    assert end("sge_qacct_1.txt") == JobStatus(JobState.DONE, "exit_status 0", 0)
    assert end("sge_qacct_2.txt") == JobStatus(JobState.FAILED, "exit_status 3", 3)
    timeout = end("sge_qacct_3.txt")
    assert timeout.state is JobState.TIMEOUT and timeout.exit_code == 137
    assert timeout.code == "failed 37 : qmaster enforced h_rt, h_cpu, or h_vmem limit"
    assert end("sge_qacct_5.txt") == JobStatus(
        JobState.CANCELLED, "failed 100 : assumedly after job", 137
    ), "qdel'ed while running: told from any other signal by nothing in the record"
    assert parse_qacct(fixture("sge_qacct_unknown.txt")) == []


def test_qacct_memory_kill_is_out_of_memory() -> None:
    (record,) = parse_qacct(fixture("sge_qacct_3.txt"))
    over = dict(record, category="-l h_rt=600,h_vmem=100M", maxvmem="100.2MB")
    assert finished_status(over).state is JobState.OUT_OF_MEMORY
    assert finished_status(dict(over, maxvmem="20MB")).state is JobState.TIMEOUT


def test_status_script_output_qstat_then_qacct() -> None:
    statuses = SGE.parse_status(fixture("sge_status.txt"))
    assert statuses["8"].state is JobState.RUNNING
    assert statuses["1"].state is JobState.DONE
    assert statuses["2"] == JobStatus(JobState.FAILED, "exit_status 3", 3)
    assert statuses["3"].state is JobState.TIMEOUT
    assert statuses["4.10"].state is JobState.DONE and "4.7" not in statuses
    assert statuses["5"].state is JobState.CANCELLED
    assert "99" not in statuses and "11" not in statuses


def test_status_argv_is_one_command_quoting_ids() -> None:
    argv = SGE.status_argv(["1", "4.3", "x'; rm -rf ~"])
    assert argv[:2] == ["bash", "-c"] and argv[-3:] == ["1", "4.3", "x'; rm -rf ~"]
    script = HostOps("sge", SGE).poll_script([Running("t", "/w/t", "a1", "4.3")])
    assert script.count("qstat") == 1 and "4.3" in script


def test_cancel_and_limits() -> None:
    assert SGE.cancel_argv(["5", "4.7"]) == ["qdel", "5", "4.7"]
    assert SGE.parse_limits(fixture("sge_limits.txt")) == SiteLimits(
        max_array_size=75000, max_jobs=None, node_cores=4, max_node_cores=4
    )
    assert SGE.is_transient('error: unable to contact qmaster using port 6444 on host "login"')
