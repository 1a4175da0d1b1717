"""SQLite storage (sqlite-utils, WAL): schema, migrations and bulk writers.

Events keep their indexed columns (time, dataset, action, endpoints, flow) beside the full
event as JSON, so an analyst can query by column and still read every field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    dataset TEXT NOT NULL,
    action TEXT,
    protocol TEXT,
    source_ip TEXT,
    destination_ip TEXT,
    community_id TEXT,
    pcap_file TEXT,
    pcap_frame INTEGER,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_dataset_action ON events (dataset, action);
CREATE INDEX IF NOT EXISTS events_source ON events (source_ip);
CREATE TABLE IF NOT EXISTS flows (
    id INTEGER PRIMARY KEY,
    community_id TEXT,
    transport TEXT,
    protocol TEXT,
    client_ip TEXT,
    client_port INTEGER,
    server_ip TEXT,
    server_port INTEGER,
    vlan INTEGER,
    client_mac TEXT,
    server_mac TEXT,
    client_packets INTEGER,
    server_packets INTEGER,
    client_bytes INTEGER,
    server_bytes INTEGER,
    start_ts TEXT,
    end_ts TEXT,
    messages INTEGER,
    pcap_file TEXT
);
CREATE INDEX IF NOT EXISTS flows_pair ON flows (client_ip, server_ip);
"""

_EVENT_INSERT = (
    "INSERT INTO events (ts, dataset, action, protocol, source_ip, destination_ip, community_id,"
    " pcap_file, pcap_frame, doc) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_FLOW_COLUMNS = (
    "community_id transport protocol client_ip client_port server_ip server_port vlan client_mac server_mac"
    " client_packets server_packets client_bytes server_bytes start_ts end_ts messages pcap_file"
).split()
_FLOW_INSERT = (
    f"INSERT INTO flows ({', '.join(_FLOW_COLUMNS)}) VALUES ({', '.join('?' * len(_FLOW_COLUMNS))})"
)


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (creating or migrating) the sensor database in WAL mode."""
    db = sqlite_utils.Database(path)
    db.enable_wal()
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"{path}: database schema {version} is newer than this otsentry ({SCHEMA_VERSION})"
        )
    db.conn.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return db


class EventStore:
    """Appends events and flow records; commits in batches."""

    def __init__(self, path: str | Path) -> None:
        self.db = open_db(path)
        self.conn = self.db.conn

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        events = list(events)
        self.write(events, [orjson.dumps(e) for e in events])

    def write(self, events: list[dict[str, Any]], lines: list[bytes]) -> None:
        """Store ``events`` whose JSON serialisations are ``lines`` (a trailing newline is dropped)."""
        rows = [
            (
                e["@timestamp"],
                e["event.dataset"],
                e.get("event.action"),
                e.get("network.protocol"),
                e.get("source.ip"),
                e.get("destination.ip"),
                e.get("network.community_id"),
                e.get("otsentry.pcap.file"),
                e.get("otsentry.pcap.frame"),
                line.rstrip(b"\n").decode(),
            )
            for e, line in zip(events, lines, strict=True)
        ]
        with self.conn:
            self.conn.executemany(_EVENT_INSERT, rows)

    def add_flows(self, records: Iterable[dict[str, Any]]) -> None:
        rows = [tuple(r.get(c) for c in _FLOW_COLUMNS) for r in records]
        with self.conn:
            self.conn.executemany(_FLOW_INSERT, rows)

    def close(self) -> None:
        self.db.close()
