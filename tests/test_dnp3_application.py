"""DNP3 application layer on hand-built fragments: header fields, every qualifier form, the
object-size table and the point decoders."""

from __future__ import annotations

import struct
import time
from datetime import UTC, datetime

import pytest

from dnp3_frames import app_request, app_response, crob
from otsentry.protocols.base import DecodeError
from otsentry.protocols.dnp3 import codes
from otsentry.protocols.dnp3.application import decode_fragment
from otsentry.protocols.dnp3.objects import OBJECTS


def decode(fragment: bytes, max_points: int = 256) -> dict:
    fields: dict = {}
    decode_fragment(fragment, fields, max_points)
    return fields


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def t48(iso: str) -> bytes:
    return ms(iso).to_bytes(6, "little")


@pytest.mark.parametrize(("code", "name"), sorted(codes.APP_FUNCTIONS.items()))
def test_every_function_code_is_named(code: int, name: str) -> None:
    fragment = app_response(b"") if code in codes.RESPONSE_FUNCTIONS else app_request(code)
    if code in codes.RESPONSE_FUNCTIONS:
        fragment = fragment[:1] + bytes([code]) + fragment[2:]
    fields = decode(fragment)
    assert fields["dnp3.application.function_code"] == code
    assert fields["event.action"] == fields["dnp3.application.function"] == name
    assert name == name.lower() and " " not in name


def test_names_of_notable_codes() -> None:
    names = codes.APP_FUNCTIONS
    assert (names[5], names[13], names[18], names[31], names[32], names[33]) == (
        "direct_operate",
        "cold_restart",
        "stop_appl",
        "activate_config",
        "authenticate_req",
        "auth_req_no_ack",
    )
    assert (names[129], names[130], names[131]) == ("response", "unsolicited_response", "authenticate_resp")
    assert decode(bytes([0xC0, 99]))["event.action"] == "function_99"


def test_control_bits_and_iin() -> None:
    fields = decode(bytes([0xF5, 130, 0x90, 0x02]))  # FIR FIN CON UNS seq 5, IIN1 0x90, IIN2 0x02
    assert fields["dnp3.application.sequence"] == 5
    assert all(fields[f"dnp3.application.{b}"] for b in ("fir", "fin", "con", "uns"))
    assert fields["dnp3.iin"] == 0x9002
    assert fields["dnp3.iin_flags"] == ["need_time", "device_restart", "object_unknown"]
    assert decode(app_response(b"", iin=0x0120))["dnp3.iin_flags"] == ["broadcast", "config_corrupt"]
    assert "dnp3.iin" not in decode(app_request(1))


def test_truncated_headers_raise() -> None:
    with pytest.raises(DecodeError):
        decode(b"\xc0")
    with pytest.raises(DecodeError):
        decode(bytes([0xC0, 0x81, 0x00]))  # response without IIN2


def test_read_class_poll_has_headers_only() -> None:
    fields = decode(app_request(1, bytes([60, 2, 6, 60, 3, 6, 60, 4, 6, 60, 1, 6])))
    assert fields["dnp3.object_gv"] == ["g60v2", "g60v3", "g60v4", "g60v1"]
    assert fields["dnp3.objects"][0] == {"group": 60, "variation": 2, "qualifier": 6}


def test_read_with_ranges_and_index_lists_has_no_object_data() -> None:
    objects = bytes([1, 2, 0x00, 3, 9]) + bytes([30, 0, 0x01]) + struct.pack("<HH", 100, 300)
    objects += bytes([20, 1, 0x17, 3, 7, 9, 200])  # count 3, 1-octet indices
    fields = decode(app_request(1, objects))
    a, b, c = fields["dnp3.objects"]
    assert (a["start"], a["stop"], a["count"]) == (3, 9, 7) and "points" not in a
    assert (b["start"], b["stop"], b["count"]) == (100, 300, 201)
    assert c["count"] == 3 and c["points"] == [{"index": 7}, {"index": 9}, {"index": 200}]
    assert "dnp3.objects_truncated" not in fields


