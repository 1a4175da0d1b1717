"""Sensor health: packets per second, drops, decode errors, and the SIEM outbox lag per destination.

Live figures are the running sensor's metric events (:mod:`otsentry.health`: ``event.kind: metric``,
``event.dataset: otsentry.health``), which it stores in the ``events`` table every stats interval: one
``capture_stats`` per interface (packets/s, Mbit/s, kernel drops, loss ratio) and one ``sensor_stats``
(events/s, decode errors, flows, outbox lag). The page shows the latest of each, and the open
sensor-health alerts (interface silent, capture loss, forwarding drops). Without metric events (replays
only) it shows what the stored flows and events say. Outbox lag per destination is read from the
forwarder's ``forward_state`` and the ``outbox``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import orjson

from otsentry.web.database import ConsoleDB

HEALTH_DATASET = "otsentry.health"
HEALTH_RULES = ("otsentry-capture-silent", "otsentry-capture-loss", "otsentry-forward-drop")
STALE_INTERVALS = 3  # a sample older than this many stats intervals (or 5 min) is stale
SCAN_SAMPLES = 256  # newest metric events read to find each interface's latest
CACHE_SECONDS = 10.0


def _parse_ts(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        try:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


def _numbers(doc: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("otsentry.health."): v for k, v in doc.items() if k.startswith("otsentry.health.")}


class SensorHealth:
    def __init__(self, db: ConsoleDB) -> None:
        self.db = db
        self._replay_cache: tuple[float, tuple[Any, ...], dict[str, Any]] | None = None

    def _latest(self, action: str) -> list[dict[str, Any]]:
        """The newest ``action`` metric of each sensor (and interface), newest first."""
        rows = self.db.query(
            "SELECT doc FROM events WHERE dataset = ? AND action = ? ORDER BY id DESC LIMIT ?",
            (HEALTH_DATASET, action, SCAN_SAMPLES),
        )
        seen: set[tuple[str, str]] = set()
        out = []
        now = time.time()
        for (text,) in rows:
            doc = orjson.loads(text)
            key = (str(doc.get("observer.name") or ""), str(doc.get("observer.ingress.interface.name") or ""))
            if key in seen:
                continue
            seen.add(key)
            numbers = _numbers(doc)
            at = _parse_ts(doc.get("@timestamp"))
            age = now - at if at else None
            limit = max(300.0, STALE_INTERVALS * float(numbers.get("interval") or 0))
            out.append(
                {
                    "observer": key[0],
                    "interface": key[1],
                    "ts": doc.get("@timestamp"),
                    "age": age,
                    "stale": age is None or age > limit,
                    **numbers,
                }
            )
        return out

    def live(self) -> dict[str, list[dict[str, Any]]] | None:
        """Latest ``capture_stats`` per interface and ``sensor_stats`` per sensor, or None without any."""
        if "events" not in self.db.tables():
            return None
        capture, sensor = self._latest("capture_stats"), self._latest("sensor_stats")
        if not capture and not sensor:
            return None
        for row in sensor:
            interval = float(row.get("interval") or 0)
            row["decode_errors_per_s"] = row.get("decode_errors", 0) / interval if interval else None
        return {"capture": sorted(capture, key=lambda r: (r["observer"], r["interface"])), "sensor": sensor}

    def health_alerts(self) -> list[dict[str, Any]]:
        """Open sensor-health alerts, newest first."""
        if "alerts" not in self.db.tables():
            return []
        marks = ",".join("?" * len(HEALTH_RULES))
        return [
            dict(r)
            for r in self.db.query(
                f"SELECT seq, id, ts, rule_name, severity, level, status, message FROM alerts"
                f" WHERE rule_id IN ({marks}) AND status != 'closed' ORDER BY seq DESC LIMIT 20",
                HEALTH_RULES,
            )
        ]

    def replayed(self) -> dict[str, Any] | None:
        """What stored replays say: flows, packets over their time span, events and decode errors."""
        tables = self.db.tables()
        if "events" not in tables and "flows" not in tables:
            return None
        mark = tuple(
            self.db.one(f"SELECT MAX(id) FROM {t}")[0]  # type: ignore[index]
            for t in ("events", "flows")
            if t in tables
        )
        cached = self._replay_cache
        if cached and (cached[1] == mark or time.time() - cached[0] < CACHE_SECONDS):
            return cached[2]
        out: dict[str, Any] = {"flows": 0, "packets": 0, "bytes": 0, "span": None, "packets_per_s": None}
        if "flows" in tables:
            row = self.db.one(
                "SELECT COUNT(*), SUM(client_packets + server_packets), SUM(client_bytes + server_bytes),"
                " MIN(start_ts), MAX(end_ts) FROM flows"
            )
            assert row is not None
            out["flows"], out["packets"], out["bytes"] = row[0] or 0, row[1] or 0, row[2] or 0
            start, end = _parse_ts(row[3]), _parse_ts(row[4])
            if start and end and end > start:
                out["span"] = (row[3], row[4])
                out["packets_per_s"] = out["packets"] / (end - start)
        out["events"] = []
        out["decode_errors"] = []
        if "events" in tables:
            out["events"] = [
                (r[0], int(r[1]))
                for r in self.db.query("SELECT dataset, COUNT(*) FROM events GROUP BY dataset")
                if r[0] != HEALTH_DATASET  # the metric events are shown above
            ]
            out["decode_errors"] = [
                (r[0] or "unknown", int(r[1]))
                for r in self.db.query(
                    "SELECT protocol, COUNT(*) FROM events WHERE dataset = 'otsentry.decode_error'"
                    " GROUP BY protocol ORDER BY 2 DESC"
                )
            ]
        self._replay_cache = (time.time(), mark, out)
        return out

    def outbox(self) -> list[dict[str, Any]] | None:
        """Per SIEM destination: acknowledged sequence, backlog, age of the oldest waiting alert, errors."""
        tables = self.db.tables()
        if "forward_state" not in tables:
            return None
        latest = 0
        if "alerts" in tables:
            latest = int(self.db.one("SELECT COALESCE(MAX(seq), 0) FROM alerts")[0])  # type: ignore[index]
        now = time.time()
        out = []
        for state in self.db.query("SELECT * FROM forward_state ORDER BY destination"):
            row = dict(state)
            backlog, oldest = 0, None
            if "outbox" in tables:
                found = self.db.one(
                    "SELECT COUNT(*), MIN(created) FROM outbox WHERE seq > ?", (row["acked_seq"],)
                )
                backlog, oldest = (int(found[0]), found[1]) if found else (0, None)
            oldest_ts = _parse_ts(oldest)
            row["latest_seq"] = latest
            row["behind"] = max(0, latest - int(row["acked_seq"] or 0))
            row["backlog"] = backlog
            row["oldest_waiting"] = oldest
            row["lag_seconds"] = now - oldest_ts if oldest_ts and backlog else 0.0
            out.append(row)
        return out
