"""The contract between the flow layer and the protocol analyzers.

A protocol module has two layers:

* a stateless codec: ``bytes``/``memoryview`` in, a dict of event fields out, or one
  :class:`DecodeError` with the reason;
* a per-flow *analyzer* object that holds the per-direction state (framing buffer, DNP3
  transport reassembly, request/response pairing) and turns delivered stream bytes or
  datagrams into messages.

A message is the tuple ``(direction, ts, frame, fields)``:

* ``direction`` — 0 when the bytes travelled client→server (the flow's originator), 1 for
  server→client. The sensor turns it into ``source.*``/``destination.*``.
* ``ts`` — packet time (float seconds) of the packet that completed the message;
* ``frame`` — 1-based capture frame number of that packet;
* ``fields`` — the protocol fields of EVENTS.md with dotted names, including
  ``network.protocol``, ``event.dataset`` and ``event.action``. Decode errors are messages
  too: build them with :func:`decode_error_fields`.

The analyzer never touches I/O, SQLite or the clock; the sensor adds the flow fields.
"""

from __future__ import annotations

from typing import Any, Protocol

Fields = dict[str, Any]
Message = tuple[int, float, int, Fields]

CLIENT_TO_SERVER = 0
SERVER_TO_CLIENT = 1


class DecodeError(ValueError):
    """Raised by a codec for bytes it cannot decode; the message is the reason."""


def decode_error_fields(protocol: str, reason: str, **extra: Any) -> Fields:
    """Fields of an ``otsentry.decode_error`` event for ``protocol``."""
    fields: Fields = {
        "event.dataset": "otsentry.decode_error",
        "event.action": "decode_error",
        "network.protocol": protocol,
        "error.message": reason,
    }
    fields.update(extra)
    return fields


class StreamAnalyzer(Protocol):
    """One per TCP flow. ``on_data`` gets in-order stream bytes of one direction."""

    protocol: str

    def on_data(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        """Consume ``data`` (contiguous with what came before in ``direction``) and append
        every message completed by it to ``out``."""

    def on_gap(self, direction: int) -> None:
        """Bytes were lost in ``direction`` (capture loss, mid-stream pickup): drop any
        partial PDU and resynchronise on the next data."""


class DatagramAnalyzer(Protocol):
    """One per UDP flow. Each datagram is handled alone (framing state may persist)."""

    protocol: str

    def on_datagram(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        """Decode one datagram and append its messages to ``out``."""
