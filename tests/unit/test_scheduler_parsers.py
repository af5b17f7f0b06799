"""Scheduler argv builders and output parsers, tested on captured and documented output.

Fixtures live in tests/fixtures/schedulers/: files named `doc_*` are hand-written from the
schedulers' documentation (listed in DOC_FIXTURES.md); all others are captured from the
project's dockerized clusters, and tests on them are skipped until they exist.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from submitter.schedulers.base import BatchScheduler, JobState, JobStatus, SiteLimits
from submitter.schedulers.lsf import STATE_TABLE as LSF_TABLE
from submitter.schedulers.lsf import Lsf
from submitter.schedulers.pbs import STATE_TABLE as PBS_TABLE
from submitter.schedulers.pbs import (
    Pbs,
    finished_state,
    never_runs,
    parse_qstat_full,
)
from submitter.schedulers.registry import NAMES, batch_scheduler
from submitter.schedulers.sge import Sge
from submitter.schedulers.slurm import STATE_TABLE as SLURM_TABLE
from submitter.schedulers.slurm import Slurm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schedulers"

Q, H, R = JobState.QUEUED, JobState.HELD, JobState.RUNNING


def fixture(name: str) -> str:
    """A fixture's text; a missing captured file skips the test, a missing doc_ file fails."""
    path = FIXTURES / name
    if not path.exists() and not name.startswith("doc_"):
        pytest.skip(f"captured fixture {name} not saved yet")
    return path.read_text()


def states(statuses: dict[str, JobStatus]) -> dict[str, JobState]:
    return {job_id: status.state for job_id, status in statuses.items()}


def captured(pattern: str) -> list[str]:
    return sorted(p.name for p in FIXTURES.glob(pattern) if not p.name.startswith("doc_"))


# --- registry -------------------------------------------------------------------------


def test_registry_names_valid_schedulers_on_unknown_name() -> None:
    with pytest.raises(ValueError, match="lsf, pbs, sge, slurm"):
        batch_scheduler("condor")
    assert NAMES == ("lsf", "pbs", "sge", "slurm")


# --- state tables ---------------------------------------------------------------------

SLURM_CODES = [
    ("PD", "PENDING"),
    ("CF", "CONFIGURING"),
    ("R", "RUNNING"),
    ("CG", "COMPLETING"),
    ("S", "SUSPENDED"),
    ("ST", "STOPPED"),
    ("RQ", "REQUEUED"),
    ("RS", "RESIZING"),
    ("RH", "REQUEUE_HOLD"),
    ("RD", "RESV_DEL_HOLD"),
    ("RF", "REQUEUE_FED"),
    ("CD", "COMPLETED"),
    ("CA", "CANCELLED"),
    ("F", "FAILED"),
    ("NF", "NODE_FAIL"),
    ("TO", "TIMEOUT"),
    ("OOM", "OUT_OF_MEMORY"),
    ("PR", "PREEMPTED"),
    ("BF", "BOOT_FAIL"),
    ("DL", "DEADLINE"),
    ("SE", "SPECIAL_EXIT"),
]


# Grid Engine's qstat codes are looked up as written (`t` is running, `T` held); the other
# schedulers' codes upper-cased.
CASE_SENSITIVE_CODES = {"sge"}


@pytest.mark.parametrize("name", NAMES)
def test_every_state_table_entry_maps_a_code_to_a_job_state(name: str) -> None:
    table = sys.modules[type(batch_scheduler(name)).__module__].STATE_TABLE
    assert table
    for code, state in table.items():
        assert code == code.strip()
        assert name in CASE_SENSITIVE_CODES or code == code.upper()
        assert isinstance(state, JobState)


def test_case_sensitive_codes_name_registered_schedulers() -> None:
    assert set(NAMES) >= CASE_SENSITIVE_CODES


def test_slurm_table_covers_every_short_and_long_code() -> None:
    assert {code for pair in SLURM_CODES for code in pair} <= set(SLURM_TABLE)


def test_slurm_short_and_long_codes_agree() -> None:
    assert all(SLURM_TABLE[short] is SLURM_TABLE[long] for short, long in SLURM_CODES)


def test_pbs_and_lsf_tables_cover_documented_codes() -> None:
    assert set("QWTHSUREBCFX") <= set(PBS_TABLE)
    lsf_codes = {"PEND", "PROV", "WAIT", "PSUSP", "USUSP", "SSUSP", "UNKWN", "RUN", "DONE"}
    assert lsf_codes | {"EXIT", "ZOMBI"} <= set(LSF_TABLE)


# --- SLURM ----------------------------------------------------------------------------


def test_slurm_argv_shapes() -> None:
    slurm = Slurm()
    assert slurm.submit_argv("job.sh") == ["sbatch", "--parsable", "job.sh"]
    assert slurm.submit_uses_stdin() is False
    assert slurm.status_argv(["1", "2_3"]) == [
        "squeue", "-h", "-t", "all", "-o", "%i %t %r", "--jobs=1,2_3",
    ]  # fmt: skip
    assert slurm.cancel_argv(["1", "2_3"]) == ["scancel", "1", "2_3"]
    assert slurm.finished_argv() == [
        "sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j",
    ]  # fmt: skip


