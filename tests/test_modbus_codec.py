"""Modbus/TCP analyzer on hand-built ADUs: the examples of the MODBUS Application Protocol
Specification V1.1b3 (§6, §7), pymodbus-encoded PDUs as an independent reference, framing,
resynchronisation, pairing and the heuristic probe."""

from __future__ import annotations

import struct

import pytest
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu import bit_message as pm_bit
from pymodbus.pdu import diag_message as pm_diag
from pymodbus.pdu import file_message as pm_file
from pymodbus.pdu import mei_message as pm_mei
from pymodbus.pdu import register_message as pm_reg

from otsentry.protocols.base import Fields
from otsentry.protocols.modbus import MAX_PENDING, MAX_VALUES, SPEC, ModbusAnalyzer, probe

REQ, RESP = 0, 1


def adu(pdu_hex: str, tid: int = 1, unit: int = 1) -> bytes:
    pdu = bytes.fromhex(pdu_hex.replace(" ", ""))
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def feed(analyzer: ModbusAnalyzer, direction: int, data: bytes, frame: int = 1) -> list[Fields]:
    out: list = []
    analyzer.on_data(direction, data, 1.5, frame, out)
    for d, ts, fr, _ in out:
        assert (d, ts, fr) == (direction, 1.5, frame)
    return [m[3] for m in out]


def one(direction: int, pdu_hex: str, analyzer: ModbusAnalyzer | None = None, **kw: int) -> Fields:
    msgs = feed(analyzer or ModbusAnalyzer(), direction, adu(pdu_hex, **kw))
    assert len(msgs) == 1
    return msgs[0]


def pair(req_hex: str, resp_hex: str) -> tuple[Fields, Fields]:
    a = ModbusAnalyzer()
    return one(REQ, req_hex, a), one(RESP, resp_hex, a)


def test_spec_registration() -> None:
    assert SPEC.name == "modbus"
    assert SPEC.tcp_ports == frozenset({502})
    assert SPEC.probe is probe
    assert SPEC.stream_analyzer is ModbusAnalyzer


# -- every public function code, spec examples (§6) ---------------------------------------------


def test_read_coils_request_and_response_trimmed_to_quantity() -> None:  # §6.1
    req, resp = pair("01 0013 0013", "01 03 CD6B05")
    assert req["event.action"] == "read_coils"
    assert req["modbus.pdu_type"] == "request"
    assert (req["modbus.address"], req["modbus.quantity"]) == (19, 19)
    assert resp["modbus.pdu_type"] == "response"
    assert resp["modbus.matched"] is True
    assert (resp["modbus.address"], resp["modbus.quantity"], resp["modbus.byte_count"]) == (19, 19, 3)
    # CD = 1100 1101, 6B = 0110 1011, 05 = 0000 0101: LSB first, 19 coils.
    assert resp["modbus.values"] == [*(1, 0, 1, 1, 0, 0, 1, 1), *(1, 1, 0, 1, 0, 1, 1, 0), *(1, 0, 1)]


def test_unpaired_coil_response_keeps_all_bits() -> None:
    resp = one(RESP, "02 01 81")
    assert resp["event.action"] == "read_discrete_inputs"
    assert resp["modbus.matched"] is False
    assert resp["modbus.values"] == [1, 0, 0, 0, 0, 0, 0, 1]
    assert "modbus.quantity" not in resp


def test_read_holding_registers() -> None:  # §6.3
    req, resp = pair("03 006B 0003", "03 06 022B 0000 0064")
    assert req["event.action"] == resp["event.action"] == "read_holding_registers"
    assert resp["modbus.values"] == [0x022B, 0, 0x64]
    assert (resp["modbus.address"], resp["modbus.quantity"]) == (0x6B, 3)
    assert resp["modbus.request_frame"] == 1


def test_read_input_registers() -> None:  # §6.4
    req, resp = pair("04 0008 0001", "04 02 000A")
    assert req["event.action"] == "read_input_registers"
    assert resp["modbus.values"] == [10]


