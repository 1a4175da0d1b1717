"""Modbus/TCP analyzer: MBAP framing, every public function code, vendor codes, pairing.

Sources: MODBUS Messaging on TCP/IP Implementation Guide V1.0b (MBAP header: transaction id,
protocol id 0, length = unit id + PDU ≤ 254, unit id) and MODBUS Application Protocol
Specification V1.1b3 (PDU layouts, cited per decoder). Code tables live in ``modbus_codes``.

One :class:`ModbusAnalyzer` per TCP flow. Requests travel client→server (direction 0), responses
the other way; a function code with the 0x80 bit is an exception whichever way it goes. A
response is paired with its request by (transaction id, unit id) and copies the request's
address and quantity.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from otsentry.protocols import ProtocolSpec
from otsentry.protocols.base import DecodeError, Fields, Message, decode_error_fields
from otsentry.protocols.modbus_codes import (
    DEVICE_ID_OBJECTS,
    DIAGNOSTIC_SUB_FUNCTIONS,
    EXCEPTIONS,
    FC_UMAS,
    FUNCTIONS,
    MEI_READ_DEVICE_ID,
    MEI_TYPES,
    READ_DEVICE_ID_CODES,
    UMAS_FUNCTIONS,
    UMAS_STATUS,
)

PROTOCOL = "modbus"
DATASET = "otsentry.modbus"
MAX_LENGTH = 254  # MBAP length field: unit id + PDU (253) — ADU ≤ 260 bytes
MAX_VALUES = 256  # values per event; more sets modbus.values_truncated
MAX_PENDING = 1024  # outstanding requests per flow; the oldest is evicted

_MBAP = struct.Struct(">HHHBB")  # transaction id, protocol id, length, unit id, function code
_U16 = struct.Struct(">H")
_U16X2 = struct.Struct(">HH")
_U16X3 = struct.Struct(">HHH")
_REGISTERS = [struct.Struct(f">{i}H") for i in range(MAX_VALUES + 1)]
_BIT_CHARS = bytes.maketrans(b"01", b"\x00\x01")

# Every code a Modbus peer plausibly sends, with and without the exception bit (for the probe
# and for resynchronisation).
_PLAUSIBLE = frozenset(FUNCTIONS) | frozenset(fc | 0x80 for fc in FUNCTIONS)
_NAMES = [FUNCTIONS.get(fc, f"unknown_function_{fc}") for fc in range(128)]
_UMAS_ACTIONS = {code: f"umas_{name}" for code, name in UMAS_FUNCTIONS.items()}
_DIAG_ACTIONS = {code: f"diagnostics_{name}" for code, name in DIAGNOSTIC_SUB_FUNCTIONS.items()}

Decoder = Callable[[bytes, Fields], str | None]  # fills fields; may return an event.action override


# -- value helpers -------------------------------------------------------------------------------


def _registers(d: bytes, off: int, count: int, f: Fields, key: str = "modbus.values") -> None:
    if count > MAX_VALUES:
        f["modbus.values_truncated"] = True
        count = MAX_VALUES
    f[key] = list(_REGISTERS[count].unpack_from(d, off))


def _bits(d: bytes, off: int, nbytes: int, count: int, f: Fields, key: str = "modbus.values") -> None:
    """``count`` coil/input bits (LSB of the first byte first) from ``nbytes`` bytes at ``off``."""
    count = min(count, nbytes * 8)
    if count > MAX_VALUES:
        f["modbus.values_truncated"] = True
        count = MAX_VALUES
    nbytes = (count + 7) >> 3
    if not nbytes:
        f[key] = []
        return
    chars = bin(int.from_bytes(d[off : off + nbytes], "little"))[2:].zfill(nbytes * 8)
    f[key] = list(chars[::-1][:count].encode().translate(_BIT_CHARS))


def _text(raw: bytes) -> str:
    # ASCII by the spec; devices pad with NULs, and bytes that are not UTF-8 become U+FFFD.
    return raw.rstrip(b"\x00").decode("utf-8", "replace")


def _need(d: bytes, size: int, what: str) -> None:
    if len(d) < size:
        raise DecodeError(f"{what}: {len(d)} data bytes, need {size}")


def _byte_count(d: bytes, at: int, what: str) -> int:
    """The byte count at ``at`` (one byte), checked against the bytes that follow it."""
    _need(d, at + 1, what)
    count = d[at]
    if count > len(d) - at - 1:
        raise DecodeError(f"{what}: byte count {count} but {len(d) - at - 1} bytes follow")
    return count


# -- decoders (spec section in each docstring) ------------------------------------------------------


def _address_quantity(d: bytes, f: Fields) -> None:
    """§6.1–6.4 read requests; §6.11/6.12 write-multiple responses: address, quantity."""
    if len(d) < 4:
        raise DecodeError(f"address and quantity: {len(d)} data bytes, need 4")
    f["modbus.address"], f["modbus.quantity"] = _U16X2.unpack_from(d)


def _bits_response(d: bytes, f: Fields) -> None:
    """§6.1/6.2: byte count, bits — trimmed to the requested quantity when paired."""
    count = _byte_count(d, 0, "bit response")
    f["modbus.byte_count"] = count
    _bits(d, 1, count, f.get("modbus.quantity") or count * 8, f)


def _registers_response(d: bytes, f: Fields) -> None:
    """§6.3/6.4/6.17 responses: byte count, registers."""
    count = d[0] if d else -1
    if count & 1 or count >= len(d):  # also true for -1 (no byte count)
        raise DecodeError(f"register response: byte count {count} with {len(d) - 1} bytes of data")
    f["modbus.byte_count"] = count
    _registers(d, 1, count >> 1, f)


def _write_single_coil(d: bytes, f: Fields) -> None:
    """§6.5: address, 0xFF00 (on) or 0x0000 (off); the response echoes the request."""
    _need(d, 4, "write single coil")
    address, value = _U16X2.unpack_from(d)
    f["modbus.address"] = address
    f["modbus.quantity"] = 1
    if value == 0xFF00:
        f["modbus.values"] = [1]
    elif value == 0:
        f["modbus.values"] = [0]
    else:
        f["modbus.values"] = [value]
        f["modbus.invalid_value"] = True


def _write_single_register(d: bytes, f: Fields) -> None:
    """§6.6: address, value; the response echoes the request."""
    _need(d, 4, "write single register")
    address, value = _U16X2.unpack_from(d)
    f["modbus.address"] = address
    f["modbus.quantity"] = 1
    f["modbus.values"] = [value]


def _no_data(d: bytes, f: Fields) -> None:
    """§6.7/6.9/6.10/6.13 requests carry only the function code."""
    if d:
        f["modbus.data_length"] = len(d)


def _opaque(d: bytes, f: Fields) -> None:
    """Vendor and unknown codes: the PDU layout is not public; keep its size."""
    f["modbus.data_length"] = len(d)


def _exception_status(d: bytes, f: Fields) -> None:
    """§6.7 response: one byte of exception status outputs."""
    _need(d, 1, "read exception status response")
    f["modbus.exception_status"] = d[0]


def _diagnostics(d: bytes, f: Fields) -> str:
    """§6.8: sub-function (2 bytes), data; the response echoes the sub-function."""
    _need(d, 2, "diagnostics")
    sub = _U16.unpack_from(d)[0]
    f["modbus.sub_function"] = sub
    name = DIAGNOSTIC_SUB_FUNCTIONS.get(sub)
    if name:
        f["modbus.sub_function_name"] = name
    if len(d) == 4:
        f["modbus.diagnostic_data"] = _U16.unpack_from(d, 2)[0]
    else:
        f["modbus.data_length"] = len(d) - 2
    return _DIAG_ACTIONS.get(sub) or f"diagnostics_sub_function_{sub}"


def _comm_event_counter(d: bytes, f: Fields) -> None:
    """§6.9 response: status (0xFFFF busy), event count."""
    _need(d, 4, "get comm event counter response")
    f["modbus.status"], f["modbus.event_count"] = _U16X2.unpack_from(d)


def _comm_event_log(d: bytes, f: Fields) -> None:
    """§6.10 response: byte count, status, event count, message count, events (newest first)."""
    count = _byte_count(d, 0, "get comm event log response")
    if count < 6:
        raise DecodeError(f"get comm event log response: byte count {count} < 6")
    f["modbus.byte_count"] = count
    f["modbus.status"], f["modbus.event_count"], f["modbus.message_count"] = _U16X3.unpack_from(d, 1)
    f["modbus.comm_events"] = list(d[7 : 1 + count])


def _write_multiple_coils_request(d: bytes, f: Fields) -> None:
    """§6.11 request: address, quantity, byte count, packed bits."""
    _need(d, 5, "write multiple coils")
    address, quantity = _U16X2.unpack_from(d)
    count = _byte_count(d, 4, "write multiple coils")
    f["modbus.address"] = address
    f["modbus.quantity"] = quantity
    f["modbus.byte_count"] = count
    _bits(d, 5, count, quantity, f)


def _write_multiple_registers_request(d: bytes, f: Fields) -> None:
    """§6.12 request: address, quantity, byte count, registers."""
    _need(d, 5, "write multiple registers")
    address, quantity = _U16X2.unpack_from(d)
    count = _byte_count(d, 4, "write multiple registers")
    f["modbus.address"] = address
    f["modbus.quantity"] = quantity
    f["modbus.byte_count"] = count
    _registers(d, 5, count >> 1, f)


def _report_server_id(d: bytes, f: Fields) -> None:
    """§6.13 response: byte count, server id, run indicator (0xFF on), additional data."""
    count = _byte_count(d, 0, "report server id response")
    f["modbus.byte_count"] = count
    if count >= 1:
        f["modbus.server_id"] = d[1]
    if count >= 2:
        f["modbus.run_indicator"] = d[2]
        f["modbus.running"] = d[2] == 0xFF
    if count > 2:
        f["modbus.additional_data"] = _text(d[3 : 1 + count])


def _file_summary(records: list[Fields], f: Fields) -> None:
    f["modbus.file_records"] = records
    f["modbus.file_numbers"] = [r["file"] for r in records]
    f["modbus.record_numbers"] = [r["record"] for r in records]


def _read_file_record_request(d: bytes, f: Fields) -> None:
    """§6.14 request: byte count, sub-requests of 7 bytes (ref type 6, file, record, length)."""
    count = _byte_count(d, 0, "read file record")
    if count % 7:
        raise DecodeError(f"read file record: byte count {count} is not a multiple of 7")
    f["modbus.byte_count"] = count
    records = []
    for off in range(1, 1 + count, 7):
        file, record, length = _U16X3.unpack_from(d, off + 1)
        records.append({"reference_type": d[off], "file": file, "record": record, "length": length})
    _file_summary(records, f)


def _read_file_record_response(d: bytes, f: Fields) -> None:
    """§6.14 response: data length, sub-responses (length, ref type, record data)."""
    count = _byte_count(d, 0, "read file record response")
    f["modbus.byte_count"] = count
    records = []
    off, end = 1, 1 + count
    while off < end:
        length = d[off]
        if length < 1 or off + 1 + length > end:
            raise DecodeError(f"read file record response: sub-response length {length} overruns")
        record: Fields = {"reference_type": d[off + 1], "length": (length - 1) >> 1}
        _registers(d, off + 2, (length - 1) >> 1, record, "values")
        records.append(record)
        off += 1 + length
    f["modbus.file_records"] = records


def _write_file_record(d: bytes, f: Fields) -> None:
    """§6.15 request and its echo: byte count, sub-requests (ref type, file, record, length, data)."""
    count = _byte_count(d, 0, "write file record")
    f["modbus.byte_count"] = count
    records = []
    off, end = 1, 1 + count
    while off < end:
        if off + 7 > end:
            raise DecodeError("write file record: truncated sub-request header")
        file, record, length = _U16X3.unpack_from(d, off + 1)
        if off + 7 + 2 * length > end:
            raise DecodeError(f"write file record: record length {length} overruns the byte count")
        entry: Fields = {"reference_type": d[off], "file": file, "record": record, "length": length}
        _registers(d, off + 7, length, entry, "values")
        records.append(entry)
        off += 7 + 2 * length
    _file_summary(records, f)


def _mask_write(d: bytes, f: Fields) -> None:
    """§6.16 (request and echo): address, AND mask, OR mask."""
    _need(d, 6, "mask write register")
    f["modbus.address"], f["modbus.and_mask"], f["modbus.or_mask"] = _U16X3.unpack_from(d)


def _read_write_multiple_request(d: bytes, f: Fields) -> None:
    """§6.17 request: read address, read quantity, write address, write quantity, byte count, values."""
    _need(d, 9, "read/write multiple registers")
    f["modbus.address"], f["modbus.quantity"] = _U16X2.unpack_from(d)
    f["modbus.write.address"], f["modbus.write.quantity"] = _U16X2.unpack_from(d, 4)
    count = _byte_count(d, 8, "read/write multiple registers")
    f["modbus.byte_count"] = count
    _registers(d, 9, count >> 1, f, "modbus.write.values")


def _read_fifo_request(d: bytes, f: Fields) -> None:
    """§6.18 request: FIFO pointer address."""
    _need(d, 2, "read FIFO queue")
    f["modbus.address"] = _U16.unpack_from(d)[0]


def _read_fifo_response(d: bytes, f: Fields) -> None:
    """§6.18 response: byte count (2 bytes), FIFO count, registers."""
    _need(d, 4, "read FIFO queue response")
    count, fifo_count = _U16X2.unpack_from(d)
    if count != 2 + 2 * fifo_count or count > len(d) - 2:
        raise DecodeError(f"read FIFO queue response: byte count {count}, FIFO count {fifo_count}")
    f["modbus.byte_count"] = count
    f["modbus.fifo_count"] = fifo_count
    _registers(d, 4, fifo_count, f)


def _mei_request(d: bytes, f: Fields) -> str:
    """§6.19–6.21 request: MEI type; read device id: read device id code, object id."""
    _need(d, 1, "encapsulated interface transport")
    mei = f["modbus.mei_type"] = d[0]
    if mei == MEI_READ_DEVICE_ID:
        _need(d, 3, "read device identification")
        _device_id_code(d[1], f)
        f["modbus.object_id"] = d[2]
    else:
        f["modbus.data_length"] = len(d) - 1
    return MEI_TYPES.get(mei, "encapsulated_interface_transport")


def _device_id_code(code: int, f: Fields) -> None:
    f["modbus.read_device_id_code"] = code
    name = READ_DEVICE_ID_CODES.get(code)
    if name:
        f["modbus.read_device_id"] = name


def _mei_response(d: bytes, f: Fields) -> str:
    """§6.21 response: code, conformity level, more follows, next object id, objects (id, length, value)."""
    _need(d, 1, "encapsulated interface transport")
    mei = f["modbus.mei_type"] = d[0]
    if mei != MEI_READ_DEVICE_ID:
        f["modbus.data_length"] = len(d) - 1
        return MEI_TYPES.get(mei, "encapsulated_interface_transport")
    _need(d, 6, "read device identification response")
    _device_id_code(d[1], f)
    f["modbus.conformity_level"] = d[2]
    f["modbus.more_follows"] = d[3] == 0xFF
    f["modbus.next_object_id"] = d[4]
    f["modbus.object_count"] = count = d[5]
    objects: dict[str, str] = {}
    ids = []
    off, n = 6, len(d)
    for _ in range(count):  # count ≤ 255 and each object needs ≥ 2 bytes: bounded by the data
        if off + 2 > n or off + 2 + d[off + 1] > n:
            f["modbus.objects_truncated"] = True
            break
        oid, length = d[off], d[off + 1]
        objects[DEVICE_ID_OBJECTS.get(oid) or f"0x{oid:02x}"] = _text(d[off + 2 : off + 2 + length])
        ids.append(oid)
        off += 2 + length
    f["modbus.objects"] = objects
    f["modbus.object_ids"] = ids
    return "read_device_identification"


def _umas_request(d: bytes, f: Fields) -> str:
    """Schneider UMAS (FC 90): pairing key, UMAS function code, data."""
    _need(d, 2, "UMAS request")
    code = d[1]
    f["modbus.umas.session"] = d[0]
    f["modbus.umas.function_code"] = code
    name = UMAS_FUNCTIONS.get(code)
    if name:
        f["modbus.umas.function"] = name
    return _UMAS_ACTIONS.get(code) or f"umas_function_{code}"


def _umas_response(d: bytes, f: Fields) -> None:
    """UMAS response: pairing key, status 0xFE (ok) / 0xFD (error), data."""
    _need(d, 2, "UMAS response")
    f["modbus.umas.session"] = d[0]
    f["modbus.umas.status_code"] = d[1]
    status = UMAS_STATUS.get(d[1])
    if status:
        f["modbus.umas.status"] = status


REQUEST_DECODERS: dict[int, Decoder] = {
    1: _address_quantity,
    2: _address_quantity,
    3: _address_quantity,
    4: _address_quantity,
    5: _write_single_coil,
    6: _write_single_register,
    7: _no_data,
    8: _diagnostics,
    11: _no_data,
    12: _no_data,
    15: _write_multiple_coils_request,
    16: _write_multiple_registers_request,
    17: _no_data,
    20: _read_file_record_request,
    21: _write_file_record,
    22: _mask_write,
    23: _read_write_multiple_request,
    24: _read_fifo_request,
    43: _mei_request,
    90: _umas_request,
}

RESPONSE_DECODERS: dict[int, Decoder] = {
    1: _bits_response,
    2: _bits_response,
    3: _registers_response,
    4: _registers_response,
    5: _write_single_coil,
    6: _write_single_register,
    7: _exception_status,
    8: _diagnostics,
    11: _comm_event_counter,
    12: _comm_event_log,
    15: _address_quantity,
    16: _address_quantity,
    17: _report_server_id,
    20: _read_file_record_response,
    21: _write_file_record,
    22: _mask_write,
    23: _registers_response,
    24: _read_fifo_response,
    43: _mei_response,
    90: _umas_response,
}


# -- plausibility (probe and resynchronisation) --------------------------------------------------

BAD = -1
NEED_MORE = -2


def _header_end(data: bytes, pos: int) -> int:
    """End of the ADU whose MBAP header (protocol id 0, length 2..254) is at ``pos``; BAD; or
    NEED_MORE when ``data`` ends before the header or the ADU does."""
    n = len(data)
    if n - pos < 6:
        # Reject early on the header bytes we do have (protocol id, length high byte: all zero).
        return BAD if data[pos + 2 : pos + 5].strip(b"\x00") else NEED_MORE
    pid, length = _U16X2.unpack_from(data, pos + 2)
    if pid or length < 2 or length > MAX_LENGTH:
        return BAD
    end = pos + 6 + length
    return end if end <= n else NEED_MORE


def _check_adu(data: bytes, pos: int) -> int:
    """Like :func:`_header_end`, and also a known function code (or its exception) and, for the
    common codes, a length that fits the request or the response layout."""
    end = _header_end(data, pos)
    if end < 0:
        return end
    fc = data[pos + 7]
    if fc not in _PLAUSIBLE:
        return BAD
    length = end - pos - 6
    if fc & 0x80:
        ok = length == 3
    elif fc <= 4:  # request: address, quantity; response: byte count, data
        ok = length == 6 or (length >= 3 and data[pos + 8] == length - 3)
    elif fc in (5, 6):
        ok = length == 6
    elif fc in (15, 16):  # request: address, quantity, byte count, data; response: address, quantity
        ok = length == 6 or (length >= 7 and data[pos + 12] == length - 7)
    elif fc == 22:
        ok = length == 8
    else:
        ok = True
    return end if ok else BAD


def probe(data: bytes) -> bool:
    """Strict Modbus/TCP test for flows on other ports: whole plausible ADUs that chain exactly."""
    pos, n = 0, len(data)
    if n < 8:
        return False
    while pos < n:
        end = _check_adu(data, pos)
        if end < 0:
            return False
        pos = end
    return True


def _find_adu(data: bytes, pos: int, boundary: int) -> int:
    """Offset of the next ADU at or after ``pos`` to resynchronise on, or ``-1 - keep`` where
    ``keep`` is the offset from which bytes must be kept to decide when more arrive.

    Candidates come from ``bytes.find`` on the zero protocol id and length high byte, so garbage
    is skipped at C speed. A candidate must pass :func:`_check_adu` and not be followed by an
    invalid header. At ``boundary`` (where the bytes of a new segment start: senders put ADUs at
    segment starts) a valid MBAP header is enough, so unknown function codes resync too.
    """
    n = len(data)
    while True:
        zeros = data.find(b"\x00\x00\x00", pos + 2)
        if zeros < 0:
            return -1 - max(pos, n - 5)
        cand = zeros - 2
        end = _check_adu(data, cand) if cand != boundary else _header_end(data, cand)
        if end == NEED_MORE:
            return -1 - cand
        if end >= 0 and (end == n or _header_end(data, end) != BAD):
            return cand
        pos = cand + 1


# -- the per-flow analyzer --------------------------------------------------------------------------


class ModbusAnalyzer:
    """Per-flow Modbus/TCP state: framing buffer and sync per direction, pending requests."""

    protocol = PROTOCOL

    __slots__ = ("pending", "rest", "resyncs", "synced")

    def __init__(self) -> None:
        self.rest = [b"", b""]  # an incomplete ADU per direction (< 260 bytes)
        self.synced = [True, True]  # False after a gap or a bad header: scan for the next ADU
        self.pending: dict[tuple[int, int], tuple] = {}  # (tid, unit) -> request summary
        self.resyncs = 0

    def on_gap(self, direction: int) -> None:
        self.rest[direction] = b""
        self.synced[direction] = False

    def on_data(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        if not self.rest[direction] and self.synced[direction] and len(data) >= 8:
            # The common case: the segment is exactly one whole ADU.
            tid, pid, length, unit, fc = _MBAP.unpack_from(data)
            if not pid and length + 6 == len(data) and 2 <= length <= MAX_LENGTH:
                out.append((direction, ts, frame, self._message(direction, data[8:], tid, unit, fc, frame)))
                return
        self._frame(direction, data, ts, frame, out)

    def _frame(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        """MBAP framing over the buffered bytes and ``data``: whole ADUs out, the rest kept."""
        rest = self.rest[direction]
        boundary = len(rest)  # where this segment's bytes start: ADUs usually start on one
        if rest:
            data = rest + data
        n = len(data)
        pos = 0
        synced = self.synced[direction]
        while pos < n:
            if not synced:
                found = _find_adu(data, pos, boundary)
                if found < 0:
                    pos = -1 - found
                    break
                pos = found
                synced = True
                self.resyncs += 1
            if n - pos < 8:
                break
            tid, pid, length, unit, fc = _MBAP.unpack_from(data, pos)
            if pid or length < 2 or length > MAX_LENGTH:
                reason = f"invalid MBAP header: protocol id {pid}, length {length}"
                # In sync, the header's ids are real: keep them so the analyst can find the request.
                ids = {"modbus.transaction_id": tid, "modbus.unit_id": unit}
                error = decode_error_fields(PROTOCOL, reason, **ids)
                out.append((direction, ts, frame, error))
                synced = False
                pos += 1
                continue
            end = pos + 6 + length
            if end > n:
                break
            fields = self._message(direction, data[pos + 8 : end], tid, unit, fc, frame)
            out.append((direction, ts, frame, fields))
            pos = end
        self.synced[direction] = synced
        self.rest[direction] = data[pos:] if pos < n else b""

    def _remember(self, key: tuple[int, int], request: tuple) -> None:
        """Keep a request until its response: (code, frame, address, quantity, action, UMAS code)."""
        pending = self.pending
        if key in pending:
            del pending[key]  # a reused id: the newer request wins and moves to the end
        elif len(pending) >= MAX_PENDING:
            del pending[next(iter(pending))]  # the oldest unanswered request
        pending[key] = request

    def _message(self, direction: int, d: bytes, tid: int, unit: int, fc: int, frame: int) -> Fields:
        """The event fields of one ADU (``d`` is the PDU after the function code)."""
        code = fc & 0x7F
        name = _NAMES[code]
        f: Fields = {
            "network.protocol": PROTOCOL,
            "event.dataset": DATASET,
            "event.action": name,
            "modbus.transaction_id": tid,
            "modbus.unit_id": unit,
            "modbus.function_code": code,
            "modbus.function": name,
            "modbus.pdu_type": "request",
        }
        request = direction == 0 and fc == code
        try:
            if request:
                self._request(d, tid, unit, code, frame, f)
            else:
                self._response(d, tid, unit, code, fc != code, f)
            return f
        except (DecodeError, struct.error) as exc:
            if request:
                self._remember((tid, unit), (code, frame, None, None, None, None))  # for its exception
            return decode_error_fields(
                PROTOCOL,
                f"{name}: {exc}",
                **{
                    "modbus.transaction_id": tid,
                    "modbus.unit_id": unit,
                    "modbus.function_code": code,
                    "modbus.function": name,
                    "modbus.pdu_type": f["modbus.pdu_type"],
                },
            )

    def _request(self, d: bytes, tid: int, unit: int, code: int, frame: int, f: Fields) -> None:
        action = REQUEST_DECODERS.get(code, _opaque)(d, f)
        if action:
            f["event.action"] = action
        umas = f.get("modbus.umas.function_code") if code == FC_UMAS else None
        self._remember(
            (tid, unit), (code, frame, f.get("modbus.address"), f.get("modbus.quantity"), action, umas)
        )

    def _response(self, d: bytes, tid: int, unit: int, code: int, exception: bool, f: Fields) -> None:
        request = self.pending.pop((tid, unit), None)
        if request is not None and request[0] != code:
            self.pending[(tid, unit)] = request  # not its answer: keep it for the real one
            request = None
        if request is None:
            f["modbus.matched"] = False
        else:
            f["modbus.matched"] = True
            f["modbus.request_frame"] = request[1]
            if request[2] is not None:
                f["modbus.address"] = request[2]
            if request[3] is not None:
                f["modbus.quantity"] = request[3]
            if request[4]:
                f["event.action"] = request[4]
            if request[5] is not None:
                f["modbus.umas.function_code"] = umas = request[5]
                if umas in UMAS_FUNCTIONS:
                    f["modbus.umas.function"] = UMAS_FUNCTIONS[umas]
        if exception:
            f["modbus.pdu_type"] = "exception"
            if not d:
                raise DecodeError("exception response without an exception code")
            f["modbus.exception_code"] = d[0]
            f["modbus.exception"] = EXCEPTIONS.get(d[0]) or f"unknown_exception_{d[0]}"
            return
        f["modbus.pdu_type"] = "response"
        action = RESPONSE_DECODERS.get(code, _opaque)(d, f)
        if action:
            f["event.action"] = action
        elif code == FC_UMAS and request is None:
            f["event.action"] = "umas_response"


SPEC = ProtocolSpec(
    name=PROTOCOL,
    tcp_ports=frozenset({502}),
    probe=probe,
    stream_analyzer=ModbusAnalyzer,
)