def test_slurm_status_argv_repeats_a_lone_id_so_an_unknown_one_does_not_fail_squeue() -> None:
    assert Slurm().status_argv(["7"])[-1] == "--jobs=7,7"


@pytest.mark.parametrize(
    ("name", "job_id"),
    [
        ("slurm_sbatch.txt", "2"),
        ("slurm_sbatch_parsable.txt", "1"),
        ("doc_slurm_sbatch_warning_cluster.txt", "4242"),
        ("doc_slurm_sbatch_parsable_cluster.txt", "4243"),
    ],
)
def test_slurm_parse_job_id(name: str, job_id: str) -> None:
    assert Slurm().parse_job_id(fixture(name)) == job_id


@pytest.mark.parametrize(
    "output", [fixture("doc_slurm_sbatch_error.txt"), "", "sbatch: warning: x\n"]
)
def test_slurm_parse_job_id_without_id_raises_quoting_output(output: str) -> None:
    with pytest.raises(ValueError, match="sbatch output") as info:
        Slurm().parse_job_id(output)
    assert repr(output) in str(info.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("slurm_squeue_pending_running.txt", {"5": Q, "6": Q, "3": R, "4": R}),
        ("slurm_squeue_mixed_states.txt", {"7": R, "6": Q, "3": R, "4": R}),
        ("slurm_squeue_all_states.txt", {"6": Q, "3": R, "4": R, "7": JobState.TIMEOUT}),
        ("slurm_squeue_finished_only.txt", {}),
        ("slurm_squeue_unknown_job.stderr.txt", {}),
    ],
)
def test_slurm_parse_status_on_captured_output(name: str, expected: dict[str, JobState]) -> None:
    assert states(Slurm().parse_status(fixture(name))) == expected


def test_slurm_pending_reasons_that_waiting_cannot_clear_are_told() -> None:
    """squeue `%r`: a job that can never start says why; one waiting its turn (Resources,
    Priority, Dependency, a hold) or ended does not."""
    statuses = Slurm().parse_status(fixture("slurm_squeue_pending_reasons.txt"))
    never = {job: status.cannot_start for job, status in statuses.items() if status.cannot_start}
    assert never == {
        "2": "PartitionTimeLimit (the walltime is over the partition's time limit)",
        "4": "ReqNodeNotAvail, UnavailableNodes:c2 (a node the job needs is down, drained or "
        "reserved)",
        "9": "ReqNodeNotAvail, UnavailableNodes:c2 (a node the job needs is down, drained or "
        "reserved)",
        "10": "PartitionNodeLimit (the job asks more nodes than the partition has up)",
        "16": "BadConstraints (no node has the features the job asks for)",
    }
    assert states(statuses) == {"2": Q, "3": R, "4": Q, "6": Q, "7": Q, "9": Q, "10": Q, "16": Q}
    ended = Slurm().parse_status(fixture("slurm_squeue_ended_reasons.txt"))
    assert not any(status.cannot_start for status in ended.values())
    assert states(ended) == {
        "3": JobState.CANCELLED,
        "18": JobState.FAILED,
        "19": JobState.DONE,
        "20": R,
    }


@pytest.mark.parametrize(
    ("reason", "never"),
    [
        ("PartitionConfig", True),
        ("QOSMaxCpuPerJobLimit", True),
        ("QOSMaxWallDurationPerJobLimit", True),
        ("AssocMaxNodePerJobLimit", True),
        ("InvalidAccount", True),
        ("InvalidQOS", True),
        ("QOSMaxJobsPerUserLimit", False),  # clears as the user's other jobs end
        ("AssocGrpCpuLimit", False),
        ("Resources", False),
        ("Priority", False),
        ("Dependency", False),
        ("JobHeldUser", False),
    ],
)
def test_slurm_reasons_that_never_clear(reason: str, never: bool) -> None:
    status = Slurm().parse_status(f"5 PD {reason}\n")["5"]
    assert bool(status.cannot_start) is never
    assert status.cannot_start.startswith(reason) or not never


def test_slurm_parse_status_keeps_array_ids_and_skips_error_lines() -> None:
    statuses = Slurm().parse_status(fixture("doc_slurm_squeue_arrays_errors.txt"))
    assert states(statuses) == {
        "4300_1": R,
        "4300_2": R,
        "4300_[3-10%2]": Q,
        "4301": JobState.OUT_OF_MEMORY,
        "4302": H,
        "4303": JobState.CANCELLED,
        "4304": JobState.FAILED,
        "4305": H,
        "4306": JobState.UNKNOWN,
    }
    assert statuses["4306"].code == "XX"


def test_slurm_unknown_state_code_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        statuses = Slurm().parse_status("9 ZZ\n")
    assert statuses == {"9": JobStatus(JobState.UNKNOWN, "ZZ")}
    assert "ZZ" in caplog.text


