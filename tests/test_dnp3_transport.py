"""DNP3 transport reassembly: sequence wrap, short final segments, multiplexed outstations,
out-of-sequence discards, FIR restarts and the size cap — through the stream analyzer."""

from __future__ import annotations

import struct

from dnp3_frames import app_response, frames, link_control, link_frame
from otsentry.protocols.dnp3 import Dnp3DatagramAnalyzer, Dnp3StreamAnalyzer
from otsentry.protocols.dnp3.transport import TransportReassembler


def _g30v2_response(points: int, base: int = 0) -> bytes:
    """A response with ``points`` 16-bit analog inputs valued base, base+1, …"""
    body = bytes([30, 2, 0x01]) + struct.pack("<HH", 0, points - 1)
    body += b"".join(struct.pack("<Bh", 1, base + i) for i in range(points))
    return app_response(body)


def _feed(analyzer: Dnp3StreamAnalyzer, direction: int, chunks: list[bytes]) -> list[dict]:
    out: list = []
    for number, chunk in enumerate(chunks, 1):
        analyzer.on_data(direction, chunk, float(number), number, out)
    return [fields for _d, _ts, _frame, fields in out]


def _app(messages: list[dict]) -> list[dict]:
    return [m for m in messages if "dnp3.application.function_code" in m]


def _errors(messages: list[dict]) -> list[str]:
    return [m["error.message"] for m in messages if m["event.dataset"] == "otsentry.decode_error"]


def test_sequence_wrap_63_to_0_is_one_message() -> None:
    fragment = _g30v2_response(150)  # 454 octets: 2 segments
    wire = frames(fragment, source=10, destination=1, master=False, first_seq=63)
    assert [f[10] & 0x3F for f in wire] == [63, 0]  # transport octet of each frame
    messages = _feed(Dnp3StreamAnalyzer(), 1, wire)
    (msg,) = _app(messages)
    assert not _errors(messages)
    assert msg["dnp3.transport.segments"] == 2
    (obj,) = msg["dnp3.objects"]
    assert obj["count"] == 150
    assert [p["value"] for p in obj["points"]] == list(range(150))


def test_sequence_wraps_across_many_segments() -> None:
    fragment = _g30v2_response(600)  # 1804 octets: 8 segments, seq 60..3
    wire = frames(fragment, source=10, destination=1, master=False, first_seq=60)
    (msg,) = _app(_feed(Dnp3StreamAnalyzer(), 1, wire))
    assert msg["dnp3.transport.segments"] == len(wire) == 8
    assert msg["dnp3.objects"][0]["count"] == 600
    assert msg.get("dnp3.points_truncated") is True  # 600 > 256 points decoded per message


def test_short_final_segment_completes_the_message() -> None:
    # Suricata 7 stops parsing the flow on a final continuation segment with <= 3 fragment octets
    # (LEN_TOO_SMALL); any length is legal.
    for tail in (1, 2, 3):
        points = 238 + tail  # g1v2, one octet each: fragment = 11 + points = 249 + tail octets
        fragment = app_response(bytes([1, 2, 0x01]) + struct.pack("<HH", 0, points - 1) + b"\x81" * points)
        wire = frames(fragment, source=10, destination=1, master=False, max_data=249)
        assert [len(f) for f in wire] == [292, 10 + 1 + tail + 2]  # header, TH + tail, block CRC
        (msg,) = _app(_feed(Dnp3StreamAnalyzer(), 1, wire))
        (obj,) = msg["dnp3.objects"]
        assert obj["count"] == points
        assert not msg.get("dnp3.objects_truncated")
        assert obj["points"][-1] == {"index": points - 1, "value": True, "flags": 0x81}


def test_short_final_segment_of_one_octet_after_many_messages() -> None:
    analyzer = Dnp3StreamAnalyzer()
    chunks = []
    for i in range(5):
        fragment = app_response(b"", seq=i)  # 4-octet fragment sent as 3 + 1 octets
        chunks += frames(fragment, source=10, destination=1, master=False, first_seq=i * 2, max_data=3)
    messages = _feed(analyzer, 1, chunks)
    assert [m["dnp3.application.sequence"] for m in _app(messages)] == [0, 1, 2, 3, 4]
    assert not _errors(messages)


def test_multiplexed_outstations_on_one_stream() -> None:
    # A terminal server carries outstations 10 and 11 on one TCP connection; their segments interleave.
    a = frames(_g30v2_response(120, base=1000), source=10, destination=1, master=False, first_seq=5)
    b = frames(_g30v2_response(120, base=2000), source=11, destination=1, master=False, first_seq=40)
    assert len(a) == len(b) == 2
    messages = _feed(Dnp3StreamAnalyzer(), 1, [a[0], b[0], a[1], b[1]])
    assert not _errors(messages)
    got = {m["dnp3.link.source"]: m["dnp3.objects"][0]["points"][0]["value"] for m in _app(messages)}
    assert got == {10: 1000, 11: 2000}


