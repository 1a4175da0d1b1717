"""Per-flow DNP3 analyzers: link framing over a TCP stream or UDP datagrams, transport
reassembly, and one message per application fragment or link-only frame."""

from __future__ import annotations

import struct
from typing import Any

from otsentry.protocols.base import DecodeError, Fields, Message, decode_error_fields
from otsentry.protocols.dnp3 import codes
from otsentry.protocols.dnp3.application import MAX_POINTS, decode_fragment, decode_objects, header_fields
from otsentry.protocols.dnp3.link import (
    HEADER_LEN,
    MIN_LENGTH,
    crc16,
    frame_length,
    header_crc_ok,
    user_data,
)
from otsentry.protocols.dnp3.transport import TransportReassembler

PROTOCOL = "dnp3"
DATASET = "otsentry.dnp3"
_START = b"\x05\x64"


class Dnp3Session:
    """State shared by the TCP and UDP analyzers of one flow."""

    protocol = PROTOCOL

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.transport = TransportReassembler()
        self.max_points = max_points
        self.frames = 0
        self.crc_errors = 0  # header and user-data block CRC failures
        self.resyncs = 0
        # Per direction: True while scanning for a frame start without reporting skipped octets
        # (after a gap or a reported error).
        self._resync = [False, False]

    # -- framing --------------------------------------------------------------------------------

    def _frames(self, direction: int, buf: bytes, ts: float, frame: int, out: list[Message]) -> int:
        """Decode every complete frame in ``buf``; return the offset of the first unused octet."""
        pos = 0
        n = len(buf)
        resync = self._resync
        unpack_header = _HEADER.unpack_from
        while n - pos >= HEADER_LEN:
            if buf[pos] == 0x05 and buf[pos + 1] == 0x64:
                header, stored = unpack_header(buf, pos)
                length = header[2]
                if length >= MIN_LENGTH and crc16(header) == stored:
                    size = _FRAME_LENGTHS[length]
                    if n - pos < size:
                        break
                    resync[direction] = False
                    self._frame(direction, buf, pos, header, ts, frame, out)
                    pos += size
                    continue
            if not resync[direction]:
                resync[direction] = True
                self.resyncs += 1
                if buf[pos] == 0x05 and buf[pos + 1] == 0x64:
                    if header_crc_ok(buf, pos):
                        reason = f"link header LEN {buf[pos + 2]} below 5: resynchronising"
                    else:
                        self.crc_errors += 1
                        reason = "link header CRC error: resynchronising"
                else:
                    reason = "no DNP3 frame start (05 64) where a frame was expected: resynchronising"
                out.append(
                    (
                        direction,
                        ts,
                        frame,
                        decode_error_fields(PROTOCOL, reason, **{"dnp3.crc_errors": self.crc_errors}),
                    )
                )
            nxt = buf.find(_START, pos + 1)
            if nxt < 0:
                # Keep a trailing 0x05: it may be the first octet of the next frame.
                return n - 1 if buf[n - 1] == 0x05 else n
            pos = nxt
        return pos

    def _frame(
        self, direction: int, buf: bytes, pos: int, header: bytes, ts: float, frame: int, out: list[Message]
    ) -> None:
        """One complete frame at ``pos`` whose 8 CRC-covered header octets are ``header``."""
        self.frames += 1
        length = header[2]
        control = header[3]
        destination, source = _ADDRS.unpack_from(header, 4)
        if not _CARRIES_USER_DATA[control]:
            fields = {
                "network.protocol": PROTOCOL,
                "event.dataset": DATASET,
                "dnp3.link.source": source,
                "dnp3.link.destination": destination,
                **_LINK_ONLY_FIELDS[control],
            }
            if length > MIN_LENGTH:
                fields["dnp3.link.unexpected_data_length"] = length - MIN_LENGTH
            out.append((direction, ts, frame, fields))
            return
        if length == MIN_LENGTH:
            reason = "link user-data frame without user data"
            out.append((direction, ts, frame, self._error(reason, control, destination, source)))
            return
        segment = user_data(buf, pos, length)
        if segment is None:
            self.crc_errors += 1
            reason = "link user-data block CRC error: frame not trusted"
            out.append((direction, ts, frame, self._error(reason, control, destination, source)))
            return
        fragment, problem, segments = self.transport.add((direction, source, destination), segment)
        if problem is not None:
            out.append((direction, ts, frame, self._error(problem, control, destination, source)))
        if fragment is None:
            return
        try:
            if len(fragment) < 2:
                decode_fragment(fragment, {}, self.max_points)  # raises: no function code
            # Link fields of the frame that completed the fragment, then the application fields.
            key = control << 16 | fragment[0] << 8 | fragment[1]
            template = _TEMPLATES.get(key)
            if template is None:
                template = _template(control, fragment[0], fragment[1])
            fields = template.copy()
            fields["dnp3.link.source"] = source
            fields["dnp3.link.destination"] = destination
            fields["dnp3.transport.segments"] = segments
            decode_objects(fragment, fields, self.max_points)
        except DecodeError as exc:
            out.append((direction, ts, frame, self._error(str(exc), control, destination, source)))
            return
        out.append((direction, ts, frame, fields))

    def _error(self, reason: str, control: int, destination: int, source: int) -> Fields:
        extra: dict[str, Any] = {
            k: v for k, v in _link_fields(control, destination, source).items() if k.startswith("dnp3.link.")
        }
        extra["dnp3.crc_errors"] = self.crc_errors
        return decode_error_fields(PROTOCOL, reason, **extra)

    def _internal_error(self, exc: Exception) -> Fields:
        # Safety net only: a parser bug must not end the flow or the sensor.
        return decode_error_fields(PROTOCOL, f"internal decoder error: {type(exc).__name__}: {exc}")