def test_start_stop_1_2_4_octets_and_values() -> None:
    body = bytes([1, 2, 0x00, 5, 6, 0x81, 0x01])  # g1v2 5..6
    body += bytes([30, 1, 0x01]) + struct.pack("<HH", 1000, 1001) + struct.pack("<BiBi", 1, -5, 0x21, 70000)
    body += bytes([30, 5, 0x02]) + struct.pack("<II", 70000, 70000) + struct.pack("<Bf", 1, 1.5)
    body += bytes([30, 6, 0x00, 9, 9]) + struct.pack("<Bd", 1, -2.25)
    body += bytes([20, 5, 0x00, 0, 0]) + struct.pack("<I", 4000000000)
    fields = decode(app_response(body))
    binaries, ints, floats, doubles, counters = (o["points"] for o in fields["dnp3.objects"])
    assert binaries == [{"index": 5, "value": True, "flags": 0x81}, {"index": 6, "value": False, "flags": 1}]
    assert ints == [{"index": 1000, "value": -5, "flags": 1}, {"index": 1001, "value": 70000, "flags": 0x21}]
    assert floats == [{"index": 70000, "value": 1.5, "flags": 1}]
    assert doubles == [{"index": 9, "value": -2.25, "flags": 1}]
    assert counters == [{"index": 0, "value": 4000000000}]


def test_index_prefixes_1_2_4_octets() -> None:
    body = bytes([32, 2, 0x17, 2]) + struct.pack("<BBh", 4, 1, -1) + struct.pack("<BBh", 250, 1, 2)
    body += bytes([22, 1, 0x28]) + struct.pack("<H", 1) + struct.pack("<HBI", 60000, 1, 99)
    body += bytes([2, 1, 0x39]) + struct.pack("<I", 1) + struct.pack("<IB", 100000, 0x81)
    fields = decode(app_response(body, unsolicited=True))
    assert fields["event.action"] == "unsolicited_response"
    a, b, c = (o["points"] for o in fields["dnp3.objects"])
    assert a == [{"index": 4, "value": -1, "flags": 1}, {"index": 250, "value": 2, "flags": 1}]
    assert b == [{"index": 60000, "value": 99, "flags": 1}]
    assert c == [{"index": 100000, "value": True, "flags": 0x81}]


def test_packed_bits() -> None:
    body = bytes([1, 1, 0x00, 5, 14]) + bytes([0b10100101, 0b00000010])  # 10 single bits from index 5
    body += bytes([3, 1, 0x00, 0, 4]) + bytes([0b11100100, 0b00000001])  # 5 double bits
    body += bytes([10, 1, 0x00, 0, 0, 0x01])
    fields = decode(app_response(body))
    single, double, output = (o["points"] for o in fields["dnp3.objects"])
    assert [p["value"] for p in single] == [True, False, True, False, False, True, False, True, False, True]
    assert [p["index"] for p in single] == list(range(5, 15))
    assert [p["value"] for p in double] == [0, 1, 2, 3, 1]
    assert output == [{"index": 0, "value": True}]


def test_write_iin_clears_device_restart() -> None:
    fields = decode(app_request(2, bytes([80, 1, 0x00, 7, 7, 0x00])))
    (point,) = fields["dnp3.objects"][0]["points"]
    assert point == {"index": 7, "value": False, "iin": "device_restart"}


