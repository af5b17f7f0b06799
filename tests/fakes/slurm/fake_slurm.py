#!/usr/bin/env python3
"""A test fake of SLURM's command line tools on this machine: NOT SLURM.

sbatch, squeue, scancel, sacct and sinfo (symlinks to this file; it dispatches on its name) do
exactly what submitter/schedulers/slurm.py and the packs in templates/slurm/1 use, with the
output formats of the captured fixtures in tests/fixtures/schedulers. State lives in
$FAKE_SLURM_DIR: `jobs/<id>.json` per job or array member, a counter under an fcntl lock.
A job runs `bash SCRIPT` here, in a session of its own, watched by a detached runner process
(one per sbatch) that records COMPLETED, FAILED or CANCELLED. A finished job stays in squeue
for MIN_JOB_AGE seconds (FAKE_SLURM_MIN_JOB_AGE, as squeue is asked), then only sacct knows it. No resources, partitions or priorities:
every job starts as soon as its dependencies allow (afterok or afterany), except, with
FAKE_SLURM_NODE_CPUS=N, one asking more than N CPUs per task: it pends for ever with the
reason PartitionConfig (as on a SLURM whose sbatch did not refuse it), and sinfo says the
nodes have N CPUs (unless FAKE_SLURM_SINFO=silent). The cluster suite
(tests/cluster) stays the proof that submitter works with the real SLURM.

Knobs, in the environment: FAKE_SLURM_CANCEL (see scancel), FAKE_SLURM_SBATCH_FAILS and
FAKE_SLURM_MAX_SUBMIT_JOBS (sbatch), FAKE_SLURM_CPUS (sinfo); in the state directory:
hold-<job> (run), controller-down (every command but sacct and the runner fails as SLURM's
do while slurmctld is away). Each call of a command (not of the runner) appends a line
`<command> <epoch seconds>` to `calls` in the state directory, as sdiag counts RPCs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# seconds a finished job is still listed by squeue
MIN_JOB_AGE = float(os.environ.get("FAKE_SLURM_MIN_JOB_AGE") or 1.0)
ENDED = {"CD": "COMPLETED", "F": "FAILED", "CA": "CANCELLED"}
STATE = Path(os.environ.get("FAKE_SLURM_DIR", "/nonexistent-fake-slurm"))
NODE_CPUS = int(os.environ.get("FAKE_SLURM_NODE_CPUS") or 0)  # 0: any job fits
# The cluster's CPUs as `sinfo -o %C` counts them (idle: those no running job holds); 0: sinfo
# prints nothing for %C. Every job still starts at once, whatever it asks.
CPUS = int(os.environ.get("FAKE_SLURM_CPUS") or 0)
JOBS = STATE / "jobs"
# the user's MaxSubmitJobs: jobs pending or running at once, each array member one; 0: none
MAX_SUBMIT_JOBS = int(os.environ.get("FAKE_SLURM_MAX_SUBMIT_JOBS") or 0)


@contextlib.contextmanager
def locked() -> Iterator[None]:
    with open(STATE / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def load(key: str) -> dict:
    return json.loads((JOBS / f"{key}.json").read_text())


def save(job: dict) -> None:
    tmp = JOBS / f".{job['id']}.tmp"
    tmp.write_text(json.dumps(job))
    tmp.replace(JOBS / f"{job['id']}.json")


def all_jobs() -> list[dict]:
    jobs = [json.loads(p.read_text()) for p in JOBS.glob("*.json")]
    return sorted(jobs, key=lambda j: (int(j["job"]), j["index"] if j["index"] is not None else -1))


def directives(script: Path) -> dict[str, str]:
    """`#SBATCH --key=value` lines up to the first command, as sbatch reads them."""
    found: dict[str, str] = {}
    for line in script.read_text().splitlines()[1:]:
        if line.startswith("#SBATCH"):
            key, _, value = line[len("#SBATCH") :].strip().partition("=")
            found[key] = value
        elif line.strip() and not line.startswith("#"):
            break
    return found


def sbatch(args: list[str]) -> int:
    """FAKE_SLURM_SBATCH_FAILS=N: the first N calls fail as a busy slurmctld's do.
    FAKE_SLURM_MAX_SUBMIT_JOBS=N: a submission that would make more than N jobs pending or
    running (each array member one) is refused as SLURM's association limit refuses it."""
    if refused_as_busy(int(os.environ.get("FAKE_SLURM_SBATCH_FAILS", "0"))):
        print(
            "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
            file=sys.stderr,
        )
        return 1
    options = dict(a.partition("=")[::2] for a in args[:-1])
    script = Path(args[-1]).resolve()
    options = {**directives(script), **options}
    indices = [None]
    if "--array" in options:
        first, _, last = options["--array"].split("%")[0].partition("-")
        indices = list(range(int(first), int(last or first) + 1))
    after = options.get("--dependency", "")
    kind, _, listed = after.partition(":")
    deps = listed.split(":") if after else []
    with locked():
        JOBS.mkdir(exist_ok=True)
        if over_submit_limit(len(indices)):
            print(
                "sbatch: error: AssocMaxSubmitJobLimit\nsbatch: error: Batch job submission "
                "failed: Job violates accounting/QOS policy (job submit limit, user's size "
                "and/or time limits)",
                file=sys.stderr,
            )
            return 1
        counter = STATE / "counter"
        job = int(counter.read_text()) if counter.exists() else 1
        counter.write_text(str(job + len(indices)))
        for offset, index in enumerate(indices):
            name = str(job) if index is None else f"{job}_{index}"
            fill = {"A": str(job), "a": str(index), "j": str(job + offset)}
            paths = {
                k: re.sub(r"%([Aaj])", lambda m, f=fill: f[m.group(1)], options.get(k, default))
                for k, default in (("--output", "slurm-%j.out"), ("--error", ""))
            }
            save({
                "id": name, "job": job, "index": index, "job_id": job + offset,
                "state": "PD", "exit": "0:0", "deps": deps, "after": kind or "afterok", "script": str(script),
                "cwd": os.getcwd(), "out": paths["--output"],
                "err": paths["--error"] or paths["--output"], "pid": None, "ended": None,
                "kill_on_invalid_dep": options.get("--kill-on-invalid-dep") == "yes",
                "cpus": int(options.get("--cpus-per-task") or 1), "reason": None,
            })  # fmt: skip
    keys = [str(job) if i is None else f"{job}_{i}" for i in indices]
    with open(STATE / "runner.log", "ab") as log:  # a runner's traceback, if it has one
        subprocess.Popen(
            [sys.executable, os.path.realpath(__file__), "run", *keys],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True,
        )  # fmt: skip
    print(job if "--parsable" in options else f"Submitted batch job {job}")
    return 0


