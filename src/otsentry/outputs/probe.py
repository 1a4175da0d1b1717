"""``forward test``: send one clearly marked test alert straight to a destination and wait for its ack.

The test alert never enters the alerts table or the outbox; its ``otsentry.alert.seq`` is 0 and
``otsentry.alert.test`` is true, ``rule.id`` is ``otsentry-forward-test`` and the message says so.
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from otsentry.detect import severity
from otsentry.outputs.config import Destination
from otsentry.outputs.encode import build_encoder
from otsentry.outputs.state import now_text
from otsentry.outputs.transports import Transport, TransportError, open_transport

TEST_RULE_ID = "otsentry-forward-test"
_MEANING = {
    "relp": "acknowledged by the RELP receiver (rsp 200)",
    "hec": "accepted by Splunk HEC",
    "tcp": "acknowledged by the receiver's TCP (no application acknowledgement in syslog/TCP)",
    "tls": "acknowledged by the receiver's TCP over TLS (no application acknowledgement in syslog/TLS)",
    "udp": "handed to the network (UDP has no acknowledgement: check that the SIEM shows it)",
    "file": "written and synced to the file",
}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    seconds: float
    alert_id: str


def make_test_alert(destination: str, observer_name: str | None) -> dict[str, Any]:
    level = severity.SEVERITIES["informational"]
    now = now_text()
    observer = observer_name or socket.gethostname()
    return {
        "@timestamp": now,
        "event.kind": "alert",
        "event.module": "otsentry",
        "event.dataset": "otsentry.test",
        "event.action": "forward_test",
        "observer.name": observer,
        "rule.id": TEST_RULE_ID,
        "rule.name": "otsentry forwarding test (not a security event)",
        "rule.ruleset": "test",
        "event.severity": level.number,
        "log.level": level.level,
        "message": f"TEST ALERT from otsentry sensor {observer} to destination {destination!r} at {now}: "
                   "a forwarding check, not a security event.",
        "tags": ["test"],
        "otsentry.alert.id": str(uuid.uuid4()),
        "otsentry.alert.seq": 0,
        "otsentry.alert.test": True,
        "otsentry.alert.status": "new",
    }


def send_test_alert(dest: Destination, observer_name: str | None = None, timeout: float = 10.0,
              transport: Transport | None = None) -> ProbeResult:
    alert = make_test_alert(dest.name, observer_name)
    started = time.monotonic()
    transport = transport or open_transport(dest)
    try:
        transport.open()
        transport.send([(1, build_encoder(dest)(alert))])
        deadline = started + timeout
        while transport.pending() and time.monotonic() < deadline:
            transport.poll(min(0.1, max(0.0, deadline - time.monotonic())))
        elapsed = time.monotonic() - started
        if transport.pending():
            return ProbeResult(False, f"sent, but no acknowledgement within {timeout:g} s", elapsed,
                               alert["otsentry.alert.id"])
        return ProbeResult(True, _MEANING[dest.transport], elapsed, alert["otsentry.alert.id"])
    except TransportError as exc:
        return ProbeResult(False, str(exc), time.monotonic() - started, alert["otsentry.alert.id"])
    finally:
        transport.close()
