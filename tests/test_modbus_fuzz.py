"""Fuzzing the Modbus/TCP probe and analyzer: random bytes, truncated and bit-flipped valid ADUs
(MBAP length recomputed), random chunking and gaps. The only outcomes are Modbus messages and
decode-error messages; buffers stay bounded; after garbage the next valid ADU is decoded."""

from __future__ import annotations

import itertools
import struct
from functools import cache

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otsentry.protocols.modbus import ModbusAnalyzer, probe
from shared import SHARED_PCAPS, needs_shared, needs_tshark, tshark_fields

MAX_ADU = 260

# Spec examples (MODBUS Application Protocol V1.1b3 §6) as PDUs, requests and responses.
SEED_PDUS = [
    "01 0013 0013", "01 03 CD6B05", "03 006B 0003", "03 06 022B 0000 0064", "05 00AC FF00", "06 0001 0003",
    "07", "07 6D", "08 0000 A537", "08 0004 0000", "0B FFFF 0108", "0C 08 0000 0108 0121 20 00",
    "0F 0013 000A 02 CD01", "10 0001 0002 04 000A 0102", "11 07 2A FF 504C4331 00",
    "14 0E 06 0004 0001 0002 06 0003 0009 0002", "14 0C 05 06 0DFE 0020 05 06 33CD 0040",
    "15 0D 06 0004 0007 0003 06AF 04BE 100D", "16 0004 00F2 0025", "17 0003 0006 000E 0003 06 00FF 00FF 00FF",
    "17 0C 00FE 0ACD 0001 0003 000D 00FF", "18 04DE", "18 0006 0002 01B8 1284", "2B 0E 01 00",
    "2B 0E 01 01 00 00 03 00 03 414243 01 02 4142 02 01 31", "2B 0D 0001", "5A 00 41 FF00", "5A 00 FE",
    "83 02",
]  # fmt: skip
SEEDS = [bytes.fromhex(p.replace(" ", "")) for p in SEED_PDUS]


def adu(pdu: bytes, tid: int = 1, unit: int = 1) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def check(messages: list, analyzer: ModbusAnalyzer) -> None:
    for direction, _, _, f in messages:
        assert direction in (0, 1)
        assert f["network.protocol"] == "modbus"
        assert f["event.dataset"] in ("otsentry.modbus", "otsentry.decode_error")
        if f["event.dataset"] == "otsentry.modbus":
            assert f["modbus.pdu_type"] in ("request", "response", "exception")
            assert 0 <= f["modbus.function_code"] < 128
            assert len(f.get("modbus.values", ())) <= 256
        else:
            assert f["error.message"]
    assert all(len(rest) <= MAX_ADU for rest in analyzer.rest)
    assert len(analyzer.pending) <= 1024


def run(chunks: list[tuple[int, bytes | None]]) -> list:
    """Feed ``(direction, bytes)`` chunks; ``None`` bytes is a gap."""
    analyzer = ModbusAnalyzer()
    out: list = []
    for frame, (direction, data) in enumerate(chunks, 1):
        if data is None:
            analyzer.on_gap(direction)
        else:
            analyzer.on_data(direction, data, 0.0, frame, out)
        check(out, analyzer)
    return out


@st.composite
def mutated_pdu(draw: st.DrawFn, seeds: list[bytes] = SEEDS) -> bytes:
    pdu = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "byte"]))
        if kind == "flip" and pdu:
            i = draw(st.integers(0, len(pdu) - 1))
            pdu[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate" and pdu:
            del pdu[draw(st.integers(0, len(pdu) - 1)) :]
        elif kind == "insert":
            i = draw(st.integers(0, len(pdu)))
            pdu[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "byte" and pdu:
            pdu[draw(st.integers(0, len(pdu) - 1))] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFE, 0xFF]))
    return bytes(pdu[:253]) or b"\x03"


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@settings(max_examples=250, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash(data: bytes) -> None:
    assert probe(data) in (True, False)
    run([(0, data)])
    run([(1, None), (1, data), (1, data[::-1])])


@settings(max_examples=250, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), mutated_pdu(), st.integers(0, 0xFFFF), st.integers(0, 255)), max_size=8
    ),
    st.lists(st.integers(0, 4000), max_size=6),
    st.booleans(),
)
def test_mutated_adus_give_only_messages_and_decode_errors(
    adus: list[tuple[int, bytes, int, int]], cuts: list[int], gap_first: bool
) -> None:
    chunks: list[tuple[int, bytes | None]] = [(0, None), (1, None)] if gap_first else []
    for direction in (0, 1):
        stream = b"".join(adu(pdu, tid, unit) for d, pdu, tid, unit in adus if d == direction)
        chunks += [(direction, c) for c in chunked(stream, cuts)]
    out = run(chunks)
    if not gap_first:
        # Valid MBAP framing throughout: exactly one message per ADU.
        assert len(out) == len(adus)
    for _, _, _, f in out:
        assert f["event.dataset"] != "otsentry.modbus" or "modbus.transaction_id" in f


