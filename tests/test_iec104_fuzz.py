"""Fuzzing the IEC 60870-5-104 analyzer: random streams, mutated valid APDUs (length octet recomputed),
every truncation, garbage before valid traffic. Never an exception other than DecodeError from the
codec, never one from the analyzer, buffers bounded, resynchronisation after garbage."""

from __future__ import annotations

import random
import struct
import sys
from functools import cache
from itertools import pairwise
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from iec104_helpers import IEC104_CAPTURES, STARTDT_ACT, asdu, cp56, i_frame, ioa, replay, s_frame
from otsentry.protocols.iec104 import Iec104Analyzer, Iec104DecodeError, decode_apdu, probe
from otsentry.protocols.iec104_codes import ELEMENT_SIZES, TYPE_ELEMENTS

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_BUFFER = 257  # one APDU: start, length, 253 octets
DATASETS = {"otsentry.iec104", "otsentry.decode_error"}


def _object(type_id: int, rng: random.Random) -> bytes:
    """One well-formed information object (after the IOA) of ``type_id`` with random contents."""
    body = bytearray()
    for element in TYPE_ELEMENTS[type_id]:
        if element in ("CP56", "CP56_STOP"):
            body += cp56(
                2000 + rng.randrange(100),
                rng.randrange(1, 13),
                rng.randrange(1, 29),
                rng.randrange(24),
                rng.randrange(60),
                rng.randrange(60000),
            )
        elif element == "SEGMENT":
            body += b"\x02ab"
        else:
            body += rng.randbytes(ELEMENT_SIZES[element])
    return bytes(body)


@cache
def corpus() -> tuple[bytes, ...]:
    """Valid APDUs: every decoded type (SQ=0 and SQ=1), U/S frames, and the shared captures' APDUs."""
    rng = random.Random(104)
    apdus = [STARTDT_ACT, s_frame(77), bytes([0x68, 4, 0x83, 0, 0, 0])]
    for type_id in TYPE_ELEMENTS:
        two = ioa(rng.randrange(1 << 24)) + _object(type_id, rng) + ioa(7) + _object(type_id, rng)
        apdus.append(i_frame(asdu(type_id, two, count=2, cot=rng.choice([3, 6, 7, 20]))))
        if type_id != 125:
            sequence = ioa(100) + b"".join(_object(type_id, rng) for _ in range(3))
            apdus.append(i_frame(asdu(type_id, sequence, count=3, sq=True), send=5, recv=9))
    apdus.append(i_frame(asdu(200, ioa(1) + b"\x01\x02\x03", count=3)))
    for path in IEC104_CAPTURES:
        if path.exists():
            apdus += replay(path).apdus
    return tuple(apdus)


def _feed(analyzer: Iec104Analyzer, chunks: list[bytes], direction: int = 0) -> list[dict]:
    out: list = []
    for frame, chunk in enumerate(chunks, 1):
        analyzer.on_data(direction, chunk, float(frame), frame, out)
        assert len(analyzer._buffers[direction]) <= MAX_BUFFER
    for _direction, _ts, _frame, fields in out:
        assert fields["event.dataset"] in DATASETS
        assert fields["network.protocol"] == "iec104"
        assert isinstance(fields["event.action"], str)
        if fields["event.dataset"] == "otsentry.decode_error":
            assert fields["error.message"]
    return [m[3] for m in out]


