"""`status`: the tasks' states as a table or JSON, filtered by state, once or until they end."""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
import time
from collections.abc import Sequence
from itertools import chain
from typing import Any

from rich.live import Live
from rich.table import Table

from submitter.engine import Engine
from submitter.errors import EXIT_HOST_ERROR, EXIT_OK, EXIT_TASKS_FAILED
from submitter.interrupts import Interrupted
from submitter.long_lived import long_lived
from submitter.progress import Progress
from submitter.retry import RetryPolicy
from submitter.state_filter import expand
from submitter.states import ACTIVE, FAILED, TaskState
from submitter.store.db import AttemptRecord, Store, TaskRecord
from submitter.store.lock import apply_running
from submitter.tables import plain_text, rich_table
from submitter.task_records import records_for, retry_policy
from submitter.terminal import console, no_color, plain_tables

COLUMNS = ("task", "id", "host", "state", "attempt", "job", "exit", "reason")
# kept on one line on a terminal: the task name and the reason wrap instead
WHOLE = ("id", "host", "state", "attempt", "job", "exit")
# left out, in this order, where a terminal is too narrow for names and reasons
DROPPABLE = ("job", "attempt", "exit", "host")


def status(store: Store, args: argparse.Namespace) -> int:
    states = expand(chain.from_iterable(args.state)) if args.state else None
    if args.watch is not None:
        return _watch(store, args, states)
    with long_lived():  # 100,000 records, read and shown once
        records, errors = _current(store, args, states)
        if args.json:
            print(json.dumps(_documents(store, records), indent=2))
        else:
            sys.stdout.write(_block(store, records, args))
    _say_errors(errors)
    return _exit_code(records, errors)


def _current(
    store: Store, args: argparse.Namespace, states: frozenset[str] | None
) -> tuple[list[TaskRecord], dict[str, str]]:
    """The named tasks (else all), polled once if still active, then those in `states`."""
    if args.tasks:
        records = records_for(store, args.tasks)
    else:  # the specs of the active ones only, which the poll needs
        records = store.tasks(include_retired=args.all, with_spec=False)
    active = store.tasks_by_id([r.id for r in records if r.active])
    watched = [active[r.id] for r in records if r.id in active]  # in the order shown
    errors = Engine(store, Progress(quiet=True), seams=args.seams).refresh(watched)
    polled = store.tasks_by_id(list(active))  # the poll moves no other
    records = [polled.get(r.id, r) for r in records]
    if states is not None:
        records = [r for r in records if r.state in states]
    return records, errors


def _rows(store: Store, records: Sequence[TaskRecord]) -> list[list[str]]:
    rows = []
    latest = store.latest_attempts([r.id for r in records])
    allowed = _attempts_allowed(store, records)
    for record in records:
        attempt = latest.get(record.id)
        rows.append(
            [
                record.name,
                record.id,
                record.host,
                record.state,
                f"{attempt.number} of {allowed[record.id]}" if attempt else "",
                (attempt.job_id or "") if attempt else "",
                "" if not attempt or attempt.exit_code is None else str(attempt.exit_code),
                record.reason,
            ]
        )
    return rows


def _attempts_allowed(store: Store, records: Sequence[TaskRecord]) -> dict[str, int]:
    """How many attempts each task may make, from the retry policy its record keeps; read
    for all at once, each policy parsed once (thousands of tasks share a handful)."""
    policies = store.retry_records([r.id for r in records])
    return {
        r.id: _attempts_of(policies[r.id]) if r.id in policies else retry_policy(r).attempts
        for r in records
    }


@functools.lru_cache(maxsize=256)
def _attempts_of(policy: str | None) -> int:
    return RetryPolicy.from_record(json.loads(policy) if policy else None).attempts


