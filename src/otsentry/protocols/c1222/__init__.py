"""ANSI C12.22 (IEEE 1703) over TCP and UDP port 1153, with ANSI C12.19 (IEEE 1377) meaning.

A C12.22 message is one BER-framed ACSE PDU (``60 len ...``, see :mod:`.acse`) whose
user-information carries an EPSEM (:mod:`.epsem`) of C12.18/C12.19 services; :mod:`.c1219` names
the tables and procedures and :mod:`.session` pairs responses with requests. On TCP the BER length
frames the stream (Wireshark's ``get_c1222_message_len`` does the same); on UDP each datagram holds
whole PDUs.

Vendor procedure tables (manufacturer procedures that mean remote connect/disconnect and the like)
come from configuration::

    SPEC = spec_with(vendor_procedures={"GE": {12: "remote_disconnect", 13: "remote_connect"}})

The vendor is the manufacturer code the end device reports in ST1 (learned from reads in the same
flow); the key ``"*"`` applies to any device whose manufacturer the flow has not shown.
"""

from __future__ import annotations

import dataclasses
from functools import partial

from otsentry.protocols import ProtocolSpec
from otsentry.protocols.base import DecodeError, Message, decode_error_fields
from otsentry.protocols.c1222.acse import ELEMENT_NAMES, TAG_ACSE_PDU, parse_acse, pdu_length
from otsentry.protocols.c1222.c1219 import normalize_vendor_procedures
from otsentry.protocols.c1222.session import DATASET, PROTOCOL, Session

__all__ = [
    "DATASET",
    "PROTOCOL",
    "SPEC",
    "C1222DatagramAnalyzer",
    "C1222StreamAnalyzer",
    "probe",
    "spec_with",
]

PORT = 1153
# C12.22 leaves the APDU size to the network (ST121 MAX_APDU_SIZE); a two-octet BER length covers
# every real message and bounds the per-direction buffer.
MAX_PDU_SIZE = 0xFFFF + 4
_HEADER_KEEP = 6  # a tag and up to five length octets: what an unfinished header can need
_FIRST_ELEMENTS = frozenset(ELEMENT_NAMES)


