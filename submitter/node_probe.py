"""`check-host --node`: the one probe job's scripts and the reading of its report. No I/O.

The probe runs where a task would run (a compute node, or the ssh host itself) and prints
facts only (`CHECK <key> <state> <detail>`); the wording and the fixes are made here. Keys
carry indices, never user values, so a path with a tab or a quote cannot break a report line.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from submitter.check_result import Check
from submitter.config.models import Resources
from submitter.config.project import HostEntry
from submitter.hostops import q
from submitter.render.compile import JobSpec, render_header
from submitter.render.packs import Pack
from submitter.schedulers.base import BatchScheduler

MARKER = ".submitter-node-"  # + token: written before the job, read by it, removed after
# What the probe job asks the scheduler for: it runs for seconds, and a small, short job is
# one a busy scheduler fits in early (10 minutes leave room for a slow setup).
PROBE_RESOURCES = Resources(cores=1, nodes=1, walltime=600)

# Runs on the node. Its report goes to a temporary file renamed at the end, so the login
# node never reads half a report.
_PROBE_BODY = r"""
submitter_started=$(date +%s)
submitter_dir() {
  local state=ok
  if [ ! -d "$2" ]; then state=missing
  elif [ -n "$3" ] && [ "$(cat -- "$3" 2>/dev/null)" != "$submitter_token" ]; then state=different
  elif ! { : >"$2/$submitter_scratch" && rm -f -- "$2/$submitter_scratch"; } 2>/dev/null; then
    state=readonly
  fi
  printf 'CHECK\t%s\t%s\t%s\n' "$1" "$state" "$2"
}
submitter_found() {
  local found
  if found=$(command -v -- "$2" 2>/dev/null); then
    printf 'CHECK\t%s\tok\t%s\n' "$1" "$found"
  else
    printf 'CHECK\t%s\tmissing\t%s\n' "$1" "$2"
  fi
}
{
  printf 'NODE\t%s\n' "$(hostname 2>/dev/null || uname -n)"
  printf 'STARTED\t%s\n' "$submitter_started"
  submitter_checks
  # Setup lines run in this shell, as the wrapper runs them, so what they change (PATH,
  # modules) is what the interpreter checks see. A construct spanning lines runs as one.
  submitter_chunk= submitter_first=1 submitter_n=0
  for submitter_line in "${submitter_setup[@]}"; do
    submitter_n=$((submitter_n + 1))
    submitter_chunk+="$submitter_line"$'\n'
    if bash -n <<<"$submitter_chunk" 2>/dev/null || [ "$submitter_n" -eq "${#submitter_setup[@]}" ]; then
      eval "$submitter_chunk" >"$submitter_probe/setup.out" 2>&1 </dev/null
      submitter_rc=$?
      printf 'CHECK\tsetup:%s-%s\t%s\t%s\n' "$submitter_first" "$submitter_n" "$submitter_rc" \
        "$(tail -n 3 "$submitter_probe/setup.out" | tr '\n\t' '  ')"
      submitter_chunk= submitter_first=$((submitter_n + 1))
    fi
  done
  submitter_interpreters
} >"$submitter_probe/report.tmp" 2>/dev/null
mv -f -- "$submitter_probe/report.tmp" "$submitter_probe/report"
"""


@dataclass(frozen=True)
class ProbeTarget:
    """A directory the probe looks at: its role, the path on the host, and whether a marker
    written beforehand must be read there (the same filesystem, not a namesake)."""

    key: str  # workdir, path:<i>, shared:<i>
    label: str  # what the user calls it: the path as written
    path: str
    marker: str  # the marker's path on the host, or "" to check existence and writing only


@dataclass(frozen=True)
class Probe:
    """Everything one probe needs: where it lives on the host, what it checks."""

    directory: str  # on the host, in its home: removed when the report is read
    token: str
    targets: tuple[ProbeTarget, ...]
    login_markers: tuple[str, ...]  # written on the login node before submitting
    setup: tuple[str, ...]
    interpreters: tuple[str, ...]
    header: str = ""  # the scheduler's directive lines (probe_header); none without one

    @property
    def name(self) -> str:
        return "submitter-probe"


@dataclass(frozen=True)
class Report:
    node: str
    started: int | None
    submitted: int | None
    rows: tuple[Check, ...]

    @property
    def queue_wait(self) -> int | None:
        if self.started is None or self.submitted is None:
            return None
        return max(0, self.started - self.submitted)


def interpreter_command(interpreter: str) -> str:
    """The program an interpreter line needs: `python3 -u` -> python3, `/usr/bin/env perl` ->
    perl (env finds it on PATH, so PATH is what counts)."""
    words = shlex.split(interpreter)
    if len(words) > 1 and posixpath.basename(words[0]) == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if rest:
            return rest[0]
    return words[0] if words else interpreter


def probe_header(probe: Probe, host: HostEntry, chain: Sequence[Pack], flavor: str | None) -> str:
    """The probe job's directives from the host's pack header, as a task's are: its name, its
    output and error in the probe's directory, PROBE_RESOURCES and the host's vars (a site's
    account). TemplateError when the pack has no header or it does not render."""
    spec = JobSpec(
        task_id=probe.token,
        name=probe.name,
        host_name=host.name,
        scheduler=host.config.kind,
        command="",
        interpreter=(),
        env={},
        resources=PROBE_RESOURCES,
        directives=(),
        task_dir=probe.directory,
        run_dir=probe.directory,
        outputs=(),
        setup=host.config.setup,
        host_vars=host.config.vars,
        flavor=flavor,
    )
    return render_header(spec, chain, f"{probe.directory}/job.out", f"{probe.directory}/job.err")


def job_script(probe: Probe) -> str:
    """The probe job: the scheduler's directives, the values as bash data, the body."""
    lines = ["#!/bin/bash", *probe.header.splitlines()]
    lines += [
        f"submitter_probe={q(probe.directory)}",
        f"submitter_token={q(probe.token)}",
        f"submitter_scratch={q(MARKER + probe.token)}.$$",
        "submitter_setup=(" + " ".join(q(line) for line in probe.setup) + ")",
        "submitter_checks() {",
        *(f"  submitter_dir {t.key} {q(t.path)} {q(t.marker)}" for t in probe.targets),
        "  true",
        "}",
        "submitter_interpreters() {",
        *(
            f"  submitter_found interp:{i} {q(interpreter_command(text))}"
            for i, text in enumerate(probe.interpreters)
        ),
        "  true",
        "}",
    ]
    return "\n".join(lines) + _PROBE_BODY