@settings(max_examples=200, deadline=None)
@given(mutated_pdu())
def test_probe_on_mutated_adus_is_total_and_consistent(pdu: bytes) -> None:
    data = adu(pdu)
    if probe(data):
        # What the probe accepts, the analyzer frames as exactly one message.
        assert len(run([(0, data)])) == 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(min_size=1, max_size=700).map(lambda b: b.replace(b"\x00", b"\x01")),
    st.sampled_from(SEEDS),
    st.booleans(),
    st.lists(st.integers(0, 700), max_size=4),
)
@example(b"B", b"\x01\x00\x13\x00\x13", False, [])
@example(b"\x01", b"\x14\x0c\x05\x06\r\xfe\x00 \x05\x063\xcd\x00@", False, [])
def test_after_garbage_the_next_valid_adu_is_decoded(
    garbage: bytes, pdu: bytes, midstream: bool, cuts: list[int]
) -> None:
    # Zero-free garbage cannot hold an MBAP header (protocol id 0): the first ADU after it must
    # be found. Synchronised, the bad header gives one decode error; after a gap, none.
    valid = adu(pdu, tid=0x4242)
    chunks: list[tuple[int, bytes | None]] = [(0, None)] if midstream else [(0, adu(SEEDS[0], tid=7))]
    chunks += [(0, c) for c in chunked(garbage, cuts)] + [(0, valid)]
    out = run(chunks)
    # The ADU framed (its PDU may still be one the analyzer rejects, like a seed's bad FC 20 byte
    # count); a framing error may carry 0x4242 too when the garbage ends in "B", so it does not count.
    decoded = [
        f
        for *_, f in out
        if f.get("modbus.transaction_id") == 0x4242 and "MBAP" not in f.get("error.message", "")
    ]
    assert len(decoded) == 1
    framing_errors = [f for *_, f in out if "MBAP" in f.get("error.message", "")]
    assert len(framing_errors) == (0 if midstream else 1)


def test_absurd_counts_return_at_once() -> None:
    # Counts that promise far more than the bytes hold: bounded by the data, never allocated.
    absurd = ("2B 0E 01 83 00 00 FF 00 01", "15 FF 06 0001 0001 FFFF", "18 FFFE FFFF", "0F 0000 FFFF FF 01")
    for pdu in absurd:
        out = run([(1, adu(bytes.fromhex(pdu.replace(" ", ""))))])
        assert len(out) == 1


@cache
def shared_seeds() -> list[bytes]:
    """PDUs of the ADUs in the shared Modbus captures (one ADU per segment ones)."""
    seeds = set()
    for name in ("icsnpp-modbus/modbus_example.pcap", "iti-ics/ModbusTCP/modbus_test_data_part2.pcap"):
        for _, payload in tshark_fields(SHARED_PCAPS / name, ("tcp.payload",)):
            raw = bytes.fromhex(payload.replace(":", ""))
            if len(raw) >= 8 and raw[2:4] == b"\x00\x00" and len(raw) == 6 + int.from_bytes(raw[4:6], "big"):
                seeds.add(raw[7:])
    return sorted(seeds)


@needs_shared
@needs_tshark
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_of_shared_capture_adus(data: st.DataObject) -> None:
    seeds = shared_seeds()
    adus = data.draw(st.lists(st.tuples(mutated_pdu(seeds), st.integers(0, 0xFFFF)), min_size=1, max_size=5))
    stream = b"".join(adu(pdu, tid) for pdu, tid in adus)
    direction = data.draw(st.integers(0, 1))
    out = run([(direction, stream)])
    assert len(out) == len(adus)
