"""One DLMS APDU -> :class:`Decoded`: the tag table, ciphered envelopes and the dispatcher.

Tags: Green Book ed. 9, 9.5 "xDLMS-APDU ::= CHOICE" and 9.4.2 (ACSE). Ciphered APDUs
(glo-/ded-, general-glo/ded-ciphering, general-ciphering) carry a security header whose
information part is encrypted unless the security control byte says otherwise; when it is in
clear (authentication only) the inner APDU is decoded as well and its meaning reported.
"""

from __future__ import annotations

from collections.abc import Callable

from otsentry.protocols.base import DecodeError
from otsentry.protocols.dlms import acse, service_errors, sn, xdlms
from otsentry.protocols.dlms.axdr import Reader
from otsentry.protocols.dlms.security import parse_security_header, readable_plaintext, system_title_fields
from otsentry.protocols.dlms.xdlms import Decoded, Lookup

# Unciphered APDUs: tag -> (ASN.1 name, event.action).
PLAIN_APDUS: dict[int, tuple[str, str]] = {
    0x01: ("initiateRequest", "initiate_request"),
    0x05: ("readRequest", "read_request"),
    0x06: ("writeRequest", "write_request"),
    0x08: ("initiateResponse", "initiate_response"),
    0x0C: ("readResponse", "read_response"),
    0x0D: ("writeResponse", "write_response"),
    0x0E: ("confirmedServiceError", "confirmed_service_error"),
    0x0F: ("data-notification", "data_notification"),
    0x16: ("unconfirmedWriteRequest", "unconfirmed_write_request"),
    0x18: ("informationReportRequest", "information_report"),
    0x60: ("AARQ", "association_request"),
    0x61: ("AARE", "association_response"),
    0x62: ("RLRQ", "release_request"),
    0x63: ("RLRE", "release_response"),
    0xC0: ("get-request", "get_request"),
    0xC1: ("set-request", "set_request"),
    0xC2: ("event-notification-request", "event_notification"),
    0xC3: ("action-request", "action_request"),
    0xC4: ("get-response", "get_response"),
    0xC5: ("set-response", "set_response"),
    0xC7: ("action-response", "action_response"),
    0xD8: ("exception-response", "exception_response"),
    0xD9: ("access-request", "access_request"),
    0xDA: ("access-response", "access_response"),
    0xE0: ("general-block-transfer", "general_block_transfer"),
}

# Ciphered service APDUs: glo-/ded- tag -> the tag of the APDU they protect (Green Book 9.5:
# LN services glo = plain + 8, ded = plain + 16; SN/initiate glo = plain + 32, ded = plain + 64).
_LN_PLAIN = (0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC7)
_SN_PLAIN = (0x01, 0x05, 0x06, 0x08, 0x0C, 0x0D, 0x0E, 0x16, 0x18)
CIPHERED_APDUS: dict[int, int] = {
    **{tag + 8: tag for tag in _LN_PLAIN},
    **{tag + 16: tag for tag in _LN_PLAIN},
    **{tag + 32: tag for tag in _SN_PLAIN},
    **{tag + 64: tag for tag in _SN_PLAIN},
}
GENERAL_CIPHERING: dict[int, tuple[str, str]] = {
    0xDB: ("general-glo-ciphering", "general_glo_ciphering"),
    0xDC: ("general-ded-ciphering", "general_ded_ciphering"),
    0xDD: ("general-ciphering", "general_ciphering"),
    0xDF: ("general-signing", "general_signing"),
}
KNOWN_TAGS = frozenset(PLAIN_APDUS) | frozenset(CIPHERED_APDUS) | frozenset(GENERAL_CIPHERING)
_GLO_TAGS = frozenset({t + 8 for t in _LN_PLAIN} | {t + 32 for t in _SN_PLAIN})

# general-ciphering key-info (Green Book 9.5 "Key-Info ::= CHOICE").
KEY_INFO = {0: "identified-key", 1: "wrapped-key", 2: "agreed-key"}
MAX_ENVELOPE_DEPTH = 2


def apdu_name(tag: int) -> str:
    if tag in PLAIN_APDUS:
        return PLAIN_APDUS[tag][0]
    if tag in GENERAL_CIPHERING:
        return GENERAL_CIPHERING[tag][0]
    if tag in CIPHERED_APDUS:
        prefix = "glo-" if tag in _GLO_TAGS else "ded-"
        return prefix + PLAIN_APDUS[CIPHERED_APDUS[tag]][0]
    return f"unknown-0x{tag:02x}"


ServiceReader = Callable[[Reader, Lookup | None], Decoded]
_READERS: dict[int, ServiceReader] = {
    0x05: sn.read_read_request,
    0x06: sn.read_write_request,
    0x0C: sn.read_read_response,
    0x0D: sn.read_write_response,
    0x0F: xdlms.read_data_notification,
    0x16: sn.read_unconfirmed_write_request,
    0x18: sn.read_information_report,
    0xC0: xdlms.read_get_request,
    0xC1: xdlms.read_set_request,
    0xC2: xdlms.read_event_notification,
    0xC3: xdlms.read_action_request,
    0xC4: xdlms.read_get_response,
    0xC5: xdlms.read_set_response,
    0xC7: xdlms.read_action_response,
    0xD9: xdlms.read_access_request,
    0xDA: xdlms.read_access_response,
    0xE0: xdlms.read_general_block_transfer,
}