def test_crob_fields_and_flat_lists() -> None:
    objects = crob(3, 0x41, count=2, on_ms=500, off_ms=100)  # CLOSE + PULSE_ON
    objects += bytes([12, 1, 0x17, 1, 9]) + struct.pack(
        "<BBIIB", 0x83 | 0x20, 1, 0, 0, 4
    )  # TRIP LATCH_ON clear
    fields = decode(app_request(3, objects))
    assert fields["event.action"] == "select"
    first, second = (o["points"][0] for o in fields["dnp3.objects"])
    assert first["op_type"] == "PULSE_ON" and first["tcc"] == "CLOSE" and first["index"] == 3
    assert (first["count"], first["on_time"], first["off_time"], first["queue"], first["clear"]) == (
        2,
        500,
        100,
        False,
        False,
    )
    assert second["op_type"] == "LATCH_ON" and second["tcc"] == "TRIP" and second["clear"] is True
    assert second["status_name"] == "NOT_SUPPORTED"
    assert fields["dnp3.control.index"] == [3, 9]
    assert fields["dnp3.control.code"] == [0x41, 0xA3]
    assert fields["dnp3.control.op_type"] == ["PULSE_ON", "LATCH_ON"]
    assert fields["dnp3.control.tcc"] == ["CLOSE", "TRIP"]
    assert fields["dnp3.control.count"] == [2, 1]
    assert fields["dnp3.control.on_time"] == [500, 0]
    assert fields["dnp3.control.off_time"] == [100, 0]
    assert fields["dnp3.control.status"] == [0, 4]


def test_analog_output_commands() -> None:
    body = bytes([41, 1, 0x17, 1, 0]) + struct.pack("<iB", -70000, 0)
    body += bytes([41, 2, 0x28, 1, 0]) + struct.pack("<HhB", 513, 1234, 0)
    body += bytes([41, 3, 0x17, 1, 2]) + struct.pack("<fB", 2.5, 0)
    body += bytes([41, 4, 0x17, 1, 3]) + struct.pack("<dB", 1e10, 7)
    fields = decode(app_request(5, body))
    assert fields["dnp3.analog_output.index"] == [0, 513, 2, 3]
    assert fields["dnp3.analog_output.value"] == [-70000, 1234, 2.5, 1e10]
    assert fields["dnp3.analog_output.status"] == [0, 0, 0, 7]
    assert fields["dnp3.objects"][3]["points"][0]["status_name"] == "LOCAL"


def test_time_objects() -> None:
    fields = decode(app_request(2, bytes([50, 1, 0x07, 1]) + t48("2013-06-10T13:54:01.123")))
    assert fields["dnp3.objects"][0]["points"][0]["time"] == "2013-06-10T13:54:01.123Z"
    freeze = bytes([50, 2, 0x07, 1]) + t48("2020-01-01T00:00:00") + struct.pack("<I", 60000)
    fields = decode(app_request(11, freeze + bytes([20, 0, 0x06])))
    time_obj, counters = fields["dnp3.objects"]
    assert time_obj["points"] == [{"time": "2020-01-01T00:00:00.000Z", "interval_ms": 60000, "index": 0}]
    assert counters == {"group": 20, "variation": 0, "qualifier": 6}


def test_relative_time_events_use_the_common_time_of_occurrence() -> None:
    body = bytes([51, 1, 0x07, 1]) + t48("2021-03-04T05:06:07.000")
    body += (
        bytes([2, 3, 0x17, 2, 1, 0x81]) + struct.pack("<H", 250) + bytes([2, 0x01]) + struct.pack("<H", 1000)
    )
    fields = decode(app_response(body, unsolicited=True))
    events = fields["dnp3.objects"][1]["points"]
    assert [(p["index"], p["value"], p["time"]) for p in events] == [
        (1, True, "2021-03-04T05:06:07.250Z"),
        (2, False, "2021-03-04T05:06:08.000Z"),
    ]


def test_event_objects_with_absolute_time() -> None:
    body = bytes([32, 3, 0x28, 1, 0]) + struct.pack("<HBi", 7, 1, 123456) + t48("2022-02-02T02:02:02.002")
    body += bytes([4, 2, 0x17, 1, 3, 0x81]) + t48("2022-02-02T02:02:03")
    fields = decode(app_response(body))
    analog, double = (o["points"][0] for o in fields["dnp3.objects"])
    assert analog == {"index": 7, "value": 123456, "flags": 1, "time": "2022-02-02T02:02:02.002Z"}
    assert double == {"index": 3, "value": 2, "flags": 0x81, "time": "2022-02-02T02:02:03.000Z"}


