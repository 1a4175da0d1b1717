"""The one severity table (EVENTS.md §Alerts): Sigma level → event.severity → CEF/LEEF → syslog.

CEF ``severity`` and LEEF ``sev`` use the same 0–10 number as ``event.severity``; the syslog PRI
severity is the RFC 5424 keyword. Outputs and the baseline stage read this table; nothing else maps
severities.
"""

from __future__ import annotations

from typing import NamedTuple


class Severity(NamedTuple):
    level: str  # Sigma level, also written to log.level
    number: int  # event.severity, CEF severity, LEEF sev
    syslog: str  # RFC 5424 severity keyword
    syslog_code: int  # RFC 5424 severity number


SEVERITIES: dict[str, Severity] = {
    "informational": Severity("informational", 1, "info", 6),
    "low": Severity("low", 3, "notice", 5),
    "medium": Severity("medium", 5, "warning", 4),
    "high": Severity("high", 7, "err", 3),
    "critical": Severity("critical", 10, "crit", 2),
}
BY_NUMBER: dict[int, Severity] = {s.number: s for s in SEVERITIES.values()}
DEFAULT = SEVERITIES["medium"]


def for_level(level: str | None) -> Severity:
    return SEVERITIES.get((level or "").lower(), DEFAULT)


def for_number(number: int) -> Severity:
    """The row of the highest level whose number is not above ``number`` (e.g. 6 → medium)."""
    best = SEVERITIES["informational"]
    for row in SEVERITIES.values():
        if row.number <= number:
            best = row
    return best
