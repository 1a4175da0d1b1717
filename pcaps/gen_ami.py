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

import struct
from typing import Any

Truth = dict[str, Any]

# -- DLMS/COSEM ------------------------------------------------------------------------------------

DLMS_CLIENT_SAP = 0x10  # public client (Green Book: client SAP 16)
DLMS_SERVER_SAP = 0x01  # management logical device
CLOCK_OBIS, ENERGY_OBIS = "0.0.1.0.0.255", "1.0.1.8.0.255"
DISCONNECT_OBIS, IMAGE_OBIS = "0.0.96.3.10.255", "0.0.44.0.0.255"

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
    """GET-Request-Normal by gurux for a Clock (8) or Register (3) attribute."""
    from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister

    target = {8: GXDLMSClock, 3: GXDLMSRegister}[class_id](obis)
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


def _obis_text(dotted: str) -> str:
    a, b, c, d, e, f = dotted.split(".")
    return f"{a}-{b}:{c}.{d}.{e}.{f}"


def cosem_date_time(year: int, month: int, day: int, hour: int, minute: int, second: int) -> bytes:
    """octet-string(12) date-time (Blue Book §4.1.6.1): weekday unspecified, deviation 0, status 0."""
    return b"\x09\x0c" + struct.pack(">HBBBBBBBhB", year, month, day, 0xFF, hour, minute, second, 0, 0, 0)


def double_long_unsigned(value: int) -> bytes:
    return b"\x06" + struct.pack(">I", value)


# -- ANSI C12.22 -----------------------------------------------------------------------------------

HEAD_END_TITLE = "1.3.6.1.4.1.33507"
METER_TITLE = "1.3.6.1.4.1.33507.1919.20481.0"
PROCEDURE_NAMES = {9: "procedure_remote_reset", 10: "procedure_set_date_time"}  # C12.19 SP9, SP10


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
    called: str, calling: str, services: list[bytes], calling_invocation: int, called_invocation: int | None
) -> bytes:
    """ACSE (60): called AP title (A2), [called AP invocation (A4)], calling AP title (A6), calling AP
    invocation (A8), user-information (BE/28/81) holding a cleartext EPSEM (control 0x80)."""
    epsem = b"\x80" + b"".join(_ber_len(len(s)) + s for s in services)
    elements = _tlv(0xA2, _oid(called))
    if called_invocation is not None:
        elements += _tlv(0xA4, _integer(called_invocation))
    elements += _tlv(0xA6, _oid(calling)) + _tlv(0xA8, _integer(calling_invocation))
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
    103: ("C_CS_NA_1", "clock_sync"),
    105: ("C_RP_NA_1", "reset_process"),
}
COT_ACT, COT_ACTCON, COT_ACTTERM, COT_INROGEN = 6, 7, 10, 20  # IEC 60870-5-101 §7.2.3


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


def single_command(on: bool, select: bool) -> bytes:
    """SCO: bit 0 SCS, bits 2-6 QU (0), bit 7 S/E (1 = select)."""
    return bytes([(0x80 if select else 0) | (1 if on else 0)])


def cp56time2a(year: int, month: int, day: int, hour: int, minute: int, ms: int) -> bytes:
    """CP56Time2a (IEC 60870-5-4 §6.8): ms, minute, hour, day (weekday 0), month, year - 2000."""
    return struct.pack("<HBBBBB", ms, minute, hour, day, month, year - 2000)