def test_device_attributes() -> None:
    body = bytes([0, 252, 0x00, 0, 0, 1, 4]) + b"ACME"  # manufacturer name, VSTR
    body += bytes([0, 240, 0x00, 0, 0, 2, 2]) + struct.pack("<H", 2048)  # max tx fragment, UINT
    body += bytes([0, 255, 0x00, 0, 0, 254, 4, 252, 0, 246, 1])  # list of attribute variations
    fields = decode(app_response(body))
    name, size, listing = (o["points"][0] for o in fields["dnp3.objects"])
    assert name == {
        "attribute": 252,
        "name": "device_manufacturer_name",
        "data_type": "VSTR",
        "value": "ACME",
        "index": 0,
    }
    assert (size["name"], size["value"]) == ("max_tx_fragment_size", 2048)
    assert listing["value"] == [{"variation": 252, "writable": False}, {"variation": 246, "writable": True}]
    assert codes.DEVICE_ATTRIBUTES[250] == "product_name_and_model"
    assert codes.DEVICE_ATTRIBUTES[246] == "user_assigned_id"
    # A READ of all attributes carries no data.
    assert "points" not in decode(app_request(1, bytes([0, 254, 0x06])))["dnp3.objects"][0]


def _file_command(name: bytes, mode: int) -> bytes:
    fixed = struct.pack("<HHIHHIIHHH", 26, len(name), 0, 0, 0o644, 0, 1234, mode, 1024, 7)
    return fixed + name


def test_file_objects() -> None:
    command = _file_command(b"/var/log/x.txt", 2)
    fields = decode(app_request(25, bytes([70, 3, 0x5B, 1]) + struct.pack("<H", len(command)) + command))
    (point,) = fields["dnp3.objects"][0]["points"]
    assert point["file_name"] == "/var/log/x.txt"
    assert (point["mode"], point["permissions"], point["max_block_size"], point["request_id"]) == (
        "WRITE",
        "644",
        1024,
        7,
    )
    assert fields["dnp3.file.name"] == ["/var/log/x.txt"]
    status = struct.pack("<IIHHB", 0xABCD, 1234, 1024, 7, 3) + b"nope"
    transport = struct.pack("<II", 0xABCD, 0x80000002) + b"secret file data"
    body = bytes([70, 4, 0x5B, 1]) + struct.pack("<H", len(status)) + status
    body += bytes([70, 5, 0x5B, 1]) + struct.pack("<H", len(transport)) + transport
    fields = decode(app_response(body))
    st, tr = (o["points"][0] for o in fields["dnp3.objects"])
    assert (st["handle"], st["status_name"], st["text"]) == (0xABCD, "FILE_NOT_FOUND", "nope")
    assert tr == {"handle": 0xABCD, "block": 2, "last": True, "data_length": 16, "index": 0}
    auth = struct.pack("<HHHHI", 12, 5, 17, 6, 0) + b"alicehunter2"
    fields = decode(app_request(29, bytes([70, 2, 0x5B, 1]) + struct.pack("<H", len(auth)) + auth))
    assert fields["dnp3.objects"][0]["points"][0] == {"user_name": "alice", "password_length": 6, "index": 0}
    assert "hunter2" not in repr(fields)