def test_slurm_parse_status_merged_with_invalid_job_id_error() -> None:
    output = "slurm_load_jobs error: Invalid job id specified\n12 R\n"
    assert states(Slurm().parse_status(output)) == {"12": R}


def test_slurm_parse_finished_on_documented_output() -> None:
    statuses = Slurm().parse_finished(fixture("doc_slurm_sacct.txt"))
    assert statuses["300"] == JobStatus(JobState.DONE, "CD", 0)
    assert statuses["301"] == JobStatus(JobState.CANCELLED, "CA", 128 + 15)
    assert statuses["302"] == JobStatus(JobState.FAILED, "F", 1)
    assert statuses["303"].state is JobState.TIMEOUT
    assert statuses["304"] == JobStatus(JobState.RUNNING, "R", None)
    assert statuses["305_1"] == JobStatus(JobState.OUT_OF_MEMORY, "OOM", 128 + 125)
    assert statuses["305_[2-4]"] == JobStatus(JobState.QUEUED, "PD", None)
    assert statuses["306"].state is JobState.NODE_FAIL
    assert len(statuses) == 8


def test_slurm_parse_finished_on_captured_end_states() -> None:
    """Completed, failed (exit 3), timeout, cancelled (one with --signal=KILL --full), array
    members, a node killed under its job, one still running; a pending member has no line."""
    statuses = Slurm().parse_finished(fixture("slurm_sacct_end_states.txt"))
    assert statuses == {
        "1": JobStatus(JobState.DONE, "CD", 0),
        "2": JobStatus(JobState.FAILED, "F", 3),
        "3": JobStatus(JobState.TIMEOUT, "TO", 0),
        "4": JobStatus(JobState.CANCELLED, "CA", 0),
        "5": JobStatus(JobState.CANCELLED, "CA", 0),
        "7_1": JobStatus(JobState.DONE, "CD", 0),
        "7_2": JobStatus(JobState.FAILED, "F", 1),
        "7_3": JobStatus(JobState.FAILED, "F", 2),
        "11": JobStatus(JobState.NODE_FAIL, "NF", 0),
        "12": JobStatus(JobState.DONE, "CD", 0),
        "13_0": JobStatus(JobState.RUNNING, "R", None),
    }


def test_slurm_parse_finished_without_accounting_is_empty() -> None:
    assert Slurm().parse_finished(fixture("slurm_sacct_disabled.stderr.txt")) == {}


def test_slurm_parse_finished_tolerates_odd_lines() -> None:
    output = "garbage\n7|WEIRD|x:y\n8|COMPLETED|\n"
    statuses = Slurm().parse_finished(output)
    assert statuses["7"] == JobStatus(JobState.UNKNOWN, "WEIRD", None)
    assert statuses["8"] == JobStatus(JobState.DONE, "CD", None)


def test_pbs_and_lsf_have_no_finished_jobs_query() -> None:
    assert Pbs().finished_argv() == [] and Lsf().finished_argv() == []
    assert Pbs().accounting_probe == "" and Lsf().accounting_probe == ""


# --- PBS ------------------------------------------------------------------------------


def test_pbs_argv_shapes() -> None:
    pbs = Pbs()
    assert pbs.submit_argv("job.sh") == ["qsub", "job.sh"]
    assert pbs.submit_uses_stdin() is False
    assert pbs.cancel_argv(["1.srv", "2"]) == ["qdel", "1.srv", "2"]


def test_pbs_status_query_follows_the_flavor() -> None:
    assert Pbs("pro").status_argv(["1.srv", "2"]) == ["qstat", "-x", "-f", "1.srv", "2"]
    assert Pbs("torque").status_argv(["1.srv", "2"]) == ["qstat", "-f", "1.srv", "2"]
    either = Pbs().status_argv(["1.srv", "2[3].srv"])
    assert either[:2] == ["sh", "-c"] and either[3:] == ["qstat", "1.srv", "2[3].srv"]


@pytest.mark.parametrize(
    ("name", "job_id"),
    [("pbs_qsub.txt", "7"), ("doc_pbs_qsub_torque.txt", "1234.torque-server.example.org")],
)
def test_pbs_parse_job_id_keeps_full_id(name: str, job_id: str) -> None:
    assert Pbs().parse_job_id(fixture(name)) == job_id


@pytest.mark.parametrize("output", [fixture("doc_pbs_qsub_error.txt"), "", "\n\n", "12.a\n13.a\n"])
def test_pbs_parse_job_id_without_single_id_raises(output: str) -> None:
    with pytest.raises(ValueError, match="qsub output"):
        Pbs().parse_job_id(output)


