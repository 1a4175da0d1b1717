"""The forwarder's tables in the sensor database, beside ``alerts`` and ``outbox`` (detect/alerts.py).

``forward_state`` holds one row per destination: the last sequence number the destination
acknowledged (``acked_seq``, where a restart resumes), counters and the last error. ``forward_drops``
records every range of alerts given up for a destination, with the reason and the sensor-health alert
that reported it. ``outbox`` rows are deleted once every configured destination acknowledged them
(keeping ``keep`` below the slowest for the tcp/tls resend window); ``alerts`` keeps the alert itself,
so ``forward replay`` can resend from there.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otsentry.detect.alerts import AlertStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forward_state (
    destination TEXT PRIMARY KEY,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    acked_at TEXT,
    sent INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    filtered INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'new',
    last_error TEXT,
    last_error_at TEXT,
    updated TEXT
);
CREATE TABLE IF NOT EXISTS forward_drops (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    alert_seq INTEGER
);
"""
STATE_COLUMNS = (
    "destination acked_seq acked_at sent failures consecutive_failures dropped filtered status last_error"
    " last_error_at updated"
).split()


def now_text() -> str:
    """The same time format as detect/alerts.py writes into ``outbox.created``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ensure_schema(path: str | Path) -> None:
    """Create alerts/outbox (through the alert store) and the forwarder's tables."""
    AlertStore(path).close()
    conn = connect(path)
    try:
        conn.executescript(_SCHEMA)
    finally:
        conn.close()


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


@dataclass(frozen=True)
class Row:
    seq: int
    alert_id: str
    doc: str  # the alert as stored (JSON)


@dataclass(frozen=True)
class Drop:
    first_seq: int
    last_seq: int
    count: int
    reason: str