def submit_script(probe: Probe, batch: BatchScheduler | None) -> str:
    """Login node: write the probe and the markers, note the time, submit (or, with no
    scheduler, run it right here). Prints `SUBMIT <exit code> <output>`."""
    directory = q(probe.directory)
    lines = [
        f"mkdir -p -- {directory} || {{ printf 'SUBMIT\\t1\\tcannot create %s\\n' {directory}; exit 0; }}",
        f"cd -- {directory} || exit 0",
        f"printf '%s' {q(job_script(probe))} >probe.sh",
        f"mkdir -p -- {q(probe.targets[0].path)} 2>/dev/null",
        *(
            f"printf '%s' {q(probe.token)} >{q(marker)} 2>/dev/null"
            for marker in probe.login_markers
        ),
        "date +%s >submitted",
    ]
    if batch is None:
        lines.append("out=$(bash probe.sh 2>&1 </dev/null); rc=$?")
    else:
        given = "probe.sh" if batch.submit_uses_stdin() else "/dev/null"
        lines.append(f"out=$({shlex.join(batch.submit_argv('probe.sh'))} 2>&1 <{given}); rc=$?")
    lines.append(
        "printf 'SUBMIT\\t%s\\t%s\\n' \"$rc\" \"$(printf '%s' \"$out\" | tr '\\n\\t' '  ')\""
    )
    return "\n".join(lines) + "\n"


def _cleanup(probe: Probe) -> str:
    paths = [probe.directory, *probe.login_markers]
    return "rm -rf -- " + " ".join(q(p) for p in paths)


def poll_script(probe: Probe, batch: BatchScheduler | None, job: str | None) -> str:
    """The report and the probe's removal if the report is there, else the queue's word."""
    directory = q(probe.directory)
    lines = [
        f"if [ -f {directory}/report ]; then",
        "  printf 'REPORT\\n'",
        f"  cat -- {directory}/report",
        f"  printf 'SUBMITTED\\t%s\\n' \"$(cat -- {directory}/submitted 2>/dev/null)\"",
        f"  {_cleanup(probe)}",
    ]
    if batch is not None and job is not None:
        lines += ["else", f"  {shlex.join(batch.status_argv([job]))} 2>&1"]
    lines.append("fi")
    return "\n".join(lines) + "\n"


def cancel_script(probe: Probe, batch: BatchScheduler | None, job: str | None) -> str:
    lines = []
    if batch is not None and job is not None:
        lines.append(f"{shlex.join(batch.cancel_argv([job]))} >/dev/null 2>&1")
    lines.append(_cleanup(probe))
    return "\n".join(lines) + "\n"


