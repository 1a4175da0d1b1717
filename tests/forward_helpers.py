"""Alerts in a sensor database for the forwarding tests (through detect/alerts.py's AlertStore)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

from otsentry.detect.alerts import AlertStore

EDGE_MESSAGE = 'Write = "x\\y" | a|b ] [x] \n line2\r\nÜberwachung → 東京 ^caret'


def make_alert(seq: int, **overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "@timestamp": f"2024-05-01T12:00:{seq % 60:02d}.{seq % 1000000:06d}Z",
        "event.kind": "alert",
        "event.module": "otsentry",
        "event.dataset": "otsentry.dnp3",
        "event.action": "direct_operate",
        "network.protocol": "dnp3",
        "network.transport": "tcp",
        "network.community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "source.ip": "10.0.0.5",
        "source.port": 40123,
        "source.mac": "00-1A-2B-3C-4D-5E",
        "destination.ip": "10.0.0.10",
        "destination.port": 20000,
        "destination.mac": "00-1A-2B-3C-4D-5F",
        "observer.name": "sensor-1",
        "rule.id": "0f3c1d2e-0000-4000-8000-000000000001",
        "rule.name": "DNP3 direct operate from a non-master",
        "rule.ruleset": "sigma",
        "event.severity": 7,
        "log.level": "high",
        "threat.framework": "MITRE ATT&CK for ICS",
        "threat.technique.id": ["T0855", "T0831"],
        "message": f"DNP3 DIRECT_OPERATE TRIP on point 3 of outstation 10 from 10.0.0.5 (alert {seq})",
        "otsentry.alert.id": f"00000000-0000-4000-8000-{seq:012d}",
        "otsentry.alert.seq": seq,
        "otsentry.alert.count": 1,
        "otsentry.alert.status": "new",
    }
    alert.update(overrides)
    return alert


def fill_db(path: Path, count: int, first: int = 1, **overrides: Any) -> None:
    store = AlertStore(path)
    try:
        for start in range(first, first + count, 2000):
            stop = min(first + count, start + 2000)
            store.add([make_alert(seq, **overrides) for seq in range(start, stop)])
    finally:
        store.close()


def forward_state(path: Path, destination: str) -> dict[str, Any]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'forward_state'").fetchone():
            return {}
        row = conn.execute("SELECT * FROM forward_state WHERE destination = ?", (destination,)).fetchone()
        return dict(row) if row else {}
    finally:
        conn.close()


def wait_for(predicate: Any, timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def acked(path: Path, destination: str) -> int:
    return int(forward_state(path, destination).get("acked_seq") or 0)


_SEQ = re.compile(rb'\bseq="(\d+)"')


def received_seqs(lines: list[bytes]) -> Counter[int]:
    """Sequence numbers from the RFC 5424 structured data of received lines."""
    found: Counter[int] = Counter()
    for line in lines:
        m = _SEQ.search(line)
        if m:
            found[int(m[1])] += 1
    return found


def delivery_report(seqs: Counter[int], expected: range) -> dict[str, int]:
    missing = [s for s in expected if s not in seqs]
    duplicates = sum(c - 1 for c in seqs.values() if c > 1)
    return {"expected": len(expected), "unique": len(seqs), "missing": len(missing), "duplicates": duplicates,
            "first_missing": missing[0] if missing else 0}
