"""IEC 60870-5-104 stream framing (several APDUs per call, splits, garbage, gaps, bounded buffers)
and the strict probe."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from iec104_helpers import (
    IEC104_CAPTURES,
    SHARED_PCAPS,
    STARTDT_ACT,
    TESTFR_CON,
    asdu,
    decode_stream,
    i_frame,
    ioa,
    s_frame,
    tcp_payload,
    tcp_segments,
)
from otsentry.protocols.iec104 import SPEC, Iec104Analyzer, decode_apdu, probe

INTERROGATION = i_frame(asdu(100, ioa(0) + b"\x14"), send=1, recv=2)
SINGLE_COMMAND = i_frame(asdu(45, ioa(5) + b"\x81"))
MEASUREMENTS = i_frame(
    asdu(
        13,
        ioa(1) + struct.pack("<f", 1.0) + b"\x00" + ioa(2) + struct.pack("<f", 2.0) + b"\x00",
        count=2,
        cot=3,
    )
)


def actions(messages: list[dict]) -> list[str]:
    return [m["event.action"] for m in messages]


def test_spec() -> None:
    assert SPEC.name == "iec104"
    assert SPEC.tcp_ports == frozenset({2404})
    assert SPEC.probe is probe
    assert isinstance(SPEC.stream_analyzer(), Iec104Analyzer)


def test_several_apdus_in_one_call() -> None:
    analyzer = Iec104Analyzer()
    out: list = []
    analyzer.on_data(1, STARTDT_ACT + INTERROGATION + s_frame(3) + MEASUREMENTS, 5.0, 42, out)
    assert [(d, ts, frame) for d, ts, frame, _ in out] == [(1, 5.0, 42)] * 4
    assert actions([m[3] for m in out]) == ["startdt_act", "interrogation", "s_frame", "measured_value_float"]


def test_apdu_split_byte_by_byte() -> None:
    analyzer = Iec104Analyzer()
    out: list = []
    stream = SINGLE_COMMAND + TESTFR_CON
    for frame, octet in enumerate(stream, 1):
        analyzer.on_data(0, bytes([octet]), float(frame), frame, out)
    assert [(m[2], m[3]["event.action"]) for m in out] == [
        (len(SINGLE_COMMAND), "single_command"),
        (len(stream), "testfr_con"),
    ]
    assert out[0][3] == decode_apdu(SINGLE_COMMAND)


def test_split_between_length_and_control() -> None:
    messages = decode_stream(
        MEASUREMENTS[:2], MEASUREMENTS[2:7], MEASUREMENTS[7:] + STARTDT_ACT[:1], STARTDT_ACT[1:]
    )
    assert actions(messages) == ["measured_value_float", "startdt_act"]
    assert messages[0]["iec104.value"] == [1.0, 2.0]


def test_directions_are_independent() -> None:
    analyzer = Iec104Analyzer()
    out: list = []
    analyzer.on_data(0, INTERROGATION[:5], 1.0, 1, out)
    analyzer.on_data(1, STARTDT_ACT, 2.0, 2, out)
    analyzer.on_data(0, INTERROGATION[5:], 3.0, 3, out)
    assert [(m[0], m[2], m[3]["event.action"]) for m in out] == [
        (1, 2, "startdt_act"),
        (0, 3, "interrogation"),
    ]


def test_garbage_gives_one_decode_error_then_resync() -> None:
    messages = decode_stream(
        b"\x00\x01\x02" + b"\x68\x02\x99", b"junk" * 10, b"\x68" + SINGLE_COMMAND + STARTDT_ACT
    )
    assert actions(messages) == ["decode_error", "single_command", "startdt_act"]
    error = messages[0]
    assert error["event.dataset"] == "otsentry.decode_error"
    assert error["network.protocol"] == "iec104"
    assert "expected APDU start 0x68, got 0x00" in error["error.message"]
    assert messages[1] == decode_apdu(SINGLE_COMMAND)


def test_invalid_length_in_sync() -> None:
    for bad_length in (0, 3, 254, 255):
        messages = decode_stream(STARTDT_ACT + bytes([0x68, bad_length, 0, 0]) + INTERROGATION)
        assert actions(messages) == ["startdt_act", "decode_error", "interrogation"], bad_length
        assert messages[1]["iec104.length"] == bad_length


def test_malformed_apdu_in_sync_keeps_framing() -> None:
    truncated = i_frame(asdu(45, ioa(5), count=1))  # object octet missing, length octet honest
    messages = decode_stream(truncated + SINGLE_COMMAND)
    assert actions(messages) == ["decode_error", "single_command"]
    assert messages[0]["iec104.type_id"] == 45
    assert messages[0]["iec104.apci"] == "I"


def test_resync_needs_a_plausible_chained_start() -> None:
    # 0x68 bytes inside the garbage: bad length, bad U bits, S with junk, I too short, no chaining
    garbage = (
        b"\x01\x68\x02\x68\x04\x17\x00\x00\x00\x68\x04\x01\x05\x00\x00\x68\x06\x00\x00\x00\x00\x00\x00"
        + b"\x68\x04\x43\x00\x00\x00\xff"
    )
    messages = decode_stream(garbage + STARTDT_ACT + INTERROGATION)
    assert actions(messages) == ["decode_error", "startdt_act", "interrogation"]


def test_gap_resyncs_silently() -> None:
    analyzer = Iec104Analyzer()
    out: list = []
    analyzer.on_data(0, MEASUREMENTS[:10], 1.0, 1, out)
    analyzer.on_gap(0)
    # after the gap the stream resumes in the middle of an APDU
    analyzer.on_data(0, INTERROGATION[7:] + SINGLE_COMMAND + s_frame(9), 2.0, 2, out)
    assert actions([m[3] for m in out]) == ["single_command", "s_frame"]


def test_mid_apdu_start_without_gap_is_reported_once() -> None:
    messages = decode_stream(INTERROGATION[3:], INTERROGATION[3:] + SINGLE_COMMAND)
    assert actions(messages) == ["decode_error", "single_command"]


def test_buffer_stays_bounded() -> None:
    analyzer = Iec104Analyzer()
    out: list = []
    analyzer.on_data(0, b"\x68\xfd" + b"\x00" * 100, 1.0, 1, out)  # a 253-octet APDU, incomplete
    assert len(analyzer._buffers[0]) == 102
    analyzer.on_data(0, b"\x00" * 100_000, 1.0, 2, out)
    assert len(analyzer._buffers[0]) == 0
    for frame in range(3, 200):  # a lying APDU followed by endless noise never grows the buffer
        analyzer.on_data(0, b"\x68\x04\x01" + b"\x68" * 300, 1.0, frame, out)
        assert len(analyzer._buffers[0]) <= 257
    assert all(m[3]["event.dataset"] in {"otsentry.iec104", "otsentry.decode_error"} for m in out)


# -- probe ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        STARTDT_ACT,
        TESTFR_CON,
        s_frame(10),
        INTERROGATION,
        STARTDT_ACT + INTERROGATION + s_frame(1),
        MEASUREMENTS[:8],  # first APDU split by the segment
        STARTDT_ACT + INTERROGATION[:1],  # second APDU split
        STARTDT_ACT + INTERROGATION[:3],
        s_frame(1) * 9 + b"\xff",  # only the first 8 chained APDUs are checked
    ],
)
def test_probe_accepts(payload: bytes) -> None:
    assert probe(payload)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x68\x04\x07\x00",  # too short to judge
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"hello world, this is not IEC 104",
        bytes.fromhex("160301020001000100"),  # TLS client hello
        bytes([0x68, 4, 0x17, 0, 0, 0]),  # U with two function bits
        bytes([0x68, 4, 0x07, 1, 0, 0]),  # U with non-zero octet 2
        bytes([0x68, 5, 0x07, 0, 0, 0, 0]),  # U with length 5
        bytes([0x68, 4, 0x01, 0x01, 0x02, 0]),  # S with non-zero octet 2
        bytes([0x68, 4, 0x05, 0x00, 0x02, 0]),  # S with control bits 2-7 set
        bytes([0x68, 6, 0, 0, 0, 0, 0x2D, 0x01]),  # I shorter than an ASDU header
        bytes([0x68, 14, 0, 0, 1, 0]) + asdu(45, ioa(1) + b"\x01"),  # I with N(R) bit 0 set
        i_frame(asdu(0, ioa(1) + b"\x01")),  # type id 0
        i_frame(asdu(45, ioa(1) + b"\x01", cot=0)),  # cause 0
        bytes([0x68, 2, 0, 0, 0, 0]),
        bytes([0x68, 254]) + bytes(254),
        STARTDT_ACT + b"\x00\x00\x00\x00\x00\x00",  # lengths do not chain
        STARTDT_ACT + b"\x68\x02",  # next header impossible
    ],
)
def test_probe_rejects(payload: bytes) -> None:
    assert not probe(payload)


NON_IEC104 = [
    "zeek/background",
    "iti-ics/other",
    "icsnpp-modbus",
    "icsnpp-c1222",
    "wireshark-dlms",
    "zeek/dnp3",
]


@pytest.mark.skipif(not SHARED_PCAPS.is_dir(), reason=f"public captures not found at {SHARED_PCAPS}")
def test_probe_is_silent_on_other_protocols() -> None:
    """No segment of the non-IEC-104 shared captures (DNS, HTTP, S7, ENIP, MMS, Modbus, DNP3,
    C12.22, DLMS) looks like IEC 104 to the probe."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.utils import PcapReader

    checked = 0
    hits = []
    for folder in NON_IEC104:
        for path in sorted((SHARED_PCAPS / folder).rglob("*.*cap*")):
            with PcapReader(str(path)) as reader:
                for frame, packet in enumerate(reader, 1):
                    if TCP in packet and IP in packet:
                        payload = tcp_payload(packet[IP], packet[TCP])
                    elif UDP in packet:
                        payload = bytes(packet[UDP].payload)[: max(packet[UDP].len - 8, 0)]
                    else:
                        continue
                    if payload:
                        checked += 1
                        if probe(payload):
                            hits.append((path.name, frame))
    assert checked > 1000
    assert hits == []


@pytest.mark.skipif(not SHARED_PCAPS.is_dir(), reason=f"public captures not found at {SHARED_PCAPS}")
def test_probe_accepts_first_segments_of_iec104_captures() -> None:
    """The first data segment of each direction of all 10 connections in the 4 captures."""
    first: dict = {}
    for path in IEC104_CAPTURES:
        for _frame, key, direction, _seq, payload in tcp_segments(path):
            first.setdefault((path.name, key, direction), payload)
    assert len(first) == 20
    assert all(probe(payload) for payload in first.values())