def _repeated(apdu: bytes) -> bytes:
    """Enough copies of ``apdu`` that a bogus but plausible APDU header in the garbage before them
    (it may claim up to 255 octets and so swallow the first copies) cannot reach the last ones."""
    return apdu * max(8, 2 * MAX_BUFFER // len(apdu) + 3)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)] or [b""]


def _mutate(apdu: bytes, edits: list[tuple[int, int]], new_size: int) -> bytes:
    """Overwrite octets of the body, resize it, and recompute the length octet."""
    body = bytearray(apdu[2:])
    for position, value in edits:
        body[position % len(body)] = value
    body = body[:new_size] if new_size <= len(body) else body + bytes(new_size - len(body))
    return bytes([0x68, len(body)]) + bytes(body)


def test_corpus_is_valid() -> None:
    apdus = corpus()
    assert len(apdus) > 150
    for apdu in apdus:
        decode_apdu(apdu)


@FUZZ
@given(st.binary(max_size=700), st.lists(st.integers(min_value=0), max_size=8), st.booleans())
def test_random_streams(data: bytes, cuts: list[int], gap_first: bool) -> None:
    analyzer = Iec104Analyzer()
    if gap_first:
        analyzer.on_gap(0)
    _feed(analyzer, _chunks(data, cuts))
    assert isinstance(probe(data), bool)


@FUZZ
@given(
    st.sampled_from(range(1000)),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
    st.integers(4, 253),
)
def test_mutated_apdus(index: int, edits: list[tuple[int, int]], new_size: int) -> None:
    apdus = corpus()
    mutated = _mutate(apdus[index % len(apdus)], edits, new_size)
    try:
        fields = decode_apdu(mutated)
        assert fields["event.dataset"] == "otsentry.iec104"
    except Iec104DecodeError as error:
        assert str(error)
    # in sync, a well-framed APDU is exactly one message, whatever its contents
    messages = _feed(Iec104Analyzer(), [mutated + STARTDT_ACT])
    assert len(messages) == 2
    assert messages[1]["event.action"] == "startdt_act"


def test_every_truncation_of_every_corpus_apdu() -> None:
    """All prefixes with the length octet recomputed: an event or a decode error, never a crash."""
    errors = 0
    for apdu in corpus():
        for size in range(4, len(apdu) - 2):
            truncated = bytes([0x68, size]) + apdu[2 : 2 + size]
            try:
                decode_apdu(truncated)
            except Iec104DecodeError:
                errors += 1
    assert errors > 1000


@FUZZ
@given(
    st.binary(max_size=300),
    st.sampled_from(range(1000)),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_resync_after_garbage(garbage: bytes, index: int, cuts: list[int]) -> None:
    apdus = corpus()
    apdu = apdus[index % len(apdus)]
    stream = garbage + _repeated(apdu)
    messages = _feed(Iec104Analyzer(), _chunks(stream, cuts))
    assert messages[-1] == decode_apdu(apdu)
    if not garbage:
        assert messages == [decode_apdu(apdu)] * (len(stream) // len(apdu))


@FUZZ
@given(st.binary(min_size=1, max_size=300), st.sampled_from(range(1000)))
def test_gap_then_valid_traffic(tail: bytes, index: int) -> None:
    """After a gap (bytes lost mid-APDU), decoding resumes on the following APDUs silently or with
    errors only for what cannot be framed."""
    apdus = corpus()
    apdu = apdus[index % len(apdus)]
    analyzer = Iec104Analyzer()
    _feed(analyzer, [apdu[: len(apdu) // 2]])
    analyzer.on_gap(0)
    messages = _feed(analyzer, [tail + _repeated(apdu)])
    assert messages[-1] == decode_apdu(apdu)


def _feed_calls(stream: bytes) -> int:
    """Function calls (Python and C) made while the analyzer takes ``stream``: a measure of work that,
    unlike a timer, machine load does not change."""
    calls = 0

    def count(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    analyzer = Iec104Analyzer()
    sys.setprofile(count)
    try:
        analyzer.on_data(0, stream, 0.0, 1, [])
    finally:
        sys.setprofile(None)
    return calls


def test_lying_counts_do_not_cost_work() -> None:
    """127 objects promised (the 7-bit maximum) with 3 octets present cost no more than 2 promised:
    the analyzer checks the bytes exist before it walks the objects."""
    lying = i_frame(asdu(36, ioa(1), count=127, sq=True))
    modest = i_frame(asdu(36, ioa(1), count=2, sq=True))
    out: list = []
    Iec104Analyzer().on_data(0, lying * 100, 0.0, 1, out)
    assert {m[3]["event.action"] for m in out} == {"decode_error"}
    assert len(out) == 100
    _feed_calls(lying + modest)  # first use warms caches (struct formats, code tables): not counted
    assert _feed_calls(lying * 50) <= _feed_calls(modest * 50)


def test_float_values_round_trip() -> None:
    """The shortest decimal rendering of R32 values maps back to the same 32 bits."""
    rng = random.Random(1)
    for _ in range(2000):
        raw = rng.randbytes(4)
        fields = decode_apdu(i_frame(asdu(13, ioa(1) + raw + b"\x00")))
        value = fields["iec104.objects"][0]["value"]
        if value is not None:
            assert struct.pack("<f", value) == raw or value == 0.0
