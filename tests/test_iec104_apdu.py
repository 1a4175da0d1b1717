"""IEC 60870-5-104 codec on hand-built APDUs: APCI formats, ASDU header, every class of information
object, unknown types, truncation. Expected values are worked out from IEC 60870-5-101/104, not
from the code."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from iec104_helpers import asdu, cp56, i_frame, ioa, s_frame, u_frame
from otsentry.protocols.base import DecodeError
from otsentry.protocols.iec104 import Iec104DecodeError, decode_apdu


def one_object(type_id: int, elements: bytes, **header) -> dict:
    """Decode an I-frame with a single object at IOA 0x010203 and return that object."""
    fields = decode_apdu(i_frame(asdu(type_id, ioa(0x010203) + elements, **header)))
    assert fields["iec104.ioa"] == [0x010203]
    (obj,) = fields["iec104.objects"]
    assert obj["ioa"] == 0x010203
    return obj


def decode_error(apdu: bytes) -> Iec104DecodeError:
    with pytest.raises(Iec104DecodeError) as info:
        decode_apdu(apdu)
    assert isinstance(info.value, DecodeError)
    return info.value


# -- APCI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("control", "function", "action"),
    [
        (0x07, "STARTDT_act", "startdt_act"),
        (0x0B, "STARTDT_con", "startdt_con"),
        (0x13, "STOPDT_act", "stopdt_act"),
        (0x23, "STOPDT_con", "stopdt_con"),
        (0x43, "TESTFR_act", "testfr_act"),
        (0x83, "TESTFR_con", "testfr_con"),
    ],
)
def test_u_format_functions(control: int, function: str, action: str) -> None:
    fields = decode_apdu(bytes([0x68, 4, control, 0, 0, 0]))
    assert fields["iec104.apci"] == "U"
    assert fields["iec104.u_function"] == function
    assert fields["event.action"] == action
    assert fields["event.dataset"] == "otsentry.iec104"
    assert fields["network.protocol"] == "iec104"
    assert "iec104.type_id" not in fields


def test_s_format_receive_sequence() -> None:
    # the parsitects README example: 01 00 7E 14 → N(R) = 0x147E >> 1 = 2623
    fields = decode_apdu(bytes.fromhex("6804 0100 7e14"))
    assert fields["iec104.apci"] == "S"
    assert fields["iec104.recv_seq"] == 2623
    assert fields["event.action"] == "s_frame"
    assert "iec104.send_seq" not in fields
    assert decode_apdu(s_frame(32767))["iec104.recv_seq"] == 32767


def test_i_format_sequence_numbers() -> None:
    fields = decode_apdu(i_frame(asdu(100, ioa(0) + b"\x14"), send=32767, recv=12345))
    assert fields["iec104.apci"] == "I"
    assert fields["iec104.send_seq"] == 32767
    assert fields["iec104.recv_seq"] == 12345


def test_u_format_with_two_function_bits_is_an_error() -> None:
    error = decode_error(bytes([0x68, 4, 0x17, 0, 0, 0]))  # STARTDT act + STOPDT act
    assert "exactly one function bit" in str(error)
    assert error.fields["iec104.apci"] == "U"


@pytest.mark.parametrize("apdu", [s_frame(1) + b"\x00\x00", u_frame(0x40) + b"\x00"])
def test_s_and_u_formats_have_no_asdu(apdu: bytes) -> None:
    apdu = bytes([0x68, len(apdu) - 2]) + apdu[2:]
    error = decode_error(apdu)
    assert "must be 4" in str(error)
    assert error.fields["iec104.length"] == len(apdu) - 2


def test_i_format_without_asdu() -> None:
    error = decode_error(bytes([0x68, 4, 0, 0, 0, 0]))
    assert str(error) == "I-format APDU without ASDU"
    assert error.fields["iec104.apci"] == "I"


def test_not_an_apdu() -> None:
    decode_error(b"\x68\x05\x00\x00\x00\x00")  # length octet disagrees with the bytes given
    decode_error(b"\x69\x04\x07\x00\x00\x00")


# -- ASDU header ----------------------------------------------------------------------------------


def test_asdu_header_fields() -> None:
    fields = decode_apdu(
        i_frame(
            asdu(45, ioa(5) + b"\x01", cot=7, negative=True, test=True, originator=9, common_address=0x1234)
        )
    )
    assert fields["iec104.type_id"] == 45
    assert fields["iec104.type"] == "C_SC_NA_1"
    assert fields["iec104.cot"] == 7
    assert fields["iec104.cause"] == "actcon"
    assert fields["iec104.negative"] is True
    assert fields["iec104.test"] is True
    assert fields["iec104.originator"] == 9
    assert fields["iec104.common_address"] == 0x1234
    assert fields["iec104.sq"] is False
    assert fields["iec104.num_objects"] == 1
    assert fields["iec104.length"] == 14


@pytest.mark.parametrize(
    ("cot", "name"),
    [
        (1, "per/cyc"),
        (2, "back"),
        (3, "spont"),
        (4, "init"),
        (5, "req"),
        (6, "act"),
        (8, "deact"),
        (9, "deactcon"),
        (10, "actterm"),
        (11, "retrem"),
        (12, "retloc"),
        (13, "file"),
        (20, "inrogen"),
        (21, "inro1"),
        (36, "inro16"),
        (37, "reqcogen"),
        (38, "reqco1"),
        (41, "reqco4"),
        (44, "unknown_type_id"),
        (45, "unknown_cause"),
        (46, "unknown_common_address"),
        (47, "unknown_ioa"),
        (0, "not_used"),
        (17, "reserved"),
        (42, "reserved"),
        (48, "private"),
        (63, "private"),
    ],
)
def test_cause_names(cot: int, name: str) -> None:
    fields = decode_apdu(i_frame(asdu(100, ioa(0) + b"\x14", cot=cot)))
    assert fields["iec104.cot"] == cot
    assert fields["iec104.cause"] == name
    assert fields["iec104.negative"] is False


# -- monitor direction ----------------------------------------------------------------------------


def test_single_points_sq0_with_quality() -> None:
    objects = ioa(100) + b"\x01" + ioa(0x0A0B0C) + b"\xf0"
    fields = decode_apdu(i_frame(asdu(1, objects, count=2, cot=3)))
    assert fields["event.action"] == "single_point"
    assert fields["iec104.ioa"] == [100, 0x0A0B0C]
    assert fields["iec104.objects"] == [
        {"ioa": 100, "value": 1, "state": "on", "quality": []},
        {"ioa": 0x0A0B0C, "value": 0, "state": "off", "quality": ["BL", "SB", "NT", "IV"]},
    ]
    assert fields["iec104.value"] == [1, 0]
    assert fields["iec104.state"] == ["on", "off"]


def test_sq1_gives_consecutive_ioas() -> None:
    fields = decode_apdu(i_frame(asdu(1, ioa(1000) + b"\x00\x01\x80", count=3, sq=True, cot=20)))
    assert fields["iec104.sq"] is True
    assert fields["iec104.ioa"] == [1000, 1001, 1002]
    assert [o["value"] for o in fields["iec104.objects"]] == [0, 1, 0]
    assert fields["iec104.objects"][2]["quality"] == ["IV"]
    assert "iec104.trailing_bytes" not in fields


def test_double_point_with_cp56_time() -> None:
    obj = one_object(31, b"\x02" + cp56(2024, 2, 29, 23, 59, 59999, summer=True), cot=3)
    assert obj["value"] == 2
    assert obj["state"] == "on"
    assert obj["time"] == "2024-02-29T23:59:59.999"
    assert obj["time_summer"] is True
    assert "time_invalid" not in obj
    for diq, state in ((0, "intermediate"), (1, "off"), (3, "indeterminate")):
        assert one_object(3, bytes([diq]))["state"] == state


def test_cp56_invalid_flag_and_impossible_date() -> None:
    obj = one_object(36, struct.pack("<f", 1.5) + b"\x00" + cp56(2023, 2, 29, 0, 0, 0, invalid=True))
    assert obj["time"] is None  # 2023 is not a leap year
    assert obj["time_raw"] == cp56(2023, 2, 29, 0, 0, 0, invalid=True).hex()
    assert obj["time_invalid"] is True
    assert one_object(30, b"\x01" + cp56(99, 12, 31, 0, 0, 0))["time"] == "1999-12-31T00:00:00.000"
    substituted = one_object(103, struct.pack("<HBBBBB", 1500, 0x40 | 30, 1, 15, 7, 13))  # GEN bit
    assert (substituted["time"], substituted["time_substituted"]) == ("2013-07-15T01:30:01.500", True)


def test_step_position() -> None:
    obj = one_object(5, b"\xc5\x01")  # T=1, value bits 1000101 = -59 (I7), QDS OV
    assert obj == {"ioa": 0x010203, "value": -59, "transient": True, "quality": ["OV"]}
    assert one_object(5, b"\x3f\x00")["value"] == 63


def test_bitstring() -> None:
    assert one_object(7, bytes.fromhex("78563412") + b"\x80") == {
        "ioa": 0x010203,
        "value": 0x12345678,
        "quality": ["IV"],
    }


def test_measured_values() -> None:
    normalized = one_object(9, struct.pack("<h", 0x4000) + b"\x00")
    assert normalized["value"] == 0.5
    assert normalized["raw"] == 0x4000
    assert one_object(21, struct.pack("<h", -32768))["value"] == -1.0  # M_ME_ND_1: no QDS
    assert one_object(11, struct.pack("<h", -1234) + b"\x40") == {
        "ioa": 0x010203,
        "value": -1234,
        "quality": ["NT"],
    }
    assert one_object(13, struct.pack("<f", 0.1) + b"\x00")["value"] == 0.1
    assert one_object(13, struct.pack("<f", -273.15) + b"\x00")["value"] == -273.15
    nan = one_object(13, struct.pack("<f", float("nan")) + b"\x00")
    assert nan["value"] is None
    assert nan["float_special"] == "nan"


def test_cp24_time_tag() -> None:
    obj = one_object(10, struct.pack("<h", 0) + b"\x00" + struct.pack("<HB", 1234, 5 | 0x80))
    assert obj["time"] == "05:01.234"
    assert obj["time_invalid"] is True


def test_integrated_totals() -> None:
    obj = one_object(15, struct.pack("<iB", -5, 0x20 | 0x40 | 3), cot=37)
    assert obj == {"ioa": 0x010203, "value": -5, "sequence": 3, "quality": ["CY", "CA"]}


def test_protection_equipment_events() -> None:
    event = one_object(38, b"\x0a" + struct.pack("<H", 500) + cp56(2020, 1, 2, 3, 4, 5006))
    assert event["value"] == 2
    assert event["state"] == "on"
    assert event["quality"] == ["EI"]
    assert event["elapsed_ms"] == 500
    assert event["time"] == "2020-01-02T03:04:05.006"
    starts = one_object(39, b"\x03\x80" + struct.pack("<H", 7) + cp56(2020, 1, 2, 3, 4, 5))
    assert starts["events"] == ["GS", "SL1"]
    assert starts["quality"] == ["IV"]
    circuits = one_object(40, b"\x0c\x00" + struct.pack("<H", 7) + cp56(2020, 1, 2, 3, 4, 5))
    assert circuits["events"] == ["CL2", "CL3"]


def test_packed_single_points_with_change_detection() -> None:
    obj = one_object(20, struct.pack("<HH", 0x00FF, 0x0001) + b"\x00")
    assert obj["value"] == 0x00FF
    assert obj["change"] == 0x0001


def test_end_of_initialization() -> None:
    fields = decode_apdu(i_frame(asdu(70, ioa(0) + b"\x82", cot=4)))
    assert fields["event.action"] == "end_of_initialization"
    (obj,) = fields["iec104.objects"]
    assert obj == {"ioa": 0, "qualifier": 2, "qualifier_name": "remote_reset", "local_param_change": True}


# -- control direction ----------------------------------------------------------------------------


def test_single_command_select_and_execute() -> None:
    select = one_object(45, b"\x81")
    assert select == {
        "ioa": 0x010203,
        "value": 1,
        "state": "on",
        "qualifier": 0,
        "qualifier_name": "no_additional_definition",
        "select": True,
    }
    execute = one_object(45, b"\x04")  # QU=1 short pulse, SCS off, execute
    assert (execute["value"], execute["qualifier_name"], execute["select"]) == (0, "short_pulse", False)
    fields = decode_apdu(i_frame(asdu(45, ioa(7) + b"\x81")))
    assert fields["event.action"] == "single_command"
    assert fields["iec104.select"] == [True]


def test_double_and_regulating_step_commands() -> None:
    double = one_object(46, b"\x8a")  # S/E=1, QU=2 long pulse, DCS=2 on
    assert (double["value"], double["state"], double["qualifier_name"], double["select"]) == (
        2,
        "on",
        "long_pulse",
        True,
    )
    assert one_object(46, b"\x00")["state"] == "not_permitted"
    step = one_object(47, b"\x0d")  # QU=3 persistent, RCS=1 lower, execute
    assert (step["state"], step["qualifier_name"], step["select"]) == ("lower", "persistent", False)
    assert one_object(47, b"\x7e")["qualifier_name"] == "private"


def test_set_points() -> None:
    normalized = one_object(48, struct.pack("<h", -16384) + b"\x80")
    assert (normalized["value"], normalized["qualifier"], normalized["select"]) == (-0.5, 0, True)
    scaled = one_object(49, struct.pack("<h", 1000) + b"\x05")
    assert (scaled["value"], scaled["qualifier"], scaled["select"]) == (1000, 5, False)
    floating = one_object(50, struct.pack("<f", 50.5) + b"\x00")
    assert floating["value"] == 50.5
    timed = one_object(63, struct.pack("<f", -1.25) + b"\x80" + cp56(2021, 6, 1, 12, 0, 0))
    assert (timed["value"], timed["select"], timed["time"]) == (-1.25, True, "2021-06-01T12:00:00.000")
    fields = decode_apdu(i_frame(asdu(50, ioa(1) + struct.pack("<f", 2.0) + b"\x00")))
    assert fields["event.action"] == "set_point_float"


def test_bitstring_command_and_timed_commands() -> None:
    assert one_object(51, struct.pack("<I", 0x0000FFFF))["value"] == 0xFFFF
    assert (
        one_object(64, struct.pack("<I", 1) + cp56(2021, 6, 1, 12, 0, 0))["time"] == "2021-06-01T12:00:00.000"
    )
    timed = one_object(58, b"\x01" + cp56(2021, 6, 1, 12, 0, 0))
    assert (timed["state"], timed["select"], timed["time"]) == ("on", False, "2021-06-01T12:00:00.000")
    assert one_object(59, b"\x81" + cp56(2021, 6, 1, 12, 0, 0))["state"] == "off"
    assert one_object(60, b"\x82" + cp56(2021, 6, 1, 12, 0, 0))["state"] == "higher"


@pytest.mark.parametrize(
    ("qoi", "name"),
    [(20, "station"), (21, "group_1"), (36, "group_16"), (0, "not_used"), (5, "reserved"), (200, "private")],
)
def test_interrogation(qoi: int, name: str) -> None:
    fields = decode_apdu(i_frame(asdu(100, ioa(0) + bytes([qoi]))))
    assert fields["event.action"] == "interrogation"
    assert fields["iec104.objects"] == [{"ioa": 0, "qualifier": qoi, "qualifier_name": name}]
    assert fields["iec104.qualifier"] == [qoi]


def test_counter_interrogation() -> None:
    obj = one_object(101, b"\x45")  # FRZ=1, RQT=5
    assert obj == {
        "ioa": 0x010203,
        "qualifier": 5,
        "qualifier_name": "general",
        "freeze": 1,
        "freeze_name": "freeze",
    }


def test_read_and_clock_sync() -> None:
    fields = decode_apdu(i_frame(asdu(102, ioa(4242), cot=5)))
    assert fields["event.action"] == "read"
    assert fields["iec104.objects"] == [{"ioa": 4242}]
    # C_CS_NA_1 time octets of TestDissectIec104.pcap frame 139
    obj = one_object(103, bytes.fromhex("c83239081d0808"))
    assert obj["time"] == "2008-08-29T08:57:13.000"


def test_test_commands_reset_and_delay() -> None:
    assert one_object(104, b"\xaa\x55")["value"] == 0x55AA
    timed = one_object(107, struct.pack("<H", 7) + cp56(2022, 3, 4, 5, 6, 7008))
    assert (timed["value"], timed["time"]) == (7, "2022-03-04T05:06:07.008")
    reset = decode_apdu(i_frame(asdu(105, ioa(0) + b"\x01")))
    assert reset["event.action"] == "reset_process"
    assert reset["iec104.objects"][0]["qualifier_name"] == "general_reset"
    assert one_object(105, b"\x02")["qualifier_name"] == "reset_event_buffer"
    delay = decode_apdu(i_frame(asdu(106, ioa(0) + struct.pack("<H", 250), cot=3)))
    assert delay["event.action"] == "delay_acquisition"
    assert delay["iec104.value"] == [250]


def test_parameters() -> None:
    obj = one_object(111, struct.pack("<h", 100) + b"\x41")
    assert (obj["value"], obj["qualifier_name"], obj["local_param_change"], obj["not_in_operation"]) == (
        100,
        "threshold",
        True,
        False,
    )
    assert one_object(110, struct.pack("<h", 8192) + b"\x82")["not_in_operation"] is True
    assert one_object(112, struct.pack("<f", 0.25) + b"\x04")["qualifier_name"] == "high_limit"
    assert one_object(113, b"\x03")["qualifier_name"] == "cyclic_transmission"


def test_file_transfer() -> None:
    delete = one_object(122, struct.pack("<HBB", 1, 0, 4), cot=13)
    assert (delete["file"], delete["section"], delete["qualifier_name"]) == (1, 0, "delete_file")
    ack = one_object(124, struct.pack("<HBB", 1, 2, 0x22))
    assert (ack["qualifier_name"], ack["file_error"]) == ("file_transfer_failed", "checksum_error")
    segment = decode_apdu(i_frame(asdu(125, ioa(9) + struct.pack("<HBB", 2, 1, 3) + b"abc", cot=13)))
    assert segment["event.action"] == "file_segment"
    assert segment["iec104.objects"] == [{"ioa": 9, "file": 2, "section": 1, "length": 3}]
    assert "iec104.trailing_bytes" not in segment
    directory = one_object(
        126, struct.pack("<H", 3) + (70000).to_bytes(3, "little") + b"\x20" + cp56(2010, 10, 10, 10, 10, 10)
    )
    assert (directory["file"], directory["length"], directory["status"]) == (3, 70000, 0x20)
    query = one_object(127, struct.pack("<H", 3) + cp56(2010, 1, 1, 0, 0, 0) + cp56(2010, 1, 2, 0, 0, 0))
    assert (query["time"], query["stop_time"]) == ("2010-01-01T00:00:00.000", "2010-01-02T00:00:00.000")
    ready = one_object(120, struct.pack("<H", 3) + (10).to_bytes(3, "little") + b"\x80")
    assert (ready["length"], ready["qualifier"]) == (10, 0x80)
    last = one_object(123, struct.pack("<HBBB", 3, 1, 3, 0x5A))
    assert last["checksum"] == 0x5A


# -- unknown types, truncation, caps ------------------------------------------------------------


def test_unknown_type_reports_first_ioa_only() -> None:
    fields = decode_apdu(i_frame(asdu(200, ioa(7) + b"\x01\x02\x03\x04\x05", count=3)))
    assert fields["event.action"] == "unknown_type"
    assert fields["iec104.type_id"] == 200
    assert "iec104.type" not in fields
    assert fields["iec104.ioa"] == [7]
    assert "layout unknown" in fields["iec104.detail"]
    assert fields["iec104.data"] == "0102030405"
    assert "iec104.objects" not in fields


def test_unknown_type_with_sq1_lists_every_ioa() -> None:
    fields = decode_apdu(i_frame(asdu(150, ioa(10) + b"\xff" * 8, count=4, sq=True)))
    assert fields["iec104.ioa"] == [10, 11, 12, 13]


def test_security_type_is_named_but_not_decoded() -> None:
    fields = decode_apdu(i_frame(asdu(81, ioa(0) + b"\x00" * 10, cot=14)))
    assert fields["iec104.type"] == "S_CH_NA_1"
    assert fields["event.action"] == "authentication"
    assert fields["iec104.cause"] == "auth"
    assert fields["iec104.ioa"] == [0]


def test_truncated_objects_keep_the_complete_ones() -> None:
    apdu = i_frame(asdu(45, ioa(1) + b"\x81" + ioa(2), count=2))
    error = decode_error(apdu)
    assert "information object 2 of 2 truncated" in str(error)
    assert error.fields["iec104.type_id"] == 45
    assert error.fields["iec104.ioa"] == [1]
    assert error.fields["iec104.objects"][0]["select"] is True


def test_lying_object_count_returns_at_once() -> None:
    apdu = i_frame(asdu(36, ioa(1), count=127, sq=True))  # 127 × 12 octets promised, none present
    error = decode_error(apdu)  # fails on the first object (timing: test_iec104_fuzz)
    assert "information object 1 of 127 truncated" in str(error)
    assert error.fields["iec104.objects"] == []


@pytest.mark.parametrize(
    ("asdu_bytes", "known"),
    [
        (b"\x2d", {"iec104.type_id": 45}),
        (b"\x2d\x01", {"iec104.num_objects": 1}),
        (b"\x2d\x01\x06\x00\x01", {"iec104.cot": 6, "iec104.originator": 0}),
    ],
)
def test_truncated_asdu_header(asdu_bytes: bytes, known: dict) -> None:
    error = decode_error(i_frame(asdu_bytes))
    assert "ASDU header truncated" in str(error)
    assert known.items() <= error.fields.items()


def test_missing_ioa_of_unknown_type() -> None:
    error = decode_error(i_frame(asdu(200, b"\x01", count=1)))
    assert "address truncated" in str(error)


def test_trailing_bytes_are_reported() -> None:
    fields = decode_apdu(i_frame(asdu(100, ioa(0) + b"\x14" + b"\xde\xad")))
    assert fields["iec104.trailing_bytes"] == 2
    assert fields["iec104.objects"][0]["qualifier"] == 20


def test_zero_objects() -> None:
    fields = decode_apdu(i_frame(asdu(1, b"", count=0)))
    assert fields["iec104.num_objects"] == 0
    assert fields["iec104.ioa"] == []
    assert fields["iec104.objects"] == []


def test_object_cap() -> None:
    apdu = i_frame(asdu(1, ioa(1) + b"\x01" * 5, count=5, sq=True))
    fields = decode_apdu(apdu, max_objects=2)
    assert fields["iec104.ioa"] == [1, 2]
    assert len(fields["iec104.objects"]) == 2
    assert fields["iec104.objects_truncated"] is True
    assert "iec104.objects_truncated" not in decode_apdu(apdu)