def test_authentication_objects_never_carry_key_material() -> None:
    secret = bytes(range(0xA0, 0xB0))
    challenge = struct.pack("<IHBB", 77, 1, 4, 1) + secret
    key_status = struct.pack("<IHBBBH", 5, 1, 2, 1, 4, 4) + secret[:4] + secret
    key_change = struct.pack("<IH", 5, 1) + secret * 2
    error = struct.pack("<IHHB", 78, 1, 0, 1) + t48("2020-05-05T05:05:05") + b"bad mac"
    body = b""
    for variation, obj in ((1, challenge), (5, key_status), (6, key_change), (7, error), (9, secret)):
        body += bytes([120, variation, 0x5B, 1]) + struct.pack("<H", len(obj)) + obj
    fields = decode(bytes([0xC0, 131, 0, 0]) + body)
    ch, ks, kc, err, mac = (o["points"][0] for o in fields["dnp3.objects"])
    assert (ch["auth"], ch["sequence"], ch["user"], ch["mac_algorithm"], ch["challenge_length"]) == (
        "challenge",
        77,
        1,
        "HMAC_SHA256_TRUNC_16",
        16,
    )
    assert (ks["key_wrap_algorithm"], ks["key_status"], ks["challenge_length"], ks["mac_length"]) == (
        "AES_256",
        "OK",
        4,
        16,
    )
    assert (kc["auth"], kc["wrapped_key_length"]) == ("session_key_change", 32)
    assert (err["error"], err["error_code"], err["time"], err["text"]) == (
        "AUTHENTICATION_FAILED",
        1,
        "2020-05-05T05:05:05.000Z",
        "bad mac",
    )
    assert mac == {"auth": "hmac", "mac_length": 16, "size": 16, "index": 0}
    assert fields["dnp3.auth.message"] == [
        "challenge",
        "session_key_status",
        "session_key_change",
        "error",
        "hmac",
    ]
    assert fields["dnp3.auth.error"] == ["AUTHENTICATION_FAILED"]
    text = repr(fields)
    assert secret.hex() not in text and secret.hex()[:8] not in text and str(list(secret[:4])) not in text


def test_aggressive_mode_objects_carry_data_in_any_request() -> None:
    body = bytes([120, 3, 0x07, 1]) + struct.pack("<IH", 9, 1)
    body += bytes([60, 1, 0x06])
    body += bytes([120, 9, 0x5B, 1]) + struct.pack("<H", 10) + bytes(10)
    fields = decode(app_request(1, body))
    assert fields["dnp3.object_gv"] == ["g120v3", "g60v1", "g120v9"]
    assert fields["dnp3.objects"][0]["points"][0] == {
        "auth": "aggressive_mode_request",
        "sequence": 9,
        "user": 1,
        "size": 6,
        "index": 0,
    }
    assert "dnp3.objects_truncated" not in fields


def test_octet_strings_and_vto() -> None:
    body = bytes([110, 5, 0x00, 2, 2]) + b"hello" + bytes([112, 3, 0x17, 1, 4]) + b"\x00\x01\x02"
    fields = decode(app_response(body))
    text, vto = (o["points"][0] for o in fields["dnp3.objects"])
    assert text == {"length": 5, "value": "68656c6c6f", "text": "hello", "index": 2}
    assert vto == {"length": 3, "value": "000102", "index": 4}


def test_unknown_object_stops_the_walk_and_keeps_what_was_decoded() -> None:
    body = (
        bytes([1, 2, 0x00, 0, 0, 0x81]) + bytes([99, 1, 0x00, 0, 0, 0x42]) + bytes([1, 2, 0x00, 0, 0, 0x81])
    )
    fields = decode(app_response(body))
    assert fields["dnp3.object_gv"] == ["g1v2", "g99v1"]
    assert fields["dnp3.objects"][0]["points"] == [{"index": 0, "value": True, "flags": 0x81}]
    assert fields["dnp3.objects_truncated"] is True
    assert "g99v1" in fields["dnp3.objects_error"] and "unknown" in fields["dnp3.objects_error"]


@pytest.mark.parametrize(
    "objects",
    [
        bytes([30, 1, 0x09]) + struct.pack("<I", 0xFFFFFFFF) + b"\x01\x02\x03",  # 2^32-1 analogs, 3 octets
        bytes([30, 1, 0x02]) + struct.pack("<II", 0, 0xFFFFFFFF) + b"\x01\x02\x03",  # 2^32 by start/stop
        bytes([1, 1, 0x09]) + struct.pack("<I", 0xFFFFFFFF) + b"\x01\x02\x03",  # packed bits
        bytes([12, 1, 0x39]) + struct.pack("<I", 0xFFFFFFFF) + b"\x01\x02\x03",  # CROBs with 4-octet indices
        bytes([70, 3, 0x5B, 0xFF]) + b"\x01\x02\x03",  # size-prefixed
        bytes([0, 252, 0x09]) + struct.pack("<I", 0xFFFFFFFF) + b"\x01\x02\x03",  # device attributes
        bytes([110, 255, 0x09]) + struct.pack("<I", 0xFFFFFFFF) + b"\x01\x02\x03",  # octet strings
    ],
)
def test_absurd_counts_return_at_once(objects: bytes) -> None:
    for fragment in (app_response(objects), app_request(2, objects), app_request(1, objects)):
        started = time.perf_counter()
        fields = decode(fragment)
        assert time.perf_counter() - started < 1.0  # a walk over 2^32 items would take hours
        if fragment[1] != 1:  # READ names points without data: the 3 octets are read as a header
            assert fields["dnp3.objects_truncated"] is True
            assert len(fields["dnp3.objects"]) == 1
            assert len(fields["dnp3.objects"][0].get("points", ())) <= 1


