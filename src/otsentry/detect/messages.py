"""Plain-language alert messages rendered from a rule's template and the triggering event.

A rule carries ``otsentry: {message: "..."}``. ``{field}`` inserts an event field (lists joined with
", "), ``{field|upper}``/``{field|lower}``/``{field|first}`` transform it, ``{field|default text}``
gives a fallback; transforms chain (``{field|upper|default none}``). Computed names start with an underscore:

* ``{_unknown_note}`` — ", which is not a known master" (DNP3; "client" for Modbus/DLMS/C12.22,
  "controlling station" for IEC 104) when the enrichment stage says the sender/receiver pair is not in
  the baseline (``otsentry.baseline.known_pair: false``); empty otherwise;
* ``{_peer}`` — "source.ip → destination.ip";
* ``{_count}``, ``{_distinct}``, ``{_window}`` — for correlations: how many events, how many distinct
  values and over how many seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from otsentry.detect.sigma_compile import MISSING, field_getter

_PLACEHOLDER = re.compile(r"\{([A-Za-z_@][\w.@]*)(?:\|([^{}]*))?\}")
_ROLE_OF_INITIATOR = {
    "dnp3": "master",
    "modbus": "client",
    "iec104": "controlling station",
    "c1222": "client",
    "dlms": "client",
}
MAX_ITEMS_SHOWN = 8


def _render_value(value: Any) -> str:
    if isinstance(value, list):
        shown = [_render_value(v) for v in value[:MAX_ITEMS_SHOWN]]
        more = len(value) - MAX_ITEMS_SHOWN
        return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def computed(name: str, event: Mapping[str, Any], extra: Mapping[str, Any]) -> Any:
    if name in extra:
        return extra[name]
    if name == "_unknown_note":
        if event.get("otsentry.baseline.known_pair") is False:
            role = _ROLE_OF_INITIATOR.get(str(event.get("network.protocol")), "peer")
            return f", which is not a known {role}"
        return ""
    if name == "_peer":
        return f"{event.get('source.ip', '?')} → {event.get('destination.ip', '?')}"
    return MISSING


def render(template: str, event: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    """Fill ``template`` from ``event``; unknown fields render as ``?`` (or the ``|default``)."""
    extra = extra or {}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        transforms = [t.strip() for t in (match.group(2) or "").split("|") if t.strip()]
        value = computed(name, event, extra) if name.startswith("_") else field_getter(name)(event)
        empty = value is MISSING or value is None or value == []
        for transform in transforms:
            if transform.startswith("default") and empty:
                return transform[len("default") :].strip()
        if empty:
            return "?"
        text = _render_value(value[0] if "first" in transforms and isinstance(value, list) else value)
        if "upper" in transforms:
            text = text.upper()
        elif "lower" in transforms:
            text = text.lower()
        return text

    return _PLACEHOLDER.sub(substitute, template)


def default_message(title: str, event: Mapping[str, Any]) -> str:
    """When a rule has no template: its title, the message and who sent it to whom."""
    action = event.get("event.action")
    protocol = str(event.get("network.protocol") or "").upper()
    what = f"{protocol} {action}".strip() if action else protocol
    return f"{title}: {what} from {event.get('source.ip', '?')} to {event.get('destination.ip', '?')}"