def over_submit_limit(adding: int) -> bool:
    active = sum(1 for job in all_jobs() if job["state"] in ("PD", "R"))
    return 0 < MAX_SUBMIT_JOBS < active + adding


def refused_as_busy(failures: int) -> bool:
    """Whether this sbatch call is one of the first `failures` (counted in the state)."""
    if failures <= 0:
        return False
    with locked():
        counted = STATE / "sbatch-failures"
        done = int(counted.read_text()) if counted.exists() else 0
        if done >= failures:
            return False
        counted.write_text(str(done + 1))
        return True


def matches(job: dict, ids: list[str]) -> bool:
    return job["id"] in ids or str(job["job"]) in ids


def dependency(job: dict) -> str:
    """afterok: `ok` when every job waited for completed, `never` when one ended otherwise,
    else `wait`; afterany: `ok` when every one ended, however."""
    upstream = [j for j in all_jobs() if matches(j, job["deps"])]
    if job.get("after", "afterok") == "afterany":
        return "ok" if all(j["state"] in ("CD", "F", "CA", "TO") for j in upstream) else "wait"
    if any(j["state"] in ("F", "CA") for j in upstream):
        return "never"
    return "ok" if all(j["state"] == "CD" for j in upstream) else "wait"


def held(key: str) -> bool:
    """A job waits while the file `hold-<job>` is in the state (a test's way to start it
    late)."""
    return (STATE / f"hold-{load(key)['job']}").exists() and not (STATE / "stop").exists()