class ForwardStore:
    """One connection; use one per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = connect(path)

    def close(self) -> None:
        self.conn.close()

    # -- state -------------------------------------------------------------------------------------

    def state(self, destination: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT {', '.join(STATE_COLUMNS)} FROM forward_state WHERE destination = ?", (destination,)
        ).fetchone()
        return dict(zip(STATE_COLUMNS, row, strict=True)) if row else None

    def ensure(self, destination: str) -> dict[str, Any]:
        """The destination's row; a new destination starts with what is still waiting in the outbox."""
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO forward_state (destination, acked_seq, updated) VALUES (?, "
                "COALESCE((SELECT MIN(seq) - 1 FROM outbox), (SELECT MAX(seq) FROM alerts), 0), ?)",
                (destination, now_text()),
            )
        state = self.state(destination)
        assert state is not None
        return state

    def save_progress(self, destination: str, acked_seq: int, sent: int, filtered: int) -> None:
        now = now_text()
        with self.conn:
            self.conn.execute(
                "UPDATE forward_state SET acked_seq = MAX(acked_seq, ?), acked_at = ?, sent = sent + ?,"
                " filtered = filtered + ?, consecutive_failures = 0, status = 'running', updated = ?"
                " WHERE destination = ?",
                (acked_seq, now, sent, filtered, now, destination),
            )

    def set_status(self, destination: str, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE forward_state SET status = ?, updated = ? WHERE destination = ?",
                              (status, now_text(), destination))

    def record_failure(self, destination: str, error: str, status: str) -> None:
        now = now_text()
        with self.conn:
            self.conn.execute(
                "UPDATE forward_state SET failures = failures + 1,"
                " consecutive_failures = consecutive_failures + 1, last_error = ?, last_error_at = ?,"
                " status = ?, updated = ? WHERE destination = ?",
                (error[:500], now, status, now, destination),
            )

    def states(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(f"SELECT {', '.join(STATE_COLUMNS)} FROM forward_state ORDER BY destination")
        return [dict(zip(STATE_COLUMNS, r, strict=True)) for r in rows]

    # -- reading alerts ----------------------------------------------------------------------------

    def fetch_outbox(self, after: int, limit: int) -> list[Row]:
        """The next alerts after ``after``: from the outbox, or from the alerts table for any part already
        pruned from it (a destination disabled while the others went on)."""
        floor = self.conn.execute("SELECT MIN(seq) FROM outbox").fetchone()[0]
        if floor is None or after + 1 < floor:
            upper = floor - 1 if floor is not None else self.latest_seq()
            rows = self.fetch_alerts(after, upper, limit)
            if rows:
                return rows
        rows = self.conn.execute(
            "SELECT o.seq, o.alert_id, a.doc FROM outbox o JOIN alerts a ON a.seq = o.seq"
            " WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [Row(*r) for r in rows]

    def fetch_alerts(self, after: int, until: int, limit: int) -> list[Row]:
        rows = self.conn.execute(
            "SELECT seq, id, doc FROM alerts WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (after, until, limit),
        ).fetchall()
        return [Row(*r) for r in rows]

    def latest_seq(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0])

    def backlog(self, acked_seq: int) -> tuple[int, str | None]:
        """How many outbox alerts wait after ``acked_seq``, and when the oldest was queued."""
        count, oldest = self.conn.execute(
            "SELECT COUNT(*), MIN(created) FROM outbox WHERE seq > ?", (acked_seq,)
        ).fetchone()
        return int(count), oldest

    # -- caps and drops ----------------------------------------------------------------------------

    def cut_for_size(self, acked_seq: int, excess: int) -> int | None:
        """The seq up to which ``excess`` waiting alerts (the oldest) must go."""
        row = self.conn.execute(
            "SELECT seq FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?", (acked_seq, excess - 1)
        ).fetchone()
        return int(row[0]) if row else None

    def cut_for_age(self, acked_seq: int, older_than: str) -> int | None:
        row = self.conn.execute(
            "SELECT MAX(seq) FROM outbox WHERE seq > ? AND created < ?", (acked_seq, older_than)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def drop(self, destination: str, acked_seq: int, cut: int, reason: str) -> Drop | None:
        """Give up alerts (acked_seq, cut] for this destination: counted, recorded, pointer moved."""
        with self.conn:
            count, first, last = self.conn.execute(
                "SELECT COUNT(*), MIN(seq), MAX(seq) FROM outbox WHERE seq > ? AND seq <= ?", (acked_seq, cut)
            ).fetchone()
            if not count:
                return None
            now = now_text()
            self.conn.execute(
                "UPDATE forward_state SET acked_seq = MAX(acked_seq, ?), dropped = dropped + ?, updated = ?"
                " WHERE destination = ?",
                (cut, count, now, destination),
            )
            self.conn.execute(
                "INSERT INTO forward_drops (destination, first_seq, last_seq, count, reason, at)"
                " VALUES (?,?,?,?,?,?)",
                (destination, first, last, count, reason, now),
            )
        return Drop(int(first), int(last), int(count), reason)

    def record_unsendable(self, destination: str, seq: int, reason: str) -> Drop:
        """One alert that cannot be encoded: skipped for this destination, counted like a drop."""
        now = now_text()
        with self.conn:
            self.conn.execute(
                "UPDATE forward_state SET dropped = dropped + 1, updated = ? WHERE destination = ?",
                (now, destination),
            )
            self.conn.execute(
                "INSERT INTO forward_drops (destination, first_seq, last_seq, count, reason, at)"
                " VALUES (?,?,?,?,?,?)",
                (destination, seq, seq, 1, reason, now),
            )
        return Drop(seq, seq, 1, reason)

    def mark_reported(self, destination: str, alert_seq: int) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE forward_drops SET alert_seq = ? WHERE destination = ? AND alert_seq IS NULL",
                (alert_seq, destination),
            )

    def drops(self, destination: str | None = None) -> list[dict[str, Any]]:
        columns = "destination first_seq last_seq count reason at alert_seq".split()
        sql = f"SELECT {', '.join(columns)} FROM forward_drops"
        args: tuple[Any, ...] = ()
        if destination:
            sql += " WHERE destination = ?"
            args = (destination,)
        return [dict(zip(columns, r, strict=True)) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def prune(self, destinations: Iterable[str], keep: int) -> int:
        """Delete outbox rows every destination acknowledged, ``keep`` below the slowest."""
        names = list(destinations)
        if not names:
            return 0
        marks = ",".join("?" * len(names))
        with self.conn:
            row = self.conn.execute(
                f"SELECT MIN(acked_seq), COUNT(*) FROM forward_state WHERE destination IN ({marks})", names
            ).fetchone()
            if row[0] is None or row[1] < len(names):
                return 0
            cur = self.conn.execute("DELETE FROM outbox WHERE seq <= ?", (int(row[0]) - keep,))
        return cur.rowcount
