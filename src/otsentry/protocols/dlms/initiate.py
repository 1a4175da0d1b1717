"""xDLMS InitiateRequest / InitiateResponse carried in the AARQ/AARE user-information.

Green Book ed. 9, 9.5 ("InitiateRequest ::= SEQUENCE { dedicated-key OCTET STRING OPTIONAL,
response-allowed BOOLEAN DEFAULT TRUE, proposed-quality-of-service [0] IMPLICIT Integer8
OPTIONAL, proposed-dlms-version-number Unsigned8, proposed-conformance Conformance,
client-max-receive-pdu-size Unsigned16 }", "InitiateResponse ::= SEQUENCE {
negotiated-quality-of-service [0] IMPLICIT Integer8 OPTIONAL, negotiated-dlms-version-number,
negotiated-conformance, server-max-receive-pdu-size Unsigned16, vaa-name ObjectName }").
"""

from __future__ import annotations

from otsentry.protocols.base import DecodeError, Fields
from otsentry.protocols.dlms.axdr import Reader

# Conformance ::= [APPLICATION 31] IMPLICIT BIT STRING (SIZE(24)); bit 0 is the first (most
# significant) bit of the 24 (Green Book 9.4.6.1 "Conformance block").
CONFORMANCE_BITS: tuple[str, ...] = (
    "reserved-zero", "general-protection", "general-block-transfer", "read", "write",
    "unconfirmed-write", "delta-value-encoding", "reserved-seven", "attribute0-supported-with-set",
    "priority-mgmt-supported", "attribute0-supported-with-get", "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write", "block-transfer-with-action", "multiple-references",
    "information-report", "data-notification", "access", "parameterized-access", "get", "set",
    "selective-access", "event-notification", "action",
)
_CONFORMANCE_TAG = b"\x5f\x1f"


def conformance_names(bits: int) -> list[str]:
    return [name for i, name in enumerate(CONFORMANCE_BITS) if bits & (1 << (23 - i))]


def _read_conformance(r: Reader) -> int:
    tag = r.take(2, "conformance tag")
    if tag != _CONFORMANCE_TAG:
        raise DecodeError(f"conformance tag {tag.hex()} is not 5f1f")
    size = r.u8("conformance length")
    if size != 4:
        raise DecodeError(f"conformance length {size} is not 4")
    r.u8("conformance unused bits")
    return int.from_bytes(r.take(3, "conformance"), "big")


def _conformance_fields(bits: int) -> Fields:
    return {"dlms.initiate.conformance": conformance_names(bits), "dlms.initiate.conformance_bits": bits}


def read_initiate_request(r: Reader) -> Fields:
    """After the 0x01 tag. The dedicated key is a secret: presence and length only."""
    fields: Fields = {"dlms.initiate.type": "initiate-request"}
    if r.u8("dedicated-key presence"):
        key_length = r.length("dedicated-key length")
        r.skip(key_length, "dedicated-key")
        fields["dlms.initiate.dedicated_key_present"] = True
        fields["dlms.initiate.dedicated_key_length"] = key_length
    else:
        fields["dlms.initiate.dedicated_key_present"] = False
    if r.u8("response-allowed presence"):
        fields["dlms.initiate.response_allowed"] = bool(r.u8("response-allowed"))
    if r.u8("quality-of-service presence"):
        fields["dlms.initiate.quality_of_service"] = r.u8("quality-of-service")
    fields["dlms.initiate.dlms_version"] = r.u8("dlms version")
    fields.update(_conformance_fields(_read_conformance(r)))
    fields["dlms.initiate.max_pdu_size"] = r.u16("client-max-receive-pdu-size")
    return fields


def read_initiate_response(r: Reader) -> Fields:
    """After the 0x08 tag."""
    fields: Fields = {"dlms.initiate.type": "initiate-response"}
    if r.u8("quality-of-service presence"):
        fields["dlms.initiate.quality_of_service"] = r.u8("quality-of-service")
    fields["dlms.initiate.dlms_version"] = r.u8("dlms version")
    fields.update(_conformance_fields(_read_conformance(r)))
    fields["dlms.initiate.max_pdu_size"] = r.u16("server-max-receive-pdu-size")
    fields["dlms.initiate.vaa_name"] = r.u16("vaa-name")
    return fields
