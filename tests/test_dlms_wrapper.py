"""IEC 62056-47 wrapper framing: reassembly, several frames per segment, resynchronisation,
bounded buffers, the strict probe, UDP datagrams and configurable ports."""

from __future__ import annotations

import itertools

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dlms_helpers import run, wrap
from otsentry.protocols.dlms import SPEC, DlmsAnalyzer, probe, spec_with_ports
from otsentry.protocols.dlms.wrapper import HEADER_SIZE, MAX_APDU, WrapperFramer

# Real frames from Output-EPRI.pcap (Gurux client <-> server, TCP 4059).
AARQ = bytes.fromhex("000100100001001f601da109060760857405080101be10040e01000000065f1f0400001e5dffff")
GET_CLOCK = bytes.fromhex("000100100001000dc001c100080000010000ff0200")
GET_REGISTER = bytes.fromhex("000100100001000dc001c100030100000700ff0300")
RLRQ = bytes.fromhex("00010010000100056203800100")
CLIENT_STREAM = AARQ + GET_CLOCK + GET_REGISTER + RLRQ
ACTIONS = ["association_request", "get_request", "get_request", "release_request"]


def actions(events: list[dict]) -> list[str]:
    return [e["event.action"] for e in events]


def test_several_frames_in_one_segment() -> None:
    events = run([(0, CLIENT_STREAM)])
    assert actions(events) == ACTIONS
    assert [e["dlms.wrapper.length"] for e in events] == [31, 13, 13, 5]
    assert events[1]["dlms.wrapper.source_port"] == 0x10 and events[1]["dlms.wrapper.destination_port"] == 1
    assert events[1]["dlms.wrapper.version"] == 1


def test_every_two_way_split_reassembles() -> None:
    for cut in range(1, len(CLIENT_STREAM)):
        events = run([(0, CLIENT_STREAM[:cut]), (0, CLIENT_STREAM[cut:])])
        assert actions(events) == ACTIONS, cut


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, len(CLIENT_STREAM)), max_size=20))
def test_arbitrary_segmentation_reassembles(cuts: list[int]) -> None:
    points = sorted(set(cuts) | {0, len(CLIENT_STREAM)})
    chunks = [(0, CLIENT_STREAM[a:b]) for a, b in itertools.pairwise(points)]
    assert actions(run(chunks)) == ACTIONS


def test_one_byte_at_a_time() -> None:
    assert actions(run([(0, bytes([b])) for b in CLIENT_STREAM])) == ACTIONS


def test_directions_are_framed_apart() -> None:
    response = bytes.fromhex("0001000100100012c401c100090c07e8030505113b0400feb600")
    events = run([(0, GET_CLOCK[:5]), (1, response[:9]), (0, GET_CLOCK[5:]), (1, response[9:])])
    assert actions(events) == ["get_request", "get_response"]
    assert events[1]["dlms.matched"] is True and events[1]["dlms.date_time"].startswith("2024-03-05T17:59:04")


def test_mid_stream_pickup_hunts_for_the_next_header() -> None:
    # A flow joined in the middle of the AARQ: its tail is skipped silently, the rest decodes.
    events = run([(0, AARQ[17:] + GET_CLOCK + GET_REGISTER)])
    assert actions(events) == ["get_request", "get_request"]


def test_gap_drops_the_partial_frame_and_resynchronises() -> None:
    analyzer = DlmsAnalyzer()
    out: list = []
    analyzer.on_data(0, GET_CLOCK[:10], 0.0, 1, out)
    analyzer.on_gap(0)
    analyzer.on_data(0, GET_CLOCK[14:] + GET_REGISTER, 0.0, 2, out)
    assert [f["event.action"] for *_, f in out] == ["get_request"]
    assert out[0][3]["dlms.obis"] == "1-0:0.7.0.255"


def test_broken_header_in_sync_is_reported_once_then_resynchronised() -> None:
    broken = b"\x00\x02" + GET_CLOCK[2:]
    events = run([(0, GET_CLOCK + broken + GET_REGISTER)])
    assert actions(events) == ["get_request", "decode_error", "get_request"]
    assert "wrapper version" in events[1]["error.message"]


def test_resync_requires_the_ports_seen_before() -> None:
    other_ports = bytes.fromhex("000100200001000dc001c100080000010000ff0200")
    events = run([(0, GET_CLOCK + b"\x00\x02junk" + other_ports + GET_REGISTER)])
    assert actions(events) == ["get_request", "decode_error", "get_request"]
    assert events[2]["dlms.obis"] == "1-0:0.7.0.255"