def has_report(output: str) -> bool:
    return output.splitlines()[:1] == ["REPORT"]


def parse_report(output: str, probe: Probe) -> Report:
    node, started, submitted = "", None, None
    rows: list[Check] = []
    targets = {t.key: t for t in probe.targets}
    for line in output.splitlines():
        parts = line.split("\t", 3)
        if parts[0] == "NODE" and len(parts) > 1:
            node = parts[1].strip()
        elif parts[0] in ("STARTED", "SUBMITTED") and len(parts) > 1:
            value = int(parts[1]) if parts[1].strip().isdigit() else None
            started, submitted = (value, submitted) if parts[0] == "STARTED" else (started, value)
        elif parts[0] == "CHECK" and len(parts) == 4:
            _, key, state, detail = parts
            if key in targets:
                rows.append(_directory_row(targets[key], state))
            elif key.startswith("interp:"):
                rows.append(_interpreter_row(probe, int(key[7:]), state, detail))
            elif key.startswith("setup:"):
                rows.append(_setup_row(probe, key[6:], state, detail))
    return Report(node, started, submitted, tuple(rows))


_DIRECTORY_FAILURES = {
    "missing": "does not exist on the node",
    "different": "is another filesystem on the node (a marker written beforehand is missing)",
    "readonly": "is not writable on the node",
}


def _directory_row(target: ProbeTarget, state: str) -> Check:
    kind, _, _ = target.key.partition(":")
    name = {"workdir": "work dir on node", "path": "mapped path on node"}.get(kind, "")
    name = name or "shared path on node"
    if kind != "workdir":
        name = f"{name} {target.label}"
    if state == "ok":
        seen = "a marker written here was read on the node" if kind == "shared" else target.path
        return Check(name, True, seen)
    detail = f"{target.path} {_DIRECTORY_FAILURES.get(state, state)}"
    if kind == "workdir":
        fix = (
            f"mount {target.path} on the compute nodes or set work_dir to a path they share"
            if state != "readonly"
            else f"make {target.path} writable on the compute nodes, or set work_dir elsewhere"
        )
    elif kind == "path":
        fix = (
            f"mount {target.path} on the compute nodes, or map {target.label} to a path they share"
        )
    else:
        fix = f"mount {target.path} on the compute nodes, or remove it from 'shared'"
    return Check(name, False, detail, fix)


def _interpreter_row(probe: Probe, index: int, state: str, detail: str) -> Check:
    text = probe.interpreters[index]
    name = f"interpreter {text}"
    if state == "ok":
        return Check(name, True, detail)
    command = interpreter_command(text)
    return Check(
        name,
        False,
        f"{command} is not on PATH on the node",
        f"install {command} on the compute nodes, or add `module load {_module_of(command)}` "
        "(or what your site names it) to the host's setup",
    )


def _module_of(command: str) -> str:
    """A likely module name: `python3` -> python, `Rscript` -> R."""
    name = posixpath.basename(command)
    return "R" if name in ("R", "Rscript") else name.rstrip("0123456789.") or name


def _setup_row(probe: Probe, span: str, state: str, detail: str) -> Check:
    first, _, last = span.partition("-")
    lines = probe.setup[int(first) - 1 : int(last)]
    shown = lines[0].strip() + (" ..." if len(lines) > 1 else "") if lines else ""
    name = f"setup line {first}" if first == last else f"setup lines {first}-{last}"
    if state == "0":
        return Check(name, True, shown)
    said = f": {detail.strip()}" if detail.strip() else ""
    return Check(
        name,
        False,
        f"`{shown}` exited {state}{said}",
        "fix or remove this line of the host's setup (it runs before every task)",
    )


def targets_for(
    token: str,
    work_dir: str,
    mapped: Sequence[tuple[str, str]],
    shared: Sequence[tuple[str, str]],
) -> tuple[tuple[ProbeTarget, ...], tuple[str, ...]]:
    """The probe's directories and the markers to write on the login node. `mapped` pairs a
    path as written with its path on the host; `shared` pairs a shared path with the marker
    this machine wrote in it ("" when it could not)."""
    marker = MARKER + token
    targets = [ProbeTarget("workdir", work_dir, work_dir, f"{work_dir}/{marker}")]
    targets += [
        ProbeTarget(f"path:{i}", label, path, f"{path}/{marker}")
        for i, (label, path) in enumerate(mapped)
    ]
    login = tuple(t.marker for t in targets)
    targets += [
        ProbeTarget(f"shared:{i}", path, path, written) for i, (path, written) in enumerate(shared)
    ]
    return tuple(targets), login
