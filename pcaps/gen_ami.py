"""AMI and grid PDUs (DLMS/COSEM, ANSI C12.22, IEC 60870-5-104), each paired with its ground truth.

DLMS client APDUs come from gurux-dlms's GXDLMSClient (WRAPPER interface), an independent
implementation; gurux has no stand-alone server-side APDU builder, so responses are built here from
DLMS UA 1000-2 "Green Book" ed. 9 (AARE §11.2/§9.3, Get-Response §9.3.6, Action-Response §9.3.8) and
the IEC 62056-47 wrapper (version, source wPort, destination wPort, length).
C12.22 messages follow ANSI C12.22-2008 (ACSE §5.3.1, EPSEM §5.3.2, services §5.3.2.4) and C12.19-2008
(ST7 procedure initiate, ST8 procedure response, SP9 remote reset, SP10 set date/time).
IEC 104 APDUs follow IEC 60870-5-104:2006 §5 (APCI) and IEC 60870-5-101:2003 §7 (ASDU, type ids, COT).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

Truth = dict[str, Any]

# -- DLMS/COSEM ------------------------------------------------------------------------------------

DLMS_CLIENT_SAP = 0x10  # public client (Green Book: client SAP 16)
DLMS_SERVER_SAP = 0x01  # management logical device
CLOCK_OBIS, ENERGY_OBIS = "0.0.1.0.0.255", "1.0.1.8.0.255"
DISCONNECT_OBIS, IMAGE_OBIS = "0.0.96.3.10.255", "0.0.44.0.0.255"
SECURITY_SETUP_OBIS = "0.0.43.0.0.255"  # Blue Book: security setup of the current association

# AARE, LN referencing, no security, accepted (Green Book ed. 9 worked example): application context
# 2.16.756.5.8.1.1, result 0, diagnostic acse-service-user null, initiateResponse: DLMS version 6,
# conformance 0x001E1D, server max receive PDU 0x0400, VAA name 0x0007.
AARE_ACCEPTED = bytes.fromhex(
    "6129a109060760857405080101a203020100a305a103020100be10040e0800065f1f0400001e1d04000007"
)


def _dlms_truth(action: str, **fields: Any) -> Truth:
    return {"protocol": "dlms", "action": action} | {k: v for k, v in fields.items() if v is not None}


def _gurux_client() -> Any:
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType

    return GXDLMSClient(
        True, DLMS_CLIENT_SAP, DLMS_SERVER_SAP, Authentication.NONE, None, InterfaceType.WRAPPER
    )


def _one_frame(frames: Any) -> bytes:
    (frame,) = frames  # gurux returns one wrapper frame per short request
    return bytes(frame)


def dlms_wrap(apdu: bytes, source: int, destination: int) -> bytes:
    return struct.pack(">HHHH", 1, source, destination, len(apdu)) + apdu


def dlms_aarq() -> tuple[bytes, Truth]:
    return _one_frame(_gurux_client().aarqRequest()), _dlms_truth("association_request")


def dlms_aare() -> tuple[bytes, Truth]:
    return dlms_wrap(AARE_ACCEPTED, DLMS_SERVER_SAP, DLMS_CLIENT_SAP), _dlms_truth("association_response")


def dlms_get(class_id: int, obis: str, attribute: int) -> tuple[bytes, Truth]:
    """GET-Request-Normal by gurux for a Clock (8), Register (3) or Security setup (64) attribute."""
    from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister, GXDLMSSecuritySetup

    target = {8: GXDLMSClock, 3: GXDLMSRegister, 64: GXDLMSSecuritySetup}[class_id](obis)
    frame = _one_frame(_gurux_client().read(target, attribute))
    return frame, _dlms_truth("get_request", class_id=class_id, obis=_obis_text(obis), attribute_id=attribute)


def _references(request: Truth) -> dict[str, Any]:
    """A response names the reference of the request it answers (matched by invoke id)."""
    keys = ("class_id", "obis", "attribute_id", "method_id")
    return {k: request[k] for k in keys if k in request}


def dlms_get_response(request: tuple[bytes, Truth], data: bytes) -> tuple[bytes, Truth]:
    """Get-Response-Normal (C4 01), the request's invoke-id-and-priority, result choice data (00)."""
    apdu = b"\xc4\x01" + request[0][10:11] + b"\x00" + data
    truth = _dlms_truth("get_response", result="success", **_references(request[1]))
    return dlms_wrap(apdu, DLMS_SERVER_SAP, DLMS_CLIENT_SAP), truth


