"""The alerts queue and alert detail: filters, keyset pagination, counts by severity, triage.

Reads the ``alerts`` table of :mod:`otsentry.detect.alerts`; triage goes through its
:class:`~otsentry.detect.alerts.AlertStore` so history and notes keep one format whoever writes them.
Pagination is by keyset (the last row's sort key), never OFFSET, so page 2000 costs what page 1 does;
each sort has a matching index (:data:`otsentry.web.database.PAGE_INDEXES`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from otsentry.detect import severity as severity_table
from otsentry.detect.alerts import AlertStore
from otsentry.web.database import ConsoleDB

LEVELS = [(s.number, s.level) for s in sorted(severity_table.SEVERITIES.values(), key=lambda s: -s.number)]
STATUS_FILTERS: dict[str, tuple[str, ...] | None] = {
    "open": ("new", "acknowledged"),
    "new": ("new",),
    "acknowledged": ("acknowledged",),
    "closed": ("closed",),
    "all": None,
}
# sort name -> (key columns, descending); seq (unique) always ends the key so the order is total.
SORTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "newest": (("seq",), True),
    "oldest": (("seq",), False),
    "severity": (("severity", "seq"), True),
    "time": (("ts", "seq"), True),
}
TRIAGE = {"ack": "acknowledged", "close": "closed", "reopen": "new"}
PAGE_SIZES = (25, 50, 100, 200)
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?Z?$")
_IP_TEXT = re.compile(r"^[0-9A-Fa-f:.]{1,45}$")
_ID_TEXT = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_LIST_COLUMNS = (
    "seq, id, ts, rule_id, rule_name, ruleset, severity, level, status, message, protocol, source_ip,"
    " destination_ip, count, last_seen"
)
EVENT_SCAN_LIMIT = 5000  # events read to find a grouped alert's later frames
MAX_EVENTS_SHOWN = 20


def level_name(number: int | None) -> str:
    return severity_table.for_number(int(number or 0)).level if number else "unknown"


@dataclass(frozen=True)
class QueueFilter:
    status: str = "open"
    severity: str = ""  # "7": exactly high; "7+": high and above
    rule: str = ""
    protocol: str = ""
    asset: str = ""
    since: str = ""
    until: str = ""
    sort: str = "newest"
    after: str = ""
    before: str = ""
    size: int = 50
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> QueueFilter:
        """Validated filters from the query string; bad values are dropped and reported."""
        problems: list[str] = []

        def pick(name: str, ok: Any, default: str = "") -> str:
            value = (params.get(name) or "").strip()
            if not value:
                return default
            if ok(value):
                return value
            problems.append(f"ignored {name}")
            return default

        size_text = pick("size", lambda v: v.isdigit() and int(v) in PAGE_SIZES, "50")
        return cls(
            status=pick("status", STATUS_FILTERS.__contains__, "open"),
            severity=pick("severity", lambda v: re.fullmatch(r"(10|[1-9])\+?", v) is not None),
            rule=pick("rule", _ID_TEXT.match),
            protocol=pick("protocol", lambda v: re.fullmatch(r"[a-z0-9_]{1,32}", v) is not None),
            asset=pick("asset", _IP_TEXT.match),
            since=pick("since", _TIME.match),
            until=pick("until", _TIME.match),
            sort=pick("sort", SORTS.__contains__, "newest"),
            after=pick("after", lambda v: len(v) < 80),
            before=pick("before", lambda v: len(v) < 80),
            size=int(size_text),
            problems=tuple(problems),
        )

    def conditions(self, with_severity: bool = True) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        statuses = STATUS_FILTERS[self.status]
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            params += statuses
        if with_severity and self.severity:
            number = int(self.severity.rstrip("+"))
            where.append("severity >= ?" if self.severity.endswith("+") else "severity = ?")
            params.append(number)
        if self.rule:
            where.append("rule_id = ?")
            params.append(self.rule)
        if self.protocol:
            where.append("protocol = ?")
            params.append(self.protocol)
        if self.asset:
            where.append("(source_ip = ? OR destination_ip = ?)")
            params += [self.asset, self.asset]
        if self.since:
            where.append("ts >= ?")
            params.append(self.since)
        if self.until:
            where.append("ts < ?")
            params.append(self.until)
        return where, params

    def query_string(self, **changes: Any) -> str:
        """This filter as a query string, with ``changes`` applied (pagination cursors reset)."""
        values = replace(self, **{"after": "", "before": "", **changes})
        pairs = {
            "status": values.status,
            "severity": values.severity,
            "rule": values.rule,
            "protocol": values.protocol,
            "asset": values.asset,
            "since": values.since,
            "until": values.until,
            "sort": values.sort,
            "size": str(values.size) if values.size != 50 else "",
            "after": values.after,
            "before": values.before,
        }
        return urlencode({k: v for k, v in pairs.items() if v and not (k == "sort" and v == "newest")})


def _cursor(row: Mapping[str, Any], columns: tuple[str, ...]) -> str:
    return "~".join(str(row[c]) for c in columns)


def _parse_cursor(text: str, columns: tuple[str, ...]) -> list[Any] | None:
    parts = text.split("~")
    if len(parts) != len(columns):
        return None
    values: list[Any] = []
    for column, part in zip(columns, parts, strict=True):
        if column in ("seq", "severity"):
            if not part.isdigit():
                return None
            values.append(int(part))
        elif column == "ts":
            if not _TIME.match(part):
                return None
            values.append(part)
    return values


@dataclass
class QueuePage:
    rows: list[dict[str, Any]]
    counts: list[tuple[int, str, int]]  # (severity, level, count) for the filter without its severity
    total: int
    next_cursor: str | None
    prev_cursor: str | None
    rules: list[tuple[str, str]]
    protocols: list[str]
    available: bool = True


class AlertQueries:
    """What the alert pages read."""

    def __init__(self, db: ConsoleDB) -> None:
        self.db = db
        self._choices: tuple[Any, list[tuple[str, str]], list[str]] | None = None

    def available(self) -> bool:
        return "alerts" in self.db.tables()

    def queue(self, f: QueueFilter) -> QueuePage:
        if not self.available():
            return QueuePage([], [], 0, None, None, [], [], available=False)
        columns, descending = SORTS[f.sort]
        where, params = f.conditions()
        backwards = False
        cursor_text = f.after or f.before
        cursor = _parse_cursor(cursor_text, columns) if cursor_text else None
        if cursor is not None:
            backwards = bool(f.before)
            forward_op = "<" if descending else ">"
            op = {"<": ">", ">": "<"}[forward_op] if backwards else forward_op
            keys = ", ".join(columns)
            where.append(f"({keys}) {op} ({', '.join('?' * len(columns))})")
            params += cursor
        order_desc = descending != backwards
        direction = "DESC" if order_desc else "ASC"
        sql = f"SELECT {_LIST_COLUMNS} FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {', '.join(f'{c} {direction}' for c in columns)} LIMIT ?"
        rows = [dict(r) for r in self.db.query(sql, [*params, f.size + 1])]
        more = len(rows) > f.size
        rows = rows[: f.size]
        if backwards:
            rows.reverse()
        for row in rows:
            row["level"] = row["level"] or level_name(row["severity"])
        has_next = (more and not backwards) or (backwards and cursor is not None)
        has_prev = (more and backwards) or (not backwards and cursor is not None)
        counts, total = self._counts(f)
        rules, protocols = self._filter_choices()
        return QueuePage(
            rows,
            counts,
            total,
            _cursor(rows[-1], columns) if rows and has_next else None,
            _cursor(rows[0], columns) if rows and has_prev else None,
            rules,
            protocols,
        )

    def _counts(self, f: QueueFilter) -> tuple[list[tuple[int, str, int]], int]:
        where, params = f.conditions(with_severity=False)
        sql = "SELECT severity, COUNT(*) FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        found = {int(r[0] or 0): int(r[1]) for r in self.db.query(sql + " GROUP BY severity", params)}
        counts = [(number, level, found.get(number, 0)) for number, level in LEVELS]
        known = {n for n, _ in LEVELS}
        counts += [(n, level_name(n), c) for n, c in sorted(found.items(), reverse=True) if n not in known]
        if f.severity:
            number = int(f.severity.rstrip("+"))
            plus = f.severity.endswith("+")
            total = sum(c for n, c in found.items() if (n >= number if plus else n == number))
        else:
            total = sum(found.values())
        return counts, total

    def _filter_choices(self) -> tuple[list[tuple[str, str]], list[str]]:
        """Rules and protocols present, for the filter menus; cached until a new alert arrives."""
        mark = tuple(self.db.one("SELECT MAX(seq), COUNT(*) FROM alerts") or ())
        if self._choices is None or self._choices[0] != mark:
            rules = [
                (r[0], r[1] or r[0])
                for r in self.db.query(
                    "SELECT rule_id, (SELECT rule_name FROM alerts b WHERE b.rule_id = a.rule_id LIMIT 1)"
                    " FROM (SELECT DISTINCT rule_id FROM alerts WHERE rule_id IS NOT NULL) a"
                )
            ]
            rules.sort(key=lambda r: r[1].lower())
            protocols = [
                r[0]
                for r in self.db.query(
                    "SELECT DISTINCT protocol FROM alerts WHERE protocol IS NOT NULL ORDER BY protocol"
                )
            ]
            self._choices = (mark, rules, protocols)
        return self._choices[1], self._choices[2]

    # -- one alert ---------------------------------------------------------------------------------

    def get(self, ident: str) -> dict[str, Any] | None:
        if not self.available() or not _ID_TEXT.match(ident):
            return None
        row = self.db.one("SELECT * FROM alerts WHERE id = ?", (ident,))
        if row is None and ident.isdigit():
            row = self.db.one("SELECT * FROM alerts WHERE seq = ?", (int(ident),))
        if row is None:
            return None
        alert = dict(row)
        for name in ("notes", "history", "doc"):
            try:
                alert[name] = orjson.loads(alert.get(name) or "null") or ([] if name != "doc" else {})
            except orjson.JSONDecodeError:
                alert[name] = [] if name != "doc" else {}
        alert["level"] = alert.get("level") or level_name(alert.get("severity"))
        return alert

    def existing_ids(self, ids: list[str]) -> list[str]:
        """The ids among ``ids`` that name an alert exactly (no prefix or seq matching for actions)."""
        wanted = [i for i in dict.fromkeys(ids) if _ID_TEXT.match(i)][:500]
        if not wanted or not self.available():
            return []
        marks = ",".join("?" * len(wanted))
        found = {r[0] for r in self.db.query(f"SELECT id FROM alerts WHERE id IN ({marks})", wanted)}
        return [i for i in wanted if i in found]

    def assets_of(self, alert: Mapping[str, Any]) -> list[str]:
        ips = [alert.get("source_ip"), alert.get("destination_ip")]
        related = alert["doc"].get("related.ip")
        if isinstance(related, list):
            ips += [ip for ip in related if isinstance(ip, str)]
        out: list[str] = []
        for ip in ips:
            if ip and ip not in out:
                out.append(ip)
        return out[:8]

    def related(self, alert: Mapping[str, Any], limit: int = 20) -> list[dict[str, Any]]:
        """Newest alerts sharing an asset with ``alert``: one index range per IP and side, merged."""
        ips = self.assets_of(alert)
        if not ips:
            return []
        parts, params = [], []
        for ip in ips:
            for column in ("source_ip", "destination_ip"):
                parts.append(
                    f"SELECT * FROM (SELECT {_LIST_COLUMNS} FROM alerts WHERE {column} = ? AND seq != ?"
                    " ORDER BY seq DESC LIMIT ?)"
                )
                params += [ip, alert["seq"], limit]
        sql = f"SELECT DISTINCT * FROM ({' UNION ALL '.join(parts)}) ORDER BY seq DESC LIMIT ?"
        rows = [dict(r) for r in self.db.query(sql, [*params, limit])]
        for row in rows:
            row["level"] = row["level"] or level_name(row["severity"])
        return rows

    def for_asset(self, ip: str, limit: int = 50) -> list[dict[str, Any]]:
        if not self.available():
            return []
        sql = (
            f"SELECT DISTINCT * FROM (SELECT * FROM (SELECT {_LIST_COLUMNS} FROM alerts WHERE source_ip = ?"
            f" ORDER BY seq DESC LIMIT ?) UNION ALL SELECT * FROM (SELECT {_LIST_COLUMNS} FROM alerts"
            " WHERE destination_ip = ? ORDER BY seq DESC LIMIT ?)) ORDER BY seq DESC LIMIT ?"
        )
        rows = [dict(r) for r in self.db.query(sql, (ip, limit, ip, limit, limit))]
        for row in rows:
            row["level"] = row["level"] or level_name(row["severity"])
        return rows

    def triggering_events(self, alert: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """The stored events that raised ``alert`` (its frames in its flow), and whether they came from the
        events table (``False``: only the copy of the first event inside the alert is known)."""
        doc = alert["doc"]
        frames = [f for f in doc.get("otsentry.alert.frames") or [] if isinstance(f, int)]
        if "events" in self.db.tables() and alert.get("ts"):
            community = alert.get("community_id")
            first, last = alert.get("first_seen") or alert["ts"], alert.get("last_seen") or alert["ts"]
            rows = self.db.query(
                "SELECT doc, pcap_file, pcap_frame, community_id FROM events WHERE ts >= ? AND ts <= ?"
                " ORDER BY ts, id LIMIT ?",
                (min(first, alert["ts"]), max(last, alert["ts"]), EVENT_SCAN_LIMIT),
            )
            found = []
            for row in rows:
                if community and row["community_id"] != community:
                    continue
                if frames and row["pcap_frame"] not in frames:
                    continue
                if alert.get("pcap_file") and row["pcap_file"] != alert["pcap_file"]:
                    continue
                if not frames and row["pcap_frame"] != alert.get("pcap_frame"):
                    continue
                found.append(orjson.loads(row["doc"]))
                if len(found) >= MAX_EVENTS_SHOWN:
                    break
            if found:
                return found, True
        return [trigger_fields(doc)], False

    def evidence_path(self, alert: Mapping[str, Any], allowed: list[Path]) -> Path | None:
        """The alert's evidence pcap when it exists inside an allowed evidence directory."""
        text = alert.get("evidence")
        if not text or not str(text).endswith(".pcap"):
            return None
        path = Path(text)
        if not path.is_absolute():
            path = self.db.path.parent / path
        try:
            resolved = path.resolve(strict=True)
        except OSError:
            return None
        for root in allowed:
            if resolved.is_relative_to(root.resolve()) and resolved.is_file():
                return resolved
        return None


