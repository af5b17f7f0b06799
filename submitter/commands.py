"""One function per CLI command: glue between parsed arguments, the engine and the terminal."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from submitter import plan, task_logs
from submitter import task_layout as files
from submitter.config.project import Project, load_project
from submitter.engine import Engine
from submitter.errors import EXIT_HOST_ERROR, EXIT_OK, EXIT_TASKS_FAILED, UsageError
from submitter.identity import SignatureCache
from submitter.long_lived import long_lived
from submitter.prepare import PreparedTask, in_declared_order, iter_prepared, prepare_tasks
from submitter.progress import Progress
from submitter.states import FAILED
from submitter.store.db import (
    ACTIVE_STATES,
    DB_NAME,
    STATE_DIR,
    Store,
    find_state_dir,
    load_completed,
    load_signatures,
)
from submitter.store.lock import apply_lock
from submitter.task_records import blocked_by_purged, records_for
from submitter.units import parse_duration

_FAILED = tuple(sorted(FAILED))


def apply(args: argparse.Namespace) -> int:
    progress = Progress(quiet=args.json, verbose=args.verbose)
    with long_lived():
        project = load_project(args.tasks_file, args.host)
        state_dir = project.directory / STATE_DIR
        signatures = SignatureCache(load_signatures(state_dir))
        done = load_completed(state_dir)
        if args.plan:
            return _print_plan(project, done, state_dir, args, signatures)
        # every check before anything is written or contacted (but rendering the tasks that
        # completed earlier: most stay up to date; one run again is rendered when it starts)
        prepared = prepare_tasks(project, signatures=signatures, done=done, rendering="keep")
    with apply_lock(state_dir):
        store = Store(state_dir)
        store.save_signatures(signatures.added)
        report = Engine(store, progress, signatures, seams=args.seams).apply(
            project, prepared, force=args.force, detach=args.detach, max_running=args.max_running
        )
    if args.json:
        print(
            json.dumps(
                {
                    "tasks": [
                        {
                            "name": t.name,
                            "id": t.id,
                            "host": t.host,
                            "state": t.state,
                            "reason": t.reason,
                            "job_id": t.job_id,
                            "attempt": t.number,
                        }
                        for t in report.tasks + report.skipped
                    ],
                    "host_errors": report.host_errors,
                    "transport": report.stats,
                },
                indent=2,
            )
        )
    else:
        _print_outcome(report, store, progress)
    if report.host_errors:
        return EXIT_HOST_ERROR
    return EXIT_TASKS_FAILED if report.failed or report.blocked else EXIT_OK


def _print_plan(
    project: Project,
    done: set[str],
    state_dir: Path,
    args: argparse.Namespace,
    signatures: SignatureCache,
) -> int:
    """What an apply would do, each task checked (rendered, then let go) as it is decided."""
    store = Store(state_dir) if (state_dir / DB_NAME).is_file() else None
    prepared = iter_prepared(project, signatures=signatures, done=done, rendering="check")
    declared = [d.name for d in project.tasks]
    steps = plan.plan(prepared, store, force=args.force, signatures=signatures, declared=declared)
    if args.json:
        print(json.dumps([vars(step) for step in steps], indent=2))
        return EXIT_OK
    print(plan.summary(steps))
    for line in plan.lines(steps, verbose=args.verbose):
        print(line)
    return EXIT_OK


FAILED_STDERR_LINES = 3  # the last lines of a failed task's stderr, shown with its reason


def _print_outcome(report: Any, store: Store, progress: Progress) -> None:
    done = sum(1 for t in report.tasks if t.state == "completed")
    waiting = [
        t for t in report.tasks if t.state not in ("completed", "pending", "blocked", *_FAILED)
    ]
    unstarted = [t for t in report.tasks if t.state == "pending"]
    for tracked in report.failed:
        kept = task_logs.logs_file(store.state_dir, tracked.id)
        stderr = task_logs.read(store.state_dir, tracked.id, tail=True).get(files.STDERR, "")
        last = stderr.rstrip("\n").splitlines()[-FAILED_STDERR_LINES:]
        progress.say(
            f"FAILED {tracked.name} ({tracked.id}) on {tracked.host}: {tracked.state}"
            f"{': ' + tracked.reason if tracked.reason else ''}\n"
            + "".join(f"  stderr: {line}\n" for line in last)
            + f"  logs: submitter logs {tracked.name}"
            + (f"   (kept in {kept})" if kept.exists() else "   (it printed nothing)")
        )
    for tracked in report.blocked:
        progress.say(f"BLOCKED {tracked.name} ({tracked.id}): {tracked.reason}")
    parts = [
        f"{done} completed",
        f"{len(report.skipped)} up to date",
        f"{len(report.failed)} failed",
    ]
    if report.blocked:
        parts.append(f"{len(report.blocked)} blocked")
    if waiting:
        parts.append(f"{len(waiting)} still queued or running")
    if unstarted:
        parts.append(f"{len(unstarted)} not started")
    progress.say(", ".join(parts) + f" in {progress.elapsed:.1f}s")
    if report.detached and waiting:
        progress.say("detached: `submitter status` or `submitter apply` again re-attaches")
    if report.detached and unstarted:
        progress.say(f"{len(unstarted)} task(s) wait for a free slot: run `submitter apply` again")
    for host, error in report.host_errors.items():
        progress.say(f"host {host}: {error}")


def render(args: argparse.Namespace) -> int:
    with long_lived():
        return _render(args)


def _render(args: argparse.Namespace) -> int:
    project = load_project(args.tasks_file, args.host)
    only = None
    if args.task:
        known = {t.name for t in project.tasks}
        unknown = [name for name in args.task if name not in known]
        if unknown:
            raise UsageError(
                f"no task named {', '.join(unknown)} (tasks: {', '.join(sorted(known))})"
            )
        only = set(args.task)
    signatures = SignatureCache(load_signatures(project.directory / STATE_DIR))
    prepared = iter_prepared(
        project, check_inputs=False, signatures=signatures, only=only, rendering="later"
    )
    declared = (d.name for d in project.tasks if only is None or d.name in only)
    # Prepared and rendered one task at a time into a file that spills to disk (100,000
    # tasks print more than a GB), shown once every task rendered: an error prints nothing.
    # Kept as bytes, encoded once (1.3 GB for 100,000 tasks), and copied as they are.
    with tempfile.SpooledTemporaryFile(_RENDER_IN_MEMORY) as out:
        for task in in_declared_order(prepared, declared):
            out.write(_rendered_text(task).encode())
        out.seek(0)
        sys.stdout.flush()
        shutil.copyfileobj(out, sys.stdout.buffer)
    return EXIT_OK


_RENDER_IN_MEMORY = 32 << 20  # bytes of `render` output kept in memory before spilling


def _rendered_text(task: PreparedTask) -> str:
    rendered = task.render()
    rule = "=" * 78
    home = "# (~ is the remote home; it is resolved on the host at apply time)\n"
    return (
        f"{rule}\n# task {task.name}  id {task.task_id}  host {task.host.name} "
        f"({task.kind})  pack {rendered.pack}  sha256 {rendered.sha256[:16]}\n"
        f"# task dir {task.task_dir}\n# run dir  {task.run_dir}\n"
        f"{home if task.task_dir.startswith('~') else ''}"
        f"{rule}\n--- {files.TASK_FILE}\n{rendered.task_file}"
        f"--- {files.JOB_SCRIPT}\n{rendered.job_script}"
    )


def check_host(args: argparse.Namespace) -> int:
    from submitter.check_node import NodeCheck
    from submitter.checks import interpreters_of, run_checks

    node = None
    if args.node:
        interpreters = interpreters_of(args.tasks_file, args.host) if args.tasks_file else ()
        node = NodeCheck(interpreters, float(args.timeout))
    return run_checks(
        args.host, args.tasks_file, as_json=args.json, node=node, plain=args.plain, seams=args.seams
    )


def setup_host(args: argparse.Namespace) -> int:
    from submitter.checks import setup_host as setup

    return setup(args.host, args.tasks_file, as_json=args.json, plain=args.plain, seams=args.seams)


def completion(args: argparse.Namespace) -> int:
    from submitter.completion import shell_script

    print(shell_script(args.shell))
    return EXIT_OK


def _open_store(project: Path) -> Store:
    state_dir = find_state_dir(project.resolve())
    if state_dir is None:
        raise UsageError(
            f"no {STATE_DIR}/state.db in {project} or above: run `submitter apply TASKS.yml` first, "
            "or pass -C PROJECT_DIR"
        )
    return Store(state_dir)


def status(args: argparse.Namespace) -> int:
    from submitter.status_view import status as show

    return show(_open_store(args.project), args)


def logs(args: argparse.Namespace) -> int:
    store = _open_store(args.project)
    record = records_for(store, [args.task])[0]
    engine = Engine(store, Progress(quiet=True), seams=args.seams)
    try:
        if record.active:
            engine.refresh([record], close=False)
            record = store.task(record.id) or record
        if args.follow and record.active:
            from submitter.follow import follow

            return follow(store, record, engine=engine)
        if record.active:
            texts = engine.session_for(record).read_logs(record.task_dir)
        else:
            kept = task_logs.read(store.state_dir, record.id)
            texts = {name: kept.get(name, "") for name in files.LOG_FILES}
    finally:
        engine.close()
    print(
        f"# {record.name} ({record.id}) on {record.host}: {record.state}"
        f"{' - ' + record.reason if record.reason else ''}"
    )
    for name, text in texts.items():
        if text or name in files.TASK_LOGS:
            print(f"--- {name}")
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK


def report(args: argparse.Namespace) -> int:
    from submitter.report import write_report

    store = _open_store(args.project)
    errors: dict[str, str] = {}
    if not args.offline:  # tasks still running are asked about first, as `status` does
        active = store.tasks(ACTIVE_STATES, include_retired=args.all)
        errors = Engine(store, Progress(quiet=True), seams=args.seams).refresh(active)
    try:
        print(write_report(store, args.output, include_retired=args.all))
    except OSError as exc:
        raise UsageError(f"cannot write the report to {args.output}: {exc.strerror}") from None
    finally:
        store.close()
    for host, error in errors.items():
        print(f"host {host}: {error} (its tasks are shown as last known)", file=sys.stderr)
    return EXIT_HOST_ERROR if errors else EXIT_OK


def kill(args: argparse.Namespace) -> int:
    store = _open_store(args.project)
    if args.all:
        records = store.tasks(("pending", *ACTIVE_STATES))
    elif args.tasks:
        records = records_for(store, args.tasks)
    else:
        raise UsageError("name the tasks to kill, or pass --all")
    targets = [r for r in records if r.active or r.state == "pending"]
    for record in records:
        if record not in targets:
            print(f"{record.name} ({record.id}) is {record.state}: nothing to kill")
    errors = Engine(store, Progress(quiet=True), seams=args.seams).kill(targets)
    for record in targets:
        now = store.task(record.id)
        print(f"{record.name} ({record.id}): {now.state if now else 'gone'}")
    for host, error in errors.items():
        print(f"host {host}: {error}", file=sys.stderr)
    return EXIT_HOST_ERROR if errors else EXIT_OK


def purge(args: argparse.Namespace) -> int:
    store = _open_store(args.project)
    if args.tasks:
        records = records_for(store, args.tasks)
    elif args.all or args.age:
        records = [r for r in store.tasks() if not r.active]
    else:
        raise UsageError("name the tasks to purge, or pass --age AGE or --all")
    if args.age:
        try:
            cutoff = time.time() - parse_duration(args.age)
        except ValueError as exc:
            raise UsageError(f"--age: {exc}") from None
        records = [r for r in records if r.updated <= cutoff]
    busy = [r for r in records if r.active]
    for record in busy:
        print(f"{record.name} ({record.id}) is {record.state}: kill it first; not purged")
    records = [r for r in records if not r.active]
    for record, upstream in blocked_by_purged(store, records):
        print(f"{record.name} ({record.id}) is blocked by {', '.join(upstream)}: purged too")
        records.append(record)
    errors = Engine(store, Progress(quiet=True), seams=args.seams).purge(records)
    print(f"purged {len(records) - sum(1 for r in records if store.task(r.id))} task(s)")
    for host, error in errors.items():
        print(f"host {host}: {error}", file=sys.stderr)
    return EXIT_HOST_ERROR if errors else EXIT_OK
