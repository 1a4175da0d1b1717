"""Packet time of an event as a float, from its RFC 3339 ``@timestamp`` (cheap: cached per second)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from typing import Any

_SECONDS: dict[str, int] = {}


def parse_timestamp(text: str) -> float:
    """``2024-05-14T06:00:01.015835Z`` → epoch seconds; the date-time part is parsed once per second."""
    prefix = text[:19]
    sec = _SECONDS.get(prefix)
    if sec is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        sec = _SECONDS[prefix] = calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))
    rest = text[19:].rstrip("Z")
    if rest.startswith("."):
        digits = rest[1:7]
        return sec + int(digits) / 10 ** len(digits) if digits.isdigit() else float(sec)
    return float(sec)


def event_ts(event: Mapping[str, Any]) -> float:
    value = event.get("@timestamp")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and len(value) >= 19:
        return parse_timestamp(value)
    return 0.0