def dlms_remote_disconnect() -> tuple[bytes, Truth]:
    """Disconnect control (70) method 1 remote_disconnect, parameter integer 0, by gurux."""
    from gurux_dlms.objects import GXDLMSDisconnectControl

    frame = _one_frame(GXDLMSDisconnectControl(DISCONNECT_OBIS).remoteDisconnect(_gurux_client()))
    return frame, _dlms_truth("remote_disconnect", class_id=70, obis=_obis_text(DISCONNECT_OBIS), method_id=1)


def dlms_image_activate() -> tuple[bytes, Truth]:
    """Image transfer (18) method 4 image_activate, parameter integer 0, by gurux."""
    from gurux_dlms.objects import GXDLMSImageTransfer

    frame = _one_frame(GXDLMSImageTransfer(IMAGE_OBIS).imageActivate(_gurux_client()))
    return frame, _dlms_truth("image_activate", class_id=18, obis=_obis_text(IMAGE_OBIS), method_id=4)


def dlms_action_response(request: tuple[bytes, Truth]) -> tuple[bytes, Truth]:
    """Action-Response-Normal (C7 01): invoke id echoed, action-result success (0), no return parameters;
    the request's meaning (its action) travels with the response."""
    apdu = b"\xc7\x01" + request[0][10:11] + b"\x00\x00"
    truth = _dlms_truth(
        "action_response", result="success", meaning=request[1]["action"], **_references(request[1])
    )
    return dlms_wrap(apdu, DLMS_SERVER_SAP, DLMS_CLIENT_SAP), truth


def dlms_set_clock(
    year: int, month: int, day: int, hour: int, minute: int, second: int
) -> tuple[bytes, Truth]:
    """SET-Request-Normal of the Clock's time (attribute 2) by gurux; the date-time is UTC (deviation 0)
    so the bytes do not depend on the generating machine's time zone."""
    import datetime

    from gurux_dlms import GXDateTime
    from gurux_dlms.objects import GXDLMSClock

    clock = GXDLMSClock(CLOCK_OBIS)
    when = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    clock.time = GXDateTime(when)
    frame = _one_frame(_gurux_client().write(clock, 2))
    return frame, _dlms_truth("clock_set", class_id=8, obis=_obis_text(CLOCK_OBIS), attribute_id=2)


def dlms_set_daylight_savings(enabled: bool) -> tuple[bytes, Truth]:
    """SET-Request-Normal of the Clock's daylight_savings_enabled (attribute 8, boolean) by gurux."""
    from gurux_dlms.objects import GXDLMSClock

    clock = GXDLMSClock(CLOCK_OBIS)
    clock.enabled = enabled
    frame = _one_frame(_gurux_client().write(clock, 8))
    return frame, _dlms_truth("set_request", class_id=8, obis=_obis_text(CLOCK_OBIS), attribute_id=8)


def dlms_set_response(request: tuple[bytes, Truth]) -> tuple[bytes, Truth]:
    """Set-Response-Normal (C5 01): invoke id echoed, data-access-result success (0)."""
    apdu = b"\xc5\x01" + request[0][10:11] + b"\x00"
    meaning = request[1]["action"] if request[1]["action"] != "set_request" else None
    truth = _dlms_truth("set_response", result="success", meaning=meaning, **_references(request[1]))
    return dlms_wrap(apdu, DLMS_SERVER_SAP, DLMS_CLIENT_SAP), truth


