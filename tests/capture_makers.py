"""Test-capture makers: pcap (either byte order, µs or ns) and pcapng written block by block, frames of
every link type the decoder reads built with scapy, and the editcap conversions.

The writers are independent of otsentry's readers (plain ``struct`` from the format drafts:
draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng), so a test that writes with these and reads with
otsentry checks the reader against the format, not against itself. Timestamps are integer
nanoseconds since the epoch, so no float rounding hides in the files.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

# Link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

BASE_NS = 1_700_000_000_123_456_000  # 2023-11-14, µs-exact so µs and ns files agree


class Frame(NamedTuple):
    ts_ns: int
    data: bytes
    wire_len: int | None = None  # None: the whole frame was captured


def frames_of(
    packets: Iterable[bytes | ScapyPacket], start_ns: int = BASE_NS, step_ns: int = 1_000_250
) -> list[Frame]:
    """Frames at regular times from raw bytes or scapy packets."""
    return [Frame(start_ns + i * step_ns, bytes(p)) for i, p in enumerate(packets)]


# -- classic libpcap ------------------------------------------------------------------------------------


def pcap_bytes(
    frames: Iterable[Frame],
    linktype: int = LINKTYPE_ETHERNET,
    big_endian: bool = False,
    nanosecond: bool = False,
    snaplen: int = 65535,
) -> bytes:
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for frame in frames:
        sec, frac = divmod(frame.ts_ns, 1_000_000_000)
        if not nanosecond:
            frac //= 1000
        wire = len(frame.data) if frame.wire_len is None else frame.wire_len
        out.append(struct.pack(order + "IIII", sec, frac, len(frame.data), wire))
        out.append(frame.data)
    return b"".join(out)


def write_pcap(path: Path, frames: Iterable[Frame], **options) -> Path:
    path.write_bytes(pcap_bytes(frames, **options))
    return path


# -- pcapng, block by block -------------------------------------------------------------------------------


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad4(value)


def end_of_options(order: str = "<") -> bytes:
    return struct.pack(order + "HH", 0, 0)


def block(btype: int, body: bytes, order: str = "<") -> bytes:
    body = _pad4(body)
    length = 12 + len(body)
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def shb(order: str = "<", major: int = 1) -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, major, 0, -1), order)


def idb(
    linktype: int,
    snaplen: int = 0,
    name: str | None = None,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    order: str = "<",
) -> bytes:
    opts = b""
    if name is not None:
        opts += option(2, name.encode(), order)
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), order)
    if tsoffset is not None:
        opts += option(14, struct.pack(order + "q", tsoffset), order)
    if opts:
        opts += end_of_options(order)
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts, order)


def epb(iface: int, ts_units: int, data: bytes, wire_len: int | None = None, order: str = "<") -> bytes:
    wire = len(data) if wire_len is None else wire_len
    body = struct.pack(order + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), wire)
    return block(6, body + _pad4(data), order)


def packet_block(iface: int, ts_units: int, data: bytes, order: str = "<") -> bytes:
    """The obsolete Packet Block (type 2)."""
    size = len(data)
    body = struct.pack(order + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF, size, size)
    return block(2, body + _pad4(data), order)


def spb(data: bytes, wire_len: int | None = None, order: str = "<") -> bytes:
    wire = len(data) if wire_len is None else wire_len
    return block(3, struct.pack(order + "I", wire) + _pad4(data), order)


def nrb(order: str = "<") -> bytes:
    """A Name Resolution Block with one IPv4 record (nrb_record_ipv4 = 1) — to be skipped by readers."""
    entry = bytes([10, 0, 0, 1]) + b"plc.example\0"
    return block(4, option(1, entry, order) + end_of_options(order), order)


def isb(order: str = "<") -> bytes:
    """An Interface Statistics Block for interface 0 — to be skipped by readers."""
    return block(5, struct.pack(order + "III", 0, 0, 0), order)


def custom_block(order: str = "<") -> bytes:
    """A custom block (0x00000BAD) with a private enterprise number and payload."""
    return block(0x00000BAD, struct.pack(order + "I", 32473) + b"otsentry-test", order)


def write_pcapng(path: Path, blocks: Sequence[bytes]) -> Path:
    path.write_bytes(b"".join(blocks))
    return path


# -- conversions by Wireshark's editcap ------------------------------------------------------------------


def editcap(src: Path, dst: Path, file_format: str) -> Path:
    """``editcap -F <format>``: pcapng, nsecpcap, pcap…"""
    subprocess.run(["editcap", "-F", file_format, str(src), str(dst)], check=True, capture_output=True)
    return dst


# -- frames of each link type ------------------------------------------------------------------------------

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
MAC_A_BYTES = bytes.fromhex("02000000000a")
MAC_B_BYTES = bytes.fromhex("02000000000b")


def transport_samples() -> list[ScapyPacket]:
    """A mix of IPv4/IPv6 over TCP/UDP, with options, extension headers and payloads of varied length."""
    mss = [("MSS", 1460), ("SAckOK", b""), ("NOP", None)]
    router_alert = [b"\x94\x04\x00\x00"]
    return [
        IP(src="10.0.0.1", dst="10.0.0.2", id=1) / TCP(sport=40000, dport=502, flags="S", seq=1000),
        IP(src="10.0.0.2", dst="10.0.0.1", id=2)
        / TCP(sport=502, dport=40000, flags="SA", seq=5000, ack=1001, options=mss),
        IP(src="10.0.0.1", dst="10.0.0.2", id=3)
        / TCP(sport=40000, dport=502, flags="PA", seq=1001, ack=5001)
        / Raw(b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x0a"),
        IP(src="192.168.7.9", dst="192.168.7.200", options=router_alert)
        / UDP(sport=20000, dport=20000)
        / Raw(b"\x05\x64\x05\xc0\x01\x00\x00\x04\xe9\x21"),
        IPv6(src="fd00::1", dst="fd00::2")
        / TCP(sport=41000, dport=20000, flags="PA", seq=7, ack=9)
        / Raw(b"x" * 33),
        IPv6(src="fd00::2", dst="fd00::1")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / UDP(sport=4059, dport=4063)
        / Raw(b"\x00\x01\x00\x01\x00\x10\x00\x04abcd"),
        IPv6(src="fd00::3", dst="fd00::4")
        / IPv6ExtHdrRouting(addresses=["fd00::9"])
        / TCP(sport=1, dport=1153, flags="A"),
        IP(src="10.9.9.9", dst="10.9.9.10") / TCP(sport=502, dport=40001, flags="PA") / Raw(b"y" * 1400),
    ]


def null_header(family: int, big_endian: bool = False) -> bytes:
    return struct.pack(">I" if big_endian else "<I", family)


def wrap(linktype: int, ip_packet: ScapyPacket, variant: str = "") -> bytes:
    """One IP packet in the given link layer; ``variant`` picks VLAN tags (Ethernet) or the family (null)."""
    is_v6 = isinstance(ip_packet, IPv6)
    if linktype == LINKTYPE_ETHERNET:
        if variant == "dot1q":
            return bytes(Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=100, prio=5, dei=1) / ip_packet)
        if variant == "qinq":  # 802.1ad S-tag then 802.1Q C-tag
            s_tag = Dot1AD(vlan=300, prio=7, dei=1)
            return bytes(Ether(src=MAC_A, dst=MAC_B) / s_tag / Dot1Q(vlan=42) / ip_packet)
        if variant == "qinq9100":  # the pre-standard QinQ TPID
            return bytes(Ether(src=MAC_A, dst=MAC_B, type=0x9100) / Dot1Q(vlan=7) / Dot1Q(vlan=8) / ip_packet)
        return bytes(Ether(src=MAC_A, dst=MAC_B) / ip_packet)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        family = {"": 24, "freebsd": 28, "darwin": 30}.get(variant, 24) if is_v6 else 2
        big = linktype == LINKTYPE_LOOP or variant == "big"
        return null_header(family, big) + bytes(ip_packet)
    if linktype == LINKTYPE_LINUX_SLL:
        return bytes(
            CookedLinux(
                pkttype=0,
                lladdrtype=1,
                lladdrlen=6,
                src=MAC_A_BYTES + b"\0\0",
                proto=0x86DD if is_v6 else 0x0800,
            )
            / ip_packet
        )
    if linktype == LINKTYPE_LINUX_SLL2:
        return bytes(
            CookedLinuxV2(
                proto=0x86DD if is_v6 else 0x0800,
                ifindex=3,
                lladdrtype=1,
                pkttype=4,
                lladdrlen=6,
                src=MAC_A_BYTES + b"\0\0",
            )
            / ip_packet
        )
    if linktype in (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return bytes(ip_packet)
    raise ValueError(f"no wrapper for link type {linktype}")
