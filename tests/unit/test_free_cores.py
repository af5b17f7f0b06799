"""What each scheduler says is free now, which sizes pools: PBS's `pbsnodes -a`, Grid Engine's
`qstat -f` and LSF's `bhosts -w`, read from captured output and from their documented formats
(the doc_ fixtures, listed in DOC_FIXTURES.md). SLURM's is in test_pool.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from submitter.schedulers.base import BatchScheduler
from submitter.schedulers.lsf import Lsf
from submitter.schedulers.pbs import Pbs
from submitter.schedulers.registry import NAMES, batch_scheduler
from submitter.schedulers.sge import Sge

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schedulers"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.mark.parametrize(
    ("scheduler", "name", "free"),
    [
        # idle 32, partly used 32 - 12, 8 with nothing assigned yet; busy, offline, down out
        (Pbs(), "doc_pbs_pbsnodes_pbspro.txt", 32 + 20 + 8),
        # idle 16, 16 with 6 cores in jobs, 12 with 6; exclusive, down, offline, busy out
        (Pbs(), "doc_pbs_pbsnodes_torque.txt", 16 + 10 + 6),
        # SLURM's Torque wrapper: an idle node; a mixed one does not say what it has left
        (Pbs(), "doc_pbs_pbsnodes_wrapper.txt", 4),
        (Pbs(), "openpbs_limits.txt", 0),  # OpenPBS, both nodes job-busy
        (Pbs(), "openpbs_pbsnodes_one_job.txt", 7),  # OpenPBS, 2 x 4 ncpus, 1 assigned
        (Pbs(), "pbs_limits_wrapper.txt", 8),  # the wrapper, both nodes idle
        (Pbs(), "doc_pbs_limits_pbspro.txt", 36),
        (Pbs(), "doc_pbs_limits_torque.txt", 16 + 8),
        # c1 (all.q 1 of 4 used, long.q on the same 4 cores) 3, c4 8 - 2 used - 1 reserved
        (Sge(), "doc_sge_qstat_f.txt", 3 + 5),
        (Sge(), "doc_sge_qstat_f_used_tot.txt", 3 + 2),  # `used/tot`, before Grid Engine 6.2
        (Sge(), "sge_limits.txt", 0),  # Grid Engine 8.1.9, its 4 slots used
        (Sge(), "sge_qstat_f_one_job.txt", 3),  # Grid Engine 8.1.9, 1 of its 4 slots used
        # hostA 40 - 2, hostF 16 - 6 (4 in jobs, 2 reserved), hostM 1 (its JL/U)
        (Lsf(), "doc_lsf_bhosts_w.txt", 38 + 10 + 1),
        (Lsf(), "doc_lsf_limits.txt", 38),
        (Lsf(), "lsf_bhosts_w.txt", 8),  # the shim: 2 hosts of 4, idle
        (Lsf(), "lsf_bhosts_w_one_job.txt", 7),  # the shim, one 1-slot job running
    ],
)
def test_free_cores_are_what_usable_nodes_have_left(
    scheduler: BatchScheduler, name: str, free: int
) -> None:
    assert scheduler.parse_free(fixture(name)) == free


@pytest.mark.parametrize("name", NAMES)
def test_every_scheduler_says_what_is_free_and_its_command_never_fails(name: str) -> None:
    command = batch_scheduler(name).free_command
    assert command and "2>/dev/null" in command


# --- PBS --------------------------------------------------------------------------------


def pbs_pro_node(name: str, state: str, ncpus: int | None = 8, assigned: int | None = 0) -> str:
    lines = [name, "     Mom = " + name, "     ntype = PBS", f"     state = {state}"]
    if ncpus is not None:
        lines.append(f"     resources_available.ncpus = {ncpus}")
    if assigned is not None:
        lines.append(f"     resources_assigned.ncpus = {assigned}")
    return "\n".join([*lines, "     sharing = default_shared", "", ""])


def torque_node(name: str, state: str, np: int | None = 8, jobs: str = "") -> str:
    lines = [name, f"     state = {state}"]
    if np is not None:
        lines.append(f"     np = {np}")
    if jobs:
        lines.append(f"     jobs = {jobs}")
    return "\n".join([*lines, "     ntype = cluster", "", ""])


@pytest.mark.parametrize(
    ("state", "free"),
    [
        ("free", 8),
        ("job-busy", 0),
        ("job-exclusive", 0),
        ("busy", 0),
        ("offline", 0),
        ("down", 0),
        ("down,offline", 0),
        ("job-busy,offline", 0),
        ("state-unknown,down", 0),
        ("resv-exclusive", 0),
        ("provisioning", 0),
        ("stale", 0),
    ],
)
def test_only_a_free_pbs_node_has_cores_to_give(state: str, free: int) -> None:
    assert Pbs().parse_free(pbs_pro_node("n1", state)) == free
    assert Pbs().parse_free(torque_node("n1", state)) == free


def test_a_free_pbs_node_gives_what_its_jobs_leave() -> None:
    pro = pbs_pro_node("n1", "free", 32, 12) + pbs_pro_node("n2", "free", 8, None)
    assert Pbs().parse_free(pro) == 20 + 8
    torque = torque_node("n1", "free", 16, "0/7.srv, 1/8.srv, 2-5/9.srv")
    assert Pbs().parse_free(torque) == 10
    assert Pbs().parse_free(torque_node("n1", "free", 4, "0-7/9.srv")) == 0, "never below 0"


def test_a_pbs_node_of_unknown_size_is_left_out_and_none_known_is_not_known() -> None:
    known = pbs_pro_node("n1", "free", 8) + torque_node("n2", "free", None)
    assert Pbs().parse_free(known) == 8
    assert Pbs().parse_free(torque_node("n2", "free", None)) is None
    assert Pbs().parse_free(torque_node("n2", "offline", None)) == 0, "offline: none to give"


# --- Grid Engine ------------------------------------------------------------------------


def sge_instance(queue: str, slots: str, states: str = "") -> str:
    return f"{queue:<30} BIP   {slots:<14} 0.01     lx-amd64      {states}\n"


@pytest.mark.parametrize("state", [*"uaACsSdDEco", "au", "adu"])
def test_a_grid_engine_queue_instance_in_any_state_takes_no_jobs(state: str) -> None:
    assert Sge().parse_free(sge_instance("all.q@c1", "0/0/4", state)) == 0
    assert Sge().parse_free(sge_instance("all.q@c1", "0/4", state)) == 0


def test_a_grid_engine_queue_instance_gives_what_is_neither_used_nor_reserved() -> None:
    assert Sge().parse_free(sge_instance("all.q@c1", "0/0/4")) == 4
    assert Sge().parse_free(sge_instance("all.q@c1", "1/2/8")) == 5
    assert Sge().parse_free(sge_instance("all.q@c1", "1/4")) == 3, "used/tot"
    both = sge_instance("all.q@c1", "0/1/4") + sge_instance("all.q@c2", "0/0/8")
    assert Sge().parse_free(both) == 3 + 8


def test_grid_engine_queues_on_one_host_share_its_slots() -> None:
    """Queues on one host count its cores once: the largest instance, less what every
    instance on the host uses."""
    shared = sge_instance("all.q@c1", "0/1/4") + sge_instance("long.q@c1", "0/2/4")
    assert Sge().parse_free(shared) == 1
    disabled = sge_instance("all.q@c1", "0/0/4") + sge_instance("long.q@c1", "0/1/4", "d")
    assert Sge().parse_free(disabled) == 3, "a disabled queue's jobs still run on the host"


# --- LSF --------------------------------------------------------------------------------

BHOSTS_HEADER = (
    "HOST_NAME          STATUS          JL/U    MAX  NJOBS    RUN  SSUSP  USUSP    RSV\n"
)


def bhosts_row(host: str, status: str, max_slots: str, njobs: int = 0, limit: str = "-") -> str:
    return f"{host:<18} {status:<15} {limit:>4} {max_slots:>6} {njobs:>6} {njobs:>6}      0      0      0\n"


@pytest.mark.parametrize(
    ("status", "free"),
    [
        ("ok", 6),
        ("closed_Full", 0),
        ("closed_Adm", 0),
        ("closed_Busy", 0),
        ("closed_Excl", 0),
        ("closed_Lock", 0),
        ("closed_Wind", 0),
        ("closed_LIM", 0),
        ("closed", 0),
        ("unavail", 0),
        ("unreach", 0),
    ],
)
def test_only_an_ok_lsf_host_has_slots_to_give(status: str, free: int) -> None:
    assert Lsf().parse_free(BHOSTS_HEADER + bhosts_row("hostA", status, "8", 2)) == free


def test_an_lsf_host_without_a_slot_limit_is_left_out_and_none_known_is_not_known() -> None:
    rows = bhosts_row("hostA", "ok", "8", 2) + bhosts_row("hostB", "ok", "-", 2)
    assert Lsf().parse_free(BHOSTS_HEADER + rows) == 6
    assert Lsf().parse_free(BHOSTS_HEADER + bhosts_row("hostB", "ok", "-")) is None
    assert Lsf().parse_free(BHOSTS_HEADER + bhosts_row("hostA", "ok", "8", 2, "3")) == 3


# --- what none of them can read ---------------------------------------------------------

GARBAGE = [
    "",
    "\n\n",
    "bash: line 1: pbsnodes: command not found",
    "pbsnodes: Server has no node list",
    "error: commlib error: got select error (Connection refused)",
    "LSF is down. Please wait...",
    "No matching host found",
    "queuename                      qtype resv/used/tot. load_avg arch          states\n",
    BHOSTS_HEADER,
    "state = free\nnp = 4\n",
    "all.q@c1 BIP x/y/z 0.01 lx-amd64\n",
    "hostA ok - many 2 2 0 0 0\n",
]


@pytest.mark.parametrize("text", GARBAGE)
@pytest.mark.parametrize("scheduler", [Pbs(), Sge(), Lsf()])
def test_what_says_nothing_of_free_cores_is_not_known(scheduler: BatchScheduler, text: str) -> None:
    assert scheduler.parse_free(text) is None


@pytest.mark.parametrize(
    ("scheduler", "name"),
    [
        (Pbs(), "doc_pbs_pbsnodes_pbspro.txt"),
        (Pbs(), "doc_pbs_pbsnodes_torque.txt"),
        (Sge(), "doc_sge_qstat_f.txt"),
        (Lsf(), "doc_lsf_bhosts_w.txt"),
    ],
)
def test_cut_or_scrambled_output_never_raises(scheduler: BatchScheduler, name: str) -> None:
    """Output cut anywhere (a connection lost mid-way) or scrambled: a count or None."""
    text = fixture(name)
    shuffle = random.Random(name)
    variants = [text[:cut] for cut in range(0, len(text), 7)]
    for _ in range(200):
        words = text.split(" ")
        shuffle.shuffle(words)
        variants.append(" ".join(words))
        variants.append("".join(shuffle.choice(text) for _ in range(300)))
    for variant in variants:
        free = scheduler.parse_free(variant)
        assert free is None or (isinstance(free, int) and free >= 0)
