"""Sensor-health alerts for forwarding drops: never silent — stored and queued like any alert.

The alert goes through :class:`~otsentry.detect.alerts.AlertStore` (same transaction as its outbox
row), so every other destination forwards it, and this one too once it recovers. Its sequence number
is taken as MAX(seq) + 1 inside an immediate (write-locked) transaction.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

from otsentry.detect import severity
from otsentry.detect.alerts import AlertStore
from otsentry.outputs.state import Drop, now_text

RULE_ID = "otsentry-forward-drop"
RULE_NAME = "SIEM forwarding dropped alerts"
LEVEL = severity.SEVERITIES["high"]


def drop_alert(destination: str, drops: list[Drop], observer_name: str | None) -> dict[str, Any]:
    count = sum(d.count for d in drops)
    first = min(d.first_seq for d in drops)
    last = max(d.last_seq for d in drops)
    reasons = "; ".join(sorted({d.reason for d in drops}))
    now = now_text()
    return {
        "@timestamp": now,
        "event.kind": "alert",
        "event.module": "otsentry",
        "event.dataset": "otsentry.health",
        "event.action": "forward_drop",
        "event.created": now,
        "observer.name": observer_name or socket.gethostname(),
        "rule.id": RULE_ID,
        "rule.name": RULE_NAME,
        "rule.ruleset": "sensor",
        "event.severity": LEVEL.number,
        "log.level": LEVEL.level,
        "message": (
            f"Forwarding to destination {destination!r} dropped {count} alert(s) (seq {first}–{last}): "
            f"{reasons}. They are still in the sensor database; resend them with "
            f"`otsentry forward replay --since {first} --dest {destination}`."
        ),
        "otsentry.forward.destination": destination,
        "otsentry.forward.dropped": count,
        "otsentry.forward.first_seq": first,
        "otsentry.forward.last_seq": last,
        "otsentry.alert.count": 1,
        "otsentry.alert.status": "new",
    }


def raise_alert(db_path: str | Path, alert: dict[str, Any]) -> int:
    """Store ``alert``; the store gives it the next sequence number, which is returned."""
    store = AlertStore(db_path)
    try:
        alert["otsentry.alert.id"] = str(uuid.uuid4())
        store.add([alert])
        return alert["otsentry.alert.seq"]
    finally:
        store.close()
