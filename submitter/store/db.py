"""SQLite (WAL) state at `<project>/.submitter/state.db`: what was submitted where, and how it ended."""

from __future__ import annotations

import dataclasses
import enum
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from submitter.errors import SubmitterError
from submitter.states import ACTIVE, FINAL, TaskState, check_transition

STATE_DIR = ".submitter"
DB_NAME = "state.db"

ACTIVE_STATES = tuple(sorted(ACTIVE))
FINAL_STATES = tuple(sorted(FINAL))

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    task_dir TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks(name);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    job_id TEXT,
    pack TEXT NOT NULL,
    script_sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    exec_host TEXT,
    submitted REAL NOT NULL,
    started TEXT,
    ended TEXT,
    last_seen REAL
);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts(task_id);
CREATE TABLE IF NOT EXISTS signatures (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (path)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    task_id TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""

# Version 2: the local outputs' digests when the task completed (a task is up to date only
# while they are unchanged), the tasks file a task was declared in and whether it still is,
# the structured cause of an attempt's end, and the attempt's token: the name under which the
# host records its start, unique across every project that shares the host's work_dir.
_SCHEMA_V2 = """
ALTER TABLE tasks ADD COLUMN outputs TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tasks ADD COLUMN tasks_file TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN cause TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN token TEXT NOT NULL DEFAULT '';
"""

# Version 3: retries. Each attempt's number in its series (1, then 2 for its first retry...),
# and the number the task's next attempt gets (above 1 while a retry waits for its start).
_SCHEMA_V3 = """
ALTER TABLE attempts ADD COLUMN number INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN next_attempt INTEGER NOT NULL DEFAULT 1;
"""

# Each entry takes the file from the version before it to its own (its index + 1); a file of
# any older version is brought up to date, in order, when the store is opened.
MIGRATIONS = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(SubmitterError):
    """The state store cannot be used as it is (written by a newer submitter, or damaged)."""


@dataclass(frozen=True)
class TaskRecord:
    id: str
    name: str
    host: str
    state: str
    reason: str
    task_dir: str
    run_dir: str
    spec_json: str  # read through `spec`: most reads of many records never look at it
    created: float
    updated: float
    outputs_json: str  # read through `outputs`, as `spec_json`
    tasks_file: str
    retired: bool  # no longer declared in its tasks file
    next_attempt: int  # the number its next attempt gets: above 1 while a retry waits

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @cached_property
    def spec(self) -> dict[str, Any]:
        """What the store keeps of the task (empty in a record read without it)."""
        return dict(json.loads(self.spec_json)) if self.spec_json else {}

    @cached_property
    def outputs(self) -> dict[str, str]:
        """Local output path -> its digest when the task completed."""
        return dict(json.loads(self.outputs_json))


@dataclass(frozen=True)
class AttemptRecord:
    id: int
    task_id: str
    host: str
    job_id: str | None
    pack: str
    script_sha256: str
    state: str
    reason: str
    exit_code: int | None
    exec_host: str | None
    submitted: float
    started: str | None
    ended: str | None
    last_seen: float | None
    cause: str
    token: str
    number: int  # 1 for a task's first attempt, k for its (k-1)th retry


class LatestAttempt(NamedTuple):
    """A task's latest attempt as a table of many tasks shows it."""

    number: int
    job_id: str | None
    exit_code: int | None


# The tasks table's columns in TaskRecord's field order.
_TASK_COLUMNS = (
    "id, name, host, state, reason, task_dir, run_dir, spec, created, updated, outputs, "
    "tasks_file, retired, next_attempt"
)


def _task_columns(with_spec: bool) -> str:
    """_TASK_COLUMNS, or the same with an empty spec in place of the stored one."""
    return _TASK_COLUMNS if with_spec else _TASK_COLUMNS.replace(" spec,", " '' AS spec,")


_ATTEMPT_COLUMNS = ", ".join(field.name for field in dataclasses.fields(AttemptRecord))


class AmbiguousReference(SubmitterError):
    """A task reference that several tasks' ids start with."""

    def __init__(self, reference: str, candidates: Sequence[TaskRecord]) -> None:
        listed = "\n".join(f"  {c.name}  {c.id}  {c.state}" for c in candidates)
        super().__init__(
            f"'{reference}' is ambiguous: {len(candidates)} tasks' ids start with it; "
            f"give a longer id or the task's name:\n{listed}"
        )


# SQLite's limit on the parameters of one statement is 32766 (999 before 3.32): stay below
_IDS_PER_QUERY = 900

_ATTEMPT_FIELDS = frozenset(
    {
        "job_id",
        "state",
        "reason",
        "cause",
        "exit_code",
        "exec_host",
        "started",
        "ended",
        "last_seen",
    }
)


def find_state_dir(start: Path) -> Path | None:
    """The nearest `.submitter/` holding a state store, from `start` upwards."""
    for directory in (start, *start.parents):
        if (directory / STATE_DIR / DB_NAME).is_file():
            return directory / STATE_DIR
    return None


class Store:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir
        self._db = sqlite3.connect(state_dir / DB_NAME, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # A commit reaches the disk's cache, not the disk: it survives the client being
        # killed, not a power cut. Only what must survive that asks for more (durable=True).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction():
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.state_dir / DB_NAME} was written by a newer submitter (schema "
                    f"{version}, this one knows up to {SCHEMA_VERSION}): upgrade submitter"
                )
            for script in MIGRATIONS[version:]:
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            if version < SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @property
    def project_dir(self) -> Path:
        return self.state_dir.parent

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[None]:
        """One transaction; `durable`: on the disk itself when it commits (fsync), so that it
        survives a power cut too. Nested: the outer transaction commits."""
        if self._db.in_transaction:
            yield
            return
        if durable:
            self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        finally:
            if durable:
                self._db.execute("PRAGMA synchronous=NORMAL")

    # tasks -----------------------------------------------------------------------------
    def upsert_task(
        self,
        task_id: str,
        name: str,
        host: str,
        task_dir: str,
        run_dir: str,
        spec: dict[str, Any],
        tasks_file: str = "",
    ) -> None:
        now = time.time()
        self._db.execute(
            """INSERT INTO tasks (id, name, host, state, task_dir, run_dir, spec, created,
                                  updated, tasks_file)
               VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET name=excluded.name, spec=excluded.spec,
                   task_dir=excluded.task_dir, run_dir=excluded.run_dir,
                   tasks_file=excluded.tasks_file, retired=0""",
            (task_id, name, host, task_dir, run_dir, json.dumps(spec), now, now, tasks_file),
        )

    def set_task_state(self, task_id: str, state: str, reason: str = "") -> None:
        """Move a task to `state`, as the life cycle allows (states.TRANSITIONS): an illegal
        move raises IllegalTransition and changes nothing."""
        row = self._db.execute("SELECT state FROM tasks WHERE id=?", (task_id,)).fetchone()
        if row is not None:
            check_transition(task_id, row["state"], str(state))
        self._db.execute(
            "UPDATE tasks SET state=?, reason=?, updated=? WHERE id=?",
            (str(state), reason, time.time(), task_id),
        )

    def set_next_attempt(self, task_id: str, number: int) -> None:
        self._db.execute("UPDATE tasks SET next_attempt=? WHERE id=?", (number, task_id))

    def set_outputs(self, task_id: str, digests: dict[str, str]) -> None:
        self._db.execute(
            "UPDATE tasks SET outputs=? WHERE id=?", (json.dumps(digests, sort_keys=True), task_id)
        )

    def retire_undeclared(self, tasks_file: str, declared: set[str]) -> int:
        """Mark this tasks file's finished tasks that it no longer declares (renamed, changed)
        as retired: `status` then shows what the file declares now."""
        rows = self._db.execute(
            "SELECT id, state FROM tasks WHERE tasks_file=? AND retired=0", (tasks_file,)
        ).fetchall()
        stale = [r["id"] for r in rows if r["id"] not in declared and r["state"] not in ACTIVE]
        self._db.executemany("UPDATE tasks SET retired=1 WHERE id=?", [(i,) for i in stale])
        return len(stale)

    def task(self, task_id: str) -> TaskRecord | None:
        rows = self._plain(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id=?", (task_id,))
        return _task(rows[0]) if rows else None

    def tasks_by_id(self, ids: Sequence[str], *, with_spec: bool = True) -> dict[str, TaskRecord]:
        """The records of these tasks that exist, by id, read in a few queries (not one each);
        `with_spec=False`: without their specs, as `tasks` reads them."""
        return {record.id: record for record in _records_where(self._db, "id", ids, with_spec)}

    def latest_by_name(self, names: Sequence[str]) -> dict[str, TaskRecord]:
        """The most recently updated record of each of these task names (any id)."""
        ordered = sorted(_records_where(self._db, "name", names), key=lambda record: record.updated)
        return {record.name: record for record in ordered}

    def tasks(
        self,
        states: Sequence[str] | None = None,
        *,
        include_retired: bool = True,
        with_spec: bool = True,
    ) -> list[TaskRecord]:
        """The records, oldest first; `with_spec=False`: without their specs (the largest
        column, 1.7 kB a task), each record's `spec` then empty."""
        query = f"SELECT {_task_columns(with_spec)} FROM tasks"
        clauses: list[str] = []
        values: list[Any] = []
        if states:
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            values += [str(s) for s in states]
        if not include_retired:
            clauses.append("retired=0")
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        return [_task(row) for row in self._plain(query + " ORDER BY created, name", values)]

    def resolve(self, reference: str) -> TaskRecord | None:
        """The task named `reference`, else with that id, else the one whose id starts with
        it. Several tasks of one name: the newest current one. Several id prefixes: refused."""
        named = self._plain(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE name=? ORDER BY retired, updated DESC",
            (reference,),
        )
        if named:
            return _task(named[0])
        exact = self.task(reference)
        if exact is not None:
            return exact
        if not reference:
            return None
        rows = self._plain(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE substr(id, 1, ?)=? ORDER BY name",
            (len(reference), reference),
        )
        if len(rows) > 1:
            raise AmbiguousReference(reference, [_task(r) for r in rows])
        return _task(rows[0]) if rows else None

    def _plain(self, query: str, values: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return plain_rows(self._db, query, values)

    def vacuum(self) -> None:
        """Give the space of deleted records back to the filesystem."""
        self._db.execute("VACUUM")

    def delete_task(self, task_id: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM events WHERE task_id=?", (task_id,))
            self._db.execute("DELETE FROM tasks WHERE id=?", (task_id,))

    # attempts and transitions ----------------------------------------------------------
    def start_attempt(
        self, task_id: str, host: str, pack: str, script_sha256: str, number: int = 1
    ) -> tuple[int, str]:
        """Record a new attempt and the task as starting, before the host is asked to start
        it: whatever happens next, a later run finds the attempt and asks the host about it.
        Returns the attempt's id and its token."""
        token = secrets.token_hex(8)
        with self.transaction():
            cursor = self._db.execute(
                """INSERT INTO attempts (task_id, host, pack, script_sha256, state, submitted,
                                         token, number)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    task_id,
                    host,
                    pack,
                    script_sha256,
                    TaskState.STARTING.value,
                    time.time(),
                    token,
                    number,
                ),
            )
            attempt_id = int(cursor.lastrowid or 0)
            self.set_task_state(task_id, TaskState.STARTING)
            self.event(task_id, "starting", f"attempt {attempt_id} on {host}")
        return attempt_id, token

    def transition(
        self,
        task_id: str,
        state: str,
        reason: str = "",
        *,
        attempt_id: int | None = None,
        event: str | None = None,
        **attempt: Any,
    ) -> None:
        """Move a task (and its attempt) to `state`, with the event that says so: one
        transaction, so the task, its attempt and the history never disagree."""
        with self.transaction():
            self.set_task_state(task_id, state, reason)
            if attempt_id is not None:
                self.update_attempt(attempt_id, state=str(state), reason=reason, **attempt)
            self.event(task_id, event or str(state), reason or str(state))

    def update_attempt(self, attempt_id: int, **fields: Any) -> None:
        unknown = set(fields) - _ATTEMPT_FIELDS
        if unknown:
            raise ValueError(f"unknown attempt fields: {sorted(unknown)}")
        if not fields:
            return
        values = [str(v) if isinstance(v, enum.Enum) else v for v in fields.values()]
        assignments = ", ".join(f"{name}=?" for name in fields)
        self._db.execute(f"UPDATE attempts SET {assignments} WHERE id=?", (*values, attempt_id))

    def latest_attempt(self, task_id: str) -> AttemptRecord | None:
        row = self._db.execute(
            "SELECT * FROM attempts WHERE task_id=? ORDER BY id DESC LIMIT 1", (task_id,)
        ).fetchone()
        return AttemptRecord(**dict(row)) if row else None

    def attempts(self, task_id: str) -> list[AttemptRecord]:
        rows = self._db.execute("SELECT * FROM attempts WHERE task_id=? ORDER BY id", (task_id,))
        return [AttemptRecord(**dict(row)) for row in rows]

    def attempts_of(self, task_ids: Sequence[str]) -> dict[str, list[AttemptRecord]]:
        """The attempts of each of these tasks in the order recorded."""
        found: dict[str, list[AttemptRecord]] = {task_id: [] for task_id in task_ids}
        query = f"SELECT {_ATTEMPT_COLUMNS} FROM attempts {{where}} ORDER BY id"
        for row in _rows_where(self._db, query, "task_id", list(found), key=1):
            found[row[1]].append(AttemptRecord(*row))  # columns in the record's field order
        return found

    def latest_attempts(self, task_ids: Sequence[str]) -> dict[str, LatestAttempt]:
        """What a table of many tasks shows of the latest attempt of each that has one."""
        query = "SELECT task_id, number, job_id, exit_code FROM attempts {where} ORDER BY id"
        rows = _rows_where(self._db, query, "task_id", task_ids, key=0)
        return {row[0]: LatestAttempt(*row[1:]) for row in rows}  # the last one wins

    def retry_records(self, task_ids: Sequence[str]) -> dict[str, str | None]:
        """Each of these tasks' retry policy as its spec keeps it (JSON text, None if none),
        taken out by SQLite rather than by parsing every spec here."""
        query = "SELECT id, json_extract(spec, '$.retry') FROM tasks {where}"
        try:
            return dict(_rows_where(self._db, query, "id", task_ids, key=0))
        except sqlite3.OperationalError:  # an SQLite built without its JSON functions
            return {r.id: _retry_text(r.spec) for r in _records_where(self._db, "id", task_ids)}

    def all_attempts(self) -> list[AttemptRecord]:
        """Every attempt of every task, in the order they were recorded: one query."""
        rows = self._db.execute("SELECT * FROM attempts ORDER BY id")
        return [AttemptRecord(**dict(row)) for row in rows]

    def save_signatures(self, signatures: dict[tuple[str, int, int, int], str]) -> None:
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO signatures (path, size, mtime_ns, inode, digest) "
                "VALUES (?, ?, ?, ?, ?)",
                [(*key, digest) for key, digest in signatures.items()],
            )

    # events ----------------------------------------------------------------------------
    def event(self, task_id: str | None, kind: str, message: str) -> None:
        self._db.execute(
            "INSERT INTO events (time, task_id, kind, message) VALUES (?, ?, ?, ?)",
            (time.time(), task_id, kind, message),
        )

    def events(self, task_id: str) -> list[tuple[float, str, str]]:
        rows = self._db.execute(
            "SELECT time, kind, message FROM events WHERE task_id=? ORDER BY id", (task_id,)
        )
        return [(row["time"], row["kind"], row["message"]) for row in rows]


def load_signatures(state_dir: Path) -> dict[tuple[str, int, int, int], str]:
    """Input hashes from an earlier run, read without creating or changing anything."""
    path = state_dir / DB_NAME
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT path, size, mtime_ns, inode, digest FROM signatures"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return {}  # an older store, or one being written: hash again
    return {(p, size, mtime, inode): digest for p, size, mtime, inode, digest in rows}


def load_completed(state_dir: Path) -> set[str]:
    """The ids of the tasks that completed, read without creating or changing anything."""
    path = state_dir / DB_NAME
    if not path.is_file():
        return set()
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT id FROM tasks WHERE state=?", (TaskState.COMPLETED.value,)
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return set()  # an older store, or one being written: render them all
    return {task_id for (task_id,) in rows}


def plain_rows(db: sqlite3.Connection, query: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of a query as plain tuples (a `sqlite3.Row` costs more to read)."""
    cursor = db.cursor()
    cursor.row_factory = None
    return cursor.execute(query, tuple(values)).fetchall()


def _chunks(values: list[str]) -> Iterator[tuple[list[str], str]]:
    """`values` in chunks one statement may take, each with its `?,?,...` placeholders."""
    for begin in range(0, len(values), _IDS_PER_QUERY):
        chunk = values[begin : begin + _IDS_PER_QUERY]
        yield chunk, ",".join("?" * len(chunk))


def _records_where(
    db: sqlite3.Connection, column: str, values: Sequence[str], with_spec: bool = True
) -> list[TaskRecord]:
    """The task records whose `column` (id or name) is one of `values`."""
    query = f"SELECT {_task_columns(with_spec)} FROM tasks {{where}}"
    rows = _rows_where(db, query, column, values, key=0 if column == "id" else 1)
    return [_task(row) for row in rows]


def _rows_where(
    db: sqlite3.Connection, query: str, column: str, values: Sequence[str], key: int
) -> list[tuple[Any, ...]]:
    """The rows of `query` (`{where}` where its condition goes) whose `column`, the row's
    field `key`, is one of `values`: in a few queries of `column IN (...)`, or, for more
    values than one such query takes, in one pass over the table (one query for 100,000
    tasks, not 112)."""
    wanted = list(dict.fromkeys(values))
    if len(wanted) > _IDS_PER_QUERY:
        kept = set(wanted)
        return [row for row in plain_rows(db, query.format(where=""), ()) if row[key] in kept]
    rows: list[tuple[Any, ...]] = []
    for chunk, marks in _chunks(wanted):
        rows += plain_rows(db, query.format(where=f"WHERE {column} IN ({marks})"), chunk)
    return rows


def _retry_text(spec: dict[str, Any]) -> str | None:
    retry = spec.get("retry")
    return None if retry is None else json.dumps(retry)


def _task(row: tuple[Any, ...]) -> TaskRecord:
    """A record from a row of _TASK_COLUMNS."""
    (id_, name, host, state, reason, task_dir, run_dir, spec, created, updated, outputs) = row[:11]
    tasks_file, retired, next_attempt = row[11:]
    return TaskRecord(
        id_, name, host, state, reason, task_dir, run_dir, spec, created, updated, outputs,
        tasks_file, bool(retired), next_attempt,
    )  # fmt: skip
