"""IEC 62056-47 / Green Book ed. 9, 7.3.3 "The wrapper protocol data unit" for TCP and UDP.

Every APDU travels behind an 8-byte header: version (0x0001), source wPort, destination wPort,
length of the APDU that follows (all big-endian unsigned16). :class:`WrapperFramer` cuts one
direction of a TCP stream into (header, APDU) pairs: it reassembles across segments, takes
several from one segment, keeps at most one maximum-size PDU buffered, and after lost bytes or
a broken header hunts for the next plausible header before trusting lengths again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from otsentry.protocols.dlms.apdu import KNOWN_TAGS

HEADER = struct.Struct(">HHHH")
HEADER_SIZE = HEADER.size
VERSION = 0x0001
MAX_APDU = 0xFFFF  # the length field is unsigned16
_MAGIC = b"\x00\x01"
_BER_TAGS = frozenset({0x60, 0x61, 0x62, 0x63})
_SERVICE_TAGS = frozenset({0xC0, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7})  # second byte is a small CHOICE


@dataclass(frozen=True, slots=True)
class WrapperHeader:
    version: int
    source_port: int
    destination_port: int
    length: int

    def fields(self) -> dict[str, int]:
        return {
            "dlms.wrapper.version": self.version,
            "dlms.wrapper.source_port": self.source_port,
            "dlms.wrapper.destination_port": self.destination_port,
            "dlms.wrapper.length": self.length,
        }


def apdu_plausible(buf: bytes | bytearray | memoryview, start: int, length: int) -> bool | None:
    """Whether an APDU of ``length`` bytes at ``start`` looks like DLMS; None: need more bytes.

    Used to find a header in unknown bytes, so it is strict: a known tag and, where the tag
    fixes it, a consistent second byte (BER/A-XDR length or small CHOICE index).
    """
    available = len(buf) - start
    if length < 2:
        return False
    if available < 2:
        return None
    tag, second = buf[start], buf[start + 1]
    if tag not in KNOWN_TAGS:
        return False
    if tag in _SERVICE_TAGS:
        return 1 <= second <= 6
    if tag in _BER_TAGS or 0xC8 <= tag <= 0xD7 or 0x21 <= tag <= 0x58:
        # Tag and definite length cover the whole APDU.
        if second < 0x80:
            return second == length - 2
        size = second & 0x7F
        if not 1 <= size <= 2:
            return False
        if available < 2 + size:
            return None
        declared = int.from_bytes(buf[start + 2 : start + 2 + size], "big")
        return declared == length - 2 - size
    return True


def frame_plausible(buf: bytes | bytearray | memoryview, offset: int = 0) -> bool | None:
    """A wrapper header at ``offset`` with a plausible APDU behind it; None: need more bytes."""
    if len(buf) - offset < HEADER_SIZE:
        return None
    version, _, _, length = HEADER.unpack_from(buf, offset)
    if version != VERSION:
        return False
    return apdu_plausible(buf, offset + HEADER_SIZE, length)


def probe(payload: bytes) -> bool:
    """Strict first-segment test: wrapper frames that fill the segment exactly."""
    offset, end = 0, len(payload)
    if end < HEADER_SIZE + 2:
        return False
    while offset < end:
        if frame_plausible(payload, offset) is not True:
            return False
        length = HEADER.unpack_from(payload, offset)[3]
        offset += HEADER_SIZE + length
    return offset == end


class WrapperFramer:
    """Per-direction framing state. ``feed`` returns complete frames and framing errors."""

    __slots__ = ("buf", "ports", "synced")

    def __init__(self) -> None:
        self.buf = bytearray()
        # Hunt even at the start: a flow picked up mid-stream begins inside some PDU, and a
        # stream that does start with a frame passes the plausibility test at offset 0.
        self.synced = False
        self.ports: tuple[int, int] | None = None

    def gap(self) -> None:
        self.buf.clear()
        self.synced = False

    def feed(self, data: bytes) -> list[tuple[WrapperHeader, bytes] | str]:
        """Frames completed by ``data`` as (header, APDU); a str reports broken framing."""
        buf = self.buf
        buf += data
        out: list[tuple[WrapperHeader, bytes] | str] = []
        pos = 0
        while True:
            if not self.synced:
                found = self._hunt(pos)
                if found is None:
                    # Keep a possible header prefix for the next segment.
                    pos = max(pos, len(buf) - HEADER_SIZE - 3)
                    break
                pos = found
                self.synced = True
            if len(buf) - pos < HEADER_SIZE:
                break
            version, source, destination, length = HEADER.unpack_from(buf, pos)
            if version != VERSION:
                out.append(f"wrapper version {version:#06x} where a header was expected")
                self.synced = False
                pos += 1
                continue
            end = pos + HEADER_SIZE + length
            if end > len(buf):
                break
            header = WrapperHeader(version, source, destination, length)
            out.append((header, bytes(buf[pos + HEADER_SIZE : end])))
            if apdu_plausible(buf, pos + HEADER_SIZE, length):
                # Only a frame that looks right may set the ports a resync must match.
                self.ports = (source, destination)
            pos = end
        if pos:
            del buf[:pos]
        return out

    def _hunt(self, start: int) -> int | None:
        """Offset of the next plausible header at or after ``start`` (ports as before, if known)."""
        buf = self.buf
        pos = start
        while True:
            pos = buf.find(_MAGIC, pos)
            if pos < 0:
                return None
            verdict = frame_plausible(buf, pos)
            if verdict is None:
                return None  # wait for more bytes before deciding
            if verdict and (self.ports is None or self._same_ports(pos)):
                return pos
            pos += 1

    def _same_ports(self, pos: int) -> bool:
        _, source, destination, _ = HEADER.unpack_from(self.buf, pos)
        return self.ports == (source, destination)
