"""DNP3 over a TCP stream: frames split anywhere, CRC errors counted and never trusted,
resynchronisation after garbage or a gap, and UDP datagrams."""

from __future__ import annotations

import struct

from dnp3_frames import app_request, app_response, class_poll, crob, frames, link_control, link_frame
from otsentry.protocols.dnp3 import SPEC, Dnp3DatagramAnalyzer, Dnp3StreamAnalyzer


def _messages(analyzer: Dnp3StreamAnalyzer, chunks: list[bytes], direction: int = 0) -> list[dict]:
    out: list = []
    for number, chunk in enumerate(chunks, 1):
        analyzer.on_data(direction, chunk, float(number), number, out)
    return [fields for _d, _ts, _frame, fields in out]


def _actions(messages: list[dict]) -> list[str]:
    return [m["event.action"] for m in messages]


POLL = b"".join(frames(app_request(1, class_poll(), seq=1), source=1, destination=10, master=True))
OPERATE = b"".join(frames(app_request(5, crob(4, 0x81), seq=2), source=1, destination=10, master=True))
BIG = b"".join(
    frames(
        app_response(bytes([30, 2, 0x01]) + struct.pack("<HH", 0, 119) + b"\x01\x05\x00" * 120),
        source=10,
        destination=1,
        master=False,
    )
)


def test_spec() -> None:
    assert SPEC.name == "dnp3"
    assert SPEC.tcp_ports == frozenset({20000}) and SPEC.udp_ports == frozenset({20000})
    assert SPEC.probe is not None and SPEC.probe(POLL) and not SPEC.probe(POLL[1:])
    assert SPEC.stream_analyzer is Dnp3StreamAnalyzer and SPEC.datagram_analyzer is Dnp3DatagramAnalyzer


def test_event_fields() -> None:
    (fields,) = _messages(Dnp3StreamAnalyzer(), [OPERATE])
    assert fields["network.protocol"] == "dnp3" and fields["event.dataset"] == "otsentry.dnp3"
    assert fields["event.action"] == "direct_operate"
    assert (fields["dnp3.link.source"], fields["dnp3.link.destination"]) == (1, 10)
    assert fields["dnp3.link.function_code"] == 4 and fields["dnp3.link.prm"] and fields["dnp3.link.dir"]
    assert fields["dnp3.application.function_code"] == 5 and fields["dnp3.application.sequence"] == 2
    assert fields["dnp3.object_gv"] == ["g12v1"]
    assert fields["dnp3.control.index"] == [4] and fields["dnp3.control.tcc"] == ["TRIP"]


def test_split_at_every_octet_boundary() -> None:
    stream = POLL + BIG + OPERATE
    expected = ["read", "response", "direct_operate"]
    for cut in range(1, len(stream)):
        assert _actions(_messages(Dnp3StreamAnalyzer(), [stream[:cut], stream[cut:]])) == expected, cut
    octet_by_octet = _messages(Dnp3StreamAnalyzer(), [bytes([b]) for b in stream])
    assert _actions(octet_by_octet) == expected
    assert octet_by_octet[1]["dnp3.objects"][0]["points"][119] == {"index": 119, "value": 5, "flags": 1}


def test_block_crc_error_is_counted_and_not_trusted() -> None:
    bad = bytearray(OPERATE)
    bad[12] ^= 0x01  # the function code octet, inside the first data block
    analyzer = Dnp3StreamAnalyzer()
    messages = _messages(analyzer, [bytes(bad), POLL])
    assert _actions(messages) == ["decode_error", "read"]
    error = messages[0]
    assert error["event.dataset"] == "otsentry.decode_error" and "block CRC" in error["error.message"]
    assert error["dnp3.crc_errors"] == 1 and error["dnp3.link.source"] == 1
    assert "dnp3.application.function_code" not in error and "dnp3.control.index" not in error
    assert analyzer.crc_errors == 1


def test_bad_crc_in_a_middle_segment_loses_the_fragment() -> None:
    wire = frames(
        app_response(bytes([1, 2, 0x01]) + struct.pack("<HH", 0, 499) + b"\x81" * 500),
        source=10,
        destination=1,
        master=False,
    )
    bad = bytearray(wire[1])
    bad[-1] ^= 0xFF  # the last block's CRC
    analyzer = Dnp3StreamAnalyzer()
    messages = _messages(analyzer, [wire[0], bytes(bad), wire[2]], direction=1)
    reasons = [m["error.message"] for m in messages]
    assert len(reasons) == 2 and "block CRC" in reasons[0] and "out of sequence" in reasons[1]
    assert analyzer.crc_errors == 1