def test_read_index_list_with_absurd_count() -> None:
    started = time.perf_counter()
    fields = decode(app_request(1, bytes([30, 1, 0x39]) + struct.pack("<I", 0xFFFFFFFF) + b"\x01\x02\x03"))
    assert time.perf_counter() - started < 1.0
    assert fields["dnp3.objects_truncated"] is True


def test_points_are_capped_per_message_but_objects_still_walked() -> None:
    body = bytes([1, 2, 0x01]) + struct.pack("<HH", 0, 199) + b"\x81" * 200
    body += bytes([30, 2, 0x01]) + struct.pack("<HH", 0, 99) + struct.pack("<Bh", 1, 5) * 100
    body += bytes([10, 2, 0x00, 0, 0, 0x01])
    fields = decode(app_response(body))
    a, b, c = fields["dnp3.objects"]
    assert (a["count"], len(a["points"])) == (200, 200)
    assert (b["count"], len(b["points"])) == (100, 56)
    assert c["count"] == 1 and "points" not in c
    assert fields["dnp3.points_truncated"] is True
    assert "dnp3.objects_truncated" not in fields
    assert "dnp3.points_truncated" not in decode(app_response(body), max_points=301)


def test_complete_objects_before_a_lying_count_are_kept() -> None:
    # Count 2, one CROB present: the first is reported (a sloppy outstation might act on it).
    body = bytes([12, 1, 0x28]) + struct.pack("<HH", 2, 1) + struct.pack("<BBIIB", 2, 1, 100, 100, 0)
    fields = decode(app_request(5, body))
    assert fields["dnp3.control.index"] == [1] and fields["dnp3.control.op_type"] == ["PULSE_OFF"]
    assert fields["dnp3.objects_truncated"] is True


@pytest.mark.parametrize(
    ("qualifier", "reason"),
    [
        (0x0A, "reserved qualifier"),
        (0x8F, "reserved qualifier bit"),
        (0x7B, "reserved qualifier"),
        (0x0B, "free-format"),
    ],
)
def test_reserved_qualifiers_stop_the_walk(qualifier: int, reason: str) -> None:
    fields = decode(app_request(2, bytes([1, 2, qualifier, 1, 2, 3])))
    assert fields["dnp3.objects_truncated"] is True
    assert reason in fields["dnp3.objects_error"]


def test_stop_before_start_is_reported() -> None:
    fields = decode(app_response(bytes([1, 2, 0x00, 9, 3, 0x81])))
    assert (fields["dnp3.objects"][0]["start"], fields["dnp3.objects"][0]["stop"]) == (9, 3)
    assert "below start" in fields["dnp3.objects_error"]