def dlms_security_activate(policy: int) -> tuple[bytes, Truth]:
    """Security setup (64) method 1 security_activate with an enum security policy, by gurux."""
    from gurux_dlms.objects import GXDLMSSecuritySetup  # its activate() sends the policy as an enum

    frame = _one_frame(GXDLMSSecuritySetup(SECURITY_SETUP_OBIS).activate(_gurux_client(), policy))
    return frame, _dlms_truth(
        "security_policy_change", class_id=64, obis=_obis_text(SECURITY_SETUP_OBIS), method_id=1
    )


def enum(value: int) -> bytes:
    return b"\x16" + bytes([value])


def _obis_text(dotted: str) -> str:
    a, b, c, d, e, f = dotted.split(".")
    return f"{a}-{b}:{c}.{d}.{e}.{f}"


def cosem_date_time(year: int, month: int, day: int, hour: int, minute: int, second: int) -> bytes:
    """octet-string(12) date-time (Blue Book §4.1.6.1): weekday unspecified, deviation 0, status 0."""
    return b"\x09\x0c" + struct.pack(">HBBBBBBBhB", year, month, day, 0xFF, hour, minute, second, 0, 0, 0)


def double_long_unsigned(value: int) -> bytes:
    return b"\x06" + struct.pack(">I", value)


# -- ANSI C12.22 -----------------------------------------------------------------------------------

CLEARTEXT, CLEARTEXT_AUTHENTICATED = 0, 1  # EPSEM security modes (C12.22 §5.3.2.2)
C1222_DEMO_KEY = bytes(range(16))
HEAD_END_TITLE = "1.3.6.1.4.1.33507"
METER_TITLE = "1.3.6.1.4.1.33507.1919.20481.0"
PROCEDURE_NAMES = {  # C12.19 standard procedures SP3, SP9, SP10
    3: "procedure_clear_data",
    9: "procedure_remote_reset",
    10: "procedure_set_date_time",
}
MANUFACTURER_FLAG = 0x0800  # C12.19 TBL_PROC_NBR bit 11: a manufacturer procedure


def _ber_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _ber_len(len(content)) + content


