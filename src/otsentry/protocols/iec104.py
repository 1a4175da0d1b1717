"""IEC 60870-5-104 analyzer: APCI framing on TCP 2404, I/S/U formats, ASDU and information objects.

Sources: IEC 60870-5-104:2006 §5 (APDU = start 0x68, length 4..253, 4-octet control field in I, S
or U format; ASDU with 2-octet cause of transmission, 2-octet common address, 3-octet IOA) and
IEC 60870-5-101:2003 §7 (ASDU header and information elements). Code tables and element layouts
live in ``iec104_codes``.

Framing: each direction keeps a buffer of at most one APDU (257 bytes). When the bytes at a PDU
boundary are not an APDU start, one decode-error message is emitted and the analyzer hunts for
the next *plausible* start (0x68, valid length and control field, next APDU chaining) without
further messages until it decodes an APDU again; ``on_gap`` hunts the same way, silently.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from otsentry.protocols import ProtocolSpec
from otsentry.protocols.base import DecodeError, Fields, Message, decode_error_fields
from otsentry.protocols.iec104_codes import (
    BCR_BITS,
    CAUSE_NAMES,
    COMMAND_QUALIFIERS,
    COUNTER_FREEZE,
    COUNTER_REQUESTS,
    DOUBLE_COMMAND_STATES,
    DOUBLE_STATES,
    ELEMENT_SIZES,
    FILE_ACKS,
    FILE_CALLS,
    FILE_ERRORS,
    INIT_CAUSES,
    INTERROGATION_QUALIFIERS,
    OCI_BITS,
    PARAMETER_ACTIVATIONS,
    PARAMETER_KINDS,
    QDP_BITS,
    QDS_BITS,
    QUALITY_BITS,
    RESET_QUALIFIERS,
    SINGLE_STATES,
    SPE_BITS,
    STEP_COMMAND_STATES,
    TYPE_ELEMENTS,
    TYPES,
    U_FUNCTIONS,
)

PROTOCOL = "iec104"
DATASET = "otsentry.iec104"
START = 0x68
MIN_APDU_LENGTH = 4  # the length octet counts the control field (4) and the ASDU
MAX_APDU_LENGTH = 253
ASDU_OFFSET = 6  # start, length, 4 control octets
ASDU_HEADER_LENGTH = 6  # type id, VSQ, COT, originator, common address (2)
OBJECTS_OFFSET = ASDU_OFFSET + ASDU_HEADER_LENGTH
IOA_LENGTH = 3
MIN_I_LENGTH = MIN_APDU_LENGTH + ASDU_HEADER_LENGTH  # for the probe and resynchronisation
MAX_OBJECTS = 256  # objects per event (VSQ allows 127; the cap guards future callers)
PROBE_MAX_APDUS = 8  # how many chained APDUs of one segment the probe checks
F_SG_NA_1 = 125  # the one type whose object size is carried in the object (LOS)

_U16 = struct.Struct("<H")
_U16X2 = struct.Struct("<HH")
_I16 = struct.Struct("<h")
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")
_BCR = struct.Struct("<iB")
_IOA = struct.Struct("<HB")
_CP24 = struct.Struct("<HB")
_CP56 = struct.Struct("<HBBBBB")
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

Obj = dict[str, Any]
ElementDecoder = Callable[[bytes, int, Obj], None]


class Iec104DecodeError(DecodeError):
    """A :class:`DecodeError` that keeps the fields decoded before the problem (header, APCI)."""

    def __init__(self, reason: str, fields: Fields) -> None:
        super().__init__(reason)
        self.fields = fields


def _flag_table(bits: dict[int, str]) -> tuple[tuple[str, ...], ...]:
    """Per octet value, the names of its set flag bits (lowest bit first)."""
    return tuple(tuple(name for bit, name in sorted(bits.items()) if octet & bit) for octet in range(256))


_QUALITY = _flag_table(QUALITY_BITS)
_QDS = _flag_table(QDS_BITS)
_QDP = _flag_table(QDP_BITS)
_BCR_FLAGS = _flag_table(BCR_BITS)
_SPE = _flag_table(SPE_BITS)
_OCI = _flag_table(OCI_BITS)


def _ranged(table: dict[int, str], value: int, private_from: int) -> str:
    """A qualifier's name; undefined values are ``reserved`` or, from ``private_from``, ``private``."""
    name = table.get(value)
    if name is not None:
        return name
    return "private" if value >= private_from else "reserved"