def run(keys: list[str]) -> int:
    """The runner: starts the job (every array member at once) once its dependencies allow,
    waits for each member and records how it ended."""
    while (verdict := dependency(load(keys[0]))) == "wait" or held(keys[0]):
        time.sleep(0.05)
    started: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}  # held: else subprocess reaps
    for key in keys:
        with locked():
            job = load(key)
            if job["state"] != "PD" or (STATE / "stop").exists():
                continue
            if NODE_CPUS and job["cpus"] > NODE_CPUS:  # larger than every node
                job.update(reason="PartitionConfig")
                save(job)
                continue
            if verdict == "never":  # pends for ever, unless --kill-on-invalid-dep=yes
                if job["kill_on_invalid_dep"]:
                    job.update(state="CA", ended=time.time())
                    save(job)
                continue
            env = dict(os.environ, SLURM_JOB_ID=str(job["job_id"]))
            if job["index"] is not None:
                env.update(
                    SLURM_ARRAY_JOB_ID=str(job["job"]), SLURM_ARRAY_TASK_ID=str(job["index"])
                )
            cwd = Path(job["cwd"])
            try:
                with open(cwd / job["out"], "ab") as out, open(cwd / job["err"], "ab") as err:
                    process = subprocess.Popen(
                        ["bash", job["script"]], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                        stdout=out, stderr=err, start_new_session=True,
                    )  # fmt: skip
            except OSError:  # no directory for its output files: the job fails at once
                job.update(state="F", exit="1:0", ended=time.time())
                save(job)
                continue
            job.update(state="R", pid=process.pid)
            save(job)
            started[process.pid] = (key, process)
    while started:
        pid, status = os.wait()
        if pid not in started:
            continue
        key = started.pop(pid)[0]
        with locked():
            job = load(key)
            if job["state"] == "R":
                code = os.waitstatus_to_exitcode(status)
                exit_field = f"{code}:0" if code >= 0 else f"0:{-code}"
                job.update(state="CD" if code == 0 else "F", exit=exit_field)
            job["ended"] = job["ended"] or time.time()
            save(job)
    return 0


def squeue(args: list[str]) -> int:
    """`squeue -h -t all -o '%i %t %r' --jobs=...`: array members still pending as one range
    (the reason `%r` only where the format asks it). Without --jobs (check-host's
    `squeue -h -u USER`): every job (one user here)."""
    form = args[args.index("-o") + 1] if "-o" in args else "%i %t"
    listed = [a.split("=", 1)[1] for a in args if a.startswith("--jobs=")]
    ids = listed[0].split(",") if listed else None
    now = time.time()
    pending: dict[int, list[int]] = {}
    for job in all_jobs():
        if (ids is not None and not matches(job, ids)) or (
            job["ended"] and now - job["ended"] > MIN_JOB_AGE
        ):
            continue
        reason = job.get("reason") or ("Dependency" if job["deps"] else "None")
        if job["state"] != "PD":
            reason = "None"
        if job["state"] == "PD" and job["index"] is not None:
            pending.setdefault(job["job"], []).append(job["index"])
        else:
            print(job["id"], job["state"], *([reason] if "%r" in form else []))
    for array, indices in pending.items():
        print(f"{array}_[{index_ranges(indices)}]", "PD", *(["None"] if "%r" in form else []))
    return 0


