"""A-XDR Data decoding: every type, calendar renderings, caps, lying lengths, and agreement
with gurux-dlms's translator on random values."""

from __future__ import annotations

import re
import struct
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otsentry.protocols.base import DecodeError
from otsentry.protocols.dlms.axdr import Budget, Limits, Reader, read_data, render_date_time


def decode(hexdata: str, budget: Budget | None = None) -> Any:
    raw = bytes.fromhex(hexdata)
    r = Reader(raw)
    value = read_data(r, budget)
    r.expect_end("test value")
    return value


@pytest.mark.parametrize(
    ("hexdata", "value"),
    [
        ("00", None),
        ("0300", False),
        ("0301", True),
        ("0403a0", "101"),  # 3 significant bits
        ("040aff40", "1111111101"),
        ("05fffffffe", -2),
        ("0600000064", 100),
        ("0904deadbeef", "deadbeef"),
        ("0a03414243", "ABC"),
        ("0c02c3a9", "é"),
        ("0d12", 0x12),
        ("0fff", -1),
        ("10ff38", -200),
        ("11ff", 255),
        ("12ffff", 65535),
        ("14fffffffffffffffe", -2),
        ("15ffffffffffffffff", 2**64 - 1),
        ("1603", 3),
        ("173fc00000", 1.5),
        ("18400c000000000000", 3.5),
        ("177fc00000", "nan"),
        ("187ff0000000000000", "inf"),
        ("1a07e80305ff", "2024-03-05"),
        ("1b0a1e00ff", "10:30:00.*"),
        ("1c80", -128),
        ("21ffffffff", 2**32 - 1),
        ("ff", None),
        ("020211010a0141", [1, "A"]),
        ("0102 0202 1101 120002 0202 1103 120004", [[1, 2], [3, 4]]),
        ("0100", []),
        ("098180" + "5a" * 128, "5a" * 128),  # long-form length: 0x81 then one length byte
        ("0a820003" + "414141", "AAA"),  # long form with two length bytes
    ],
)
def test_scalar_and_container_values(hexdata: str, value: Any) -> None:
    assert decode(hexdata) == value


def test_date_time_rendering() -> None:
    assert render_date_time(bytes.fromhex("07e8030505113b0400feb600")) == "2024-03-05T17:59:04.00+05:30"
    assert render_date_time(bytes.fromhex("07e80c1f020a000000ffc400")) == "2024-12-31T10:00:00.00+01:00"
    assert render_date_time(bytes.fromhex("ffffffffffffffffff8000ff")) == "*-*-*T*:*:*.*"
    assert render_date_time(bytes.fromhex("07e8030505113b04000000" + "80")) == (
        "2024-03-05T17:59:04.00+00:00;status=0x80"
    )
    assert decode("1907e8030505113b0400feb600") == "2024-03-05T17:59:04.00+05:30"


def test_compact_array_of_structures() -> None:
    # compact-array: type description structure{unsigned, long-unsigned}, 6 bytes of contents
    assert decode("13 0202 11 12 06 01 0002 03 0004") == [[1, 2], [3, 4]]
    # nested array in the description: array[2] of long
    assert decode("13 01 0002 10 04 0001 0002") == [[1, 2]]
    assert decode("13 0a 05 02 4142 01 43") == ["AB", "C"]  # variable-length elements keep their length


@pytest.mark.parametrize(
    "hexdata",
    [
        "13 00 03 000000",  # null-data elements take no bytes: refused, not looped on
        "13 01 ffff 00 01 00",  # 65535 nulls per element
        "13 01 ffff 01 ffff 01 ffff 00 01 11",  # nested counts multiplying up
        "13 13 00 00",  # compact-array inside a description
        "13 0203 11 11 11 02 0101",  # contents end inside an element
    ],
)
def test_compact_array_hostile_descriptions_fail_fast(hexdata: str) -> None:
    start = time.perf_counter()
    with pytest.raises(DecodeError):
        decode(hexdata)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("hexdata", "reason"),
    [
        ("0184ffffffff000000", "count"),  # 2^32-1 elements, 3 bytes of data
        ("0284ffffffff", "count"),
        ("09840000ffff00", "truncated"),
        ("0985", "encoding"),  # 5-byte length form is not allowed
        ("0901", "truncated"),
        ("06000000", "truncated"),
        ("07", "unknown"),
        ("0202 11", "count"),
        ("0201 11", "truncated"),
    ],
)
def test_lying_lengths_raise_decode_error(hexdata: str, reason: str) -> None:
    start = time.perf_counter()
    with pytest.raises(DecodeError, match=reason):
        decode(hexdata)
    assert time.perf_counter() - start < 1.0  # per-item work would take minutes