def test_pbs_parse_status_on_captured_multi_job_output() -> None:
    statuses = Pbs().parse_status(fixture("pbs_qstat_f_multi.txt"))
    done = JobState.DONE
    assert states(statuses) == {"1": R, "2": done, "3": done, "4": R, "5": Q, "6": Q}
    assert statuses["2"] == JobStatus(done, "C", None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("pbs_qstat_f_cancelled.txt", {"5": JobState.DONE}), ("pbs_qstat_f_unknown.txt", {})],
)
def test_pbs_parse_status_on_captured_output(name: str, expected: dict[str, JobState]) -> None:
    assert states(Pbs().parse_status(fixture(name))) == expected


def test_pbs_parse_status_ignores_the_summary_format() -> None:
    assert Pbs().parse_status(fixture("pbs_qstat_multi.txt")) == {}


def test_pbs_parse_status_torque_exit_codes_and_error_lines() -> None:
    statuses = Pbs().parse_status(fixture("doc_pbs_qstat_f_torque.txt"))
    assert states(statuses) == {
        "101.torque-server.example.org": R,
        "102.torque-server.example.org": JobState.DONE,
        "104.torque-server.example.org": JobState.CANCELLED,
        "105.torque-server.example.org": JobState.FAILED,
        "106.torque-server.example.org": JobState.TIMEOUT,
        "107.torque-server.example.org": H,
        "108.torque-server.example.org": JobState.FAILED,
        "109.torque-server.example.org": JobState.UNKNOWN,
    }
    assert statuses["104.torque-server.example.org"] == JobStatus(
        JobState.CANCELLED, "C, Exit_status 271 (signal 15)", 271
    )
    assert statuses["109.torque-server.example.org"].code == "Z"


def test_pbs_parse_status_pbspro() -> None:
    statuses = Pbs().parse_status(fixture("doc_pbs_qstat_f_pbspro.txt"))
    assert states(statuses) == {
        "2001.pbspro-server": JobState.TIMEOUT,
        "2002.pbspro-server": Q,
        "2003[].pbspro-server": R,
        "2006.pbspro-server": JobState.OUT_OF_MEMORY,
    }
    assert statuses["2001.pbspro-server"] == JobStatus(JobState.TIMEOUT, "F, Exit_status -29", -29)


def test_pbs_qstat_full_joins_wrapped_values() -> None:
    torque = parse_qstat_full(fixture("doc_pbs_qstat_f_torque.txt"))
    variables = torque["101.torque-server.example.org"]["variable_list"]
    assert variables.startswith("PBS_O_QUEUE=batch,PBS_O_HOME=/home/alice,PBS_O_LOGNAME=alice,")
    assert variables.endswith("PBS_O_HOST=login.example.org")
    assert torque["101.torque-server.example.org"]["session_id"] == "4242"
    pbspro = parse_qstat_full(fixture("doc_pbs_qstat_f_pbspro.txt"))
    assert pbspro["2001.pbspro-server"]["comment"].endswith("finished with walltime exceeded")


def test_pbs_qstat_full_reads_tab_indented_attributes() -> None:
    output = "Job Id:\t8\n\tjob_state = R\n\tJob_Name = x\n"
    assert parse_qstat_full(output) == {"8": {"job_state": "R", "job_name": "x"}}


def test_pbs_unknown_state_code_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        statuses = Pbs().parse_status("Job Id: 9.srv\n    job_state = Z\n")
    assert statuses == {"9.srv": JobStatus(JobState.UNKNOWN, "Z")}
    assert "'Z'" in caplog.text


@pytest.mark.parametrize(
    ("exit_status", "state"),
    [
        (None, JobState.DONE),
        (0, JobState.DONE),
        (1, JobState.FAILED),
        (143, JobState.FAILED),
        (265, JobState.CANCELLED),
        (271, JobState.CANCELLED),
        (267, JobState.FAILED),
        (-1, JobState.FAILED),
        (-10, JobState.OUT_OF_MEMORY),
        (-11, JobState.TIMEOUT),
        (-29, JobState.TIMEOUT),
        (-27, JobState.OUT_OF_MEMORY),
        (-99, JobState.FAILED),
    ],
)
def test_pbs_finished_state(exit_status: int | None, state: JobState) -> None:
    assert finished_state(exit_status) is state


def test_pbs_job_keys() -> None:
    pbs = Pbs()
    assert pbs.job_key("123.server.example.org") == "123"
    assert pbs.job_key("123") == "123"
    assert pbs.job_key("123[4].server") == "123[4]"
    assert pbs.job_key("5.s") == "5"


def test_pbs_find_status_matches_across_server_names() -> None:
    pbs = Pbs()
    statuses = pbs.parse_status("Job Id: 42.head.example.org\n    job_state = R\n")
    assert pbs.find_status(statuses, "42.head") == JobStatus(R, "R")
    assert pbs.find_status(statuses, "42.head.example.org") == JobStatus(R, "R")
    assert pbs.find_status(statuses, "43.head") is None
    assert pbs.find_status(statuses, "420.head") is None


# --- LSF ------------------------------------------------------------------------------