# Fields the alert adds to the event that raised it; the rest is the event, shown field by field.
_ALERT_PREFIXES = ("rule.", "threat.", "otsentry.alert.", "otsentry.correlation.", "otsentry.baseline.")
_ALERT_FIELDS = {"message", "tags", "event.severity", "log.level", "related.ip", "event.kind"}


def trigger_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in _ALERT_FIELDS and not k.startswith(_ALERT_PREFIXES)}


def techniques(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    ids = doc.get("threat.technique.id") or []
    names = doc.get("threat.technique.name") or []
    if isinstance(ids, str):
        ids = [ids]
    if isinstance(names, str):
        names = [names]
    return [(str(i), str(names[n]) if n < len(names) else "") for n, i in enumerate(ids)]


def attack_url(technique_id: str) -> str | None:
    """The technique's page on attack.mitre.org (for the analyst's browser; the sensor needs no internet)."""
    match = re.fullmatch(r"T(\d{4})(?:\.(\d{3}))?", technique_id)
    if not match:
        return None
    sub = f"/{match.group(2)}" if match.group(2) else ""
    return f"https://attack.mitre.org/techniques/T{match.group(1)}{sub}/"


def triage(db_path: Path, alert_ids: list[str], action: str, note: str | None, username: str) -> list[dict]:
    """Set the status of each alert (by id) through the alert store; returns the alerts changed."""
    status = TRIAGE[action]
    store = AlertStore(db_path)
    changed = []
    try:
        for alert_id in alert_ids:
            try:
                changed.append(store.set_status(alert_id, status, note or None, by=username))
            except KeyError:
                continue
    finally:
        store.close()
    return changed
