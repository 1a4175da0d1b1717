"""The console's view of the sensor database: per-thread connections, its own tables, page indexes.

The console owns ``web_users``, ``web_sessions``, ``web_login_failures`` and ``audit``. It reads the
tables other stages create (``alerts``, ``assets``, ``communications``, ``deviations``, ``baseline``,
``forward_state``, ``outbox``, ``events``, ``flows``); they may appear after the console starts, so
:meth:`ConsoleDB.tables` is asked per request and the indexes the pages need on them are added as
soon as a table exists.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from otsentry.store import open_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES web_users(username) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    client TEXT
);
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (username);
CREATE TABLE IF NOT EXISTS web_login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_start REAL NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    username TEXT NOT NULL,
    role TEXT,
    action TEXT NOT NULL,
    target TEXT,
    note TEXT,
    client TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, id);
CREATE INDEX IF NOT EXISTS audit_user ON audit (username, id);
"""

# Indexes the pages need on the other stages' tables: every queue filter with the keyset order, an
# asset's alerts and communications from either side, pending deviations in review order.
PAGE_INDEXES: dict[str, tuple[str, ...]] = {
    "alerts": (
        "CREATE INDEX IF NOT EXISTS web_alerts_status_seq ON alerts (status, seq)",
        "CREATE INDEX IF NOT EXISTS web_alerts_severity_seq ON alerts (severity, seq)",
        "CREATE INDEX IF NOT EXISTS web_alerts_rule_seq ON alerts (rule_id, seq)",
        "CREATE INDEX IF NOT EXISTS web_alerts_protocol_seq ON alerts (protocol, seq)",
        "CREATE INDEX IF NOT EXISTS web_alerts_source_seq ON alerts (source_ip, seq)",
        "CREATE INDEX IF NOT EXISTS web_alerts_destination_seq ON alerts (destination_ip, seq)",
        "CREATE INDEX IF NOT EXISTS web_alerts_ts_seq ON alerts (ts, seq)",
    ),
    "communications": (
        "CREATE INDEX IF NOT EXISTS web_communications_initiator ON communications (initiator_ip)",
    ),
    "deviations": (
        "CREATE INDEX IF NOT EXISTS web_deviations_status ON deviations (status, first_seen, id)",
    ),
}


def now_text() -> str:
    """UTC now in the format the alert store writes (``2024-05-14T06:00:00.000000Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def init_database(path: str | Path) -> None:
    """Create (or migrate) the sensor database and add the console's tables."""
    db = open_db(path)
    try:
        db.conn.executescript(SCHEMA)
    finally:
        db.close()


class ConsoleDB:
    """One SQLite connection per thread (Starlette runs handlers in a thread pool)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._indexed: set[str] = set()
        self._index_lock = threading.Lock()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=15.0)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
        return conn

    def tables(self) -> frozenset[str]:
        names = frozenset(
            r[0] for r in self.conn().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        )
        missing = (names & PAGE_INDEXES.keys()) - self._indexed
        if missing:
            self._add_indexes(missing)
        return names

    def _add_indexes(self, tables: Iterable[str]) -> None:
        with self._index_lock:
            conn = self.conn()
            for table in tables:
                if table in self._indexed:
                    continue
                with conn:
                    for statement in PAGE_INDEXES[table]:
                        conn.execute(statement)
                self._indexed.add(table)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self.conn().execute(sql, tuple(params)).fetchall()

    def one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        return self.conn().execute(sql, tuple(params)).fetchone()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