def decode_apdu(apdu: bytes, lookup: Lookup | None = None, depth: int = 0) -> Decoded:
    """Decode one whole APDU; raises DecodeError on anything malformed, trailing bytes included."""
    if not apdu:
        raise DecodeError("empty APDU")
    tag = apdu[0]
    name = apdu_name(tag)
    if tag in _READERS:
        r = Reader(apdu, 1)
        d = _READERS[tag](r, lookup)
        r.expect_end(name)
    elif tag in CIPHERED_APDUS:
        d = _ciphered(apdu, tag, lookup, depth)
    elif tag in GENERAL_CIPHERING:
        d = _general(apdu, tag, lookup, depth)
    elif tag == acse.AARQ:
        d = Decoded("association_request", acse.decode_aarq(apdu))
    elif tag == acse.AARE:
        d = Decoded("association_response", acse.decode_aare(apdu))
    elif tag in (acse.RLRQ, acse.RLRE):
        d = Decoded(PLAIN_APDUS[tag][1], acse.decode_release(apdu, tag == acse.RLRQ))
    elif tag in (0x01, 0x08, 0x0E):
        d = Decoded(PLAIN_APDUS[tag][1], acse.decode_user_information_apdu(apdu))
    elif tag == 0xD8:
        r = Reader(apdu, 1)
        d = Decoded("exception_response", service_errors.read_exception_response(r))
        r.expect_end(name)
    else:
        raise DecodeError(f"unknown APDU tag 0x{tag:02x}")
    d.fields["dlms.apdu"] = name
    d.fields["dlms.apdu_tag"] = tag
    d.fields.setdefault("dlms.ciphered", False)
    return d


def _inner(plain: bytes | None, d: Decoded, lookup: Lookup | None, depth: int,
           expected: int | None = None) -> None:
    """Decode the readable APDU inside an envelope and lift its meaning to the outer event."""
    if plain is None or depth >= MAX_ENVELOPE_DEPTH:
        return
    if expected is not None and plain[0] != expected:
        raise DecodeError(f"{d.fields['dlms.apdu']} protects a 0x{plain[0]:02x} APDU, not 0x{expected:02x}")
    inner = decode_apdu(plain, lookup, depth + 1)
    for key, value in inner.fields.items():
        if key in ("dlms.apdu", "dlms.apdu_tag", "dlms.ciphered"):
            continue
        d.fields.setdefault(key, value)
    d.fields["dlms.inner_apdu"] = inner.fields["dlms.apdu"]
    d.action, d.service, d.role, d.invoke_id = inner.action, inner.service, inner.role, inner.invoke_id
    d.items, d.with_list, d.continuation, d.more, d.block = (
        inner.items, inner.with_list, inner.continuation, inner.more, inner.block)


def _ciphered(apdu: bytes, tag: int, lookup: Lookup | None, depth: int) -> Decoded:
    name = apdu_name(tag)
    r = Reader(apdu, 1)
    size = r.length(f"{name} length")
    if size != r.remaining:
        raise DecodeError(f"{name} length {size} but {r.remaining} bytes follow")
    content = apdu[r.pos :]
    header = parse_security_header(content)
    plain_tag = CIPHERED_APDUS[tag]
    d = Decoded(PLAIN_APDUS[plain_tag][1], {"dlms.apdu": name, **header.fields(),
                                            "dlms.ciphertext_length": len(content) - 5})
    _inner(readable_plaintext(header, content), d, lookup, depth, plain_tag)
    return d


def _general(apdu: bytes, tag: int, lookup: Lookup | None, depth: int) -> Decoded:
    name, action = GENERAL_CIPHERING[tag]
    r = Reader(apdu, 1)
    d = Decoded(action, {"dlms.apdu": name})
    if tag == 0xDD or tag == 0xDF:
        transaction = r.octet_string("transaction-id")
        originator = r.octet_string("originator-system-title")
        recipient = r.octet_string("recipient-system-title")
        date_time = r.octet_string("date-time")
        r.octet_string("other-information")
        d.fields["dlms.transaction_id"] = transaction.hex()
        if recipient:
            d.fields["dlms.recipient_system_title"] = recipient.hex()
        if date_time:
            d.fields["dlms.date_time"] = xdlms.render_octet_time(date_time)
        if originator:
            d.fields.update(system_title_fields(originator, "apdu"))
    else:
        d.fields.update(system_title_fields(r.octet_string("system-title"), "apdu"))
    if tag == 0xDF:
        content = r.octet_string("content")
        signature = r.octet_string("signature")
        r.expect_end(name)
        d.fields["dlms.signature_length"] = len(signature)
        _inner(content, d, lookup, depth)
        return d
    if tag == 0xDD and r.u8("key-info presence"):
        choice = r.u8("key-info choice")
        if choice not in KEY_INFO:
            raise DecodeError(f"unknown key-info choice {choice}")
        d.fields["dlms.key_info"] = KEY_INFO[choice]
        if choice == 0:
            d.fields["dlms.key_id"] = r.u8("key-id")
        elif choice == 1:
            d.fields["dlms.key_id"] = r.u8("kek-id")
            r.octet_string("key-ciphered-data")
        else:
            r.octet_string("key-parameters")
            r.octet_string("key-ciphered-data")
    content = r.octet_string("ciphered-content")
    r.expect_end(name)
    header = parse_security_header(content)
    d.fields.update(header.fields())
    d.fields["dlms.ciphertext_length"] = len(content) - 5
    _inner(readable_plaintext(header, content), d, lookup, depth)
    return d

