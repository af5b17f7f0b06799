"""`check-host --node`: submit the one probe job, wait for its report, clean up after it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from submitter.check_result import Check
from submitter.config.project import HostEntry
from submitter.errors import TemplateError
from submitter.host_link import HostLink
from submitter.node_probe import (
    Probe,
    Report,
    cancel_script,
    has_report,
    parse_report,
    poll_script,
    probe_header,
    submit_script,
    targets_for,
)
from submitter.prepare import default_work_dir, resolve_home, select_pack
from submitter.run_state import default_poll_interval
from submitter.schedulers.base import BatchScheduler, JobState
from submitter.shared_markers import shared_markers
from submitter.transport.base import COMMAND_TIMEOUT, Transport

DEFAULT_TIMEOUT = 300.0
# A job that has left the queue may have written its report a moment before: a few more
# looks before concluding it never will (shared filesystems publish files late).
_LOOKS_AFTER_END = 3


@dataclass(frozen=True)
class NodeCheck:
    """What `--node` was asked for: the interpreters of the tasks file, and the patience."""

    interpreters: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT


def probe_node(
    entry: HostEntry,
    link: HostLink,
    home: str,
    wanted: NodeCheck,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Check]:
    """One probe job through `link`; its directives in the syntax of the scheduler's flavour
    (PBS: pro | torque) as the host names it or check-host detected it."""
    config = entry.config
    batch = link.ops.batch
    flavor = batch.flavor if batch is not None else None
    token = secrets.token_hex(8)
    work_dir = resolve_home(default_work_dir(config, Path.cwd()), home)
    mapped = [(local, resolve_home(remote, home)) for local, remote in config.paths.items()]
    with shared_markers(config.shared, token) as markers:
        written = [
            (path, str(markers.written[path]) if path in markers.written else "")
            for path in config.shared
        ]
        targets, login = targets_for(token, work_dir, mapped, written)
        probe = Probe(
            directory=f"{home.rstrip('/')}/.submitter-probe-{token}",
            token=token,
            targets=targets,
            login_markers=login,
            setup=tuple((config.setup or "").splitlines()),
            interpreters=wanted.interpreters,
        )
        if batch is not None:
            try:
                chain = select_pack(entry, Path.cwd())
                probe = replace(probe, header=probe_header(probe, entry, chain, flavor))
            except TemplateError as exc:
                return [_no_header(exc)]
        transport = link.connection()
        return _run_probe(probe, batch, transport, wanted.timeout, config_poll(entry), clock, sleep)


def config_poll(entry: HostEntry) -> float:
    """Seconds between looks at the probe: the host's pace, but a person is waiting."""
    return max(0.5, min(default_poll_interval(entry.config), 2.0))


def _run_probe(
    probe: Probe,
    batch: BatchScheduler | None,
    transport: Transport,
    timeout: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> list[Check]:
    job: str | None = None
    reported = False
    try:
        # Without a scheduler the probe runs within the submitting command: the timeout is its.
        limit = timeout if batch is None else COMMAND_TIMEOUT
        submitted = transport.run_script(submit_script(probe, batch), timeout=limit)
        job, refused = _submitted(submitted.stdout, batch)
        if refused is not None:
            return [refused]
        deadline = clock() + timeout
        ended_looks = 0
        while True:
            output = transport.run_script(poll_script(probe, batch, job)).stdout
            if has_report(output):
                reported = True  # the report's reading removed the probe
                return _rows(parse_report(output, probe), job)
            code, state = _queue_state(output, batch, job)
            ended_looks = ended_looks + 1 if state is None or not state.active else 0
            if ended_looks >= _LOOKS_AFTER_END:
                return [_no_report(probe, job, code)]
            if clock() >= deadline:
                return [_timed_out(job, code, state, timeout)]
            sleep(interval)
    finally:
        # Only a probe whose report was read has removed itself: anything else is stopped
        # and removed here.
        if not reported:
            transport.run_script(cancel_script(probe, batch, job))


def _no_header(error: TemplateError) -> Check:
    return Check(
        "probe job",
        False,
        f"not submitted: {error}",
        "the probe's directives come from the pack's header.sh.j2 (the directive lines of one "
        "job, which its job.sh.j2 includes): give the host's pack one, or use the built-in pack",
    )


def _submitted(output: str, batch: BatchScheduler | None) -> tuple[str | None, Check | None]:
    """The job id (None with no scheduler), or a failed row saying why the probe did not go."""
    line = next((raw for raw in output.splitlines() if raw.startswith("SUBMIT\t")), "")
    _, rc, said = [*line.split("\t", 2), "", ""][:3]
    if rc != "0":
        return None, Check(
            "probe job",
            False,
            f"submitting the probe failed (exit {rc or '?'}): {said.strip() or 'no output'}",
            "submit a small job by hand on the host to see why (a site may require an account "
            "or a partition)",
        )
    if batch is None:
        return None, None
    try:
        return batch.parse_job_id(said), None
    except ValueError as exc:
        return None, Check("probe job", False, str(exc), "check the submit command by hand")


def _queue_state(
    output: str, batch: BatchScheduler | None, job: str | None
) -> tuple[str, JobState | None]:
    """The job's state code as the scheduler prints it, and its state (None: not listed)."""
    if batch is None or job is None:
        return "finished", JobState.DONE  # ran in the foreground: no report now, none later
    status = batch.find_status(batch.parse_status(output), job)
    if status is None:
        return "gone", None
    return status.code, status.state


def _rows(report: Report, job: str | None) -> list[Check]:
    where = report.node or "(no name)"
    rows = [Check("ran on", bool(report.node), where + (f" (job {job})" if job else ""))]
    wait = report.queue_wait
    rows.append(
        Check("queue wait", True, "not known" if wait is None else f"{wait} s from submit to start")
    )
    return rows + list(report.rows)


def _no_report(probe: Probe, job: str | None, code: str) -> Check:
    what = f"job {job} ended ({code})" if job else "the probe ran"
    return Check(
        "probe job",
        False,
        f"{what} but its report never appeared in {probe.directory}",
        "the home directory must be the same on the compute nodes as on the login node; "
        "check the host's setup does not `exit`",
    )


def _timed_out(job: str | None, code: str, state: JobState | None, timeout: float) -> Check:
    if state in (JobState.QUEUED, JobState.HELD):
        detail = f"job {job} did not start within {timeout:g} s (still {code}); it was cancelled"
        fix = (
            "the queue is busy or the job cannot run as asked: try a longer --timeout, "
            "and see why it waits with the scheduler's own tools"
        )
    else:
        detail = f"job {job} sent no report within {timeout:g} s ({code}); it was cancelled"
        fix = "a setup line may hang on the node: run the host's setup there by hand"
    return Check("probe job", False, detail, fix)