def test_write_single_coil_and_register() -> None:  # §6.5, §6.6
    coil = one(REQ, "05 00AC FF00")
    assert coil["event.action"] == "write_single_coil"
    assert (coil["modbus.address"], coil["modbus.values"]) == (0xAC, [1])
    assert one(REQ, "05 00AC 0000")["modbus.values"] == [0]
    odd = one(REQ, "05 00AC 1234")
    assert odd["modbus.values"] == [0x1234] and odd["modbus.invalid_value"] is True
    reg = one(RESP, "06 0001 0003")
    assert reg["event.action"] == "write_single_register"
    assert (reg["modbus.address"], reg["modbus.values"], reg["modbus.pdu_type"]) == (1, [3], "response")


def test_read_exception_status() -> None:  # §6.7
    req, resp = pair("07", "07 6D")
    assert req["event.action"] == "read_exception_status"
    assert resp["modbus.exception_status"] == 0x6D


@pytest.mark.parametrize(
    ("sub", "action"),
    [
        (0, "diagnostics_return_query_data"),
        (1, "diagnostics_restart_communications_option"),
        (2, "diagnostics_return_diagnostic_register"),
        (3, "diagnostics_change_ascii_input_delimiter"),
        (4, "diagnostics_force_listen_only"),
        (10, "diagnostics_clear_counters_and_diagnostic_register"),
        (11, "diagnostics_return_bus_message_count"),
        (12, "diagnostics_return_bus_communication_error_count"),
        (13, "diagnostics_return_bus_exception_error_count"),
        (14, "diagnostics_return_server_message_count"),
        (15, "diagnostics_return_server_no_response_count"),
        (16, "diagnostics_return_server_nak_count"),
        (17, "diagnostics_return_server_busy_count"),
        (18, "diagnostics_return_bus_character_overrun_count"),
        (20, "diagnostics_clear_overrun_counter_and_flag"),
        (21, "diagnostics_sub_function_21"),
    ],
)
def test_diagnostics_sub_functions(sub: int, action: str) -> None:  # §6.8
    req, resp = pair(f"08 {sub:04x} 0000", f"08 {sub:04x} 0007")
    for f in (req, resp):
        assert f["event.action"] == action
        assert f["modbus.function"] == "diagnostics"
        assert f["modbus.sub_function"] == sub
    assert resp["modbus.diagnostic_data"] == 7


def test_diagnostics_return_query_data_echo() -> None:
    f = one(REQ, "08 0000 A537 1122")
    assert f["event.action"] == "diagnostics_return_query_data"
    assert f["modbus.data_length"] == 4


def test_comm_event_counter_and_log() -> None:  # §6.9, §6.10
    req, resp = pair("0B", "0B FFFF 0108")
    assert req["event.action"] == "get_comm_event_counter"
    assert (resp["modbus.status"], resp["modbus.event_count"]) == (0xFFFF, 0x108)
    req, resp = pair("0C", "0C 08 0000 0108 0121 20 00")
    assert req["event.action"] == "get_comm_event_log"
    assert (resp["modbus.event_count"], resp["modbus.message_count"]) == (0x108, 0x121)
    assert resp["modbus.comm_events"] == [0x20, 0x00]


def test_write_multiple_coils() -> None:  # §6.11
    req, resp = pair("0F 0013 000A 02 CD01", "0F 0013 000A")
    assert req["event.action"] == "write_multiple_coils"
    assert (req["modbus.address"], req["modbus.quantity"], req["modbus.byte_count"]) == (19, 10, 2)
    assert req["modbus.values"] == [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]
    assert (resp["modbus.address"], resp["modbus.quantity"], resp["modbus.matched"]) == (19, 10, True)


def test_write_multiple_registers() -> None:  # §6.12
    req, resp = pair("10 0001 0002 04 000A 0102", "10 0001 0002")
    assert req["event.action"] == "write_multiple_registers"
    assert req["modbus.values"] == [10, 0x102]
    assert (resp["modbus.address"], resp["modbus.quantity"]) == (1, 2)


def test_report_server_id() -> None:  # §6.13
    req, resp = pair("11", "11 07 2A FF 504C4331 00")
    assert req["event.action"] == "report_server_id"
    assert (resp["modbus.server_id"], resp["modbus.run_indicator"], resp["modbus.running"]) == (
        0x2A,
        0xFF,
        True,
    )
    assert resp["modbus.additional_data"] == "PLC1"