def _watch(store: Store, args: argparse.Namespace, states: frozenset[str] | None) -> int:
    """Show the tasks every `args.watch` seconds until none of them can change any more. On a
    terminal the table is redrawn in place; elsewhere (or under NO_COLOR, which rules out the
    cursor moves too) a new block is printed only when something changed. Ctrl-C ends it."""
    in_place = not args.json and not plain_tables(args.plain) and not no_color()
    live = Live(console=console(), auto_refresh=False) if in_place else None
    last_block, last_errors = "", ""
    records: list[TaskRecord] = []
    errors: dict[str, str] = {}
    try:
        if live is not None:
            live.start()
        while True:
            records, errors = _current(store, args, states)
            if live is not None:
                live.update(status_table(_rows(store, records)), refresh=True)
            else:
                block = _block(store, records, args)
                if block != last_block:
                    sys.stdout.write(("\n" if last_block and not args.json else "") + block)
                    sys.stdout.flush()
                    last_block = block
            shown_errors = "".join(f"host {h}: {e}\n" for h, e in errors.items())
            if shown_errors != last_errors:
                sys.stderr.write(shown_errors)
                last_errors = shown_errors
            if _settled(store, records):
                break
            time.sleep(args.watch)
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted) and exc.signum != signal.SIGINT:
            raise  # SIGTERM, SIGHUP: the usual ending of a stopped client (128 + N)
        return EXIT_OK  # Ctrl-C is how watching is ended
    finally:
        if live is not None:
            live.stop()
    return _exit_code(records, errors)


def _settled(store: Store, records: Sequence[TaskRecord]) -> bool:
    """No shown task can change any more: none is active, and none waits to start unless an
    `apply` runs that may start it."""
    if any(r.state in ACTIVE for r in records):
        return False
    waiting = any(r.state == TaskState.PENDING for r in records)
    return not waiting or not apply_running(store.state_dir)


def _block(store: Store, records: Sequence[TaskRecord], args: argparse.Namespace) -> str:
    if args.json:  # one line per change: JSON Lines
        return json.dumps(_documents(store, records)) + "\n"
    if plain_tables(args.plain):
        return plain_text(COLUMNS, _rows(store, records))
    out = console()
    with out.capture() as captured:
        out.print(status_table(_rows(store, records), out.width))
    return captured.get()


def status_table(rows: Sequence[Sequence[str]], width: int | None = None) -> Table:
    """The table `status` draws on a terminal `width` columns wide, from the rows `_rows`
    makes."""
    return rich_table(COLUMNS, rows, whole=WHOLE, droppable=DROPPABLE, width=width)


def _say_errors(errors: dict[str, str]) -> None:
    for host, error in errors.items():
        print(f"host {host}: {error}", file=sys.stderr)


def _exit_code(records: Sequence[TaskRecord], errors: dict[str, str]) -> int:
    if errors:
        return EXIT_HOST_ERROR
    return EXIT_TASKS_FAILED if any(r.state in FAILED for r in records) else EXIT_OK


def _documents(store: Store, records: Sequence[TaskRecord]) -> list[dict[str, Any]]:
    """What `status --json` says of each task, its attempts and policy read for all at once."""
    attempts = store.attempts_of([r.id for r in records])
    allowed = _attempts_allowed(store, records)
    return [record_json(r, attempts[r.id], allowed[r.id]) for r in records]


def record_json(
    record: TaskRecord, attempts: Sequence[AttemptRecord], max_attempts: int
) -> dict[str, Any]:
    return {
        "name": record.name,
        "id": record.id,
        "host": record.host,
        "state": record.state,
        "reason": record.reason,
        "task_dir": record.task_dir,
        "run_dir": record.run_dir,
        "attempt": attempts[-1].number if attempts else 0,  # of the latest attempt
        "max_attempts": max_attempts,
        "attempts": [
            {
                "number": a.number,
                "job_id": a.job_id,
                "pack": a.pack,
                "script_sha256": a.script_sha256,
                "state": a.state,
                "exit_code": a.exit_code,
                "exec_host": a.exec_host,
                "submitted": a.submitted,
                "started": a.started,
                "ended": a.ended,
                "reason": a.reason,
                "cause": a.cause,
            }
            for a in attempts
        ],
    }
