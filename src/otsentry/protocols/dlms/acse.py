"""ACSE APDUs of the DLMS association: AARQ (0x60), AARE (0x61), RLRQ (0x62), RLRE (0x63).

BER encoded (ISO/IEC 8650-1 as profiled by Green Book ed. 9, 9.4.2 "Abstract syntax of ACSE
APDUs"). Secrets never leave this module: the calling/responding authentication value (LLS
password or HLS challenge) is reported by presence, form and length only, and so is the
dedicated key of an InitiateRequest.
"""

from __future__ import annotations

from otsentry.protocols.base import DecodeError, Fields
from otsentry.protocols.dlms import initiate, service_errors
from otsentry.protocols.dlms.axdr import Reader
from otsentry.protocols.dlms.security import (
    SYSTEM_TITLE_SIZE,
    parse_security_header,
    readable_plaintext,
    system_title_fields,
)

AARQ, AARE, RLRQ, RLRE = 0x60, 0x61, 0x62, 0x63

# Application context names: { joint-iso-ccitt(2) country(16) country-name(756)
# identified-organization(5) DLMS-UA(8) application-context(1) context_id(N) } (Green Book 9.4.2.2.2).
APPLICATION_CONTEXT_PREFIX = "2.16.756.5.8.1."
APPLICATION_CONTEXTS: dict[int, str] = {1: "LN", 2: "SN", 3: "LN_ciphering", 4: "SN_ciphering"}
# Authentication mechanism names: { ... DLMS-UA(8) authentication_mechanism_name(2) mechanism_id(N) }
# (Green Book 9.4.2.2.3).
MECHANISM_PREFIX = "2.16.756.5.8.2."
MECHANISMS: dict[int, str] = {
    0: "lowest", 1: "low", 2: "high", 3: "high-md5", 4: "high-sha1", 5: "high-gmac",
    6: "high-sha256", 7: "high-ecdsa",
}
ASSOCIATION_RESULTS: dict[int, str] = {0: "accepted", 1: "rejected-permanent", 2: "rejected-transient"}
ACSE_SERVICE_USER: dict[int, str] = {
    0: "null", 1: "no-reason-given", 2: "application-context-name-not-supported",
    3: "calling-AP-title-not-recognized", 4: "calling-AP-invocation-identifier-not-recognized",
    5: "calling-AE-qualifier-not-recognized", 6: "calling-AE-invocation-identifier-not-recognized",
    7: "called-AP-title-not-recognized", 8: "called-AP-invocation-identifier-not-recognized",
    9: "called-AE-qualifier-not-recognized", 10: "called-AE-invocation-identifier-not-recognized",
    11: "authentication-mechanism-name-not-recognised", 12: "authentication-mechanism-name-required",
    13: "authentication-failure", 14: "authentication-required",
}
ACSE_SERVICE_PROVIDER: dict[int, str] = {0: "null", 1: "no-reason-given", 2: "no-common-acse-version"}
RELEASE_REQUEST_REASONS: dict[int, str] = {0: "normal", 1: "urgent", 30: "user-defined"}
RELEASE_RESPONSE_REASONS: dict[int, str] = {0: "normal", 1: "not-finished", 30: "user-defined"}
AUTHENTICATION_VALUE_FORMS: dict[int, str] = {0: "charstring", 1: "bitstring", 2: "external", 3: "other"}

# User-information payloads (xDLMS APDU tags, Green Book 9.5).
_INITIATE_REQUEST, _INITIATE_RESPONSE, _CONFIRMED_SERVICE_ERROR = 0x01, 0x08, 0x0E
_CIPHERED_INITIATE: dict[int, tuple[str, int]] = {
    0x21: ("glo-initiateRequest", _INITIATE_REQUEST),
    0x28: ("glo-initiateResponse", _INITIATE_RESPONSE),
    0x41: ("ded-initiateRequest", _INITIATE_REQUEST),
    0x48: ("ded-initiateResponse", _INITIATE_RESPONSE),
    0x2E: ("glo-confirmedServiceError", _CONFIRMED_SERVICE_ERROR),
    0x4E: ("ded-confirmedServiceError", _CONFIRMED_SERVICE_ERROR),
}
_GENERAL_CIPHERING = {0xDB: "general-glo-ciphering", 0xDC: "general-ded-ciphering"}