def test_read_file_record() -> None:  # §6.14
    req, resp = pair("14 0E 06 0004 0001 0002 06 0003 0009 0002", "14 0C 05 06 0DFE 0020 05 06 33CD 0040")
    assert req["event.action"] == "read_file_record"
    assert req["modbus.file_records"] == [
        {"reference_type": 6, "file": 4, "record": 1, "length": 2},
        {"reference_type": 6, "file": 3, "record": 9, "length": 2},
    ]
    assert (req["modbus.file_numbers"], req["modbus.record_numbers"]) == ([4, 3], [1, 9])
    assert resp["modbus.file_records"] == [
        {"reference_type": 6, "length": 2, "values": [0x0DFE, 0x20]},
        {"reference_type": 6, "length": 2, "values": [0x33CD, 0x40]},
    ]


def test_write_file_record() -> None:  # §6.15
    req, resp = pair("15 0D 06 0004 0007 0003 06AF 04BE 100D", "15 0D 06 0004 0007 0003 06AF 04BE 100D")
    for f in (req, resp):
        assert f["event.action"] == "write_file_record"
        assert f["modbus.file_records"] == [
            {"reference_type": 6, "file": 4, "record": 7, "length": 3, "values": [0x06AF, 0x04BE, 0x100D]}
        ]


def test_mask_write_register() -> None:  # §6.16
    req, resp = pair("16 0004 00F2 0025", "16 0004 00F2 0025")
    for f in (req, resp):
        assert f["event.action"] == "mask_write_register"
        assert (f["modbus.address"], f["modbus.and_mask"], f["modbus.or_mask"]) == (4, 0xF2, 0x25)


def test_read_write_multiple_registers() -> None:  # §6.17
    req, resp = pair("17 0003 0006 000E 0003 06 00FF 00FF 00FF", "17 0C 00FE 0ACD 0001 0003 000D 00FF")
    assert req["event.action"] == "read_write_multiple_registers"
    assert (req["modbus.address"], req["modbus.quantity"]) == (3, 6)
    assert (req["modbus.write.address"], req["modbus.write.quantity"]) == (14, 3)
    assert req["modbus.write.values"] == [0xFF, 0xFF, 0xFF]
    assert "modbus.values" not in req
    assert (resp["modbus.address"], resp["modbus.quantity"]) == (3, 6)
    assert resp["modbus.values"] == [0xFE, 0xACD, 1, 3, 0xD, 0xFF]


def test_read_fifo_queue() -> None:  # §6.18
    req, resp = pair("18 04DE", "18 0006 0002 01B8 1284")
    assert req["event.action"] == "read_fifo_queue"
    assert req["modbus.address"] == 0x4DE
    assert (resp["modbus.address"], resp["modbus.fifo_count"], resp["modbus.values"]) == (
        0x4DE,
        2,
        [0x1B8, 0x1284],
    )


def test_read_device_identification() -> None:  # §6.21 example
    objects = (
        "00 16"
        + b"Company identification".hex()
        + "01 0F"
        + b"Product code XX".hex()
        + "02 05"
        + b"V2.11".hex()
    )
    req, resp = pair("2B 0E 01 00", "2B 0E 01 01 00 00 03" + objects)
    assert req["event.action"] == resp["event.action"] == "read_device_identification"
    assert (req["modbus.mei_type"], req["modbus.read_device_id_code"], req["modbus.object_id"]) == (14, 1, 0)
    assert req["modbus.read_device_id"] == "basic"
    assert resp["modbus.conformity_level"] == 1
    assert (resp["modbus.more_follows"], resp["modbus.next_object_id"], resp["modbus.object_count"]) == (
        False,
        0,
        3,
    )
    assert resp["modbus.objects"] == {
        "VendorName": "Company identification",
        "ProductCode": "Product code XX",
        "MajorMinorRevision": "V2.11",
    }
    assert resp["modbus.object_ids"] == [0, 1, 2]


