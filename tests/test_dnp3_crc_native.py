"""DNP3 link CRC: the native CRC-16/DNP (fastcrc) agrees with the pure-Python reference, and the
one-unpack user-data splitter strips and checks every block of every frame length."""

from __future__ import annotations

import random

import pytest

from dnp3_frames import crc16_dnp, link_frame
from otsentry.protocols.dnp3 import link


def test_python_reference_check_value() -> None:
    # CRC RevEng catalogue, CRC-16/DNP: check = 0xEA82 for "123456789".
    assert link.crc16_python(b"123456789") == 0xEA82
    assert link.crc16_python(b"") == 0xFFFF


def test_native_crc_is_used_and_agrees_with_the_reference() -> None:
    fastcrc = pytest.importorskip("fastcrc.crc16", reason="fastcrc (native CRC) not installed")
    assert link.crc16 is fastcrc.dnp
    rng = random.Random(20000)
    for length in [*range(0, 40), 249, 250, 292, 1000]:
        data = bytes(rng.randrange(256) for _ in range(length))
        expected = crc16_dnp(data)
        assert link.crc16(data) == expected == link.crc16_python(data), length
        assert link.crc16(bytearray(data)) == expected


@pytest.mark.parametrize("length", sorted({*range(5, 40), *range(40, 256, 7), 255}))
def test_user_data_of_every_frame_length(length: int) -> None:
    rng = random.Random(length)
    data = bytes(rng.randrange(256) for _ in range(length - 5))
    frame = b"\x00\x00" + link_frame(0x44, 1, 2, data)  # not at offset 0
    assert link.user_data(frame, 2, length) == data
    assert link.user_data(bytearray(frame), 2, length) == data
    # A flipped bit in any block, data or CRC, rejects the whole frame.
    for block_start in range(12, len(frame), 18):
        for offset in {block_start, min(block_start + 17, len(frame) - 1)}:
            bad = bytearray(frame)
            bad[offset] ^= 0x80
            assert link.user_data(bytes(bad), 2, length) is None, (length, offset)


def test_a_long_integer_device_attribute_stays_serialisable() -> None:
    # g0 UINT of 9 octets: a Python int past 64 bits would make orjson raise for the whole batch.
    import orjson

    from otsentry.protocols.dnp3.objects import decode_attribute

    data = bytes([2, 9]) + bytes(range(1, 10))
    point, end = decode_attribute(250, data, 0, len(data))
    assert end == len(data) and point["value"] == bytes(range(1, 10)).hex()
    orjson.dumps(point)
    small = bytes([2, 2, 0x34, 0x12])
    assert decode_attribute(250, small, 0, 4)[0]["value"] == 0x1234