def _name(table: dict[int, str], code: int) -> str:
    return table.get(code, f"unknown-{code}")


# -- BER ------------------------------------------------------------------------------------


def read_tlv(r: Reader) -> tuple[int, int, int]:
    """One BER element at the cursor: (tag class+constructed byte, tag number, content end)."""
    first = r.u8("BER tag")
    number = first & 0x1F
    if number == 0x1F:
        number = 0
        for _ in range(4):
            b = r.u8("BER tag")
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            raise DecodeError("BER tag number too long")
    if r.peek() == 0x80:
        raise DecodeError("BER indefinite length is not allowed in DLMS")
    size = r.length("BER length")
    r.need(size, f"BER element [{number}]")
    return first & 0xE0, number, r.pos + size


def decode_oid(raw: bytes) -> str:
    if not raw:
        raise DecodeError("empty object identifier")
    arcs: list[int] = []
    value = 0
    for b in raw:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if raw[-1] & 0x80:
        raise DecodeError("object identifier ends inside an arc")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def _inner(r: Reader, end: int, what: str) -> tuple[int, bytes]:
    """The single element inside an explicitly tagged field: (its tag byte, its content)."""
    inner = Reader(r.buf, r.pos, end)
    tag_byte = inner.peek()
    _, _, inner_end = read_tlv(inner)
    content = bytes(inner.buf[inner.pos : inner_end])
    if inner_end != end:
        raise DecodeError(f"{what}: {end - inner_end} bytes after its value")
    return tag_byte or 0, content


def _integer(r: Reader, end: int, what: str) -> int:
    tag, content = _inner(r, end, what)
    if tag != 0x02 or not content or len(content) > 8:
        raise DecodeError(f"{what} is not a small INTEGER")
    return int.from_bytes(content, "big", signed=True)


def _oid_named(oid: str, prefix: str, table: dict[int, str]) -> str:
    if oid.startswith(prefix):
        tail = oid[len(prefix):]
        if tail.isdigit() and int(tail) in table:
            return table[int(tail)]
    return oid


def _ap_title(r: Reader, end: int, what: str) -> tuple[bytes, bool]:
    """An AP title's bytes and whether it is a system title (DLMS uses AP-title-form2 as an
    OCTET STRING of 8 bytes, Green Book 9.4.2.2.4; other forms are kept as their raw content)."""
    tag, content = _inner(r, end, what)
    return content, tag == 0x04 and len(content) == SYSTEM_TITLE_SIZE


# -- user-information -----------------------------------------------------------------------


def read_user_information(content: bytes) -> Fields:
    """The xDLMS APDU inside user-information ([30] EXPLICIT OCTET STRING)."""
    outer = Reader(content)
    tag, _, end = read_tlv(outer)
    if tag != 0x00 or content[0] != 0x04:
        raise DecodeError("user-information does not hold an OCTET STRING")
    apdu = bytes(content[outer.pos : end])
    if end != len(content):
        raise DecodeError("bytes after the user-information OCTET STRING")
    return decode_user_information_apdu(apdu)


def decode_user_information_apdu(apdu: bytes) -> Fields:
    if not apdu:
        raise DecodeError("empty user-information")
    r = Reader(apdu, 1)
    tag = apdu[0]
    if tag == _INITIATE_REQUEST:
        fields = {"dlms.user_information": "initiateRequest", **initiate.read_initiate_request(r)}
    elif tag == _INITIATE_RESPONSE:
        fields = {"dlms.user_information": "initiateResponse", **initiate.read_initiate_response(r)}
    elif tag == _CONFIRMED_SERVICE_ERROR:
        fields = {"dlms.user_information": "confirmedServiceError",
                  **service_errors.read_confirmed_service_error(r)}
    elif tag in _CIPHERED_INITIATE:
        return _ciphered_user_information(r, tag)
    elif tag in _GENERAL_CIPHERING:
        title = r.octet_string("system title")
        body = r.octet_string("ciphered content")
        r.expect_end(_GENERAL_CIPHERING[tag])
        header = parse_security_header(body)
        return {
            "dlms.user_information": _GENERAL_CIPHERING[tag],
            "dlms.initiate.ciphered": True,
            **header.fields(),
            **system_title_fields(title, "apdu"),
        }
    else:
        raise DecodeError(f"unknown user-information APDU 0x{tag:02x}")
    r.expect_end(fields["dlms.user_information"])
    fields["dlms.initiate.ciphered"] = False
    return fields