def test_device_identification_is_lenient() -> None:
    # More follows, a private object id, invalid UTF-8, and a count that overstates the objects.
    f = one(RESP, "2B 0E 03 83 FF 81 05 80 03 41FF42 06 02 4142 07 09 41")
    assert f["modbus.more_follows"] is True and f["modbus.next_object_id"] == 0x81
    assert f["modbus.objects"] == {"0x80": "A\ufffdB", "UserApplicationName": "AB"}
    assert f["modbus.objects_truncated"] is True


def test_canopen_general_reference_and_other_mei() -> None:  # §6.20
    f = one(REQ, "2B 0D 00 01 02 03")
    assert (f["event.action"], f["modbus.mei_type"], f["modbus.data_length"]) == (
        "canopen_general_reference",
        13,
        4,
    )
    f = one(REQ, "2B 07 00")
    assert f["event.action"] == "encapsulated_interface_transport"


# -- exceptions (§7) ------------------------------------------------------------------------------


def test_exception_response_pairs_and_names() -> None:
    _, exc = pair("03 0258 000A", "83 02")
    assert exc["modbus.pdu_type"] == "exception"
    assert exc["modbus.function_code"] == 3
    assert exc["event.action"] == "read_holding_registers"
    assert (exc["modbus.exception_code"], exc["modbus.exception"]) == (2, "illegal_data_address")
    assert (exc["modbus.address"], exc["modbus.quantity"], exc["modbus.matched"]) == (600, 10, True)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1, "illegal_function"),
        (3, "illegal_data_value"),
        (4, "server_device_failure"),
        (6, "server_device_busy"),
        (11, "gateway_target_device_failed_to_respond"),
        (0x42, "unknown_exception_66"),
    ],
)
def test_exception_names(code: int, name: str) -> None:
    assert one(RESP, f"90 {code:02x}")["modbus.exception"] == name


def test_exception_of_diagnostics_keeps_the_sub_function_action() -> None:
    _, exc = pair("08 0004 0000", "88 01")
    assert exc["event.action"] == "diagnostics_force_listen_only"
    assert exc["modbus.pdu_type"] == "exception"


# -- vendor and unknown codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (0x10, "umas_take_plc_reservation"),
        (0x40, "umas_start_plc"),
        (0x41, "umas_stop_plc"),
        (0x50, "umas_monitor_plc"),
        (0x58, "umas_check_plc"),
        (0x34, "umas_download_block"),
        (0x99, "umas_function_153"),
    ],
)
def test_umas_request_and_paired_response(code: int, action: str) -> None:
    req, resp = pair(f"5A 00 {code:02x} FF00", "5A 00 FE")
    assert req["event.action"] == resp["event.action"] == action
    assert req["modbus.function"] == "umas"
    assert req["modbus.umas.function_code"] == resp["modbus.umas.function_code"] == code
    assert resp["modbus.umas.status"] == "ok"


def test_unpaired_umas_response() -> None:
    f = one(RESP, "5A 01 FD 0000")
    assert (f["event.action"], f["modbus.umas.status"], f["modbus.matched"]) == (
        "umas_response",
        "error",
        False,
    )


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (40, "program_concept"),
        (125, "firmware_replacement"),
        (126, "program_584_984_2"),
        (100, "unknown_function_100"),
    ],
)
def test_vendor_and_unknown_codes(code: int, action: str) -> None:
    f = one(REQ, f"{code:02x} 010203")
    assert (f["event.action"], f["modbus.function_code"], f["modbus.data_length"]) == (action, code, 3)
    assert f["event.dataset"] == "otsentry.modbus"


# -- malformed PDUs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "pdu"),
    [
        (REQ, "03 0001"),
        (RESP, "03 05 0001"),
        (RESP, "03 03 000102"),
        (REQ, "10 0001 0002 04 000A"),
        (REQ, "14 07 06 0004"),
        (REQ, "2B 0E 01"),
        (REQ, "17 0003 0006 000E 0003"),
        (RESP, "18 0008 0003 0001"),
        (RESP, "83"),
        (RESP, "0C 03 000000"),
        (REQ, "15 07 06 0001 0002 0009"),
        (RESP, "14 04 09 06 0001"),
    ],
)
def test_malformed_pdus_become_decode_errors(direction: int, pdu: str) -> None:
    f = one(direction, pdu, tid=9, unit=4)
    assert f["event.dataset"] == "otsentry.decode_error"
    assert f["network.protocol"] == "modbus"
    assert (f["modbus.transaction_id"], f["modbus.unit_id"]) == (9, 4)
    assert f["error.message"]