def test_lsf_argv_shapes() -> None:
    lsf = Lsf()
    assert lsf.submit_argv("job.sh") == ["bsub"]
    assert lsf.submit_uses_stdin() is True
    assert lsf.status_argv(["1", "2"]) == [
        "bjobs", "-noheader", "-o", "jobid stat exit_code", "1", "2",
    ]  # fmt: skip
    assert lsf.cancel_argv(["1", "2"]) == ["bkill", "1", "2"]


@pytest.mark.parametrize(
    ("name", "job_id"),
    [("doc_lsf_bsub.txt", "123"), ("doc_lsf_bsub_default_queue.txt", "124")],
)
def test_lsf_parse_job_id(name: str, job_id: str) -> None:
    assert Lsf().parse_job_id(fixture(name)) == job_id


@pytest.mark.parametrize("output", [fixture("doc_lsf_bsub_error.txt"), "", "Job <> is"])
def test_lsf_parse_job_id_without_id_raises(output: str) -> None:
    with pytest.raises(ValueError, match="bsub output"):
        Lsf().parse_job_id(output)


def test_lsf_parse_status_states_exit_codes_and_not_found_lines() -> None:
    statuses = Lsf().parse_status(fixture("doc_lsf_bjobs.txt"))
    assert states(statuses) == {
        "123": R,
        "124": JobState.FAILED,
        "126": Q,
        "127": JobState.DONE,
        "128": H,
        "129": JobState.FAILED,
        "130": JobState.UNKNOWN,
        "131": H,
        "132": JobState.FAILED,
        "133": JobState.UNKNOWN,
    }
    assert statuses["124"] == JobStatus(JobState.FAILED, "EXIT", 1)
    assert statuses["123"].exit_code is None
    assert statuses["132"].exit_code == 130


def test_lsf_unknown_state_code_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert Lsf().parse_status("9 BLAH -\n") == {"9": JobStatus(JobState.UNKNOWN, "BLAH")}
    assert "BLAH" in caplog.text


# --- every captured status output parses to ids, whatever its name --------------------


@pytest.mark.parametrize(
    ("name", "scheduler"),
    [(n, Slurm()) for n in captured("slurm_squeue*.txt")]
    + [(n, Pbs()) for n in captured("pbs_qstat_f*.txt")]
    + [(n, Pbs()) for n in captured("openpbs_qstat_xf*.txt")]
    + [(n, Lsf()) for n in captured("lsf_bjobs*.txt")],
)
def test_captured_status_output_parses(name: str, scheduler: Slurm | Pbs | Lsf) -> None:
    statuses = scheduler.parse_status(fixture(name))
    assert all(job_id[:1].isdigit() for job_id in statuses)


def test_every_doc_fixture_is_listed_in_doc_fixtures_md() -> None:
    listing = (FIXTURES / "DOC_FIXTURES.md").read_text()
    for path in FIXTURES.glob("doc_*"):
        assert f"`{path.name}`" in listing


@pytest.mark.parametrize(
    ("scheduler", "printed", "member", "found"),
    [
        (Slurm(), "4300_[3-10%2]", "4300_7", True),
        (Slurm(), "4300_[3-10%2]", "4300_11", False),
        (Slurm(), "4300_[1,4-6]", "4300_5", True),
        (Slurm(), "4300_[1,4-6]", "4300_2", False),
        (Slurm(), "4300_[2-9:2]", "4300_4", True),
        (Slurm(), "4300_[2-9:2]", "4300_5", False),
        (Slurm(), "4301_[3-10]", "4300_4", False),
        (Pbs(), "2003[2-9].pbs01", "2003[4].pbs01", True),
        (Pbs(), "2003[2-9].pbs01", "2003[4]", True),
        (Lsf(), "77[1-3]", "77[3]", True),
        (Lsf(), "77[1-3]", "77[4]", False),
        (Sge(), "4.1-6:1,8-10:1", "4.9", True),
        (Sge(), "4.1-6:1,8-10:1", "4.7", False),
    ],
)
def test_a_queued_array_member_is_found_in_its_pending_range(
    scheduler: BatchScheduler, printed: str, member: str, found: bool
) -> None:
    status = JobStatus(JobState.QUEUED, "PD")
    assert (scheduler.find_status({printed: status}, member) is status) is found


@pytest.mark.parametrize(
    ("scheduler", "member", "submission"),
    [
        (Slurm(), "4300_7", "4300[]"),
        (Slurm(), "4300", "4300"),
        (Pbs(), "2003[4].pbs01", "2003[]"),
        (Pbs(), "2003.pbs01", "2003.pbs01"),
        (Lsf(), "77[3]", "77[]"),
        (Sge(), "4.3", "4[]"),
        (Sge(), "4", "4"),
        (Slurm(), "12/3", "12"),  # a packed task: its job
    ],
)
def test_the_submission_of_an_array_member_is_its_array(
    scheduler: BatchScheduler, member: str, submission: str
) -> None:
    assert scheduler.submission_of(member) == submission