def test_deep_nesting_is_walked_without_recursion_and_rendered_to_the_cap() -> None:
    depth = 50_000
    raw = "0201" * depth + "1105"
    budget = Budget()
    value = decode(raw, budget)
    assert budget.truncated
    levels = 0
    while isinstance(value, list):
        levels += 1
        if not value:
            break
        value = value[0]
    assert levels == Limits().max_depth


def test_huge_arrays_render_a_bounded_number_of_values() -> None:
    count = 20_000
    raw = "0182" + f"{count:04x}" + "1107" * count
    budget = Budget()
    value = decode(raw, budget)
    assert budget.truncated
    assert len(value) == Limits().max_values - 1  # the array itself is one rendered value
    long_string = decode("098200ff" + "ab" * 255, budget := Budget(Limits(max_string_bytes=16)))
    assert long_string == "ab" * 16 and budget.truncated


# -- agreement with gurux's translator on random values ------------------------------------------

_INTS = {
    "0f": (">b", "Int8"),
    "10": (">h", "Int16"),
    "05": (">i", "Int32"),
    "14": (">q", "Int64"),
    "11": (">B", "UInt8"),
    "12": (">H", "UInt16"),
    "06": (">I", "UInt32"),
    "15": (">Q", "UInt64"),
    "16": (">B", "Enum"),
}


def _scalars() -> st.SearchStrategy[tuple[bytes, Any]]:
    def integer(tag: str) -> st.SearchStrategy[tuple[bytes, Any]]:
        fmt = _INTS[tag][0]
        bits = struct.calcsize(fmt) * 8
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if fmt[1].islower() else (0, 2**bits - 1)
        return st.integers(lo, hi).map(lambda v: (bytes.fromhex(tag) + struct.pack(fmt, v), v))

    octets = st.binary(max_size=40).map(lambda b: (bytes([9, len(b)]) + b, b.hex()))
    text = st.text("ABCxyz019 -", max_size=20).map(lambda s: (bytes([10, len(s)]) + s.encode(), s))
    boolean = st.booleans().map(lambda v: (bytes([3, int(v)]), v))
    null = st.just((b"\x00", None))
    return st.one_of(null, boolean, octets, text, *[integer(tag) for tag in _INTS])


_values = st.recursive(
    _scalars(),
    lambda children: st.tuples(st.sampled_from([1, 2]), st.lists(children, max_size=4)).map(
        lambda t: (bytes([t[0], len(t[1])]) + b"".join(c[0] for c in t[1]), [c[1] for c in t[1]])
    ),
    max_leaves=12,
)


def _gurux_value(node: ET.Element) -> Any:
    tag, raw = node.tag, node.get("Value")
    if tag in ("Structure", "Array"):
        return [_gurux_value(child) for child in node]
    if tag == "None":
        return None
    if tag == "Boolean":
        return raw == "True"
    if tag == "OctetString":
        return (raw or "").lower()
    if tag == "String":
        return raw or ""
    for fmt, name in _INTS.values():
        if tag == name:
            return struct.unpack(fmt, bytes.fromhex(raw or ""))[0]
    raise AssertionError(f"unexpected gurux element {tag}")


@settings(max_examples=300, deadline=None)
@given(_values)
def test_random_values_agree_with_encoder_and_gurux(sample: tuple[bytes, Any]) -> None:
    from gurux_dlms import GXDLMSTranslator
    from gurux_dlms.enums import TranslatorOutputType

    encoded, expected = sample
    budget = Budget(Limits(max_values=10_000, max_chars=1_000_000))
    r = Reader(encoded)
    assert read_data(r, budget) == expected
    assert r.remaining == 0
    xml = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML).pduToXml(b"\xc4\x01\xc1\x00" + encoded)
    data = ET.fromstring(re.sub(r"<!--.*?-->", "", xml)).find(".//Data")
    assert data is not None and len(data) == 1
    assert _gurux_value(data[0]) == expected