# -- independent reference: pymodbus encodes the PDUs ---------------------------------------------------


def pymodbus_adu(pdu: object) -> bytes:
    return FramerSocket(DecodePDU(False)).buildFrame(pdu)


@pytest.mark.parametrize(
    ("pdu", "direction", "expected"),
    [
        (
            pm_bit.ReadCoilsRequest(address=7, count=12, dev_id=3, transaction_id=77),
            REQ,
            {
                "event.action": "read_coils",
                "modbus.address": 7,
                "modbus.quantity": 12,
                "modbus.unit_id": 3,
                "modbus.transaction_id": 77,
            },
        ),
        (
            pm_bit.WriteMultipleCoilsRequest(address=100, bits=[True, False, True, True, False], dev_id=1),
            REQ,
            {
                "event.action": "write_multiple_coils",
                "modbus.address": 100,
                "modbus.quantity": 5,
                "modbus.values": [1, 0, 1, 1, 0],
            },
        ),
        (
            pm_bit.WriteSingleCoilRequest(address=9, bits=[True], dev_id=1),
            REQ,
            {"event.action": "write_single_coil", "modbus.address": 9, "modbus.values": [1]},
        ),
        (
            pm_reg.ReadHoldingRegistersResponse(registers=[1, 65535, 300], dev_id=1),
            RESP,
            {
                "event.action": "read_holding_registers",
                "modbus.values": [1, 65535, 300],
                "modbus.byte_count": 6,
            },
        ),
        (
            pm_reg.WriteMultipleRegistersRequest(address=40, registers=[5, 6, 7], dev_id=2),
            REQ,
            {
                "event.action": "write_multiple_registers",
                "modbus.address": 40,
                "modbus.quantity": 3,
                "modbus.values": [5, 6, 7],
            },
        ),
        (
            pm_reg.WriteSingleRegisterRequest(address=3, registers=[0xBEEF], dev_id=1),
            REQ,
            {"event.action": "write_single_register", "modbus.values": [0xBEEF]},
        ),
        (
            pm_reg.MaskWriteRegisterRequest(address=4, and_mask=0xF2, or_mask=0x25, dev_id=1),
            REQ,
            {"event.action": "mask_write_register", "modbus.and_mask": 0xF2, "modbus.or_mask": 0x25},
        ),
        (
            pm_reg.ReadWriteMultipleRegistersRequest(
                read_address=1, read_count=4, write_address=2, write_registers=[0xAA, 0xBB], dev_id=6
            ),
            REQ,
            {
                "modbus.address": 1,
                "modbus.quantity": 4,
                "modbus.write.address": 2,
                "modbus.write.quantity": 2,
                "modbus.write.values": [0xAA, 0xBB],
            },
        ),
        (
            pm_file.ReadFifoQueueResponse(values=[1, 2, 3], dev_id=1),
            RESP,
            {"event.action": "read_fifo_queue", "modbus.fifo_count": 3, "modbus.values": [1, 2, 3]},
        ),
        (
            pm_diag.ForceListenOnlyModeRequest(dev_id=1),
            REQ,
            {"event.action": "diagnostics_force_listen_only", "modbus.sub_function": 4},
        ),
        (
            pm_diag.ReturnBusMessageCountRequest(dev_id=1),
            REQ,
            {"event.action": "diagnostics_return_bus_message_count", "modbus.sub_function": 11},
        ),
        (
            pm_diag.ClearOverrunCountRequest(dev_id=1),
            REQ,
            {"event.action": "diagnostics_clear_overrun_counter_and_flag", "modbus.sub_function": 20},
        ),
        (
            pm_mei.ReadDeviceInformationRequest(read_code=2, object_id=0, dev_id=1),
            REQ,
            {
                "event.action": "read_device_identification",
                "modbus.read_device_id_code": 2,
                "modbus.object_id": 0,
            },
        ),
        (
            pm_mei.ReadDeviceInformationResponse(
                read_code=1, information={0: b"Vendor", 1: b"Prod", 2: b"1.0"}, dev_id=1
            ),
            RESP,
            {"modbus.objects": {"VendorName": "Vendor", "ProductCode": "Prod", "MajorMinorRevision": "1.0"}},
        ),
        (
            ExceptionResponse(function_code=6, exception_code=4, device_id=1),
            RESP,
            {
                "modbus.pdu_type": "exception",
                "modbus.function_code": 6,
                "modbus.exception": "server_device_failure",
            },
        ),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, (int, dict)) else None,
)
def test_agrees_with_pymodbus_encoding(pdu: object, direction: int, expected: Fields) -> None:
    f = feed(ModbusAnalyzer(), direction, pymodbus_adu(pdu))[0]
    assert {k: f.get(k) for k in expected} == expected