@pytest.mark.parametrize(
    ("scheduler", "said", "gone"),
    [
        ("slurm", "slurm_load_jobs error: Invalid job id specified", True),
        ("slurm", "slurm_load_jobs error: Unable to contact slurm controller", False),
        ("pbs", "qstat: Unknown Job Id 123.pbs01", True),
        ("pbs", "qstat: cannot connect to server pbs01 (errno=111)", False),
        ("lsf", "Job <12345> is not found", True),
        ("lsf", "LSF is down. Please wait...", False),
        ("sge", "error: can't unpack gdi request", False),
    ],
)
def test_a_failed_status_query_that_says_the_jobs_are_gone(
    scheduler: str, said: str, gone: bool
) -> None:
    assert batch_scheduler(scheduler).jobs_gone(said) is gone


def test_array_members_from_a_real_squeue_listing() -> None:
    statuses = Slurm().parse_status(fixture("doc_slurm_squeue_arrays_errors.txt"))
    slurm = Slurm()
    assert slurm.find_status(statuses, "4300_1").state is JobState.RUNNING  # type: ignore[union-attr]
    assert slurm.find_status(statuses, "4300_9").state is JobState.QUEUED  # type: ignore[union-attr]
    assert slurm.find_status(statuses, "4300_11") is None


# --- job arrays of PBS and LSF --------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "index", "member"),
    [
        ("2003[].pbs01", 4, "2003[4].pbs01"),  # qsub -J / -t on PBS Pro and Torque
        ("2003.pbs01", 0, "2003[0].pbs01"),
        ("11", 3, "11[3]"),  # SLURM's Torque wrapper: a plain number (pbs_qsub_array.txt)
    ],
)
def test_pbs_array_member_ids(array: str, index: int, member: str) -> None:
    assert Pbs().array_member(array, index) == member


def test_pbs_array_id_of_the_docker_wrapper_is_its_qsub_output() -> None:
    assert Pbs().parse_job_id(fixture("pbs_qsub_array.txt")) == "11"


def test_pbs_array_member_of_a_non_array_id_raises() -> None:
    with pytest.raises(ValueError, match="array id"):
        Pbs().array_member("2003[4].pbs01", 1)


def test_pbs_wrapper_shows_a_pending_array_only_under_its_own_number() -> None:
    statuses = Pbs().parse_status(fixture("pbs_qstat_f_array_pending.txt"))
    assert states(statuses) == {"11": Q}
    assert Pbs().find_status(statuses, "11[2]") is None, "no member of it can be told apart"


def test_pbs_pro_subjob_found_by_its_id() -> None:
    statuses = Pbs().parse_status(
        "Job Id: 2003[4].pbs01\n    job_state = R\nJob Id: 2003[5].pbs01\n    job_state = Q\n"
    )
    member = Pbs().array_member("2003[].pbs01", 5)
    assert Pbs().find_status(statuses, member) == JobStatus(Q, "Q")


def test_lsf_array_member_is_one_based() -> None:
    lsf = Lsf()
    array = lsf.parse_job_id(fixture("lsf_bsub_array.txt"))
    assert array == "7"
    assert [lsf.array_member(array, i) for i in range(4)] == ["7[1]", "7[2]", "7[3]", "7[4]"]
    with pytest.raises(ValueError, match="array id"):
        lsf.array_member("7[1]", 0)


def test_lsf_shim_lists_every_array_member_on_its_own_row() -> None:
    statuses = Lsf().parse_status(fixture("lsf_bjobs_array_members.txt"))
    assert states(statuses) == {"7[1]": R, "7[2]": Q, "7[3]": Q, "7[4]": Q}
    assert Lsf().find_status(statuses, Lsf().array_member("7", 2)) == JobStatus(Q, "PEND")


def test_lsf_shim_a_killed_pending_member_is_gone_the_others_stay() -> None:
    statuses = Lsf().parse_status(fixture("lsf_bjobs_array_after_kill.stdout.txt"))
    assert states(statuses) == {"7[1]": R, "7[2]": Q, "7[4]": Q}
    assert "Job <7[3]> is not found" in fixture("lsf_bjobs_array_after_kill.stderr.txt")
    assert "Job <7[3]> is being terminated" in fixture("lsf_bkill_member.txt")


