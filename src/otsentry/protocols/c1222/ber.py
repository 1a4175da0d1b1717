"""The small part of BER (ITU-T X.690) that ANSI C12.22 uses: one-octet tags, definite lengths,
INTEGER, OBJECT IDENTIFIER and RELATIVE-OID contents.

C12.22 (IEEE 1703-2012 clause 5.2) restricts ASN.1 to single-octet tags and definite lengths of at
most four length octets, so a hand-written reader stays short, fast and bounded; a general ASN.1
library would accept far more than the protocol allows. Every reader takes ``(data, pos, end)``
and raises :class:`DecodeError` instead of reading past ``end``.
"""

from __future__ import annotations

from functools import lru_cache

from otsentry.protocols.base import DecodeError

MAX_LENGTH_OCTETS = 4  # IEEE 1703-2012 5.2.2: a length is 1 octet, or 0x81..0x84 and 1..4 octets
MAX_OID_OCTETS = 64  # longer identifiers are not plausible AP titles; bounds the string we build
MAX_INTEGER_OCTETS = 8  # invocation ids, qualifiers: anything longer does not fit an int64 event field

TAG_INTEGER = 0x02
TAG_OID = 0x06
TAG_RELATIVE_OID = 0x0D
TAG_CONTEXT_0 = 0x80  # C12.22 carries a relative AP title as [0] IMPLICIT RELATIVE-OID


def read_length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The definite length at ``pos`` and the position after it."""
    if pos >= end:
        raise DecodeError("BER length missing")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0:
        raise DecodeError("BER indefinite length is not allowed in C12.22")
    if count > MAX_LENGTH_OCTETS:
        raise DecodeError(f"BER length with {count} length octets")
    if pos + 1 + count > end:
        raise DecodeError("BER length truncated")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """``(tag, content start, content end)`` of the element at ``pos``; the content lies within ``end``."""
    if pos >= end:
        raise DecodeError("BER element missing")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"multi-octet BER tag 0x{tag:02x}")
    length, start = read_length(data, pos + 1, end)
    stop = start + length
    if stop > end:
        raise DecodeError(f"BER element 0x{tag:02x} of {length} octets overruns its container")
    return tag, start, stop


def read_integer(data: bytes, start: int, stop: int) -> int:
    """An INTEGER's content as a non-negative number (C12.22 ids and flags are unsigned)."""
    size = stop - start
    if size < 1:
        raise DecodeError("empty INTEGER")
    if size > MAX_INTEGER_OCTETS:
        # a leading zero octet that keeps a large unsigned value positive is fine
        if size == MAX_INTEGER_OCTETS + 1 and data[start] == 0:
            start += 1
        else:
            raise DecodeError(f"INTEGER of {size} octets")
    return int.from_bytes(data[start:stop], "big")


def _arcs(data: bytes, start: int, stop: int) -> list[int]:
    """Base-128 sub-identifiers (X.690 8.19.2); the last octet of each has bit 8 clear."""
    if stop - start > MAX_OID_OCTETS:
        raise DecodeError(f"object identifier of {stop - start} octets")
    if start >= stop:
        raise DecodeError("empty object identifier")
    if data[stop - 1] & 0x80:
        raise DecodeError("object identifier ends inside a sub-identifier")
    arcs: list[int] = []
    value = 0
    for octet in data[start:stop]:  # at most MAX_OID_OCTETS iterations
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    return arcs


def oid_text(data: bytes, start: int, stop: int) -> str:
    """An OBJECT IDENTIFIER's content as dotted text, e.g. ``2.16.124.113620.1.22``."""
    arcs = _arcs(data, start, stop)
    first = arcs[0]
    # X.690 8.19.4: the first sub-identifier packs the first two arcs as 40 * X + Y.
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + arcs[1:]))


def relative_oid_text(data: bytes, start: int, stop: int) -> str:
    """A RELATIVE-OID's content with a leading dot, e.g. ``.123.4``, as Zeek/ICSNPP and Wireshark write it."""
    return "." + ".".join(map(str, _arcs(data, start, stop)))


def identifier_text(tag: int, data: bytes, start: int, stop: int) -> str:
    """An absolute (universal 0x06) or relative (0x0D, or C12.22's context [0] 0x80) identifier as text."""
    if tag not in (TAG_OID, TAG_RELATIVE_OID, TAG_CONTEXT_0):
        raise DecodeError(f"identifier with tag 0x{tag:02x}")
    if stop - start > MAX_OID_OCTETS:
        raise DecodeError(f"object identifier of {stop - start} octets")
    return _identifier(tag == TAG_OID, data[start:stop])


@lru_cache(maxsize=4096)
def _identifier(absolute: bool, raw: bytes) -> str:
    # AP titles repeat in every message of a flow: render each distinct one once.
    return oid_text(raw, 0, len(raw)) if absolute else relative_oid_text(raw, 0, len(raw))


def read_identifier(data: bytes, pos: int, end: int) -> tuple[str, int]:
    """An identifier element at ``pos`` as text, and the position after it."""
    tag, start, stop = read_tlv(data, pos, end)
    return identifier_text(tag, data, start, stop), stop
