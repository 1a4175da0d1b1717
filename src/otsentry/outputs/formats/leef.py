"""IBM QRadar Log Event Extended Format, LEEF 2.0.

Source: IBM QRadar "Log Event Extended Format (LEEF) Version 2" guide — header
``LEEF:2.0|Vendor|Product|Version|EventID|DelimiterCharacter|`` then ``key=value`` attributes separated
by the delimiter (a single character, or its hex value written ``xHH``/``0xHH``); predefined keys
``devTime``/``devTimeFormat`` (Java SimpleDateFormat), ``src``, ``dst``, ``srcPort``, ``dstPort``,
``srcMAC``, ``dstMAC``, ``proto`` (IANA protocol number), ``sev`` (1–10), ``cat``.

LEEF has no escape character. We use ``^`` (IBM's own LEEF 2.0 example) rather than tab because syslog
relays rewrite tabs (rsyslog writes ``#011``). Sanitising, documented and tested: in attribute values
the delimiter and control characters become a space; in header fields ``|`` and controls do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otsentry import __version__
from otsentry.outputs.alertfields import (
    CONTROLS_TO_SPACE,
    colon_mac,
    escaper,
    parse_timestamp,
    port,
    severity_number,
    techniques,
    text,
)

DEFAULT_DELIMITER = "^"
DEV_TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
IANA_PROTOCOL = {"tcp": 6, "udp": 17}  # IANA "Assigned Internet Protocol Numbers"

# custom attribute key -> alert field (predefined LEEF keys are written first, see format_leef)
CUSTOM_KEYS: tuple[tuple[str, str], ...] = (
    ("ruleId", "rule.id"),
    ("ruleName", "rule.name"),
    ("ruleset", "rule.ruleset"),
    ("action", "event.action"),
    ("protocol", "network.protocol"),
    ("technique", "threat.technique.id"),
    ("tactic", "threat.tactic.name"),
    ("communityId", "network.community_id"),
    ("alertId", "otsentry.alert.id"),
    ("alertSeq", "otsentry.alert.seq"),
    ("count", "otsentry.alert.count"),
    ("observer", "observer.name"),
    ("msg", "message"),
)


def delimiter_field(delimiter: str) -> str:
    """How the header declares the delimiter: printable characters as themselves, others as ``xHH``."""
    if len(delimiter) != 1:
        raise ValueError("the LEEF delimiter is one character")
    return delimiter if delimiter.isprintable() and delimiter not in "|= " else f"x{ord(delimiter):02X}"


_sanitise_header = escaper({**CONTROLS_TO_SPACE, ord("|"): " "})
_VALUES: dict[str, Callable[[str], str]] = {}  # per delimiter


def sanitise_header(value: Any) -> str:
    return _sanitise_header(text(value))


def sanitise_value(value: Any, delimiter: str) -> str:
    sanitise = _VALUES.get(delimiter)
    if sanitise is None:
        sanitise = _VALUES[delimiter] = escaper({**CONTROLS_TO_SPACE, ord(delimiter): " "})
    return sanitise(text(value))


def dev_time(value: Any) -> str:
    """``devTime`` in :data:`DEV_TIME_FORMAT`, e.g. ``2024-05-01T12:00:00.123+0000``."""
    ts = parse_timestamp(value)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def attributes(alert: Mapping[str, Any]) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [
        ("devTime", dev_time(alert.get("@timestamp"))),
        ("devTimeFormat", DEV_TIME_FORMAT),
        ("sev", severity_number(alert) or 1),
        ("cat", alert.get("event.dataset")),
        ("src", alert.get("source.ip")),
        ("dst", alert.get("destination.ip")),
        ("srcPort", port(alert.get("source.port"))),
        ("dstPort", port(alert.get("destination.port"))),
        ("srcMAC", colon_mac(alert.get("source.mac"))),
        ("dstMAC", colon_mac(alert.get("destination.mac"))),
        ("proto", IANA_PROTOCOL.get(str(alert.get("network.transport", "")).lower())),
    ]
    for key, field in CUSTOM_KEYS:
        pairs.append((key, techniques(alert) if field == "threat.technique.id" else alert.get(field)))
    return [(k, v) for k, v in pairs if v not in (None, "", [])]


def format_leef(alert: Mapping[str, Any], delimiter: str = DEFAULT_DELIMITER, vendor: str = "otsentry",
                product: str = "otsentry", version: str = __version__) -> str:
    header = (
        "LEEF:2.0",
        sanitise_header(vendor),
        sanitise_header(product),
        sanitise_header(version),
        sanitise_header(alert.get("rule.id") or "otsentry-alert"),
        delimiter_field(delimiter),
    )
    body = delimiter.join(f"{key}={sanitise_value(value, delimiter)}" for key, value in attributes(alert))
    return "|".join(header) + "|" + body