# --- site limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduler", "name", "expected"),
    [
        (Slurm(), "slurm_limits.txt", SiteLimits(1000, 10000, 4, max_node_cores=4)),
        (
            Slurm(),
            "slurm_limits_partitions.txt",
            SiteLimits(1000, 10000, 4, None, 2000 * 1024**2, max_node_cores=4),
        ),
        (
            Slurm(),
            "slurm_limits_exact.txt",
            SiteLimits(1000, 10000, 4, None, 2000 * 1024**2, max_node_cores=4),
        ),
        # MaxArraySize=10 and alice's MaxSubmitJobs=20: arrays of 9 at most, 20 jobs queued
        (
            Slurm(),
            "slurm_limits_small.txt",
            SiteLimits(9, 20, 4, None, 2000 * 1024**2, max_node_cores=4),
        ),
        (
            Pbs(),
            "pbs_limits_wrapper.txt",
            SiteLimits(1, None, 4, flavor="torque", max_node_cores=4),
        ),
        (Pbs(), "openpbs_limits.txt", SiteLimits(10000, None, 2, flavor="pro", max_node_cores=2)),
        (Pbs(), "doc_pbs_limits_pbspro.txt", SiteLimits(2000, 500, 24, max_node_cores=36)),
        (Pbs(), "doc_pbs_limits_torque.txt", SiteLimits(500, 300, 8, max_node_cores=16)),
        # hostC's MAX is `-` (no limit): the largest node is not known
        (Lsf(), "doc_lsf_limits.txt", SiteLimits(5000, None, 20)),
    ],
)
def test_site_limits(scheduler: Slurm | Pbs | Lsf, name: str, expected: SiteLimits) -> None:
    assert scheduler.parse_limits(fixture(name)) == expected


def test_slurm_limits_take_the_users_max_submit_jobs_when_accounting_answers() -> None:
    output = "MaxArraySize            = 40001\nMaxJobCount = 50000\nNODES\n48\n128+\nASSOC\n300\n"
    assert Slurm().parse_limits(output) == SiteLimits(300, 300, 48)


def test_slurm_arrays_hold_no_more_members_than_the_users_max_submit_jobs() -> None:
    """SLURM counts each member of a job array as one job against MaxSubmitJobs, and refuses
    an array of more members outright (`AssocMaxSubmitJobLimit`)."""
    output = "MaxArraySize = 1001\nMaxJobCount = 10000\nNODES\n4\nASSOC\n5\n"
    assert Slurm().parse_limits(output) == SiteLimits(5, 5, 4, max_node_cores=4)
    assert Slurm().parse_limits("MaxArraySize = 1\nASSOC\n5\n").max_array_size == 0
    assert Slurm().parse_limits("MaxArraySize = 11\nASSOC\n0\n").max_array_size == 10


def test_slurm_submissions_over_the_users_submit_limit_are_tried_again_later() -> None:
    """Refused for the jobs already queued (MaxSubmitJobs of the association or the QOS): the
    same sbatch succeeds once some have left. Refused for the job's own size or time: never."""
    assert Slurm().is_transient(fixture("slurm_sbatch_error_assoc_limit.stderr.txt"))
    assert Slurm().is_transient("sbatch: error: QOSMaxSubmitJobPerUserLimit\n")
    assert Slurm().is_transient("sbatch: error: AssocGrpSubmitJobsLimit\n")
    over_walltime = (
        "sbatch: error: AssocMaxWallDurationPerJobLimit\nsbatch: error: Batch job submission "
        "failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time "
        "limits)\n"
    )
    assert not Slurm().is_transient(over_walltime)


def test_slurm_limits_know_the_largest_node_where_sinfo_lists_each_size() -> None:
    """`sinfo -e` prints each size of node; `128+` (several sizes, at least 128) says nothing
    of the largest, so nothing is capped by it."""
    assert Slurm().parse_limits("NODES\n48\n128\n4\nASSOC\n").max_node_cores == 128
    assert Slurm().parse_limits("NODES\n48\n128+\nASSOC\n").max_node_cores is None
    assert "sinfo -e -h -o '%c'" in Slurm().limits_command


@pytest.mark.parametrize("scheduler", [Slurm(), Pbs(), Lsf()])
def test_site_limits_of_nothing_are_unknown(scheduler: Slurm | Pbs | Lsf) -> None:
    assert scheduler.parse_limits("") == SiteLimits()
    assert scheduler.parse_limits("bash: qmgr: command not found\nNODES\nASSOC\n") == SiteLimits()


def test_pbs_pro_limits_from_print_server_lines() -> None:
    output = "set server max_queued = [o:PBS_ALL=900],[u:PBS_GENERIC=40]\nset server max_array_size = 300\n"
    assert Pbs().parse_limits(output) == SiteLimits(max_array_size=300, max_jobs=40)


def test_dependencies_on_jobs_members_and_packed_tasks() -> None:
    after = ["11", "12_3", "13/4", "13/5"]
    assert Slurm().submit_argv("job.sh", after) == [
        "sbatch",
        "--parsable",
        "--dependency=afterany:11:12_3:13",
        "--kill-on-invalid-dep=yes",
        "job.sh",
    ]
    assert Pbs().submit_argv("job.sh", ["11.srv", "12[3].srv", "12[4].srv", "13/0"]) == [
        "qsub",
        "-W",
        "depend=afterany:11.srv:12[].srv:13",
        "job.sh",
    ]
    assert Lsf().submit_argv("job.sh", ["11", "12[3]", "13/1"]) == [
        "bsub",
        "-w",
        "ended(11) && ended(12[3]) && ended(13)",
        "-ti",
    ]
    assert Slurm().submit_argv("job.sh") == ["sbatch", "--parsable", "job.sh"]