# Sizes from IEEE 1815-2012 Annex A, written out independently of the object table.
STANDARD_SIZES = {
    (1, 2): 1, (2, 1): 1, (2, 2): 7, (2, 3): 3, (3, 2): 1, (4, 1): 1, (4, 2): 7, (4, 3): 3,
    (10, 2): 1, (11, 1): 1, (11, 2): 7, (12, 1): 11, (12, 2): 11, (13, 1): 1, (13, 2): 7,
    (20, 1): 5, (20, 2): 3, (20, 5): 4, (20, 6): 2, (21, 1): 5, (21, 2): 3, (21, 5): 11, (21, 6): 9,
    (21, 9): 4, (21, 10): 2, (22, 1): 5, (22, 2): 3, (22, 5): 11, (22, 6): 9, (23, 1): 5, (23, 5): 11,
    (30, 1): 5, (30, 2): 3, (30, 3): 4, (30, 4): 2, (30, 5): 5, (30, 6): 9,
    (31, 1): 5, (31, 3): 11, (31, 4): 9, (31, 7): 5, (31, 8): 9,
    (32, 1): 5, (32, 2): 3, (32, 3): 11, (32, 4): 9, (32, 5): 5, (32, 6): 9, (32, 7): 11, (32, 8): 15,
    (33, 1): 5, (33, 8): 15, (34, 1): 2, (34, 2): 4, (34, 3): 4,
    (40, 1): 5, (40, 2): 3, (40, 3): 5, (40, 4): 9, (41, 1): 5, (41, 2): 3, (41, 3): 5, (41, 4): 9,
    (42, 1): 5, (42, 8): 15, (43, 1): 5, (43, 2): 3, (43, 3): 11, (43, 4): 9, (43, 5): 5, (43, 6): 9,
    (43, 7): 11, (43, 8): 15, (50, 1): 6, (50, 2): 10, (50, 3): 6, (50, 4): 11, (51, 1): 6, (51, 2): 6,
    (52, 1): 2, (52, 2): 2, (101, 1): 2, (101, 2): 4, (101, 3): 8, (102, 1): 1,
    (120, 3): 6, (120, 4): 2, (121, 1): 7, (122, 1): 7, (122, 2): 13,
}  # fmt: skip


def test_object_table_sizes_follow_the_standard() -> None:
    for gv, size in STANDARD_SIZES.items():
        assert OBJECTS[gv][0] == size, gv


@pytest.mark.parametrize("gv", sorted(gv for gv, (size, dec) in OBJECTS.items() if size > 0 and dec))
def test_every_fixed_object_decodes_exactly_its_size(gv: tuple[int, int]) -> None:
    group, variation = gv
    size = OBJECTS[gv][0]
    data = bytes((i * 37 + 11) & 0xFF for i in range(size))
    sentinel = bytes([1, 2, 0x00, 9, 9, 0x81])
    forms = [
        bytes([group, variation, 0x17, 2, 3]) + data + bytes([4]) + data,  # 1-octet index prefix
        bytes([group, variation, 0x00, 3, 4]) + data + data,  # start/stop, packed one after the other
        bytes([group, variation, 0x07, 1]) + data,  # count, no index
    ]
    for body in forms:
        fields = decode(app_response(body + sentinel))
        assert "dnp3.objects_error" not in fields, fields.get("dnp3.objects_error")
        obj, last = fields["dnp3.objects"]
        assert len(obj["points"]) == obj["count"]
        assert last["points"] == [{"index": 9, "value": True, "flags": 0x81}]
        if obj["qualifier"] != 0x07:
            assert [p["index"] for p in obj["points"]] == [3, 4]


def test_size_prefix_smaller_than_a_fixed_object() -> None:
    # Found by the fuzzer: a CROB announced with a 0-octet size prefix (qualifier 0x64).
    fields = decode(app_request(4, bytes([12, 1, 0x64, 0, 100, 0, 0, 0, 0])))
    assert fields["dnp3.objects_truncated"] is True and "below its 11 octets" in fields["dnp3.objects_error"]
    fields = decode(app_response(bytes([0, 252, 0x5B, 1, 3, 0, 1, 9, 65])))  # attribute says 9 octets, has 1
    assert "device attribute value truncated" in fields["dnp3.objects_error"]


