"""The C12.22 ACSE PDU: ``60 len <elements>`` (IEEE 1703-2012 clause 5.3.4; Wireshark's ``c1222.asn``).

Elements, each a context-specific tag in this order on the wire:

====  ===========================================  ====================================
tag   element                                      content
====  ===========================================  ====================================
A1    aSO-context (application context)            OBJECT IDENTIFIER
A2    called-AP-title                              OID 06, or relative OID 80 / 0D
A3    called-AE-qualifier                          INTEGER
A4    called-AP-invocation-id                      INTEGER
A5    called-AE-invocation-id                      INTEGER
A6    calling-AP-title                             OID 06, or relative OID 80 / 0D
A7    calling-AE-qualifier                         INTEGER: bit 0 test, 1 urgent, 2 notification
A8    calling-AP-invocation-id                     INTEGER
A9    calling-AE-invocation-id                     INTEGER
8B    mechanism-name                               OID content (implicit)
AC    calling-authentication-value                 EXTERNAL: C12.22 key id + IV, or C12.21
BE    user-information                             EXTERNAL: [indirect reference] 81 <EPSEM>
====  ===========================================  ====================================

Authentication values are reduced to their kind and lengths: the C12.21 challenge/response and
octet-aligned values may carry secrets and never leave this module. The C12.22 key id and IV are
sent in clear by design (they select a key and seed EAX) and are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otsentry.protocols.base import DecodeError
from otsentry.protocols.c1222.ber import (
    TAG_INTEGER,
    TAG_OID,
    identifier_text,
    oid_text,
    read_integer,
    read_tlv,
)

TAG_ACSE_PDU = 0x60  # [APPLICATION 0] constructed: the C12.22 MESSAGE (same tag as an ACSE AARQ)

ELEMENT_NAMES = {
    0xA1: "application_context",
    0xA2: "called_ap_title",
    0xA3: "called_ae_qualifier",
    0xA4: "called_ap_invocation_id",
    0xA5: "called_ae_invocation_id",
    0xA6: "calling_ap_title",
    0xA7: "calling_ae_qualifier",
    0xA8: "calling_ap_invocation_id",
    0xA9: "calling_ae_invocation_id",
    0x8A: "sender_acse_requirements",
    0x8B: "mechanism_name",
    0xAC: "calling_authentication_value",
    0xBE: "user_information",
}
_INTEGER_ELEMENTS = {0xA3, 0xA4, 0xA5, 0xA7, 0xA8, 0xA9}
MAX_ELEMENTS = 32  # the standard defines 12; bounds the work a resynchronisation candidate can cost

# IEEE 1703-2012 5.3.4.6 calling-AE-qualifier bits (ICSNPP c1222.spicy uses the same layout).
AE_QUALIFIER_FLAGS = ((0x01, "test"), (0x02, "urgent"), (0x04, "notification"))

# Encodings inside the EXTERNAL of an authentication value / user-information (X.690 8.18).
_SINGLE_ASN1 = 0xA0
_OCTET_ALIGNED = 0x81
_C1222_AUTH = 0xA1  # calling-authentication-value-c1222: [0] key-id, [1] iv
_C1221_AUTH = 0xA0  # calling-authentication-value-c1221: [0] ident, [1] request, [2] response
_C1221_KINDS = {0x80: "ident", 0x81: "request", 0x82: "response"}


@dataclass(slots=True)
class Acse:
    """One decoded C12.22 message header; ``epsem`` bounds index the PDU bytes."""

    elements: list[str] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # called_ap_title, calling_ap_title
    integers: dict[str, int] = field(default_factory=dict)  # qualifiers and invocation ids
    application_context: str | None = None
    mechanism_name: str | None = None
    auth: dict[str, object] | None = None  # kind, length, key_id, iv — never secret octets
    indirect_reference: int | None = None
    epsem_start: int = -1
    epsem_stop: int = -1


def pdu_length(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """``(content start, PDU end)`` of the ACSE PDU at ``pos``, or None when its header is incomplete.

    Raises DecodeError when the header is not a C12.22 PDU header at all.
    """
    if pos >= end:
        return None
    if data[pos] != TAG_ACSE_PDU:
        raise DecodeError(f"not a C12.22 ACSE PDU (tag 0x{data[pos]:02x})")
    if pos + 1 >= end:
        return None
    first = data[pos + 1]
    count = first & 0x7F if first & 0x80 else 0
    if first == 0x80 or count > 4:
        raise DecodeError(f"invalid ACSE PDU length octet 0x{first:02x}")
    if pos + 2 + count > end:
        return None
    if count == 0:
        return pos + 2, pos + 2 + first
    length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
    return pos + 2 + count, pos + 2 + count + length


def parse_acse(data: bytes, start: int, stop: int) -> Acse:
    """Decode the elements between ``start`` and ``stop`` (the PDU content)."""
    acse = Acse()
    pos = start
    while pos < stop:
        if len(acse.elements) >= MAX_ELEMENTS:
            raise DecodeError(f"more than {MAX_ELEMENTS} ACSE elements")
        tag, cstart, cstop = read_tlv(data, pos, stop)
        pos = cstop
        name = ELEMENT_NAMES.get(tag)
        if name is None:
            acse.elements.append(f"unknown_0x{tag:02x}")
            continue  # forward compatible: skip what the standard may add
        acse.elements.append(name)
        if tag in (0xA2, 0xA6):
            itag, istart, istop = read_tlv(data, cstart, cstop)
            acse.titles[name] = identifier_text(itag, data, istart, istop)
        elif tag in _INTEGER_ELEMENTS:
            itag, istart, istop = read_tlv(data, cstart, cstop)
            if itag != TAG_INTEGER:
                raise DecodeError(f"{name}: expected INTEGER, got tag 0x{itag:02x}")
            acse.integers[name] = read_integer(data, istart, istop)
        elif tag == 0xA1:
            itag, istart, istop = read_tlv(data, cstart, cstop)
            if itag != TAG_OID:
                raise DecodeError(f"application context: expected OID, got tag 0x{itag:02x}")
            acse.application_context = oid_text(data, istart, istop)
        elif tag == 0x8B:
            acse.mechanism_name = oid_text(data, cstart, cstop)
        elif tag == 0xAC:
            acse.auth = _authentication_value(data, cstart, cstop)
        elif tag == 0xBE:
            _user_information(acse, data, cstart, cstop)
    return acse


def _external_content(data: bytes, start: int, stop: int) -> tuple[int | None, int, int, int]:
    """Open the EXTERNAL in ``[start, stop)``: ``(indirect reference, encoding tag, content start, stop)``."""
    _, estart, estop = read_tlv(data, start, stop)  # 0x28 EXTERNAL, or [2] in an authentication value
    indirect = None
    tag, cstart, cstop = read_tlv(data, estart, estop)
    if tag == TAG_INTEGER:
        indirect = read_integer(data, cstart, cstop)
        tag, cstart, cstop = read_tlv(data, cstop, estop)
    return indirect, tag, cstart, cstop


def _authentication_value(data: bytes, start: int, stop: int) -> dict[str, object]:
    auth: dict[str, object] = {"present": True, "length": stop - start}
    indirect, encoding, cstart, cstop = _external_content(data, start, stop)
    if indirect is not None:
        auth["indirect_reference"] = indirect
    if encoding == _OCTET_ALIGNED:
        auth["kind"] = "octet_aligned"
        auth["value_length"] = cstop - cstart
        return auth
    if encoding != _SINGLE_ASN1:
        auth["kind"] = f"unknown_0x{encoding:02x}"
        return auth
    mechanism, mstart, mstop = read_tlv(data, cstart, cstop)
    if mechanism == _C1222_AUTH:
        auth["kind"] = "c1222"
        pos = mstart
        for _ in range(4):  # key-id and iv; a few more at most
            if pos >= mstop:
                break
            tag, vstart, vstop = read_tlv(data, pos, mstop)
            pos = vstop
            if tag == 0x80 and vstop - vstart == 1:
                auth["key_id"] = data[vstart]
            elif tag == 0x81:
                auth["iv"] = data[vstart:vstop].hex()
    elif mechanism == _C1221_AUTH:
        auth["kind"] = "c1221"
        tag, vstart, vstop = read_tlv(data, mstart, mstop)
        auth["c1221_type"] = _C1221_KINDS.get(tag, f"unknown_0x{tag:02x}")
        auth["value_length"] = vstop - vstart
    else:
        auth["kind"] = f"unknown_0x{mechanism:02x}"
    return auth


def _user_information(acse: Acse, data: bytes, start: int, stop: int) -> None:
    indirect, encoding, cstart, cstop = _external_content(data, start, stop)
    acse.indirect_reference = indirect
    if encoding != _OCTET_ALIGNED:
        raise DecodeError(f"user-information encoding 0x{encoding:02x} is not octet-aligned EPSEM")
    acse.epsem_start, acse.epsem_stop = cstart, cstop