def test_slurm_limits_read_the_default_partitions_time_limit_and_the_smallest_nodes_memory() -> (
    None
):
    output = (
        "MaxArraySize = 1001\nNODES\n4\nASSOC\nPARTITIONS\n"
        "long 7-00:00:00 64000+\ndebug* 2:00:00 1983\nshort 30:00 1983\n"
    )
    limits = Slurm().parse_limits(output)
    assert (limits.max_walltime, limits.max_mem) == (7200, 1983 * 1024**2)
    no_default = "PARTITIONS\nlong 1-12 8000\nshort 30 8000\nall infinite 8000\n"
    assert Slurm().parse_limits("PARTITIONS\nshort 5:00 1\n").max_walltime == 300
    assert Slurm().parse_limits(no_default).max_walltime == 30 * 60
    assert Slurm().parse_limits("PARTITIONS\nall infinite 0\n").max_walltime is None


# --- OpenPBS 23.06.06 (the docker pbs cluster; captured) --------------------------------


def test_openpbs_qsub_prints_id_dot_server() -> None:
    assert Pbs().parse_job_id(fixture("openpbs_qsub.txt")) == "7.login"
    array = Pbs().parse_job_id(fixture("openpbs_qsub_array.txt"))
    assert array == "8[].login"
    assert Pbs().array_member(array, 2) == "8[2].login"


@pytest.mark.parametrize(
    ("name", "job_id", "expected"),
    [
        (
            "openpbs_qstat_xf_finished.txt",
            "0.login",
            JobStatus(JobState.FAILED, "F, Exit_status 3", 3),
        ),
        ("openpbs_qstat_xf_running.txt", "2.login", JobStatus(R, "R")),
        ("openpbs_qstat_xf_queued.txt", "2.login", JobStatus(Q, "Q")),
        ("openpbs_qstat_xf_array.txt", "1[].login", JobStatus(R, "B")),
        ("openpbs_qstat_xf_array_member.txt", "1[1].login", JobStatus(R, "R")),
        (
            "openpbs_qstat_xf_array_member_finished.txt",
            "1[1].login",
            JobStatus(JobState.DONE, "F, Exit_status 0", 0),
        ),
        (
            "openpbs_qstat_xf_array_finished.txt",
            "1[].login",
            JobStatus(JobState.DONE, "F, Exit_status 0", 0),
        ),
        (
            "openpbs_qstat_xf_walltime.txt",
            "5.login",
            JobStatus(JobState.TIMEOUT, "F, Exit_status -29", -29),
        ),
        (
            "openpbs_qstat_xf_qdel_running.txt",
            "2.login",
            JobStatus(JobState.CANCELLED, "F, Exit_status 271 (signal 15)", 271),
        ),
        # qdel of a queued job: F without any Exit_status (the task never began)
        ("openpbs_qstat_xf_qdel_queued.txt", "4.login", JobStatus(JobState.DONE, "F")),
    ],
)
def test_openpbs_qstat_x_f(name: str, job_id: str, expected: JobStatus) -> None:
    statuses = Pbs("pro").parse_status(fixture(name))
    assert list(statuses) == [job_id]
    assert statuses[job_id] == expected


def test_openpbs_array_member_found_under_its_id() -> None:
    statuses = Pbs().parse_status(fixture("openpbs_qstat_xf_array_member.txt"))
    assert Pbs().find_status(statuses, Pbs().array_member("1[].login", 1)) == JobStatus(R, "R")
    member = parse_qstat_full(fixture("openpbs_qstat_xf_array_member.txt"))["1[1].login"]
    assert (member["array_id"], member["array_index"]) == ("1[].login", "1")


def test_openpbs_wrapped_comment_is_joined() -> None:
    jobs = parse_qstat_full(fixture("openpbs_qstat_xf_walltime.txt"))
    assert jobs["5.login"]["comment"].endswith("and exceeded resource walltime")


def test_openpbs_a_job_that_can_never_run_says_why() -> None:
    """The scheduler's `comment`: `Can Never Run: ...` never clears, nor an amount asked over
    the site's total; `Not Running` over what is free now only waits."""
    statuses = Pbs("pro").parse_status(fixture("openpbs_qstat_xf_cannot_run.txt"))
    never = {job: status.cannot_start for job, status in statuses.items() if status.cannot_start}
    assert never == {
        "4.login": "Can Never Run: Not enough total nodes available (no node, queue or server "
        "limit can ever fit the job)",
        "5.login": "Can Never Run: Insufficient amount of resource: mem (R: 100gb A: 48210mb "
        "T: 48210mb) (no node, queue or server limit can ever fit the job)",
    }
    busy = Pbs("pro").parse_status(fixture("openpbs_qstat_xf_busy.txt"))
    assert {job: s.state for job, s in busy.items()} == {"11.login": Q, "0.login": Q}
    assert not any(status.cannot_start for status in busy.values())
    over = "Not Running: Insufficient amount of resource: ncpus (R: 12 A: 2 T: 8)"
    assert "asks more ncpus than the site has" in never_runs(over)