def sinfo(args: list[str]) -> int:
    """The limits command's `sinfo -e -h -o '%c'`: the nodes' CPUs, where the fake has a
    size; `sinfo -h -o '%C'`: allocated/idle/other/total CPUs, where it has FAKE_SLURM_CPUS;
    nothing else (no partitions)."""
    form = args[args.index("-o") + 1] if "-o" in args else ""
    if form == "%c" and NODE_CPUS and os.environ.get("FAKE_SLURM_SINFO") != "silent":
        print(NODE_CPUS)
    if form == "%C" and CPUS:
        busy = sum(j["cpus"] for j in all_jobs() if j["state"] == "R") if JOBS.is_dir() else 0
        print(f"{busy}/{max(0, CPUS - busy)}/0/{CPUS}")
    return 0


def index_ranges(indices: list[int]) -> str:
    """`0,2-5`: sorted indices as SLURM prints an array's pending members."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def sacct(args: list[str]) -> int:
    """`sacct -n -P -X -o JobID,State,ExitCode -j ids`; without -j (check-host's accounting
    probe, `sacct -n -X -o JobID -S now`), every job."""
    ids = args[args.index("-j") + 1].split(",") if "-j" in args else None
    names = {"PD": "PENDING", "R": "RUNNING", **ENDED, "CA": f"CANCELLED by {os.getuid()}"}
    for job in all_jobs():
        if ids is None or matches(job, ids):
            print(f"{job['id']}|{names[job['state']]}|{job['exit']}")
    return 0


def session_members(session: int) -> list[int]:
    """The processes of a session (a job's, started with start_new_session)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry)) == session:
                    members.append(int(entry))
    return members


def scancel(args: list[str]) -> int:
    """Cancels jobs, whole arrays (`123`) or single members (`123_4`): TERM to the session.
    FAKE_SLURM_CANCEL=kill-as-failed plays a job whose wrapper dies before it can record
    anything (KILL, not TERM), ending FAILED as LSF's EXIT does; =command-first plays a
    SLURM that signals every process of the job, the task's command before its wrapper:
    TERM to the rest of the job's session, then, a second later, to the wrapper."""
    mode = os.environ.get("FAKE_SLURM_CANCEL", "")
    brutal = mode == "kill-as-failed"
    with locked():
        for job in all_jobs():
            if not matches(job, args) or job["state"] not in ("PD", "R"):
                continue
            if job["pid"] and mode == "command-first":
                for pid in session_members(job["pid"]):
                    if pid != job["pid"]:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)
                time.sleep(1.0)
            if job["pid"]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(job["pid"], signal.SIGKILL if brutal else signal.SIGTERM)
            if brutal:
                job.update(state="F", exit="0:9", ended=time.time())
            else:
                job.update(state="CA", exit="0:15", ended=time.time())
            save(job)
    return 0


COMMANDS = {
    "sbatch": sbatch, "squeue": squeue, "sacct": sacct, "scancel": scancel, "sinfo": sinfo,
    "run": run,
}  # fmt: skip

# what SLURM 22.05's clients print when slurmctld does not answer (captured on the cluster)
CONTROLLER_DOWN = {
    "squeue": "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
    "sinfo": "slurm_load_partitions: Unable to contact slurm controller (connect failure)",
    "sbatch": "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
    "(connect failure)",
    "scancel": "scancel: error: Kill job error on job id 1: Unable to contact slurm controller "
    "(connect failure)",
}


def dispatch(name: str, args: list[str]) -> int:
    if name != "run" and STATE.is_dir():
        with open(STATE / "calls", "a") as calls:  # one short append: whole lines
            calls.write(f"{name} {time.time():.3f}\n")
    if name in CONTROLLER_DOWN and (STATE / "controller-down").exists():
        print(CONTROLLER_DOWN[name], file=sys.stderr)
        return 1
    return COMMANDS[name](args)


if __name__ == "__main__":
    name = os.path.basename(sys.argv[0])
    if name in COMMANDS:
        sys.exit(dispatch(name, sys.argv[1:]))
    sys.exit(dispatch(sys.argv[1], sys.argv[2:]))