class Dnp3StreamAnalyzer(Dnp3Session):
    """DNP3 over TCP: frames may span segments and several frames share one."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        super().__init__(max_points)
        self._pending = [b"", b""]

    def on_data(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        pending = self._pending[direction]
        buf = pending + data if pending else data
        try:
            used = self._frames(direction, buf, ts, frame, out)
        except Exception as exc:  # never let a bug escape into the flow layer
            out.append((direction, ts, frame, self._internal_error(exc)))
            used = len(buf)
        # A frame is at most 292 octets, so what waits here is bounded.
        self._pending[direction] = bytes(buf[used:]) if used < len(buf) else b""

    def on_gap(self, direction: int) -> None:
        self._pending[direction] = b""
        self._resync[direction] = True
        self.transport.drop_direction(direction)


class Dnp3DatagramAnalyzer(Dnp3Session):
    """DNP3 over UDP: each datagram holds whole frames; transport state spans datagrams."""

    def on_datagram(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        self._resync[direction] = False
        try:
            used = self._frames(direction, data, ts, frame, out)
        except Exception as exc:
            out.append((direction, ts, frame, self._internal_error(exc)))
            return
        if used < len(data) and not self._resync[direction]:
            reason = f"{len(data) - used} octet(s) at the end of the datagram are not a complete frame"
            out.append((direction, ts, frame, decode_error_fields(PROTOCOL, reason)))


def _link_fields(control: int, destination: int, source: int) -> Fields:
    fields: Fields = {
        "network.protocol": PROTOCOL,
        "event.dataset": DATASET,
        "dnp3.link.source": source,
        "dnp3.link.destination": destination,
        **_LINK_FIELDS[control],
    }
    return fields


def _control_fields(control: int) -> Fields:
    """The link fields that depend on the control octet alone, in EVENTS.md order."""
    function = control & codes.LINK_FUNC
    fields: Fields = {
        "dnp3.link.function_code": function,
        "dnp3.link.prm": bool(control & codes.LINK_PRM),
        "dnp3.link.dir": bool(control & codes.LINK_DIR),
    }
    if control & codes.LINK_PRM:
        fields["dnp3.link.fcb"] = bool(control & codes.LINK_FCB)
        fields["dnp3.link.fcv"] = bool(control & codes.LINK_FCV_DFC)
        fields["dnp3.link.function"] = codes.LINK_PRIMARY_FUNCTIONS.get(function, f"link_function_{function}")
    else:
        fields["dnp3.link.dfc"] = bool(control & codes.LINK_FCV_DFC)
        fields["dnp3.link.function"] = codes.LINK_SECONDARY_FUNCTIONS.get(
            function, f"link_function_{function}"
        )
    return fields


# Per control octet: link fields; the same plus event.action for link-only frames; whether the
# frame carries transport segments (primary CONFIRMED/UNCONFIRMED_USER_DATA).
_LINK_FIELDS = [_control_fields(control) for control in range(256)]
_LINK_ONLY_FIELDS = [{**f, "event.action": f["dnp3.link.function"]} for f in _LINK_FIELDS]
_CARRIES_USER_DATA = [
    bool(control & codes.LINK_PRM) and (control & codes.LINK_FUNC) in codes.LINK_USER_DATA_FUNCTIONS
    for control in range(256)
]
# (link control, application control, function code) → every field name of an application
# message in EVENTS.md order: copying it and assigning values is ~3× faster than growing a dict.
_TEMPLATES: dict[int, Fields] = {}
_MAX_TEMPLATES = 4096


def _template(control: int, app_control: int, function: int) -> Fields:
    template: Fields = {
        "network.protocol": PROTOCOL,
        "event.dataset": DATASET,
        "dnp3.link.source": None,
        "dnp3.link.destination": None,
        **_LINK_FIELDS[control],
        "dnp3.transport.segments": None,
        **header_fields(app_control, function),
    }
    if len(_TEMPLATES) >= _MAX_TEMPLATES:
        _TEMPLATES.clear()
    _TEMPLATES[control << 16 | app_control << 8 | function] = template
    return template


_FRAME_LENGTHS = [frame_length(max(length, MIN_LENGTH)) for length in range(256)]
_HEADER = struct.Struct("<8sH")  # the 8 octets the header CRC covers, then the stored CRC
_ADDRS = struct.Struct("<HH")


def probe(data: bytes) -> bool:
    """Strict heuristic for DNP3 on other ports: start octets, LEN ≥ 5 and a valid header CRC."""
    return (
        len(data) >= HEADER_LEN
        and data[0] == 0x05
        and data[1] == 0x64
        and data[2] >= MIN_LENGTH
        and header_crc_ok(data, 0)
    )
