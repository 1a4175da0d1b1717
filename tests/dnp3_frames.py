"""Build DNP3 link frames with correct CRCs from application fragments (tests and the sample
capture generator share this). The CRC here is the bitwise textbook form, independent of the
table-driven one in otsentry.protocols.dnp3.link."""

from __future__ import annotations

import struct


def crc16_dnp(data: bytes) -> int:
    """CRC-16/DNP, bit by bit: poly 0x3D65 reflected (0xA6BC), init 0, final xor 0xFFFF."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def link_control(*, dir_bit: bool, prm: bool, function: int, fcb: bool = False, fcv: bool = False) -> int:
    return (
        (0x80 if dir_bit else 0)
        | (0x40 if prm else 0)
        | (0x20 if fcb else 0)
        | (0x10 if fcv else 0)
        | function
    )


def link_frame(
    control: int, destination: int, source: int, data: bytes = b"", *, length: int | None = None
) -> bytes:
    """One link frame; ``length`` overrides the LEN field (to build lying frames)."""
    if len(data) > 250:
        raise ValueError("at most 250 octets of user data per frame")
    header = struct.pack(
        "<2sBBHH", b"\x05\x64", 5 + len(data) if length is None else length, control, destination, source
    )
    out = bytearray(header + struct.pack("<H", crc16_dnp(header)))
    for i in range(0, len(data), 16):
        block = data[i : i + 16]
        out += block + struct.pack("<H", crc16_dnp(block))
    return bytes(out)


def segments(fragment: bytes, first_seq: int = 0, max_data: int = 249) -> list[bytes]:
    """Split an application fragment into transport segments (header octet + data)."""
    chunks = [fragment[i : i + max_data] for i in range(0, len(fragment), max_data)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        header = (0x40 if i == 0 else 0) | (0x80 if i == len(chunks) - 1 else 0) | ((first_seq + i) & 0x3F)
        out.append(bytes([header]) + chunk)
    return out


def frames(
    fragment: bytes,
    *,
    source: int,
    destination: int,
    master: bool,
    first_seq: int = 0,
    max_data: int = 249,
    confirmed: bool = False,
) -> list[bytes]:
    """Link frames carrying ``fragment``; ``master`` sets DIR (master → outstation)."""
    control = link_control(dir_bit=master, prm=True, function=3 if confirmed else 4, fcv=confirmed)
    return [link_frame(control, destination, source, seg) for seg in segments(fragment, first_seq, max_data)]


def app_request(function: int, objects: bytes = b"", *, seq: int = 0, con: bool = False) -> bytes:
    return bytes([0xC0 | (0x20 if con else 0) | (seq & 0x0F), function]) + objects


def app_response(
    objects: bytes = b"", *, iin: int = 0, seq: int = 0, unsolicited: bool = False, con: bool = False
) -> bytes:
    ctrl = 0xC0 | (0x20 if con or unsolicited else 0) | (0x10 if unsolicited else 0) | (seq & 0x0F)
    return bytes([ctrl, 130 if unsolicited else 129]) + struct.pack(">H", iin) + objects


def crob(
    index: int, code: int, *, count: int = 1, on_ms: int = 100, off_ms: int = 0, status: int = 0
) -> bytes:
    """g12v1 with qualifier 0x28 (2-octet count, 2-octet index prefix), one CROB."""
    return (
        bytes([12, 1, 0x28])
        + struct.pack("<HH", 1, index)
        + struct.pack("<BBIIB", code, count, on_ms, off_ms, status)
    )


def class_poll() -> bytes:
    """Read class 1, 2, 3 and 0 (g60v2..v4, g60v1, qualifier 0x06)."""
    return bytes([60, 2, 6, 60, 3, 6, 60, 4, 6, 60, 1, 6])
