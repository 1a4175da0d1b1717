"""Syslog framing: RFC 5424 (with structured data) and RFC 3164 (BSD), around any payload.

RFC 5424 §6: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [SP MSG]``; PRI is
facility × 8 + severity (§6.2.1); HOSTNAME, APP-NAME, PROCID, MSGID are PRINTUSASCII (33–126) of at
most 255/48/128/32 octets or ``-``; SD-NAMEs (SD-ID, PARAM-NAME) are at most 32 PRINTUSASCII without
``=``, space, ``]`` and ``"``; inside PARAM-VALUE ``"``, ``\\`` and ``]`` MUST be escaped with ``\\``
(§6.3.3); a UTF-8 MSG starts with the BOM (§6.4). Control characters in SD values are replaced by a
space (relays escape them); the payload formats already contain none.

RFC 3164 §4.1: ``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`` — day space-padded, English month, the TAG
at most 32 alphanumeric characters. We write the alert's time in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otsentry.outputs.alertfields import (
    CONTROLS_TO_SPACE,
    escaper,
    parse_timestamp,
    replace_controls,
    rfc3339,
    syslog_severity,
    techniques,
    text,
)

# RFC 5424 §6.2.1 table 1
FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
    "solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
    "local5": 21, "local6": 22, "local7": 23,
}
BOM = b"\xef\xbb\xbf"
# 32473 is the example Private Enterprise Number of RFC 5612; set sd_id to your own PEN in production.
DEFAULT_SD_ID = "otsentry@32473"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# PARAM-NAME -> alert field
SD_PARAMS: tuple[tuple[str, str], ...] = (
    ("seq", "otsentry.alert.seq"),
    ("id", "otsentry.alert.id"),
    ("rule", "rule.id"),
    ("ruleset", "rule.ruleset"),
    ("severity", "event.severity"),
    ("level", "log.level"),
    ("technique", "threat.technique.id"),
    ("protocol", "network.protocol"),
    ("action", "event.action"),
    ("src", "source.ip"),
    ("dst", "destination.ip"),
    ("cid", "network.community_id"),
)


def header_token(value: Any, limit: int) -> str:
    """A PRINTUSASCII header field (other characters become ``_``), or the NILVALUE ``-``."""
    token = text(value)
    if not (token.isascii() and token.isprintable() and " " not in token):
        token = "".join(c if 33 <= ord(c) <= 126 else "_" for c in token)
    return token[:limit] or "-"


# PARAM-VALUE: escape " \ ] (§6.3.3); controls become a space.
_PARAM_VALUE = {**CONTROLS_TO_SPACE, ord("\\"): "\\\\", ord('"'): '\\"', ord("]"): "\\]"}


_escape_param_value = escaper(_PARAM_VALUE)


def escape_param_value(value: Any) -> str:
    return _escape_param_value(text(value))


def structured_data(alert: Mapping[str, Any], sd_id: str = DEFAULT_SD_ID) -> str:
    params = []
    for name, field in SD_PARAMS:
        value = techniques(alert) if field == "threat.technique.id" else alert.get(field)
        if value not in (None, "", []):
            params.append(f'{name}="{escape_param_value(value)}"')
    return f"[{sd_id}{''.join(' ' + p for p in params)}]" if params else "-"


def pri(alert: Mapping[str, Any], facility: str) -> int:
    return FACILITIES[facility] * 8 + syslog_severity(alert)


def rfc5424(alert: Mapping[str, Any], payload: str, *, facility: str = "local4", hostname: str | None = None,
            app_name: str = "otsentry", procid: str | None = None, msgid: str = "alert",
            sd_id: str = DEFAULT_SD_ID, with_sd: bool = True) -> bytes:
    host = hostname or alert.get("observer.name")
    head = (
        f"<{pri(alert, facility)}>1 {rfc3339(alert.get('@timestamp'))} {header_token(host, 255)} "
        f"{header_token(app_name, 48)} {header_token(procid, 128)} {header_token(msgid, 32)} "
        f"{structured_data(alert, sd_id) if with_sd else '-'}"
    ).encode()
    if not payload:
        return head
    body = payload.encode()
    return head + b" " + (BOM + body if not payload.isascii() else body)


def rfc3164(alert: Mapping[str, Any], payload: str, *, facility: str = "local4", hostname: str | None = None,
            app_name: str = "otsentry") -> bytes:
    ts = parse_timestamp(alert.get("@timestamp"))
    stamp = f"{MONTHS[ts.month - 1]} {ts.day:2d} {ts:%H:%M:%S}"
    tag = "".join(c for c in app_name if c.isascii() and c.isalnum())[:32] or "otsentry"
    host = header_token(hostname or alert.get("observer.name"), 255)
    if host == "-":
        host = "otsentry"
    return f"<{pri(alert, facility)}>{stamp} {host} {tag}: {replace_controls(payload)}".encode()
