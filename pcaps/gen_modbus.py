"""Modbus/TCP PDUs built with ``struct``, each paired with its ground-truth record.

Source: Modbus Application Protocol Specification V1.1b3 (function codes §5–6, exceptions §7,
MEI 14 read device identification §6.21) and Modbus Messaging on TCP/IP Implementation Guide V1.0b
(MBAP header §3.1.3). UMAS (function 90) per Schneider's UMAS as described in public research
(e.g. "The Unity (UMAS) protocol", Liran/Claroty 2020: 0x40 start PLC, 0x41 stop PLC, 0xFE ok).
"""

from __future__ import annotations

import struct
from typing import Any

Truth = dict[str, Any]

FUNCTION_NAMES: dict[int, str] = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
    5: "write_single_coil",
    6: "write_single_register",
    7: "read_exception_status",
    8: "diagnostics",
    11: "get_comm_event_counter",
    12: "get_comm_event_log",
    15: "write_multiple_coils",
    16: "write_multiple_registers",
    17: "report_server_id",
    20: "read_file_record",
    21: "write_file_record",
    22: "mask_write_register",
    23: "read_write_multiple_registers",
    24: "read_fifo_queue",
    43: "encapsulated_interface_transport",
    90: "umas",
    # Legacy/vendor codes, named as Zeek (and otsentry's docs/fields-modbus.md) name them.
    40: "program_concept",
    41: "multiple_function_codes",
    125: "firmware_replacement",
    126: "program_584_984_2",
}
MEI_READ_DEVICE_ID = 14
# FC 8 diagnostics sub-functions (§6.8.1), named as the specification names them.
DIAGNOSTIC_NAMES = {
    0: "return_query_data",
    1: "restart_communications_option",
    4: "force_listen_only",
    10: "clear_counters_and_diagnostic_register",
    11: "return_bus_message_count",
    20: "clear_overrun_counter_and_flag",
}
DIAG_RETURN_QUERY_DATA, DIAG_RESTART_COMMUNICATIONS, DIAG_FORCE_LISTEN_ONLY = 0, 1, 4
DIAG_CLEAR_COUNTERS, DIAG_RETURN_BUS_MESSAGE_COUNT, DIAG_CLEAR_OVERRUN = 10, 11, 20
UMAS_NAMES = {0x40: "start_plc", 0x41: "stop_plc", 0xFE: "ok"}
EXCEPTION_ILLEGAL_FUNCTION = 1
EXCEPTION_ILLEGAL_DATA_ADDRESS = 2
EXCEPTION_SERVER_DEVICE_BUSY = 6  # §7: the server is processing a long-duration program command


def action_name(function_code: int, mei_type: int | None = None) -> str:
    if function_code == 43 and mei_type == MEI_READ_DEVICE_ID:
        return "read_device_identification"
    return FUNCTION_NAMES.get(function_code, f"unknown_function_{function_code}")


def mbap(transaction_id: int, unit_id: int, pdu: bytes, protocol_id: int = 0) -> bytes:
    """MBAP header (transaction, protocol, length = unit id + PDU) followed by the PDU."""
    return struct.pack("!HHHB", transaction_id, protocol_id, len(pdu) + 1, unit_id) + pdu


def _truth(function_code: int, pdu_type: str, **fields: Any) -> Truth:
    truth: Truth = {
        "protocol": "modbus",
        "pdu_type": pdu_type,
        "function_code": function_code,
        "action": action_name(function_code, fields.get("mei_type")),
    }
    truth.update({k: v for k, v in fields.items() if v is not None})
    if truth.get("truncated"):
        truth["action"] = "decode_error"  # a request too short for its function code is malformed
    return truth


def pack_bits(bits: list[int]) -> bytes:
    """Coils/inputs packed LSB first, 8 per byte (§6.1)."""
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def read_request(function_code: int, address: int, quantity: int) -> tuple[bytes, Truth]:
    """FC 1–4."""
    return (
        struct.pack("!BHH", function_code, address, quantity),
        _truth(function_code, "request", address=address, quantity=quantity),
    )


def read_registers_response(function_code: int, values: list[int]) -> tuple[bytes, Truth]:
    """FC 3/4 response: byte count then big-endian registers."""
    body = struct.pack(f"!BB{len(values)}H", function_code, 2 * len(values), *values)
    return body, _truth(function_code, "response", quantity=len(values), values=list(values))


def read_bits_response(function_code: int, bits: list[int]) -> tuple[bytes, Truth]:
    """FC 1/2 response: byte count then packed bits."""
    packed = pack_bits(bits)
    return (
        struct.pack("!BB", function_code, len(packed)) + packed,
        _truth(function_code, "response", quantity=len(bits), values=list(bits)),
    )


def write_single_register(address: int, value: int, pdu_type: str = "request") -> tuple[bytes, Truth]:
    """FC 6; the response echoes the request."""
    return struct.pack("!BHH", 6, address, value), _truth(6, pdu_type, address=address, values=[value])


