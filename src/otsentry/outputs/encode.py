"""One destination's encoder: alert → the bytes of one message (payload format + syslog framing)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from otsentry.outputs.alertfields import epoch_ms, replace_controls, text
from otsentry.outputs.config import Destination
from otsentry.outputs.formats import syslog
from otsentry.outputs.formats.cef import format_cef
from otsentry.outputs.formats.ecs import ecs_document, format_ecs
from otsentry.outputs.formats.leef import format_leef

Encoder = Callable[[Mapping[str, Any]], bytes]


def payload_function(dest: Destination) -> Callable[[Mapping[str, Any]], str]:
    if dest.format == "cef":
        return format_cef
    if dest.format == "leef":
        delimiter = dest.leef_delimiter
        return lambda alert: format_leef(alert, delimiter=delimiter)
    if dest.format == "ecs":
        return lambda alert: format_ecs(alert).decode()
    return lambda alert: replace_controls(text(alert.get("message") or alert.get("rule.name")))


def hec_event(alert: Mapping[str, Any], dest: Destination) -> bytes:
    """One HEC ``/services/collector/event`` object: metadata plus the nested ECS alert as ``event``."""
    envelope: dict[str, Any] = {
        "time": epoch_ms(alert.get("@timestamp")) / 1000,
        "host": alert.get("observer.name") or dest.hostname or "otsentry",
        "source": dest.source,
        "sourcetype": dest.sourcetype,
        "event": ecs_document(alert),
    }
    if dest.index:
        envelope["index"] = dest.index
    return orjson.dumps(envelope, default=str)


def build_encoder(dest: Destination) -> Encoder:
    if dest.transport == "hec":
        return lambda alert: hec_event(alert, dest)
    if dest.transport == "file":
        return format_ecs
    payload = payload_function(dest)
    procid = str(os.getpid())
    if dest.framing == "rfc5424":
        return lambda alert: syslog.rfc5424(
            alert, payload(alert), facility=dest.facility, hostname=dest.hostname, app_name=dest.app_name,
            procid=procid, msgid="test" if alert.get("otsentry.alert.test") else "alert", sd_id=dest.sd_id,
        )
    if dest.framing == "rfc3164":
        return lambda alert: syslog.rfc3164(
            alert, payload(alert), facility=dest.facility, hostname=dest.hostname, app_name=dest.app_name
        )
    return lambda alert: payload(alert).encode()