# -- pairing ------------------------------------------------------------------------------------------


def test_pairing_keys_on_transaction_and_unit() -> None:
    a = ModbusAnalyzer()
    one(REQ, "03 0010 0002", a, tid=5, unit=1)
    one(REQ, "01 0020 0003", a, tid=5, unit=2)
    coils = one(RESP, "01 01 07", a, tid=5, unit=2)
    regs = one(RESP, "03 04 00010002", a, tid=5, unit=1)
    assert (coils["modbus.address"], coils["modbus.values"]) == (0x20, [1, 1, 1])
    assert regs["modbus.address"] == 0x10
    assert one(RESP, "03 04 00010002", a, tid=5, unit=1)["modbus.matched"] is False  # already answered


def test_response_with_another_function_code_does_not_consume_the_request() -> None:
    a = ModbusAnalyzer()
    one(REQ, "03 0010 0002", a, tid=8)
    assert one(RESP, "04 02 0001", a, tid=8)["modbus.matched"] is False
    assert one(RESP, "03 04 00010002", a, tid=8)["modbus.matched"] is True


def test_pending_table_is_bounded_oldest_evicted() -> None:
    a = ModbusAnalyzer()
    data = b"".join(adu("03 0000 0001", tid=t) for t in range(MAX_PENDING + 10))
    assert len(feed(a, REQ, data)) == MAX_PENDING + 10
    assert len(a.pending) == MAX_PENDING
    assert one(RESP, "03 02 0001", a, tid=0)["modbus.matched"] is False
    assert one(RESP, "03 02 0001", a, tid=MAX_PENDING + 9)["modbus.matched"] is True


def test_values_are_capped() -> None:
    a = ModbusAnalyzer()
    one(REQ, "01 0000 07D0", a)  # 2000 coils
    f = one(RESP, "01 FA" + "FF" * 250, a)
    assert len(f["modbus.values"]) == MAX_VALUES and f["modbus.values_truncated"] is True
    f = one(REQ, "10 0000 007B F6" + "0001" * 123)
    assert len(f["modbus.values"]) == 123 and "modbus.values_truncated" not in f


# -- framing -----------------------------------------------------------------------------------------


def test_several_adus_in_one_call_and_one_adu_over_several() -> None:
    a = ModbusAnalyzer()
    stream = adu("03 0000 0001", tid=1) + adu("03 0001 0001", tid=2) + adu("06 0002 0009", tid=3)
    assert [f["modbus.transaction_id"] for f in feed(a, REQ, stream)] == [1, 2, 3]
    for cut in range(1, len(stream)):
        b = ModbusAnalyzer()
        got = feed(b, REQ, stream[:cut], frame=1) + feed(b, REQ, stream[cut:], frame=2)
        assert [f["modbus.transaction_id"] for f in got] == [1, 2, 3]
    bytewise = ModbusAnalyzer()
    got = [f for i in range(len(stream)) for f in feed(bytewise, REQ, stream[i : i + 1], frame=i)]
    assert [f["modbus.address"] for f in got] == [0, 1, 2]