def test_header_crc_error_resynchronises_on_the_next_frame() -> None:
    bad = bytearray(POLL)
    bad[8] ^= 0x55  # header CRC
    analyzer = Dnp3StreamAnalyzer()
    messages = _messages(analyzer, [bytes(bad) + OPERATE])
    assert _actions(messages) == ["decode_error", "direct_operate"]
    assert "header CRC" in messages[0]["error.message"]
    assert analyzer.crc_errors == 1


def test_garbage_midstream_then_valid_frames() -> None:
    garbage = b"\x05\x64\x05\x64 not dnp3 \x05" * 20 + b"\x05"
    analyzer = Dnp3StreamAnalyzer()
    messages = _messages(analyzer, [POLL, garbage, OPERATE[:7], OPERATE[7:] + POLL])
    assert _actions(messages) == ["read", "decode_error", "direct_operate", "read"]
    assert "resynchronising" in messages[1]["error.message"]


def test_midstream_pickup_is_silent() -> None:
    analyzer = Dnp3StreamAnalyzer()
    analyzer.on_gap(0)
    stream = BIG[100:] + POLL + OPERATE  # starts in the middle of a frame
    assert _actions(_messages(analyzer, [stream])) == ["read", "direct_operate"]


def test_gap_drops_the_partial_frame() -> None:
    analyzer = Dnp3StreamAnalyzer()
    out: list = []
    analyzer.on_data(0, POLL[:15], 0.0, 1, out)
    analyzer.on_gap(0)
    analyzer.on_data(0, OPERATE, 0.0, 2, out)
    assert [(m[2], m[3]["event.action"]) for m in out] == [(2, "direct_operate")]


def test_message_carries_the_completing_frame_number_and_time() -> None:
    analyzer = Dnp3StreamAnalyzer()
    out: list = []
    analyzer.on_data(1, BIG[:200], 10.0, 7, out)
    analyzer.on_data(1, BIG[200:], 11.5, 8, out)
    ((direction, ts, frame, fields),) = out
    assert (direction, ts, frame, fields["event.action"]) == (1, 11.5, 8, "response")


def test_lying_length_cannot_grow_the_buffer() -> None:
    # LEN is one octet: the largest frame is 292 octets, so at most that much ever waits.
    analyzer = Dnp3StreamAnalyzer()
    header = link_frame(0x44, 1, 10, bytes(250))[:10]
    out: list = []
    analyzer.on_data(0, header + bytes(200), 0.0, 1, out)
    assert len(analyzer._pending[0]) == 210
    analyzer.on_data(0, b"\x00" * 100_000, 0.0, 2, out)
    assert len(analyzer._pending[0]) < 292


def test_udp_datagrams() -> None:
    analyzer = Dnp3DatagramAnalyzer()
    out: list = []
    analyzer.on_datagram(0, POLL + OPERATE, 0.0, 1, out)
    analyzer.on_datagram(0, POLL[:-3], 0.0, 2, out)  # truncated datagram
    analyzer.on_datagram(0, b"\x05\x64\x05", 0.0, 3, out)
    actions = [m[3]["event.action"] for m in out]
    assert actions == ["read", "direct_operate", "decode_error", "decode_error"]
    assert "not a complete frame" in out[2][3]["error.message"]


def test_unknown_link_function_and_data_on_a_link_only_function() -> None:
    control = link_control(dir_bit=True, prm=True, function=5)
    messages = _messages(Dnp3StreamAnalyzer(), [link_frame(control, 10, 1, b"\xc0\xc1\x01")])
    assert messages[0]["event.action"] == "link_function_5"
    assert messages[0]["dnp3.link.unexpected_data_length"] == 3


def test_user_data_frame_without_data() -> None:
    messages = _messages(Dnp3StreamAnalyzer(), [link_frame(0xC4, 10, 1)])
    assert messages[0]["event.action"] == "decode_error"
    assert "without user data" in messages[0]["error.message"]