def _ciphered_user_information(r: Reader, tag: int) -> Fields:
    name, plain_tag = _CIPHERED_INITIATE[tag]
    size = r.length(f"{name} length")
    r.need(size, name)
    content = r.take(size, name)
    r.expect_end(name)
    header = parse_security_header(content)
    fields: Fields = {"dlms.user_information": name, "dlms.initiate.ciphered": True, **header.fields()}
    plain = readable_plaintext(header, content)
    if plain is not None and plain[0] == plain_tag:
        # Authenticated-only: the InitiateRequest is readable; the tag is in its place.
        inner = decode_user_information_apdu(plain)
        inner.pop("dlms.initiate.ciphered", None)
        inner.pop("dlms.user_information", None)
        fields.update(inner)
    return fields


# -- the four ACSE APDUs --------------------------------------------------------------------


def _authentication_value(r: Reader, end: int, role: str) -> Fields:
    """Presence, form and length of an authentication value — never its bytes."""
    inner = Reader(r.buf, r.pos, end)
    _, number, inner_end = read_tlv(inner)
    if inner_end != end:
        raise DecodeError(f"{role} authentication value: bytes after its value")
    return {
        f"dlms.{role}_authentication.present": True,
        f"dlms.{role}_authentication.form": _name(AUTHENTICATION_VALUE_FORMS, number),
        f"dlms.{role}_authentication.length": inner_end - inner.pos,
    }


def _diagnostic(r: Reader, end: int) -> Fields:
    inner = Reader(r.buf, r.pos, end)
    _, number, inner_end = read_tlv(inner)
    if inner_end != end:
        raise DecodeError("result-source-diagnostic: bytes after its value")
    code = _integer(inner, inner_end, "result-source-diagnostic")
    if number == 1:
        return {"dlms.association.diagnostic_source": "acse-service-user",
                "dlms.association.diagnostic": _name(ACSE_SERVICE_USER, code)}
    if number == 2:
        return {"dlms.association.diagnostic_source": "acse-service-provider",
                "dlms.association.diagnostic": _name(ACSE_SERVICE_PROVIDER, code)}
    raise DecodeError(f"unknown result-source-diagnostic choice [{number}]")


def decode_aarq(apdu: bytes) -> Fields:
    fields: Fields = {}
    r = _open(apdu, AARQ, "AARQ", fields)
    while r.remaining:
        _, number, end = read_tlv(r)
        if number == 1:
            _context(r, end, fields)
        elif number == 2:
            fields["dlms.called_ap_title"] = _ap_title(r, end, "called-AP-title")[0].hex()
        elif number == 6:
            title, is_system_title = _ap_title(r, end, "calling-AP-title")
            fields["dlms.calling_ap_title"] = title.hex()
            if is_system_title:
                fields.update(system_title_fields(title, "aarq"))
        elif number == 7:
            fields["dlms.calling_ae_qualifier_length"] = end - r.pos
        elif number == 9:
            fields["dlms.calling_ae_invocation_id"] = _integer(r, end, "calling-AE-invocation-id")
        elif number == 10:
            # BIT STRING: unused-bits byte, then bit 0 (authentication) as the top bit.
            fields["dlms.acse_requirements.authentication"] = (
                end - r.pos >= 2 and bool(r.buf[r.pos + 1] & 0x80))
        elif number == 11:
            fields.update(_mechanism(r, end))
        elif number == 12:
            fields.update(_authentication_value(r, end, "calling"))
        elif number == 30:
            end = _user_information(r, end, fields)
        r.pos = end
    fields.setdefault("dlms.authentication", "lowest")  # no mechanism-name: lowest level (9.4.2.2.3)
    fields.setdefault("dlms.calling_authentication.present", False)
    return fields