def test_less_common_objects() -> None:
    body = bytes([13, 1, 0x17, 1, 2, 0x84])  # binary output command event: commanded on, status 4
    body += bytes([43, 2, 0x17, 1, 5, 0x02]) + struct.pack("<h", -3)
    body += bytes([50, 4, 0x17, 1, 0]) + t48("2024-01-01T00:00:00") + struct.pack("<IB", 15, 5)
    body += bytes([52, 1, 0x07, 1]) + struct.pack("<H", 3) + bytes([52, 2, 0x07, 1]) + struct.pack("<H", 250)
    body += bytes([101, 1, 0x17, 1, 1]) + bytes([0x34, 0x12])
    body += bytes([122, 2, 0x17, 1, 0, 1]) + struct.pack("<HI", 7, 42) + t48("2024-01-01T00:00:01")
    body += bytes([0, 217, 0x00, 0, 0, 4, 4]) + struct.pack("<f", 0.5)
    body += bytes([0, 198, 0x00, 0, 0, 7, 6]) + t48("2023-05-06T07:08:09")
    fields = decode(app_response(body))
    event, ao_event, indexed_time, coarse, fine, bcd, stat, accuracy, built = (
        o["points"] for o in fields["dnp3.objects"]
    )
    assert event == [{"status": 4, "status_name": "NOT_SUPPORTED", "value": True, "index": 2}]
    assert ao_event[0]["value"] == -3 and ao_event[0]["status_name"] == "NO_SELECT"
    assert indexed_time[0] == {"time": "2024-01-01T00:00:00.000Z", "interval": 15, "units": 5, "index": 0}
    assert coarse == [{"value": 3, "delay_ms": 3000, "index": 0}]
    assert fine == [{"value": 250, "delay_ms": 250, "index": 0}]
    assert bcd[0]["value"] == "1234"
    assert stat[0] == {
        "value": 42,
        "flags": 1,
        "association_id": 7,
        "time": "2024-01-01T00:00:01.000Z",
        "index": 0,
    }
    assert accuracy[0]["value"] == 0.5 and built[0]["value"] == "2023-05-06T07:08:09.000Z"


def test_file_descriptor_status_and_specification() -> None:
    name = b"log.txt"
    descriptor = struct.pack("<HHHIIHHH", 20, len(name), 1, 999, 0, 0, 0o755, 3) + name
    tstatus = struct.pack("<IIB", 9, 4, 16) + b"closed"
    spec = b"/etc/*"
    body = b""
    for variation, obj in ((7, descriptor), (6, tstatus), (8, spec)):
        body += bytes([70, variation, 0x5B, 1]) + struct.pack("<H", len(obj)) + obj
    fields = decode(app_response(body))
    desc, status, specification = (o["points"][0] for o in fields["dnp3.objects"])
    assert (desc["file_name"], desc["file_type"], desc["file_size"], desc["permissions"]) == (
        "log.txt",
        "SIMPLE_FILE",
        999,
        "755",
    )
    assert (status["block"], status["last"], status["status_name"], status["text"]) == (
        4,
        False,
        "NOT_OPENED",
        "closed",
    )
    assert specification == {"file_name": "/etc/*", "index": 0}
    assert fields["dnp3.file.name"] == ["log.txt", "/etc/*"]


def test_user_management_authentication_objects() -> None:
    status_change = struct.pack("<BBIHHHHH", 4, 1, 33, 2, 30, 3, 0, 0) + b"bob"
    update_request = struct.pack("<BHH", 4, 5, 4) + b"carol" + bytes(4)
    certificate = bytes([68, 1]) + bytes(40)
    body = bytes([120, 4, 0x07, 1]) + struct.pack("<H", 7)
    for variation, obj in ((10, status_change), (11, update_request), (8, certificate)):
        body += bytes([120, variation, 0x5B, 1]) + struct.pack("<H", len(obj)) + obj
    fields = decode(app_request(32, body))
    status_req, change, request, cert = (o["points"][0] for o in fields["dnp3.objects"])
    assert status_req == {"auth": "session_key_status_request", "user": 7, "size": 2, "index": 0}
    assert (change["operation"], change["user_name"], change["user_role"], change["key_change_method"]) == (
        "ADD",
        "bob",
        2,
        "AES_256_SHA256_HMAC",
    )
    assert (request["user_name"], request["key_change_method"]) == ("carol", "AES_256_SHA256_HMAC")
    assert (cert["key_change_method"], cert["certificate_length"]) == ("RSA_2048_DSA_SHA256_HMAC_SHA256", 40)
