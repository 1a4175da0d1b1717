"""DNP3 link layer: CRC-16/DNP, frame sizes, header/block validation, the port-less probe."""

from __future__ import annotations

import os
import random

import pytest

from dnp3_frames import crc16_dnp, link_control, link_frame
from otsentry.protocols.dnp3 import probe
from otsentry.protocols.dnp3.link import (
    CRC_TABLE,
    MAX_FRAME_LEN,
    crc16,
    frame_length,
    header_crc_ok,
    is_frame_start,
    user_data,
)


def test_crc_catalogue_check_value() -> None:
    # CRC RevEng catalogue, CRC-16/DNP: check = 0xEA82 for "123456789".
    assert crc16(b"123456789") == 0xEA82
    assert crc16_dnp(b"123456789") == 0xEA82


def test_crc_table_matches_bitwise_form_on_random_data() -> None:
    rng = random.Random(1815)
    for length in [*range(40), 250, 292]:
        data = bytes(rng.randrange(256) for _ in range(length))
        assert crc16(data) == crc16_dnp(data), length
    assert len(CRC_TABLE) == 256 and CRC_TABLE[1] == 0x365E  # reflected 0x3D65 table entry 1


def test_crc_of_a_real_header() -> None:
    # First DNP3 frame of zeek/dnp3/dnp3_read.pcap (tshark: header checksum correct), then its
    # only data block "c7 c8 01 3c 02 06 3c 03 06 3c 04 06 3c 01 06" with CRC 42 ac.
    header = bytes.fromhex("056414c40200030045 03".replace(" ", ""))
    assert header_crc_ok(header, 0)
    assert crc16(header[:8]) == 0x0345
    assert crc16(bytes.fromhex("c7c8013c02063c03063c04063c0106")) == 0xAC42


@pytest.mark.parametrize(("length", "wire"), [(5, 10), (6, 13), (21, 28), (22, 31), (255, 292)])
def test_frame_length(length: int, wire: int) -> None:
    assert frame_length(length) == wire
    assert len(link_frame(0x44, 1, 2, bytes(length - 5))) == wire
    assert frame_length(255) == MAX_FRAME_LEN


def test_user_data_checks_every_block() -> None:
    data = bytes(range(40))
    frame = link_frame(0x44, 1, 2, data)
    assert user_data(frame, 0, frame[2]) == data
    for corrupt in (10, 25, 27, 28, 45, len(frame) - 1):  # a data octet or a CRC octet of each block
        bad = bytearray(frame)
        bad[corrupt] ^= 0x01
        assert user_data(bytes(bad), 0, frame[2]) is None, corrupt


def test_header_validation() -> None:
    good = link_frame(link_control(dir_bit=True, prm=True, function=9), 10, 1)
    assert is_frame_start(good)
    assert not is_frame_start(good[:9])
    for i in range(10):
        bad = bytearray(good)
        bad[i] ^= 0x40
        assert not is_frame_start(bytes(bad)), i
    # LEN below 5 with a correct CRC is still not a frame.
    assert not is_frame_start(link_frame(0x49, 10, 1, length=4))


def test_probe_is_strict() -> None:
    assert probe(link_frame(0xC4, 10, 1, b"\xc0\xc1\x01\x3c\x01\x06"))
    assert not probe(b"\x05\x64\x0a\xc4\x0a\x00\x01\x00\x00\x00")  # right start, wrong CRC
    assert not probe(b"GET / HTTP/1.1\r\n")
    assert not probe(b"\x05\x64")
    rng = random.Random(7)
    hits = sum(probe(b"\x05\x64" + bytes(rng.randrange(256) for _ in range(14))) for _ in range(20000))
    assert hits < 5  # a forged start passes only by 2^-16 CRC luck
    assert not any(probe(os.urandom(64)) for _ in range(2000))