def _complete_pdu_ok(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """``(content start, end)`` if a whole, well-formed C12.22 PDU starts at ``pos``; else None."""
    try:
        header = pdu_length(data, pos, end)
        if header is None or header[1] > end or header[1] - pos > MAX_PDU_SIZE:
            return None
        acse = parse_acse(data, header[0], header[1])
    except DecodeError:
        return None
    if "called_ap_title" not in acse.titles or "user_information" not in acse.elements:
        return None
    return header


def probe(data: bytes) -> bool:
    """Strict: whole C12.22 PDUs (called AP title and user-information present) filling ``data`` exactly."""
    pos, n = 0, len(data)
    if n < 8 or data[0] != TAG_ACSE_PDU:
        return False
    while pos < n:
        found = _complete_pdu_ok(data, pos, n)
        if found is None:
            return False
        pos = found[1]
    return True


def _find_pdu(data: bytes, pos: int) -> tuple[int, int]:
    """Resynchronise: ``(offset, 0)`` of the next whole, well-formed PDU at or after ``pos``, or
    ``(keep, need)``: keep the octets from ``keep`` and decide again once ``need`` octets from there
    are buffered (so a long plausible candidate is not rescanned for every segment)."""
    n = len(data)
    while True:
        cand = data.find(b"\x60", pos)
        if cand < 0:
            keep = max(pos, n - _HEADER_KEEP)
            return keep, n - keep + 1
        try:
            header = pdu_length(data, cand, n)
        except DecodeError:
            pos = cand + 1
            continue
        if header is None:
            return cand, n - cand + 1
        start, end = header
        if end - cand > MAX_PDU_SIZE or end <= start or (start < n and data[start] not in _FIRST_ELEMENTS):
            pos = cand + 1
            continue
        if end > n:
            return cand, end - cand  # plausible so far: wait for the whole PDU before trusting it
        if _complete_pdu_ok(data, cand, n) is not None:
            return cand, 0
        pos = cand + 1


class C1222StreamAnalyzer:
    """One per TCP flow: BER framing and resynchronisation per direction, one :class:`Session`.

    An unfinished PDU waits as a list of segments until the octets its header announces have
    arrived, so a PDU that comes one octet per segment costs linear, not quadratic, time.
    """

    protocol = PROTOCOL

    __slots__ = ("buffered", "chunks", "need", "resyncs", "session", "synced")

    def __init__(self, vendor_procedures: dict | None = None, big_endian_tables: bool = False) -> None:
        self.session = Session(normalize_vendor_procedures(vendor_procedures), big_endian_tables)
        self.chunks: list[list[bytes]] = [[], []]  # segments of an unfinished PDU per direction
        self.buffered = [0, 0]  # their total length (< MAX_PDU_SIZE)
        self.need = [0, 0]  # octets to gather before looking again
        # False after a gap (expected) or a bad header (already reported): skip quietly to the next PDU
        self.synced = [True, True]
        self.resyncs = 0

    def on_gap(self, direction: int) -> None:
        self.chunks[direction].clear()
        self.buffered[direction] = 0
        self.synced[direction] = False

    def on_data(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        chunks = self.chunks[direction]
        if chunks:
            chunks.append(data)
            self.buffered[direction] += len(data)
            if self.buffered[direction] < self.need[direction]:
                return
            data = b"".join(chunks)
            chunks.clear()
        n = len(data)
        pos = need = 0
        synced = self.synced[direction]
        while pos < n:
            if not synced:
                pos, need = _find_pdu(data, pos)
                if need:
                    break
                synced = True
                self.resyncs += 1
            try:
                header = pdu_length(data, pos, n)
                if header is not None and header[1] - pos > MAX_PDU_SIZE:
                    raise DecodeError(f"C12.22 PDU of {header[1] - pos} octets exceeds {MAX_PDU_SIZE}")
            except DecodeError as exc:
                out.append((direction, ts, frame, decode_error_fields(PROTOCOL, f"{exc}; resynchronising")))
                synced = False  # reported once here, not again for the octets skipped
                pos += 1
                continue
            if header is None:
                need = n - pos + 1
                break
            if header[1] > n:
                need = header[1] - pos
                break
            out.append((direction, ts, frame, self.session.message(data, header[0], header[1], frame)))
            pos = header[1]
        self.synced[direction] = synced
        self.buffered[direction] = n - pos if pos < n else 0
        if pos < n:
            chunks.append(data[pos:])
            self.need[direction] = need


class C1222DatagramAnalyzer:
    """One per UDP flow: every datagram holds one or more whole PDUs."""

    protocol = PROTOCOL

    __slots__ = ("session",)

    def __init__(self, vendor_procedures: dict | None = None, big_endian_tables: bool = False) -> None:
        self.session = Session(normalize_vendor_procedures(vendor_procedures), big_endian_tables)

    def on_datagram(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        pos, n = 0, len(data)
        while pos < n:
            try:
                header = pdu_length(data, pos, n)
                if header is None or header[1] > n:
                    raise DecodeError(f"C12.22 PDU truncated: {n - pos} octets in the datagram")
            except DecodeError as exc:
                out.append((direction, ts, frame, decode_error_fields(PROTOCOL, str(exc))))
                return
            out.append((direction, ts, frame, self.session.message(data, header[0], header[1], frame)))
            pos = header[1]


def spec_with(vendor_procedures: dict | None = None, big_endian_tables: bool = False) -> ProtocolSpec:
    """The C12.22 spec with configured vendor procedure tables (validated now, not per flow) and the
    default C12.19 DATA_ORDER for devices whose ST0 the flow has not shown."""
    vendors = normalize_vendor_procedures(vendor_procedures)
    return dataclasses.replace(
        SPEC,
        stream_analyzer=partial(C1222StreamAnalyzer, vendors, big_endian_tables),
        datagram_analyzer=partial(C1222DatagramAnalyzer, vendors, big_endian_tables),
    )


SPEC = ProtocolSpec(
    name=PROTOCOL,
    tcp_ports=frozenset({PORT}),
    udp_ports=frozenset({PORT}),
    probe=probe,
    stream_analyzer=C1222StreamAnalyzer,
    datagram_analyzer=C1222DatagramAnalyzer,
)
