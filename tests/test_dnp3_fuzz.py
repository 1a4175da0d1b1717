"""Property-based fuzzing of the DNP3 analyzers: random bytes, mutations of valid fragments
re-framed with correct CRCs (seeded from the shared captures), absurd object counts, and
resynchronisation after garbage. Never an exception, never an internal error, never a hang."""

from __future__ import annotations

import os
import struct
import time
from functools import cache

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from dnp3_frames import app_request, app_response, class_poll, crob, frames
from dnp3_replay import SHARED, payloads
from otsentry.protocols.base import DecodeError
from otsentry.protocols.dnp3 import Dnp3DatagramAnalyzer, Dnp3StreamAnalyzer
from otsentry.protocols.dnp3.application import decode_fragment
from otsentry.protocols.dnp3.link import frame_length, is_frame_start, user_data

# DNP3_FUZZ_EXAMPLES=20000 for a longer campaign.
FUZZ = settings(
    max_examples=int(os.environ.get("DNP3_FUZZ_EXAMPLES", "300")),
    deadline=1000,
    suppress_health_check=[HealthCheck.too_slow],
)

SYNTHETIC = [
    app_request(1, class_poll()),
    app_request(5, crob(3, 0x41)),
    app_request(2, bytes([50, 1, 0x07, 1]) + bytes(6) + bytes([80, 1, 0x00, 7, 7, 0])),
    app_response(
        bytes([1, 2, 0x00, 0, 3]) + b"\x81\x01\x81\x01" + bytes([30, 1, 0x01, 0, 0, 1, 0]) + bytes(10)
    ),
    app_response(
        bytes([51, 1, 0x07, 1]) + bytes(6) + bytes([2, 3, 0x17, 1, 4, 0x81, 10, 0]), unsolicited=True
    ),
    app_response(bytes([0, 252, 0x00, 0, 0, 1, 3]) + b"abc" + bytes([110, 2, 0x00, 0, 0]) + b"hi"),
    app_request(25, bytes([70, 3, 0x5B, 1, 30, 0]) + struct.pack("<HH", 26, 4) + bytes(22) + b"f.tx"),
    bytes([0xC0, 131, 0, 0, 120, 7, 0x5B, 1, 15, 0]) + bytes(15),
]


@cache
def seed_fragments() -> list[bytes]:
    """Single-segment application fragments found in a few shared captures, plus synthetic ones."""
    found = set(SYNTHETIC)
    names = ["icsnpp-dnp3/dnp3_example.pcap", "zeek/dnp3/dnp3.pcap", "iti-ics/openics/DNP3-Malformed.pcap"]
    names += [
        f"iti-ics/dnp3/{n}.pcap" for n in ("file_write", "auth_change_session_keys", "dataset_exchange")
    ]
    for name in names:
        if not (SHARED / name).exists():
            continue
        for *_, data in payloads(SHARED / name):
            pos = 0
            while is_frame_start(data, pos) and len(data) - pos >= frame_length(data[pos + 2]):
                segment = user_data(data, pos, data[pos + 2]) if data[pos + 2] > 5 else None
                if segment and segment[0] & 0xC0 == 0xC0:
                    found.add(segment[1:])
                pos += frame_length(data[pos + 2])
    return sorted(found)


def _feed_stream(chunks: list[bytes], gaps: set[int] | None = None) -> list[dict]:
    analyzer = Dnp3StreamAnalyzer()
    out: list = []
    for i, chunk in enumerate(chunks):
        if gaps and i in gaps:
            analyzer.on_gap(i % 2)
        analyzer.on_data(i % 2, chunk, 0.0, i, out)
    messages = [fields for *_, fields in out]
    _check(messages)
    return messages


def _check(messages: list[dict]) -> None:
    for fields in messages:
        assert fields["network.protocol"] == "dnp3"
        assert fields["event.dataset"] in ("otsentry.dnp3", "otsentry.decode_error")
        assert "internal decoder error" not in fields.get("error.message", ""), fields["error.message"]
        points = sum(len(o.get("points", ())) for o in fields.get("dnp3.objects", ()))
        assert points <= 256


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=12), st.sets(st.integers(0, 11), max_size=3))
def test_random_stream_bytes(chunks: list[bytes], gaps: set[int]) -> None:
    _feed_stream(chunks, gaps)


