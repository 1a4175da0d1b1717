"""Read the values every output needs from a flat alert (dotted ECS names, see EVENTS.md §Alerts).

Outputs never decide severity: the number comes from ``event.severity`` and the syslog keyword from
the one table in :mod:`otsentry.detect.severity`.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any

from otsentry.detect import severity as severity_table

# C0 controls, DEL and C1 controls: syslog relays escape or cut them (rsyslog writes ``#011``), so every
# text format replaces those it cannot encode with a space. Formats extend this str.translate table
# with their own escapes (one C-level pass per value).
CONTROLS_TO_SPACE: dict[int, str] = {c: " " for c in (*range(0x20), *range(0x7F, 0xA0))}
_RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


def escaper(table: dict[int, str]) -> Callable[[str], str]:
    """A function applying ``table``; the common case (nothing to change) costs one regex search."""
    special = re.compile("[" + "".join(re.escape(chr(c)) for c in table) + "]")
    search = special.search

    def escape(value: str) -> str:
        return value.translate(table) if search(value) else value

    return escape


replace_controls = escaper(CONTROLS_TO_SPACE)


def text(value: Any) -> str:
    """One field as text; lists (ATT&CK ids, tags) become comma-separated."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(text(v) for v in value)
    return str(value)


def severity_number(alert: Mapping[str, Any]) -> int:
    """``event.severity`` clamped to the 0–10 range CEF and LEEF accept."""
    try:
        number = int(alert.get("event.severity", severity_table.DEFAULT.number))
    except (TypeError, ValueError):
        number = severity_table.DEFAULT.number
    return max(0, min(10, number))


def syslog_severity(alert: Mapping[str, Any]) -> int:
    """RFC 5424 severity code (0–7) from the one severity table."""
    number = severity_number(alert)
    return severity_table.for_number(max(number, 1)).syslog_code


def parse_timestamp(value: Any) -> dt.datetime:
    """``@timestamp`` (RFC 3339) as an aware UTC datetime; now when absent or unreadable."""
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC)
        except ValueError:
            pass
    return dt.datetime.now(dt.UTC)


def epoch_ms(value: Any) -> int:
    return int(parse_timestamp(value).timestamp() * 1000)


def rfc3339(value: Any) -> str:
    """RFC 5424 TIMESTAMP: UTC, at most 6 fraction digits (TIME-SECFRAC), ``Z``."""
    if isinstance(value, str) and _RFC3339_UTC.fullmatch(value):
        return value  # otsentry's own @timestamp form already is one
    return parse_timestamp(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def colon_mac(value: Any) -> str | None:
    """ECS ``00-1A-2B-3C-4D-5E`` → ``00:1A:2B:3C:4D:5E`` (the form CEF and LEEF document)."""
    if not isinstance(value, str) or not value:
        return None
    mac = value.replace("-", ":").upper()
    return mac if re.fullmatch(r"[0-9A-F]{2}(:[0-9A-F]{2}){5}", mac) else None


def ip_version(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    family, version = (socket.AF_INET6, 6) if ":" in value else (socket.AF_INET, 4)
    try:
        socket.inet_pton(family, value)
    except OSError:
        return None
    return version


def techniques(alert: Mapping[str, Any]) -> list[str]:
    value = alert.get("threat.technique.id")
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def port(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535 else None