# -- time tags (§7.2.6.18–20) ---------------------------------------------------------------------


def _cp56(d: bytes, off: int, o: Obj, key: str = "time") -> None:
    """CP56Time2a as ISO 8601 local time (the standard carries no zone). Two-digit years pivot at
    70 like Wireshark's dissector; an impossible date gives ``None`` and the raw octets."""
    ms, minute, hour, day, month, year = _CP56.unpack_from(d, off)
    if minute & 0x80:
        o[f"{key}_invalid"] = True
    if minute & 0x40:  # RES1 = GEN in edition 2: substituted time
        o[f"{key}_substituted"] = True
    if hour & 0x80:
        o[f"{key}_summer"] = True
    minute &= 0x3F
    hour &= 0x1F
    day &= 0x1F
    month &= 0x0F
    year = (year & 0x7F) + (2000 if (year & 0x7F) < 70 else 1900)
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if (
        ms < 60000
        and minute < 60
        and hour < 24
        and 1 <= month <= 12
        and 1 <= day <= _DAYS_IN_MONTH[month] + leap
    ):
        o[key] = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{ms // 1000:02d}.{ms % 1000:03d}"
    else:
        o[key] = None
        o[f"{key}_raw"] = bytes(d[off : off + 7]).hex()


def _cp56_stop(d: bytes, off: int, o: Obj) -> None:
    _cp56(d, off, o, "stop_time")


def _cp24(d: bytes, off: int, o: Obj) -> None:
    """CP24Time2a: minutes and milliseconds within the hour, rendered ``MM:SS.mmm``."""
    ms, minute = _CP24.unpack_from(d, off)
    if minute & 0x80:
        o["time_invalid"] = True
    minute &= 0x3F
    if ms < 60000 and minute < 60:
        o["time"] = f"{minute:02d}:{ms // 1000:02d}.{ms % 1000:03d}"
    else:
        o["time"] = None
        o["time_raw"] = bytes(d[off : off + 3]).hex()


def _cp16(d: bytes, off: int, o: Obj) -> None:
    o["elapsed_ms"] = _U16.unpack_from(d, off)[0]


# -- values and quality (§7.2.6.1–13) -------------------------------------------------------------


def _float32(d: bytes, off: int, o: Obj) -> None:
    """R32 (IEEE 754 single), as the shortest decimal that maps back to the same 32 bits."""
    value = _F32.unpack_from(d, off)[0]
    if not math.isfinite(value):
        o["value"] = None
        o["float_special"] = str(value)
        return
    for digits in (".7g", ".8g"):
        short = float(format(value, digits))
        if _F32.pack(short) == d[off : off + 4]:
            o["value"] = short
            return
    o["value"] = float(format(value, ".9g"))


def _siq(d: bytes, off: int, o: Obj) -> None:
    octet = d[off]
    o["value"] = octet & 1
    o["state"] = SINGLE_STATES[octet & 1]
    o["quality"] = list(_QUALITY[octet])


def _diq(d: bytes, off: int, o: Obj) -> None:
    octet = d[off]
    o["value"] = octet & 3
    o["state"] = DOUBLE_STATES[octet & 3]
    o["quality"] = list(_QUALITY[octet])


def _qds(d: bytes, off: int, o: Obj) -> None:
    o["quality"] = list(_QDS[d[off]])


def _vti(d: bytes, off: int, o: Obj) -> None:
    octet = d[off]
    value = octet & 0x7F
    o["value"] = value - 128 if value & 0x40 else value  # I7: two's complement, -64..63
    o["transient"] = bool(octet & 0x80)


def _bsi(d: bytes, off: int, o: Obj) -> None:
    o["value"] = _U32.unpack_from(d, off)[0]


def _nva(d: bytes, off: int, o: Obj) -> None:
    raw = _I16.unpack_from(d, off)[0]
    o["value"] = raw / 32768  # F16: -1 .. +1-2^-15
    o["raw"] = raw


def _sva(d: bytes, off: int, o: Obj) -> None:
    o["value"] = _I16.unpack_from(d, off)[0]


def _bcr(d: bytes, off: int, o: Obj) -> None:
    value, sequence = _BCR.unpack_from(d, off)
    o["value"] = value
    o["sequence"] = sequence & 0x1F
    o["quality"] = list(_BCR_FLAGS[sequence])


def _sep(d: bytes, off: int, o: Obj) -> None:
    octet = d[off]
    o["value"] = octet & 3
    o["state"] = DOUBLE_STATES[octet & 3]
    o["quality"] = list(_QDP[octet])


def _spe(d: bytes, off: int, o: Obj) -> None:
    o["value"] = d[off]
    o["events"] = list(_SPE[d[off]])


def _oci(d: bytes, off: int, o: Obj) -> None:
    o["value"] = d[off]
    o["events"] = list(_OCI[d[off]])


def _qdp(d: bytes, off: int, o: Obj) -> None:
    o["quality"] = list(_QDP[d[off]])


def _scd(d: bytes, off: int, o: Obj) -> None:
    o["value"], o["change"] = _U16X2.unpack_from(d, off)


# -- commands and qualifiers (§7.2.6.14–17, 21–27) ---------------------------------------------


def _command_qualifier(octet: int, o: Obj) -> None:
    qualifier = (octet >> 2) & 0x1F
    o["qualifier"] = qualifier
    o["qualifier_name"] = COMMAND_QUALIFIERS[qualifier]
    o["select"] = bool(octet & 0x80)


def _sco(d: bytes, off: int, o: Obj) -> None:
    octet = d[off]
    o["value"] = octet & 1
    o["state"] = SINGLE_STATES[octet & 1]
    _command_qualifier(octet, o)


def _dco(d: bytes, off: int, o: Obj) -> None:
    octet = d[off]
    o["value"] = octet & 3
    o["state"] = DOUBLE_COMMAND_STATES[octet & 3]
    _command_qualifier(octet, o)


def _rco(d: bytes, off: int, o: Obj) -> None:
    octet = d[off]
    o["value"] = octet & 3
    o["state"] = STEP_COMMAND_STATES[octet & 3]
    _command_qualifier(octet, o)


def _qos(d: bytes, off: int, o: Obj) -> None:
    o["qualifier"] = d[off] & 0x7F
    o["select"] = bool(d[off] & 0x80)


def _coi(d: bytes, off: int, o: Obj) -> None:
    cause = d[off] & 0x7F
    o["qualifier"] = cause
    o["qualifier_name"] = _ranged(INIT_CAUSES, cause, 32)
    o["local_param_change"] = bool(d[off] & 0x80)


def _qoi(d: bytes, off: int, o: Obj) -> None:
    o["qualifier"] = d[off]
    o["qualifier_name"] = _ranged(INTERROGATION_QUALIFIERS, d[off], 64)


def _qcc(d: bytes, off: int, o: Obj) -> None:
    request = d[off] & 0x3F
    o["qualifier"] = request
    o["qualifier_name"] = _ranged(COUNTER_REQUESTS, request, 32)
    o["freeze"] = d[off] >> 6
    o["freeze_name"] = COUNTER_FREEZE[d[off] >> 6]


def _qrp(d: bytes, off: int, o: Obj) -> None:
    o["qualifier"] = d[off]
    o["qualifier_name"] = _ranged(RESET_QUALIFIERS, d[off], 128)


def _u16_value(d: bytes, off: int, o: Obj) -> None:
    """FBP (test pattern, 0x55AA), TSC (test sequence counter), CP16 of C_CD_NA_1 (delay, ms)."""
    o["value"] = _U16.unpack_from(d, off)[0]


def _qpm(d: bytes, off: int, o: Obj) -> None:
    kind = d[off] & 0x3F
    o["qualifier"] = kind
    o["qualifier_name"] = _ranged(PARAMETER_KINDS, kind, 32)
    o["local_param_change"] = bool(d[off] & 0x40)
    o["not_in_operation"] = bool(d[off] & 0x80)


def _qpa(d: bytes, off: int, o: Obj) -> None:
    o["qualifier"] = d[off]
    o["qualifier_name"] = _ranged(PARAMETER_ACTIVATIONS, d[off], 128)


def _aid(d: bytes, off: int, o: Obj) -> None:
    o["association"] = _U16.unpack_from(d, off)[0]


# -- file transfer (§7.2.6.33–40) ---------------------------------------------------------------


def _nof(d: bytes, off: int, o: Obj) -> None:
    o["file"] = _U16.unpack_from(d, off)[0]


def _nos(d: bytes, off: int, o: Obj) -> None:
    o["section"] = d[off]


def _lof(d: bytes, off: int, o: Obj) -> None:
    low, high = _IOA.unpack_from(d, off)
    o["length"] = low | high << 16


def _file_qualifier(d: bytes, off: int, o: Obj) -> None:
    """FRQ, SRQ, LSQ: kept as the raw octet."""
    o["qualifier"] = d[off]


def _file_call(d: bytes, off: int, o: Obj, names: dict[int, str] = FILE_CALLS) -> None:
    o["qualifier"] = d[off]
    o["qualifier_name"] = names.get(d[off] & 0x0F, "reserved")
    if d[off] >> 4:
        o["file_error"] = FILE_ERRORS.get(d[off] >> 4, "reserved")


def _file_ack(d: bytes, off: int, o: Obj) -> None:
    _file_call(d, off, o, FILE_ACKS)


def _chs(d: bytes, off: int, o: Obj) -> None:
    o["checksum"] = d[off]


def _sof(d: bytes, off: int, o: Obj) -> None:
    o["status"] = d[off]


def _segment(d: bytes, off: int, o: Obj) -> None:
    o["length"] = d[off]  # LOS; the file data that follows is not reported


_ELEMENT_DECODERS: dict[str, ElementDecoder] = {
    "SIQ": _siq, "DIQ": _diq, "QDS": _qds, "VTI": _vti, "BSI": _bsi, "NVA": _nva, "SVA": _sva,
    "R32": _float32, "BCR": _bcr, "SEP": _sep, "SPE": _spe, "OCI": _oci, "QDP": _qdp, "SCD": _scd,
    "CP16": _cp16, "CP16_DELAY": _u16_value, "CP24": _cp24, "CP56": _cp56, "CP56_STOP": _cp56_stop,
    "SCO": _sco, "DCO": _dco, "RCO": _rco, "QOS": _qos, "COI": _coi, "QOI": _qoi, "QCC": _qcc,
    "QRP": _qrp, "FBP": _u16_value, "TSC": _u16_value, "QPM": _qpm, "QPA": _qpa, "AID": _aid,
    "NOF": _nof, "NOS": _nos, "LOF": _lof, "FRQ": _file_qualifier, "SRQ": _file_qualifier,
    "SCQ": _file_call, "LSQ": _file_qualifier, "CHS": _chs, "AFQ": _file_ack, "SOF": _sof,
    "SEGMENT": _segment,
}  # fmt: skip


def _layout(elements: tuple[str, ...]) -> tuple[int, tuple[tuple[int, ElementDecoder], ...]]:
    """Object size after the IOA, and each element's offset and decoder."""
    steps = []
    size = 0
    for name in elements:
        steps.append((size, _ELEMENT_DECODERS[name]))
        size += ELEMENT_SIZES[name]
    return size, tuple(steps)


_LAYOUTS = {type_id: _layout(elements) for type_id, elements in TYPE_ELEMENTS.items()}
# Object keys also published as flat arrays aligned with iec104.ioa (Sigma matches elements).
_FLAT_KEYS = (("value", "iec104.value"), ("state", "iec104.state"), ("select", "iec104.select"),
              ("qualifier", "iec104.qualifier"))  # fmt: skip


# -- ASDU ----------------------------------------------------------------------------------------


def _asdu_header(d: bytes, f: Fields) -> None:
    """Whatever of the 6 header octets is present; raises when the header is incomplete."""
    available = len(d) - ASDU_OFFSET
    if available >= 1:
        type_id = d[6]
        f["iec104.type_id"] = type_id
        if type_id in TYPES:
            f["iec104.type"] = TYPES[type_id][0]
    if available >= 2:
        f["iec104.sq"] = bool(d[7] & 0x80)
        f["iec104.num_objects"] = d[7] & 0x7F
    if available >= 3:
        cot = d[8]
        f["iec104.cot"] = cot & 0x3F
        f["iec104.cause"] = CAUSE_NAMES[cot & 0x3F]
        f["iec104.negative"] = bool(cot & 0x40)
        f["iec104.test"] = bool(cot & 0x80)
    if available >= 4:
        f["iec104.originator"] = d[9]
    if available >= ASDU_HEADER_LENGTH:
        f["iec104.common_address"] = _U16.unpack_from(d, 10)[0]
        return
    if available == 0:
        raise Iec104DecodeError("I-format APDU without ASDU", f)
    raise Iec104DecodeError(f"ASDU header truncated: {available} of {ASDU_HEADER_LENGTH} octets", f)


def _ioa(d: bytes, off: int) -> int:
    low, high = _IOA.unpack_from(d, off)
    return low | high << 16


def _undecoded_objects(d: bytes, f: Fields, type_id: int, sq: bool, count: int) -> None:
    """A type without a known layout: only the first IOA is certain (all of them when SQ=1)."""
    f["iec104.detail"] = f"type {type_id} not decoded: information object layout unknown"
    if not count:
        f["iec104.ioa"] = []
        return
    if len(d) < OBJECTS_OFFSET + IOA_LENGTH:
        f["iec104.ioa"] = []
        raise Iec104DecodeError("information object address truncated", f)
    first = _ioa(d, OBJECTS_OFFSET)
    f["iec104.ioa"] = [first + i for i in range(count)] if sq else [first]
    f["iec104.data"] = bytes(d[OBJECTS_OFFSET + IOA_LENGTH :]).hex()


def _objects(d: bytes, f: Fields, type_id: int, sq: bool, count: int, max_objects: int) -> None:
    layout = _LAYOUTS.get(type_id)
    if layout is None:
        _undecoded_objects(d, f, type_id, sq, count)
        return
    size, steps = layout
    end_of_asdu = len(d)
    ioas: list[int] = []
    objects: list[Obj] = []
    f["iec104.ioa"] = ioas
    f["iec104.objects"] = objects
    off = OBJECTS_OFFSET
    first = 0
    if sq and count:
        if off + IOA_LENGTH > end_of_asdu:
            raise Iec104DecodeError("information object address truncated", f)
        first = _ioa(d, off)
        off += IOA_LENGTH
    for index in range(count):  # count ≤ 127 (7 bits); each object is bounds-checked before use
        if sq:
            ioa = first + index
        else:
            if off + IOA_LENGTH > end_of_asdu:
                raise Iec104DecodeError(f"information object {index + 1} of {count}: address truncated", f)
            ioa = _ioa(d, off)
            off += IOA_LENGTH
        end = off + size
        if type_id == F_SG_NA_1 and end <= end_of_asdu:
            end += d[end - 1]  # LOS octets of segment data
        if end > end_of_asdu:
            raise Iec104DecodeError(
                f"information object {index + 1} of {count} truncated: needs {end - off} octets, "
                f"{max(end_of_asdu - off, 0)} left",
                f,
            )
        if len(objects) < max_objects:
            obj: Obj = {"ioa": ioa}
            for rel, decode in steps:
                decode(d, off + rel, obj)
            objects.append(obj)
            ioas.append(ioa)
        else:
            f["iec104.objects_truncated"] = True
        off = end
    if off < end_of_asdu:
        f["iec104.trailing_bytes"] = end_of_asdu - off
    if objects:
        for key, flat in _FLAT_KEYS:
            if key in objects[0]:
                f[flat] = [obj.get(key) for obj in objects]


def _i_format(d: bytes, f: Fields, max_objects: int) -> None:
    send, recv = _U16X2.unpack_from(d, 2)
    f["iec104.apci"] = "I"
    f["iec104.send_seq"] = send >> 1
    f["iec104.recv_seq"] = recv >> 1
    _asdu_header(d, f)
    type_id = d[6]
    known = TYPES.get(type_id)
    f["event.action"] = known[1] if known else "unknown_type"
    _objects(d, f, type_id, bool(d[7] & 0x80), d[7] & 0x7F, max_objects)


def decode_apdu(apdu: bytes, max_objects: int = MAX_OBJECTS) -> Fields:
    """Fields of one complete APDU (start octet included); :class:`Iec104DecodeError` otherwise."""
    f: Fields = {"network.protocol": PROTOCOL, "event.dataset": DATASET}
    if len(apdu) < ASDU_OFFSET or apdu[0] != START or apdu[1] != len(apdu) - 2:
        raise Iec104DecodeError(f"not one APDU: {bytes(apdu[:2]).hex()} with {len(apdu)} octets", {})
    f["iec104.length"] = apdu[1]
    c1 = apdu[2]
    if not c1 & 1:
        _i_format(apdu, f, max_objects)
        return f
    if c1 & 3 == 1:
        f["iec104.apci"] = "S"
        f["iec104.recv_seq"] = _U16.unpack_from(apdu, 4)[0] >> 1
        f["event.action"] = "s_frame"
    else:
        f["iec104.apci"] = "U"
        function = U_FUNCTIONS.get(c1 & 0xFC)
        if function is None:
            raise Iec104DecodeError(f"U-format control octet 0x{c1:02x} needs exactly one function bit", f)
        f["iec104.u_function"], f["event.action"] = function
    if apdu[1] != MIN_APDU_LENGTH:
        raise Iec104DecodeError(f"{f['iec104.apci']}-format APDU with length {apdu[1]}, must be 4", f)
    return f


def _error_fields(reason: str, known: Fields) -> Fields:
    fields = decode_error_fields(PROTOCOL, reason)
    fields.update((key, value) for key, value in known.items() if key.startswith("iec104."))
    return fields


# -- plausibility (probe and resynchronisation) -----------------------------------------------


def _plausible_apdu(d: bytes, pos: int, n: int) -> int:
    """End offset of a strictly valid APDU header at ``pos`` (6 octets must be present), else 0.

    Strict = what a conforming peer sends: S is exactly ``01 00 xx xx`` and U exactly one function
    bit with zero octets 2–4, both with length 4; I carries at least an ASDU header, and when that
    header is present its type id and cause are not 0 (both "not used" in the standard)."""
    if d[pos] != START:
        return 0
    length = d[pos + 1]
    if length < MIN_APDU_LENGTH or length > MAX_APDU_LENGTH:
        return 0
    c1, c2, c3, c4 = d[pos + 2], d[pos + 3], d[pos + 4], d[pos + 5]
    if not c1 & 1:
        if length < MIN_I_LENGTH or c3 & 1:
            return 0
        if n - pos >= OBJECTS_OFFSET and (not d[pos + 6] or not d[pos + 8] & 0x3F):
            return 0
    elif c1 & 3 == 1:
        if length != MIN_APDU_LENGTH or c1 != 1 or c2 or c3 & 1:
            return 0
    elif length != MIN_APDU_LENGTH or (c1 & 0xFC) not in U_FUNCTIONS or c2 or c3 or c4:
        return 0
    return pos + 2 + length


def probe(payload: bytes) -> bool:
    """True when a segment starts with strictly valid APDUs whose lengths chain."""
    n = len(payload)
    if n < ASDU_OFFSET or payload[0] != START:
        return False
    pos = 0
    for _ in range(PROBE_MAX_APDUS):
        end = _plausible_apdu(payload, pos, n)
        if not end:
            return False
        if end >= n:
            return True
        pos = end
        if n - pos < ASDU_OFFSET:  # the start of one more APDU, split by the segment
            return payload[pos] == START and (
                n - pos < 2 or MIN_APDU_LENGTH <= payload[pos + 1] <= MAX_APDU_LENGTH
            )
    return True


def _resync(buf: bytearray, pos: int, n: int) -> tuple[int, bool]:
    """(offset, found): the next plausible APDU start at or after ``pos``; when none is found the
    offset is where to keep bytes from (a start candidate that needs more data, or ``n``)."""
    start = buf.find(START, pos)
    while start >= 0:
        if n - start < ASDU_OFFSET:
            if n - start >= 2 and not MIN_APDU_LENGTH <= buf[start + 1] <= MAX_APDU_LENGTH:
                start = buf.find(START, start + 1)
                continue
            return start, False
        end = _plausible_apdu(buf, start, n)
        if end and (end >= n or buf[end] == START):
            return start, True
        start = buf.find(START, start + 1)
    return n, False


# -- analyzer --------------------------------------------------------------------------------------


class Iec104Analyzer:
    """One per TCP flow: frames APDUs in each direction and decodes them."""

    protocol = PROTOCOL

    def __init__(self, max_objects: int = MAX_OBJECTS) -> None:
        self._buffers = (bytearray(), bytearray())
        self._hunting = [False, False]
        self._max_objects = max_objects

    def on_gap(self, direction: int) -> None:
        self._buffers[direction].clear()
        self._hunting[direction] = True

    def on_data(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        buf = self._buffers[direction]
        buf += data
        n = len(buf)
        pos = 0
        hunting = self._hunting[direction]
        while pos < n:
            if hunting:
                pos, found = _resync(buf, pos, n)
                if not found:
                    break
                hunting = False
            if buf[pos] != START:
                reason = f"expected APDU start 0x68, got 0x{buf[pos]:02x}; resynchronising"
                out.append((direction, ts, frame, _error_fields(reason, {})))
                hunting = True
                continue
            if n - pos < 2:
                break
            length = buf[pos + 1]
            if length < MIN_APDU_LENGTH or length > MAX_APDU_LENGTH:
                reason = f"APDU length {length} outside {MIN_APDU_LENGTH}..{MAX_APDU_LENGTH}; resynchronising"
                out.append((direction, ts, frame, _error_fields(reason, {"iec104.length": length})))
                hunting = True
                pos += 1
                continue
            end = pos + 2 + length
            if end > n:
                break
            out.append((direction, ts, frame, self._decode(bytes(buf[pos:end]))))
            pos = end
        self._hunting[direction] = hunting
        del buf[:pos]

    def _decode(self, apdu: bytes) -> Fields:
        try:
            return decode_apdu(apdu, self._max_objects)
        except Iec104DecodeError as exc:
            return _error_fields(str(exc), exc.fields)


SPEC = ProtocolSpec(
    name=PROTOCOL,
    tcp_ports=frozenset({2404}),
    probe=probe,
    stream_analyzer=Iec104Analyzer,
)