@FUZZ
@given(st.binary(max_size=600))
def test_random_datagrams(data: bytes) -> None:
    out: list = []
    Dnp3DatagramAnalyzer().on_datagram(0, data, 0.0, 1, out)
    _check([fields for *_, fields in out])


@FUZZ
@given(st.binary(max_size=400))
def test_random_fragments_only_raise_decode_error(fragment: bytes) -> None:
    try:
        decode_fragment(fragment, {})
    except DecodeError:
        assert len(fragment) < 4


@st.composite
def mutated_fragment(draw: st.DrawFn) -> bytes:
    fragment = bytearray(draw(st.sampled_from(seed_fragments())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(fragment) - 1)))
        if op == "flip" and fragment:
            fragment[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and fragment:
            fragment[pos] = draw(
                st.sampled_from([0x00, 0x01, 0x06, 0x07, 0x17, 0x28, 0x39, 0x5B, 0x7F, 0x80, 0xFF])
            )
        elif op == "insert":
            fragment[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del fragment[pos : pos + draw(st.integers(1, 8))]
        else:
            del fragment[pos:]
    return bytes(fragment)


@FUZZ
@given(mutated_fragment(), st.integers(0, 63), st.integers(1, 249))
# A READ naming g12v1 indexes: index-only CROB points once crashed the flat control arrays.
@example(b"\xc3\x01\x0c\x01(\x01\x00\x9f\x86\x03\x01d\x00\x00\x00d\x00\x00\x00\x00", 0, 1)
def test_mutated_valid_fragments_with_good_crcs(fragment: bytes, first_seq: int, max_data: int) -> None:
    wire = frames(fragment, source=10, destination=1, master=False, first_seq=first_seq, max_data=max_data)
    started = time.perf_counter()
    messages = _feed_stream([b"".join(wire)])
    assert time.perf_counter() - started < 0.5
    app = [m for m in messages if "dnp3.application.function_code" in m]
    # CRCs are right, so the fragment always reaches the application layer (or is too short for it).
    assert len(app) == 1 or (
        len(fragment) < 4 and any("fragment" in m.get("error.message", "") for m in messages)
    )


@FUZZ
@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.sampled_from([0x02, 0x09, 0x19, 0x29, 0x39, 0x49, 0x59, 0x69, 0x5B, 0x1B]),
    st.binary(max_size=3),
    st.sampled_from([1, 2, 5, 129]),
)
def test_absurd_counts_return_at_once(
    group: int, variation: int, qualifier: int, data: bytes, fc: int
) -> None:
    rng = (
        struct.pack("<II", 0, 0xFFFFFFFF)
        if qualifier == 0x02
        else b"\xff"
        if qualifier & 0x0F == 0x0B
        else b"\xff" * 4
    )
    objects = bytes([group, variation, qualifier]) + rng + data
    fragment = app_response(objects) if fc == 129 else app_request(fc, objects)
    started = time.perf_counter()
    fields: dict = {}
    decode_fragment(fragment, fields)
    assert time.perf_counter() - started < 1.0  # generous under load; a walk of a 2^32 count would take hours
    assert sum(len(o.get("points", ())) for o in fields["dnp3.objects"]) <= 256


@FUZZ
@given(st.binary(min_size=1, max_size=400), st.sampled_from(SYNTHETIC))
def test_next_valid_frame_after_garbage_is_decoded(garbage: bytes, fragment: bytes) -> None:
    valid = b"".join(frames(fragment, source=10, destination=1, master=False))
    stream = garbage + valid
    # A forged header inside the garbage (2^-16 per 05 64) could legitimately swallow the frame.
    assume(not any(is_frame_start(stream, i) for i in range(len(garbage))))
    analyzer = Dnp3StreamAnalyzer()
    out: list = []
    analyzer.on_data(1, stream, 0.0, 1, out)
    messages = [fields for *_, fields in out]
    _check(messages)
    # Garbage costs at most one decode error; then the frame is decoded.
    assert len(messages) <= 2
    app = [m for m in messages if "dnp3.application.function_code" in m]
    assert len(app) == 1 and app[0]["dnp3.application.function_code"] == fragment[1]
