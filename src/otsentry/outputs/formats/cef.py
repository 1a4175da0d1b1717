"""ArcSight Common Event Format (CEF:0).

Source: "Implementing ArcSight Common Event Format (CEF)", Micro Focus, revision 25 — header
``CEF:Version|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|Extension``;
in the header ``|`` and ``\\`` are escaped with a backslash; in extension values ``=`` and ``\\`` are
escaped and a newline is written ``\\n`` (``\\r`` for CR); multi-line text is allowed only in extension
values. The extension keys are from the spec's dictionary; ``cs1..cs6`` carry a ``csNLabel``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otsentry import __version__
from otsentry.outputs.alertfields import (
    CONTROLS_TO_SPACE,
    colon_mac,
    epoch_ms,
    escaper,
    ip_version,
    port,
    severity_number,
    techniques,
    text,
)

# csN: (label, alert field or computed name). Labels are what an ArcSight analyst sees.
CUSTOM_STRINGS: tuple[tuple[str, str, str], ...] = (
    ("cs1", "Rule ID", "rule.id"),
    ("cs2", "ATT&CK Technique", "threat.technique.id"),
    ("cs3", "Protocol", "network.protocol"),
    ("cs4", "Community ID", "network.community_id"),
    ("cs5", "Alert ID", "otsentry.alert.id"),
    ("cs6", "Alert Seq", "otsentry.alert.seq"),
)
ENDPOINT_KEYS = {"source": ("src", "spt", "smac"), "destination": ("dst", "dpt", "dmac")}
# IPv6 addresses cannot go in src/dst (IPv4 only in CEF:0): the custom IPv6 fields with labels.
IPV6_FIELDS = {"source": ("c6a2", "Source IPv6 Address"), "destination": ("c6a3", "Destination IPv6 Address")}


# Header: escape \ and |, no line breaks allowed (they become a space like every other control).
_HEADER = {**CONTROLS_TO_SPACE, ord("\\"): "\\\\", ord("|"): "\\|"}
# Extension values: escape \ and =, write CR and LF as \r and \n; other controls become a space.
_EXTENSION = {**CONTROLS_TO_SPACE, ord("\\"): "\\\\", ord("="): "\\=", ord("\r"): "\\r", ord("\n"): "\\n"}


_escape_header = escaper(_HEADER)
_escape_extension = escaper(_EXTENSION)


def escape_header(value: Any) -> str:
    return _escape_header(text(value))


def escape_extension(value: Any) -> str:
    return _escape_extension(text(value))


def extension_pairs(alert: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (key, value) pairs of the extension, in a fixed order, absent values left out."""
    pairs: list[tuple[str, Any]] = [("rt", epoch_ms(alert.get("@timestamp")))]
    for side, (ip_key, port_key, mac_key) in ENDPOINT_KEYS.items():
        ip = alert.get(f"{side}.ip")
        version = ip_version(ip)
        if version == 4:
            pairs.append((ip_key, ip))
        elif version == 6:
            key, label = IPV6_FIELDS[side]
            pairs += [(key, ip), (f"{key}Label", label)]
        p = port(alert.get(f"{side}.port"))
        if p is not None:
            pairs.append((port_key, p))
        mac = colon_mac(alert.get(f"{side}.mac"))
        if mac:
            pairs.append((mac_key, mac))
    optional = (
        ("proto", (alert.get("network.transport") or "").upper() or None),
        ("app", alert.get("network.protocol")),
        ("act", alert.get("event.action")),
        ("cat", alert.get("event.dataset")),
        ("cnt", alert.get("otsentry.alert.count")),
        ("dvchost", alert.get("observer.name")),
        ("msg", alert.get("message")),
    )
    pairs += [(k, v) for k, v in optional if v not in (None, "")]
    for key, stamp in (("start", "otsentry.alert.first_seen"), ("end", "otsentry.alert.last_seen")):
        if alert.get(stamp):
            pairs.append((key, epoch_ms(alert[stamp])))
    for key, label, field in CUSTOM_STRINGS:
        value = techniques(alert) if field == "threat.technique.id" else alert.get(field)
        if value not in (None, "", []):
            pairs += [(key, value), (f"{key}Label", label)]
    return pairs


def format_cef(alert: Mapping[str, Any], vendor: str = "otsentry", product: str = "otsentry",
               version: str = __version__) -> str:
    header = (
        "CEF:0",
        escape_header(vendor),
        escape_header(product),
        escape_header(version),
        escape_header(alert.get("rule.id") or "otsentry-alert"),
        escape_header(alert.get("rule.name") or alert.get("message") or "otsentry alert"),
        str(severity_number(alert)),
    )
    extension = " ".join(f"{key}={escape_extension(value)}" for key, value in extension_pairs(alert))
    return "|".join(header) + "|" + extension