def test_out_of_sequence_segment_discards_the_partial_fragment() -> None:
    wire = frames(_g30v2_response(200), source=10, destination=1, master=False, first_seq=0)
    assert len(wire) == 3
    analyzer = Dnp3StreamAnalyzer()
    messages = _feed(analyzer, 1, [wire[0], wire[2]])  # middle segment lost
    assert not _app(messages)
    (error,) = _errors(messages)
    assert "out of sequence" in error and "discarded" in error
    assert analyzer.transport.discarded == 1
    # The next message goes through.
    messages = _feed(
        analyzer, 1, frames(app_response(b""), source=10, destination=1, master=False, first_seq=9)
    )
    assert len(_app(messages)) == 1


def test_new_first_segment_restarts_the_fragment() -> None:
    first = frames(_g30v2_response(200), source=10, destination=1, master=False)
    second = frames(app_response(b"", seq=3), source=10, destination=1, master=False, first_seq=17)
    messages = _feed(Dnp3StreamAnalyzer(), 1, [first[0], *second])
    (msg,) = _app(messages)
    assert msg["dnp3.application.sequence"] == 3
    (error,) = _errors(messages)
    assert "new first segment" in error


def test_segment_without_fir_is_reported_unless_after_a_gap() -> None:
    wire = frames(_g30v2_response(200), source=10, destination=1, master=False)
    analyzer = Dnp3StreamAnalyzer()
    assert len(_errors(_feed(analyzer, 1, [wire[1]]))) == 1
    analyzer = Dnp3StreamAnalyzer()
    analyzer.on_gap(1)  # mid-stream pickup: continuation segments are expected, drop silently
    messages = _feed(analyzer, 1, [wire[1], wire[2], *wire])
    assert not _errors(messages)
    assert len(_app(messages)) == 1


def test_repeated_segment_is_ignored() -> None:
    wire = frames(_g30v2_response(200), source=10, destination=1, master=False, confirmed=True)
    messages = _feed(Dnp3StreamAnalyzer(), 1, [wire[0], wire[1], wire[1], wire[2]])  # link retry
    assert not _errors(messages)
    assert _app(messages)[0]["dnp3.objects"][0]["count"] == 200


def test_fragment_size_is_capped() -> None:
    reassembler = TransportReassembler(max_fragment=1000)
    key = (1, 10, 1)
    assert reassembler.add(key, bytes([0x40]) + bytes(249)) == (None, None, 0)
    results = [reassembler.add(key, bytes([seq]) + bytes(249)) for seq in range(1, 5)]
    assert results[:3] == [(None, None, 0)] * 3  # 996 octets held
    fragment, problem, _ = results[3]
    assert fragment is None and problem is not None and "exceeds 1000" in problem
    assert reassembler.pending() == 0


def test_partial_fragments_are_bounded_per_flow() -> None:
    reassembler = TransportReassembler(max_partials=4)
    for source in range(100):
        reassembler.add((1, source, 1), bytes([0x40]) + bytes(200))
    assert len(reassembler._partials) == 4
    assert reassembler.pending() == 800


def test_gap_drops_partials_of_that_direction_only() -> None:
    analyzer = Dnp3StreamAnalyzer()
    up = frames(_g30v2_response(200), source=10, destination=1, master=False)
    down = frames(_g30v2_response(200), source=1, destination=10, master=True)
    _feed(analyzer, 1, [up[0]])
    _feed(analyzer, 0, [down[0]])
    analyzer.on_gap(1)
    assert not _app(_feed(analyzer, 1, up[1:]))
    assert len(_app(_feed(analyzer, 0, down[1:]))) == 1


def test_udp_transport_state_spans_datagrams() -> None:
    analyzer = Dnp3DatagramAnalyzer()
    out: list = []
    for number, frame in enumerate(
        frames(_g30v2_response(200), source=10, destination=1, master=False, first_seq=62)
    ):
        analyzer.on_datagram(1, frame, 0.0, number, out)
    (msg,) = [f for _d, _t, _n, f in out if "dnp3.application.function_code" in f]
    assert msg["dnp3.objects"][0]["count"] == 200


def test_link_only_frames_are_events() -> None:
    cases = [
        (link_control(dir_bit=True, prm=True, function=9), "link_request_link_status"),
        (link_control(dir_bit=False, prm=False, function=11), "link_status"),
        (link_control(dir_bit=True, prm=True, function=0), "link_reset_link_states"),
        (link_control(dir_bit=True, prm=True, function=2, fcb=True, fcv=True), "link_test_link_states"),
        (link_control(dir_bit=False, prm=False, function=0), "link_ack"),
        (link_control(dir_bit=False, prm=False, function=1), "link_nack"),
        (link_control(dir_bit=False, prm=False, function=15), "link_not_supported"),
    ]
    analyzer = Dnp3StreamAnalyzer()
    messages = _feed(analyzer, 0, [link_frame(control, 1024, 1) for control, _ in cases])
    assert [m["event.action"] for m in messages] == [action for _, action in cases]
    for m, (control, _) in zip(messages, cases, strict=True):
        assert m["dnp3.link.function_code"] == control & 0x0F
        assert m["dnp3.link.prm"] == bool(control & 0x40)
        assert m["dnp3.link.dir"] == bool(control & 0x80)
        assert (m["dnp3.link.source"], m["dnp3.link.destination"]) == (1, 1024)
        assert "dnp3.application.function_code" not in m
    assert messages[3]["dnp3.link.fcb"] is True and messages[3]["dnp3.link.fcv"] is True