def write_single_coil(address: int, on: bool, pdu_type: str = "request") -> tuple[bytes, Truth]:
    """FC 5: 0xFF00 = ON, 0x0000 = OFF; the response echoes the request."""
    return (
        struct.pack("!BHH", 5, address, 0xFF00 if on else 0x0000),
        _truth(5, pdu_type, address=address, values=[1 if on else 0]),
    )


def write_multiple_registers(address: int, values: list[int]) -> tuple[bytes, Truth]:
    """FC 16 request."""
    body = struct.pack(f"!BHHB{len(values)}H", 16, address, len(values), 2 * len(values), *values)
    return body, _truth(16, "request", address=address, quantity=len(values), values=list(values))


def write_multiple_coils(address: int, bits: list[int]) -> tuple[bytes, Truth]:
    """FC 15 request."""
    packed = pack_bits(bits)
    body = struct.pack("!BHHB", 15, address, len(bits), len(packed)) + packed
    return body, _truth(15, "request", address=address, quantity=len(bits), values=list(bits))


def write_multiple_response(function_code: int, address: int, quantity: int) -> tuple[bytes, Truth]:
    """FC 15/16 response: address and quantity written."""
    return (
        struct.pack("!BHH", function_code, address, quantity),
        _truth(function_code, "response", address=address, quantity=quantity),
    )


def exception_response(function_code: int, exception_code: int) -> tuple[bytes, Truth]:
    """Function code with the 0x80 bit, then the exception code (§7)."""
    return (
        struct.pack("!BB", function_code | 0x80, exception_code),
        _truth(function_code, "exception", exception_code=exception_code),
    )


def diagnostics(sub_function: int, data: int, pdu_type: str = "request") -> tuple[bytes, Truth]:
    """FC 8 with a 16-bit sub-function and one data word."""
    name = DIAGNOSTIC_NAMES.get(sub_function, f"sub_function_{sub_function}")
    truth = _truth(8, pdu_type, sub_function=sub_function, sub_function_name=name)
    truth["action"] = f"diagnostics_{name}"
    return struct.pack("!BHH", 8, sub_function, data), truth


# Public function codes whose request carries data after the function code (§6); the rest take none.
REQUESTS_WITH_DATA = frozenset({1, 2, 3, 4, 5, 6, 8, 15, 16, 20, 21, 22, 23, 24, 43})


def bare_function(function_code: int) -> tuple[bytes, Truth]:
    """A request carrying only a function code (what a function-code sweep sends); for codes whose
    request needs data the truth marks it ``truncated``."""
    truncated = True if function_code in REQUESTS_WITH_DATA else None
    return bytes([function_code]), _truth(function_code, "request", truncated=truncated)


def truncated_request(function_code: int, data: bytes) -> tuple[bytes, Truth]:
    """A request whose data is too short for its function code's layout (§6): what a PDU fuzzer
    sends inside a well-formed MBAP header. Malformed: the truth marks it ``truncated``."""
    return bytes([function_code]) + data, _truth(function_code, "request", truncated=True)


def read_device_id_request(read_code: int = 1, object_id: int = 0) -> tuple[bytes, Truth]:
    """FC 43 / MEI 14 request (§6.21): read device id code 1 = basic stream."""
    return (
        struct.pack("!BBBB", 43, MEI_READ_DEVICE_ID, read_code, object_id),
        _truth(
            43, "request", mei_type=MEI_READ_DEVICE_ID, read_device_id_code=read_code, object_id=object_id
        ),
    )


def read_device_id_response(
    objects: dict[int, str], read_code: int = 1, conformity: int = 0x81
) -> tuple[bytes, Truth]:
    """FC 43 / MEI 14 response with every object in one PDU (more follows = 0)."""
    body = struct.pack("!BBBBBBB", 43, MEI_READ_DEVICE_ID, read_code, conformity, 0, 0, len(objects))
    for object_id, text in objects.items():
        raw = text.encode()
        body += struct.pack("!BB", object_id, len(raw)) + raw
    return body, _truth(
        43,
        "response",
        mei_type=MEI_READ_DEVICE_ID,
        read_device_id_code=read_code,
        device_identification={str(k): v for k, v in objects.items()},
    )


def umas(
    session: int,
    umas_function: int,
    data: bytes = b"",
    pdu_type: str = "request",
    request_function: int | None = None,
) -> tuple[bytes, Truth]:
    """Schneider UMAS (FC 90): session key, UMAS function, data. A response is named after the
    request it answers (``request_function``), since its own code is only the status."""
    name = UMAS_NAMES.get(umas_function)
    truth = _truth(90, pdu_type, umas_function=umas_function, umas_function_name=name)
    truth["action"] = f"umas_{UMAS_NAMES[umas_function if request_function is None else request_function]}"
    return struct.pack("!BBB", 90, session, umas_function) + data, truth