def test_lying_length_keeps_the_buffer_bounded() -> None:
    framer = WrapperFramer()
    framer.feed(bytes.fromhex("000100100001ffff") + b"\xc0\x01")  # promises 65535 bytes
    results = []
    for _ in range(200):
        results += framer.feed(b"\x55" * 1000)
        assert len(framer.buf) <= HEADER_SIZE + MAX_APDU
    frames = [r for r in results if isinstance(r, tuple)]
    assert len(frames) == 1 and len(frames[0][1]) == MAX_APDU
    assert len(framer.buf) < HEADER_SIZE + 4  # hunting keeps only a possible header prefix


def test_max_size_frame_is_reassembled() -> None:
    apdu = bytes.fromhex("c401c100 09 82fff7") + b"\xab" * 0xFFF7
    assert len(apdu) == MAX_APDU
    frame = wrap(apdu, 1, 0x10)
    events = run([(1, frame[i : i + 1460]) for i in range(0, len(frame), 1460)])
    assert actions(events) == ["get_response"]
    assert events[0]["dlms.value_truncated"] is True and len(events[0]["dlms.value"]) == 512


def test_empty_apdu_is_a_decode_error() -> None:
    events = run([(0, GET_CLOCK + wrap(b"") + GET_REGISTER)])
    assert actions(events) == ["get_request", "decode_error", "get_request"]
    assert events[1]["error.message"] == "empty APDU"


# -- probe ------------------------------------------------------------------------------------


def test_probe_accepts_whole_frames_only() -> None:
    assert probe(AARQ) and probe(GET_CLOCK) and probe(GET_CLOCK + GET_REGISTER)
    assert not probe(AARQ[:-1])  # length does not match the segment
    assert not probe(AARQ + b"\x00")
    assert not probe(GET_CLOCK + GET_REGISTER[:5])


def test_probe_rejects_look_alikes() -> None:
    modbus_tid_1 = bytes.fromhex("000100000006010300000001")  # Modbus/TCP transaction id 1
    assert not probe(modbus_tid_1)
    assert not probe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not probe(bytes.fromhex("0001001000010003") + b"\x42\x00\x00")  # unknown APDU tag
    assert not probe(bytes.fromhex("0001001000010003") + b"\xc0\x09\x00")  # get-request choice 9
    assert not probe(bytes.fromhex("0001001000010004") + b"\x60\x05\x00\x00")  # BER length lies
    assert not probe(bytes.fromhex("0002001000010003") + b"\xc0\x01\xc1")  # version 2


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=64))
def test_probe_on_random_bytes_needs_a_consistent_header(data: bytes) -> None:
    if probe(data):
        assert data[:2] == b"\x00\x01"
        assert int.from_bytes(data[6:8], "big") <= len(data) - 8


# -- UDP and ports -----------------------------------------------------------------------------


def test_udp_datagrams() -> None:
    analyzer = DlmsAnalyzer()
    out: list = []
    analyzer.on_datagram(0, GET_CLOCK + GET_REGISTER, 0.0, 1, out)
    analyzer.on_datagram(0, GET_CLOCK[:-1], 0.0, 2, out)
    analyzer.on_datagram(0, b"\x00\x01\x00", 0.0, 3, out)
    assert [f["event.action"] for *_, f in out] == ["get_request"] * 2 + ["decode_error"] * 2
    assert "exceeds" in out[2][3]["error.message"]


def test_spec_and_configured_ports() -> None:
    assert SPEC.name == "dlms" and SPEC.tcp_ports == {4059} and SPEC.udp_ports == {4059}
    assert SPEC.probe is probe and SPEC.stream_analyzer is DlmsAnalyzer
    extended = spec_with_ports(tcp_ports=[4063, 4064], udp_ports=[4063])
    assert extended.tcp_ports == {4059, 4063, 4064} and extended.udp_ports == {4059, 4063}
    assert SPEC.tcp_ports == {4059}  # the default spec is unchanged


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_before_valid_frames_is_skipped(garbage: bytes) -> None:
    assume(b"\x00\x01" not in garbage and not garbage.endswith(b"\x00"))
    analyzer = DlmsAnalyzer()
    analyzer.on_gap(0)
    events = run([(0, garbage + GET_CLOCK + GET_REGISTER)], analyzer)
    assert actions(events) == ["get_request", "get_request"]
