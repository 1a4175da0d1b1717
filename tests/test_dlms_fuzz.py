"""Fuzzing the DLMS analyzer: random bytes, mutations of valid APDUs (wrapper length
recomputed so the APDU decoder, not the framer, meets them), truncations, hostile nesting.
The only failure allowed is DecodeError from the codec / a decode-error event from the analyzer."""

from __future__ import annotations

import time

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlms_helpers import SHARED_DLMS, capture_streams, split_wrapper, wrap
from otsentry.protocols.base import DecodeError
from otsentry.protocols.dlms import DlmsAnalyzer
from otsentry.protocols.dlms.apdu import decode_apdu

# Valid APDUs of every kind the decoder knows (hand-checked elsewhere), plus the shared captures.
SEEDS = [
    bytes.fromhex(h)
    for h in (
        "601da109060760857405080101be10040e01000000065f1f0400001e5dffff",
        "6129a109060760857405080101a203020100a305a103020100be10040e0800065f1f0400001e5dffff0007",
        "604da109060760857405080103a60a04084350532d4c5431308a0207808b0760857405080201ac028000"
        "be230421211f30000000010d292d9c87b456c392ca527d15b62b54c7ed92d2d6d7d87bbc62",
        "6203800100",
        "6311800100be0f040e0800065f1f0400001e5d04000007",
        "c001c100080000010000ff0200",
        "c002c300000001",
        "c003c102000301000107 00ff0200 0008000001 0000ff0200",
        "c401c100090c07e8030505113b0400feb600",
        "c401c10103",
        "c402c30000000001000501030a0141",
        "c403c1020006000030390104",
        "c101c100080000010000ff0200090c07e80305ff113b0400000000",
        "c104c1020001 0000600100ff 0200 0001 0000600101ff 0200 02 0a03414243 1107",
        "c501c103",
        "c503c10300000002",
        "c505c1020003",
        "c301c10046000060030aff01010f00",
        "c304c10012 00002c0000ff 02 0000000001 03020211",
        "c306c1 01 00000002 05 0409020203",
        "c701c10000",
        "c701c10001000f07",
        "c703c10200000100",
        "c2010c07e80305ff0a0000ff8000000001 0000616200ff 02 0600000004",
        "0f400000050c07e8030505113b0400ffc4000202090601000108 00ff0600000064",
        "d90000000100020100030101151900ff0301000501001f0400ff04020000",
        "da8000000100000202020f00160002020f0016000201000100",
        "cb2030000000025876d29569446d9cdd0eaef27d171370c7d68f8470cadd4ee09b34",
        "cb201000000003c301c10046000060030aff02010f00d35d200151ac75c9885532f9",
        "db084b464d3030303031193000000007" + "00" * 20,
        "dd01050841424330303030310858595a3030303032000001010010" + "00" * 16 + "0d2000000009" + "00" * 8,
        "e0c10003000205c001c1000f",
        "d801060000002a",
        "0e010601",
        "0502020a0002fa08",
        "0c02000a03414243 0103",
        "0d020001 03",
        "0601020001010301",
        "180001020001010301",
    )
]


def _capture_seeds() -> list[bytes]:
    if not SHARED_DLMS.is_dir():
        return []
    seeds: dict[bytes, None] = {}
    for path in sorted(SHARED_DLMS.glob("*.pcap")):
        for streams in capture_streams(path):
            for segments in streams.values():
                for apdu in split_wrapper(b"".join(p for p, _ in segments)):
                    if len(apdu) < 400:
                        seeds[apdu] = None
    return list(seeds)[:300]


ALL_SEEDS = SEEDS + _capture_seeds()


def check_codec(apdu: bytes) -> None:
    try:
        decoded = decode_apdu(apdu)
    except DecodeError:
        return
    orjson.dumps(decoded.fields)


def check_analyzer(chunks: list[tuple[int, bytes]]) -> None:
    analyzer = DlmsAnalyzer()
    out: list = []
    for n, (direction, data) in enumerate(chunks):
        analyzer.on_data(direction, data, 0.0, n, out)
    for _, _, _, fields in out:
        assert fields["network.protocol"] == "dlms" and fields["event.action"]
        orjson.dumps(fields)
    for framer in analyzer.framers:
        assert len(framer.buf) <= 8 + 0xFFFF + 2048


def test_seeds_are_valid() -> None:
    for apdu in SEEDS:
        decode_apdu(apdu)  # raises if a seed is not a valid APDU


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(ALL_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_apdus_only_raise_decode_error(apdu: bytes) -> None:
    check_codec(apdu)
    check_analyzer([(0, wrap(apdu)), (1, wrap(apdu, 1, 0x10))])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_apdus_only_raise_decode_error(apdu: bytes) -> None:
    check_codec(apdu)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=200)), max_size=8))
def test_random_streams_never_raise(chunks: list[tuple[int, bytes]]) -> None:
    check_analyzer(chunks)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SEEDS), st.data())
def test_every_truncation_of_a_valid_apdu(apdu: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(apdu) - 1))
    check_codec(apdu[:cut])
    check_analyzer([(0, wrap(apdu[:cut]))])


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SEEDS), st.binary(min_size=1, max_size=64))
def test_stream_of_valid_frames_with_a_corrupt_one_recovers(apdu: bytes, junk: bytes) -> None:
    good = wrap(bytes.fromhex("c001c100080000010000ff0200"))
    analyzer = DlmsAnalyzer()
    out: list = []
    analyzer.on_data(0, good + wrap(apdu) + junk + good + good, 0.0, 1, out)
    # After whatever the junk does to framing, the last valid frame is always decoded.
    assert out[-1][3]["event.action"] == "get_request"


def test_hostile_nesting_and_counts_return_at_once() -> None:
    cases = [
        "c401c100" + "0201" * 20_000 + "00",  # 20000 nested structures
        "c401c100" + "0184ffffffff" + "000000",  # 2^32-1 elements, 3 bytes of data
        "c403c184ffffffff00",  # with-list of 2^32-1 results
        "c003c184ffffffff0000",  # with-list of 2^32-1 descriptors
        "d9c0000001008480000000" + "01",  # access-request with 2^31 specifications
        "c401c100" + "13" + "01ffff" * 15 + "00" + "0100",  # compact-array description bomb
        "c401c100" + "0182ffff" + "00" * 20,
    ]
    for hexdata in cases:
        start = time.perf_counter()
        check_codec(bytes.fromhex(hexdata))
        check_analyzer([(1, wrap(bytes.fromhex(hexdata), 1, 0x10))])
        assert time.perf_counter() - start < 2.0, hexdata[:40]  # generous: CI may trace coverage