def test_invalid_header_reports_once_and_resyncs() -> None:
    a = ModbusAnalyzer()
    garbage = b"\x00\x07\x00\x05\x00\x06\x01\x03" + bytes(range(1, 40))
    got = feed(a, REQ, adu("03 0000 0001", tid=1) + garbage + adu("03 0009 0001", tid=2))
    assert [f["event.dataset"] for f in got] == [
        "otsentry.modbus",
        "otsentry.decode_error",
        "otsentry.modbus",
    ]
    assert "protocol id 5" in got[1]["error.message"]
    assert got[2]["modbus.address"] == 9


def test_length_out_of_range_is_invalid() -> None:
    for length in (0, 1, 255, 0xFFFF):
        a = ModbusAnalyzer()
        got = feed(a, REQ, struct.pack(">HHHBB", 1, 0, length, 1, 3) + b"\x00" * 10)
        assert got[0]["event.dataset"] == "otsentry.decode_error"
        assert len(a.rest[REQ]) < 260


def test_gap_drops_partial_adu_and_resyncs_mid_stream() -> None:
    a = ModbusAnalyzer()
    request = adu("03 0000 0001", tid=1)
    assert feed(a, REQ, request[:9]) == []
    a.on_gap(REQ)
    assert a.rest[REQ] == b""
    # Mid-stream pickup: the tail of an ADU, register data with zeros, then whole ADUs.
    tail = bytes.fromhex("0000 0000 0302 0000 0000")
    got = feed(a, REQ, tail + adu("03 0005 0002", tid=2) + adu("04 0006 0001", tid=3))
    assert [(f["modbus.transaction_id"], f["modbus.address"]) for f in got] == [(2, 5), (3, 6)]


def test_after_a_gap_an_aligned_segment_with_an_unknown_code_is_decoded() -> None:
    a = ModbusAnalyzer()
    a.on_gap(REQ)
    assert feed(a, REQ, adu("1D 00000000"))[0]["event.action"] == "unknown_function_29"


def test_resync_buffer_is_bounded_on_endless_garbage() -> None:
    a = ModbusAnalyzer()
    a.on_gap(RESP)
    for _ in range(100):
        assert feed(a, RESP, b"\x01\x02\x03\x04" * 1000) == []
        assert len(a.rest[RESP]) <= 8
    assert feed(a, RESP, adu("03 02 0001"))[0]["modbus.values"] == [1]


def test_lying_length_never_grows_the_buffer_past_one_adu() -> None:
    a = ModbusAnalyzer()
    header = struct.pack(">HHHBB", 1, 0, 254, 1, 16)
    feed(a, REQ, header)
    for _ in range(50):
        feed(a, REQ, b"\x00" * 100)
        assert len(a.rest[REQ]) <= 260


# -- probe ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        adu("03 0000 000A"),
        adu("03 04 00010002"),
        adu("83 02"),
        adu("0F 0013 000A 02 CD01"),
        adu("03 0000 0001", tid=1) + adu("03 0001 0001", tid=2),
        adu("2B 0E 01 00"),
        adu("5A 00 41"),
    ],
)
def test_probe_accepts_modbus(data: bytes) -> None:
    assert probe(data)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        bytes.fromhex("0300001611e00000000100c1020100c2020102c0010a"),  # S7: TPKT + COTP connect request
        bytes.fromhex("6500040000000000000000000000000000000000000000000100 0000".replace(" ", "")),  # ENIP
        bytes.fromhex("630000000000000000000000000000000000000000000000"),  # ENIP list identity
        bytes.fromhex("001c1234010000010000000000000377777705"),  # DNS over TCP
        bytes.fromhex("0564050bc40100000004e921"),  # DNP3 link header
        adu("03 0000 000A")[:-1],  # truncated
        adu("03 0000 000A") + b"\x00\x01",  # trailing partial header
        adu("64 0000 000A"),  # unknown function code
        adu("03 0000 000A 00"),  # length fits neither a read request nor a response
        adu("83 02 00"),  # exception with extra bytes
        adu("03 0000 0001") + b"\x00\x02\x00\x00\x00\x09\x01\x03\x00",  # chain breaks
        b"\x00" * 8,
        b"",
    ],
)
def test_probe_rejects_other_traffic(data: bytes) -> None:
    assert not probe(data)