def _base128(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _oid(text: str) -> bytes:
    arcs = [int(a) for a in text.split(".")]
    return _tlv(0x06, _base128(40 * arcs[0] + arcs[1]) + b"".join(_base128(a) for a in arcs[2:]))


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big"))


def c1222_message(
    called: str,
    calling: str,
    services: list[bytes],
    calling_invocation: int,
    called_invocation: int | None,
    security_mode: int = CLEARTEXT,
    iv: bytes = b"",
) -> bytes:
    """ACSE (60): called AP title (A2), [called AP invocation (A4)], calling AP title (A6), calling AP
    invocation (A8), [calling authentication value (AC)], user-information (BE/28/81) holding the EPSEM.

    The EPSEM control is 0x80 plus the security mode in bits 2-3 (C12.22 §5.3.2.2). Mode 1 (cleartext
    with authentication) names key id 0 and ``iv`` in the authentication value (§5.3.4.13: EXTERNAL,
    single-ASN1 [0], C12.22 value [1] {key-id [0], iv [1]}) and ends the EPSEM with a 4-octet MAC. The
    MAC here is a placeholder (HMAC-SHA-256 of the EPSEM under a demonstration key), not an EAX' tag.
    """
    epsem = bytes([0x80 | security_mode << 2]) + b"".join(_ber_len(len(s)) + s for s in services)
    elements = _tlv(0xA2, _oid(called))
    if called_invocation is not None:
        elements += _tlv(0xA4, _integer(called_invocation))
    elements += _tlv(0xA6, _oid(calling)) + _tlv(0xA8, _integer(calling_invocation))
    if security_mode == CLEARTEXT_AUTHENTICATED:
        key = _tlv(0x80, b"\x00") + _tlv(0x81, iv)
        elements += _tlv(0xAC, _tlv(0xA2, _tlv(0xA0, _tlv(0xA1, key))))
        epsem += hmac.new(C1222_DEMO_KEY, epsem, hashlib.sha256).digest()[:4]
    elements += _tlv(0xBE, _tlv(0x28, _tlv(0x81, epsem)))
    return _tlv(0x60, elements)


def _cksum(data: bytes) -> int:
    return (-sum(data)) & 0xFF  # C12.19 table data checksum: two's complement of the octet sum


def c1222_logon(user_id: int, user: bytes, timeout_s: int) -> bytes:
    return struct.pack(">BH", 0x50, user_id) + user.ljust(10, b" ") + struct.pack(">H", timeout_s)


def c1222_security(password: bytes) -> bytes:
    return b"\x51" + password.ljust(20, b"\x00")


def c1222_procedure(number: int, sequence: int, params: bytes = b"") -> bytes:
    """Full write (0x40) of ST7: TBL_PROC_NBR little-endian (ST0 default order), SEQ_NBR, PARM_DATA."""
    data = struct.pack("<HB", number, sequence) + params
    return struct.pack(">BHH", 0x40, 7, len(data)) + data + bytes([_cksum(data)])


def c1222_manufacturer_procedure(number: int, sequence: int, params: bytes = b"") -> bytes:
    """Full write of ST7 starting manufacturer procedure MP``number`` (TBL_PROC_NBR bit 11 set)."""
    return c1222_procedure(number | MANUFACTURER_FLAG, sequence, params)


def c1222_full_read(table: int) -> bytes:
    return struct.pack(">BH", 0x30, table)


def c1222_st1_data(manufacturer: str, model: str, serial: str) -> bytes:
    """<ok> response to a full read of ST1 (GEN_MFG_ID_TBL): MANUFACTURER CHAR(4), ED_MODEL CHAR(8),
    HW/FW version and revision UINT8 each, MFG_SERIAL_NUMBER CHAR(16)."""
    data = (
        manufacturer.encode().ljust(4)
        + model.encode().ljust(8)
        + bytes([3, 1, 5, 12])
        + serial.encode().ljust(16)
    )
    return struct.pack(">BH", 0x00, len(data)) + data + bytes([_cksum(data)])


def c1222_logoff() -> bytes:
    return b"\x52"


def c1222_registration(ap_title: str, serial: str, native_address: bytes, period_s: int) -> bytes:
    """<register> (§5.3.2.4.7): node type end device (bit 5), connection type accept connectionless and
    connectionless mode (bits 4, 5), device class, AP title, electronic serial number (a relative OID
    of the serial digits), native address, registration period (UINT24 seconds)."""
    return (
        bytes([0x27, 0x20, 0x30])
        + bytes.fromhex("01828607")  # device class: relative identifier .1.33507 in 4 octets
        + _oid(ap_title)
        + _tlv(0x0D, _base128(int(serial)))
        + bytes([len(native_address)])
        + native_address
        + period_s.to_bytes(3, "big")
    )


def c1222_registration_ok(ap_title: str, delay_s: int, period_s: int) -> bytes:
    """<register-r>: <ok>, the registered AP title, registration delay (UINT16), period (UINT24),
    registration info (direct messaging available, connectionless mode)."""
    return b"\x00" + _oid(ap_title) + struct.pack(">H", delay_s) + period_s.to_bytes(3, "big") + b"\x11"


def c1222_st8_read() -> bytes:
    """Partial read (0x3F) of ST8 offset 0, 4 octets: procedure id, sequence, RESULT_CODE."""
    return struct.pack(">BH", 0x3F, 8) + (0).to_bytes(3, "big") + struct.pack(">H", 4)


def c1222_st8_data(number: int, sequence: int, result: int) -> bytes:
    data = struct.pack("<HBB", number, sequence, result)
    return struct.pack(">BH", 0x00, len(data)) + data + bytes([_cksum(data)])


def c1222_truth(action: str, pdu_type: str, service: str, **fields: Any) -> Truth:
    return {"protocol": "c1222", "action": action, "pdu_type": pdu_type, "service": [service]} | fields


# -- IEC 60870-5-104 -------------------------------------------------------------------------------

STARTDT_ACT, STARTDT_CON, TESTFR_ACT, TESTFR_CON = 0x04, 0x08, 0x40, 0x80  # U format bits (§5.3)
U_NAMES = {
    STARTDT_ACT: "STARTDT_act",
    STARTDT_CON: "STARTDT_con",
    TESTFR_ACT: "TESTFR_act",
    TESTFR_CON: "TESTFR_con",
}
# IEC 60870-5-101 §7.2.1 / 104 §8: type id -> (mnemonic, otsentry action)
TYPES = {
    13: ("M_ME_NC_1", "measured_value_float"),
    45: ("C_SC_NA_1", "single_command"),
    100: ("C_IC_NA_1", "interrogation"),
    102: ("C_RD_NA_1", "read"),
    103: ("C_CS_NA_1", "clock_sync"),
    105: ("C_RP_NA_1", "reset_process"),
    112: ("P_ME_NC_1", "parameter_float"),
}
COT_REQ, COT_ACT, COT_ACTCON, COT_ACTTERM, COT_INROGEN = 5, 6, 7, 10, 20  # IEC 60870-5-101 §7.2.3
QPM_THRESHOLD = 1  # qualifier of parameter of measured values: KPA 1 = threshold value (§7.2.6.24)


def iec104_u(function_bit: int) -> tuple[bytes, Truth]:
    name = U_NAMES[function_bit]
    frame = bytes([0x68, 4, function_bit | 0x03, 0, 0, 0])
    return frame, {"protocol": "iec104", "action": name.lower(), "u_function": name}


def iec104_s(recv_seq: int) -> tuple[bytes, Truth]:
    return bytes([0x68, 4, 0x01, 0x00]) + struct.pack("<H", recv_seq << 1), {
        "protocol": "iec104",
        "action": "s_frame",
        "recv_seq": recv_seq,
    }


def iec104_i(
    send_seq: int,
    recv_seq: int,
    type_id: int,
    cot: int,
    objects: list[tuple[int, bytes]],
    common_address: int,
) -> tuple[bytes, Truth]:
    """I format: APCI with N(S)/N(R), ASDU header (type, VSQ with SQ=0, COT, originator 0, common
    address), then each object's 3-octet IOA and its elements."""
    asdu = struct.pack("<BBBBH", type_id, len(objects), cot, 0, common_address)
    asdu += b"".join(ioa.to_bytes(3, "little") + body for ioa, body in objects)
    frame = bytes([0x68, 4 + len(asdu)]) + struct.pack("<HH", send_seq << 1, recv_seq << 1) + asdu
    return frame, {
        "protocol": "iec104",
        "action": TYPES[type_id][1],
        "type_id": type_id,
        "cot": cot,
        "send_seq": send_seq,
        "recv_seq": recv_seq,
        "common_address": common_address,
        "ioa": [ioa for ioa, _ in objects],
    } | ({"select": [bool(body[0] & 0x80) for _, body in objects]} if type_id == 45 else {})


def float_measurement(value: float) -> bytes:
    """IEEE STD 754 short float (R32) + QDS 0 (good quality)."""
    return struct.pack("<fB", value, 0)


def parameter_float(value: float, kind: int = QPM_THRESHOLD) -> bytes:
    """P_ME_NC_1 elements: short float (R32) + QPM (KPA bits 1-6, LPC 0, POP 0)."""
    return struct.pack("<fB", value, kind)


def single_command(on: bool, select: bool) -> bytes:
    """SCO: bit 0 SCS, bits 2-6 QU (0), bit 7 S/E (1 = select)."""
    return bytes([(0x80 if select else 0) | (1 if on else 0)])


def cp56time2a(year: int, month: int, day: int, hour: int, minute: int, ms: int) -> bytes:
    """CP56Time2a (IEC 60870-5-4 §6.8): ms, minute, hour, day (weekday 0), month, year - 2000."""
    return struct.pack("<HBBBBB", ms, minute, hour, day, month, year - 2000)
