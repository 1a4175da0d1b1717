"""Alert storage in the sensor's SQLite database: the alerts, their triage history and the outbox.

``alerts`` keeps the indexed columns an analyst filters on beside the full alert (``doc``, JSON).
``seq`` is the sensor's monotonic alert sequence number (``otsentry.alert.seq``); it survives restarts
because the next one continues after the largest stored. Every new alert also gets an ``outbox`` row
in the *same transaction*, so the SIEM forwarder (which drains ``outbox`` in ``seq`` order and deletes
what the receiver acknowledged) can never miss an alert that was stored, nor see one that was not.

Duplicates grouped by the engine update ``count`` and ``last_seen`` of the stored alert (no new row,
no new outbox entry). Triage (``ack``/``close``) appends to ``history`` with the time and note.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from otsentry.store import open_db

STATUSES = ("new", "acknowledged", "closed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    rule_id TEXT,
    rule_name TEXT,
    ruleset TEXT,
    severity INTEGER,
    level TEXT,
    status TEXT NOT NULL DEFAULT 'new',
    message TEXT,
    protocol TEXT,
    source_ip TEXT,
    destination_ip TEXT,
    community_id TEXT,
    pcap_file TEXT,
    pcap_frame INTEGER,
    count INTEGER NOT NULL DEFAULT 1,
    first_seen TEXT,
    last_seen TEXT,
    evidence TEXT,
    notes TEXT NOT NULL DEFAULT '[]',
    history TEXT NOT NULL DEFAULT '[]',
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);
CREATE INDEX IF NOT EXISTS alerts_status_severity ON alerts (status, severity);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts (rule_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL,
    created TEXT NOT NULL
);
"""