def decode_aare(apdu: bytes) -> Fields:
    fields: Fields = {}
    r = _open(apdu, AARE, "AARE", fields)
    while r.remaining:
        _, number, end = read_tlv(r)
        if number == 1:
            _context(r, end, fields)
        elif number == 2:
            code = _integer(r, end, "result")
            fields["dlms.association.result"] = _name(ASSOCIATION_RESULTS, code)
            fields["dlms.result"] = fields["dlms.association.result"]
        elif number == 3:
            fields.update(_diagnostic(r, end))
        elif number == 4:
            title, is_system_title = _ap_title(r, end, "responding-AP-title")
            fields["dlms.responding_ap_title"] = title.hex()
            if is_system_title:
                fields.update(system_title_fields(title, "aare"))
        elif number == 5:
            fields["dlms.responding_ae_qualifier_length"] = end - r.pos
        elif number == 9:
            fields.update(_mechanism(r, end))
        elif number == 10:
            fields.update(_authentication_value(r, end, "responding"))
        elif number == 30:
            end = _user_information(r, end, fields)
        r.pos = end
    if "dlms.association.result" not in fields:
        raise DecodeError("AARE without result")
    return fields


def decode_release(apdu: bytes, request: bool) -> Fields:
    name = "RLRQ" if request else "RLRE"
    fields: Fields = {}
    r = _open(apdu, RLRQ if request else RLRE, name, fields)
    while r.remaining:
        _, number, end = read_tlv(r)
        if number == 0:
            size = end - r.pos
            if not 1 <= size <= 2:
                raise DecodeError(f"{name} reason of {size} bytes")
            code = int.from_bytes(r.buf[r.pos : end], "big")
            table = RELEASE_REQUEST_REASONS if request else RELEASE_RESPONSE_REASONS
            fields["dlms.release.reason"] = _name(table, code)
        elif number == 30:
            end = _user_information(r, end, fields)
        r.pos = end
    return fields


def _open(apdu: bytes, tag: int, name: str, fields: Fields) -> Reader:
    """A reader over the ACSE APDU's content, which ends where the wrapper says it ends.

    Gurux (and the meters built on it) sends RLRE/RLRQ whose outer and user-information BER
    lengths are short by a few bytes while the wrapper length is right; such APDUs are decoded
    to the wrapper's end and flagged ``dlms.acse.length_mismatch`` rather than dropped.
    """
    r = Reader(apdu)
    first = r.u8(f"{name} tag")
    if first != tag:
        raise DecodeError(f"{name} tag 0x{first:02x}")
    size = r.length(f"{name} length")
    if size > r.remaining:
        raise DecodeError(f"{name} length {size} but {r.remaining} bytes follow")
    if size != r.remaining:
        fields["dlms.acse.length_mismatch"] = True
    return r


def _user_information(r: Reader, end: int, fields: Fields) -> int:
    """Decode [30] user-information; returns where it really ended (see :func:`_open`)."""
    try:
        fields.update(read_user_information(bytes(r.buf[r.pos : end])))
        return end
    except DecodeError:
        if end == r.end:
            raise
    fields.update(read_user_information(bytes(r.buf[r.pos : r.end])))
    fields["dlms.acse.length_mismatch"] = True
    return r.end


def _context(r: Reader, end: int, fields: Fields) -> None:
    tag, content = _inner(r, end, "application-context-name")
    if tag != 0x06:
        raise DecodeError("application-context-name is not an OBJECT IDENTIFIER")
    oid = decode_oid(content)
    fields["dlms.application_context_oid"] = oid
    fields["dlms.application_context"] = _oid_named(oid, APPLICATION_CONTEXT_PREFIX, APPLICATION_CONTEXTS)


def _mechanism(r: Reader, end: int) -> Fields:
    # [11]/[9] IMPLICIT OBJECT IDENTIFIER: the content is the OID itself.
    oid = decode_oid(bytes(r.buf[r.pos : end]))
    return {
        "dlms.authentication_mechanism_oid": oid,
        "dlms.authentication": _oid_named(oid, MECHANISM_PREFIX, MECHANISMS),
    }
