"""SQLite (WAL) state at `<project>/.submitter/state.db`: what was submitted where, and how it ended."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR = ".submitter"
DB_NAME = "state.db"

ACTIVE_STATES = ("submitted", "queued", "running", "held")
FINAL_STATES = ("completed", "failed", "killed", "lost")

_SCHEMA = """
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


@dataclass(frozen=True)
class TaskRecord:
    id: str
    name: str
    host: str
    state: str
    reason: str
    task_dir: str
    run_dir: str
    spec: dict[str, Any]
    created: float
    updated: float

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


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
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    @property
    def project_dir(self) -> Path:
        return self.state_dir.parent

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # tasks -----------------------------------------------------------------------------
    def upsert_task(
        self, task_id: str, name: str, host: str, task_dir: str, run_dir: str, spec: dict[str, Any]
    ) -> None:
        now = time.time()
        self._db.execute(
            """INSERT INTO tasks (id, name, host, state, task_dir, run_dir, spec, created, updated)
               VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET name=excluded.name, spec=excluded.spec,
                   task_dir=excluded.task_dir, run_dir=excluded.run_dir""",
            (task_id, name, host, task_dir, run_dir, json.dumps(spec), now, now),
        )

    def set_task_state(self, task_id: str, state: str, reason: str = "") -> None:
        self._db.execute(
            "UPDATE tasks SET state=?, reason=?, updated=? WHERE id=?",
            (state, reason, time.time(), task_id),
        )

    def task(self, task_id: str) -> TaskRecord | None:
        row = self._db.execute("SELECT * FROM tasks WHERE id=?", (task_id,)).fetchone()
        return _task(row) if row else None

    def tasks(self, states: Sequence[str] | None = None) -> list[TaskRecord]:
        if states:
            marks = ",".join("?" * len(states))
            rows = self._db.execute(
                f"SELECT * FROM tasks WHERE state IN ({marks}) ORDER BY created, name",
                tuple(states),
            )
        else:
            rows = self._db.execute("SELECT * FROM tasks ORDER BY created, name")
        return [_task(row) for row in rows]

    def resolve(self, reference: str) -> list[TaskRecord]:
        """Tasks named `reference`, else whose id starts with it; newest first."""
        rows = self._db.execute(
            "SELECT * FROM tasks WHERE name=? ORDER BY updated DESC", (reference,)
        ).fetchall()
        if not rows:
            rows = self._db.execute(
                "SELECT * FROM tasks WHERE id LIKE ? ORDER BY updated DESC",
                (reference.replace("%", "").replace("_", "") + "%",),
            ).fetchall()
        return [_task(row) for row in rows]

    def delete_task(self, task_id: str) -> None:
        self._db.execute("DELETE FROM tasks WHERE id=?", (task_id,))

    # attempts --------------------------------------------------------------------------
    def add_attempt(self, task_id: str, host: str, pack: str, script_sha256: str) -> int:
        cursor = self._db.execute(
            """INSERT INTO attempts (task_id, host, pack, script_sha256, state, submitted)
               VALUES (?, ?, ?, ?, 'submitted', ?)""",
            (task_id, host, pack, script_sha256, time.time()),
        )
        return int(cursor.lastrowid or 0)

    def update_attempt(self, attempt_id: int, **fields: Any) -> None:
        allowed = {
            "job_id",
            "state",
            "reason",
            "exit_code",
            "exec_host",
            "started",
            "ended",
            "last_seen",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown attempt fields: {sorted(unknown)}")
        if not fields:
            return
        assignments = ", ".join(f"{name}=?" for name in fields)
        self._db.execute(
            f"UPDATE attempts SET {assignments} WHERE id=?", (*fields.values(), attempt_id)
        )

    def latest_attempt(self, task_id: str) -> AttemptRecord | None:
        row = self._db.execute(
            "SELECT * FROM attempts WHERE task_id=? ORDER BY id DESC LIMIT 1", (task_id,)
        ).fetchone()
        return AttemptRecord(**dict(row)) if row else None

    def attempts(self, task_id: str) -> list[AttemptRecord]:
        rows = self._db.execute("SELECT * FROM attempts WHERE task_id=? ORDER BY id", (task_id,))
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


def _task(row: sqlite3.Row) -> TaskRecord:
    data = dict(row)
    data["spec"] = json.loads(data["spec"])
    return TaskRecord(**data)