_INSERT = (
    "INSERT INTO alerts (seq, id, ts, rule_id, rule_name, ruleset, severity, level, status, message,"
    " protocol,"
    " source_ip, destination_ip, community_id, pcap_file, pcap_frame, count, first_seen, last_seen, evidence,"
    " history, doc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_COLUMNS = (
    "seq id ts rule_id rule_name ruleset severity level status message protocol source_ip destination_ip"
    " community_id pcap_file pcap_frame count first_seen last_seen evidence notes history"
).split()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AlertStore:
    """Writes and triages alerts. Open it on the same database file as the event store."""

    def __init__(self, path: str | Path) -> None:
        self.db = open_db(path)
        self.conn = self.db.conn
        self.conn.executescript(_SCHEMA)

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT MAX(seq) FROM alerts").fetchone()
        return int(row[0] or 0)

    def add(self, alerts: Iterable[dict[str, Any]]) -> None:
        """Store new alerts and queue them in the outbox, all in one transaction.

        The database hands out the sequence numbers: another process (a forwarder raising a
        health alert) may have written alerts since this one last looked, so each alert's
        ``otsentry.alert.seq`` is set here, under the write lock, to follow the stored maximum.
        """
        alerts = list(alerts)
        if not alerts:
            return
        now = _now()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self._insert(alerts, now)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _insert(self, alerts: list[dict[str, Any]], now: str) -> None:
        rows, outbox = [], []
        seq = self.last_seq()
        for a in alerts:
            seq = max(seq + 1, a.get("otsentry.alert.seq") or 0)
            a["otsentry.alert.seq"] = seq
            history = [{"at": now, "status": a.get("otsentry.alert.status", "new"), "note": "raised"}]
            rows.append(
                (
                    seq,
                    a["otsentry.alert.id"],
                    a["@timestamp"],
                    a.get("rule.id"),
                    a.get("rule.name"),
                    a.get("rule.ruleset"),
                    a.get("event.severity"),
                    a.get("log.level"),
                    a.get("otsentry.alert.status", "new"),
                    a.get("message"),
                    a.get("network.protocol"),
                    a.get("source.ip"),
                    a.get("destination.ip"),
                    a.get("network.community_id"),
                    a.get("otsentry.pcap.file"),
                    a.get("otsentry.pcap.frame"),
                    a.get("otsentry.alert.count", 1),
                    a.get("otsentry.alert.first_seen", a["@timestamp"]),
                    a.get("otsentry.alert.last_seen", a["@timestamp"]),
                    a.get("otsentry.alert.evidence"),
                    orjson.dumps(history).decode(),
                    orjson.dumps(a, default=str).decode(),
                )
            )
            outbox.append((seq, a["otsentry.alert.id"], now))
        self.conn.executemany(_INSERT, rows)
        self.conn.executemany("INSERT INTO outbox (seq, alert_id, created) VALUES (?,?,?)", outbox)

    def bump(self, alert_id: str, count: int, last_seen: str, doc: Mapping[str, Any] | None = None) -> None:
        """A grouped duplicate: the stored alert now counts ``count`` hits, the last at ``last_seen``."""
        with self.conn:
            if doc is not None:
                self.conn.execute(
                    "UPDATE alerts SET count = ?, last_seen = ?, doc = ? WHERE id = ?",
                    (count, last_seen, orjson.dumps(doc, default=str).decode(), alert_id),
                )
            else:
                self.conn.execute(
                    "UPDATE alerts SET count = ?, last_seen = ? WHERE id = ?", (count, last_seen, alert_id)
                )

    # -- triage ------------------------------------------------------------------------------------------

    def get(self, alert_id: str) -> dict[str, Any] | None:
        """One alert by id, unique id prefix or seq number."""
        cur = self.conn.execute(f"SELECT {', '.join(_COLUMNS)}, doc FROM alerts WHERE id = ?", (alert_id,))
        row = cur.fetchone()
        if row is None and alert_id.isdigit():
            row = self.conn.execute(
                f"SELECT {', '.join(_COLUMNS)}, doc FROM alerts WHERE seq = ?", (int(alert_id),)
            ).fetchone()
        if row is None and len(alert_id) >= 4:
            rows = self.conn.execute(
                f"SELECT {', '.join(_COLUMNS)}, doc FROM alerts WHERE id LIKE ? LIMIT 2", (alert_id + "%",)
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return self._row(row) if row is not None else None

    def list(
        self,
        status: str | None = None,
        min_severity: int | None = None,
        since: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if min_severity is not None:
            where.append("severity >= ?")
            args.append(min_severity)
        if since:
            where.append("ts >= ?")
            args.append(since)
        sql = f"SELECT {', '.join(_COLUMNS)}, doc FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        return [self._row(r) for r in self.conn.execute(sql, args).fetchall()]

    def set_status(
        self, alert_id: str, status: str, note: str | None = None, by: str | None = None
    ) -> dict[str, Any]:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        alert = self.get(alert_id)
        if alert is None:
            raise KeyError(alert_id)
        entry: dict[str, Any] = {"at": _now(), "status": status}
        if note:
            entry["note"] = note
        if by:
            entry["by"] = by
        history = [*alert["history"], entry]
        notes = [*alert["notes"], {"at": entry["at"], "note": note}] if note else alert["notes"]
        doc = alert["doc"]
        doc["otsentry.alert.status"] = status
        with self.conn:
            self.conn.execute(
                "UPDATE alerts SET status = ?, history = ?, notes = ?, doc = ? WHERE id = ?",
                (
                    status,
                    orjson.dumps(history).decode(),
                    orjson.dumps(notes).decode(),
                    orjson.dumps(doc, default=str).decode(),
                    alert["id"],
                ),
            )
        return self.get(alert["id"])  # type: ignore[return-value]

    def outbox(self, after: int = 0, limit: int = 1000) -> list[tuple[int, str]]:
        return [
            tuple(r)
            for r in self.conn.execute(  # type: ignore[misc]
                "SELECT seq, alert_id FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        ]

    @staticmethod
    def _row(row: tuple[Any, ...]) -> dict[str, Any]:
        out = dict(zip([*_COLUMNS, "doc"], row, strict=True))
        out["notes"] = orjson.loads(out["notes"])
        out["history"] = orjson.loads(out["history"])
        out["doc"] = orjson.loads(out["doc"])
        return out

    def close(self) -> None:
        self.db.close()
