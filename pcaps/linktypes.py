"""The modbus_polling traffic in other file formats and link layers, for decoder coverage.

Headers: 802.1Q (IEEE 802.1Q, TPID 0x8100) and QinQ (802.1ad S-tag, TPID 0x88A8); Linux cooked
capture v1/v2 (https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html, ..._SLL2.html); raw IP
(LINKTYPE_RAW 101); IPv4 fragmentation (RFC 791: offset in 8-byte units, MF flag); IPv6 fragment
header (RFC 8200 §4.5, next header 44).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import modbus_scenarios
from capture import Capture, write_truth
from netpackets import ETHERTYPE_IPV4, ETHERTYPE_IPV6, Frame, internet_checksum
from pcapwriter import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    PcapngWriter,
    PcapWriter,
)
from plan import PLC2

VLAN_ID = 120  # the OT zone's VLAN
SERVICE_VLAN_ID = 300  # the carrier's outer tag
FRAGMENT_PAYLOAD = 24  # bytes of IP payload per fragment: a multiple of 8 (RFC 791), below any data segment


def vlan(frame: bytes) -> bytes:
    return frame[:12] + struct.pack("!HH", 0x8100, VLAN_ID) + frame[12:]


def qinq(frame: bytes) -> bytes:
    return frame[:12] + struct.pack("!HHHH", 0x88A8, SERVICE_VLAN_ID, 0x8100, VLAN_ID) + frame[12:]


def _outgoing(frame: bytes, local_mac: bytes) -> bool:
    return frame[6:12] == local_mac


def sll(frame: bytes, local_mac: bytes) -> bytes:
    """Linux cooked v1 as captured on the HMI: packet type 0 = to us, 4 = outgoing."""
    packet_type = 4 if _outgoing(frame, local_mac) else 0
    return struct.pack("!HHH", packet_type, 1, 6) + frame[6:12] + b"\0\0" + frame[12:14] + frame[14:]


def sll2(frame: bytes, local_mac: bytes, ifindex: int = 2) -> bytes:
    """Linux cooked v2: protocol, reserved, interface index, ARPHRD_ETHER, packet type, address."""
    packet_type = 4 if _outgoing(frame, local_mac) else 0
    return (
        frame[12:14]
        + struct.pack("!HIHBB", 0, ifindex, 1, packet_type, 6)
        + frame[6:12]
        + b"\0\0"
        + frame[14:]
    )


def raw_ip(frame: bytes) -> bytes:
    return frame[14:]


def fragment_ipv4(frame: bytes, reverse: bool) -> list[bytes]:
    """Split a data-carrying IPv4 packet into fragments of ``FRAGMENT_PAYLOAD`` bytes (DF cleared)."""
    eth, ip = frame[:14], frame[14:]
    header_len = (ip[0] & 0x0F) * 4
    payload = ip[header_len:]
    pieces = [payload[i : i + FRAGMENT_PAYLOAD] for i in range(0, len(payload), FRAGMENT_PAYLOAD)]
    out = []
    for n, piece in enumerate(pieces):
        more = 0x2000 if n < len(pieces) - 1 else 0
        header = bytearray(ip[:header_len])
        struct.pack_into("!H", header, 2, header_len + len(piece))
        struct.pack_into("!H", header, 6, more | (n * FRAGMENT_PAYLOAD // 8))
        struct.pack_into("!H", header, 10, 0)
        struct.pack_into("!H", header, 10, internet_checksum(header))
        out.append(eth + bytes(header) + piece)
    return out[::-1] if reverse else out


def fragment_ipv6(frame: bytes, reverse: bool, identification: int) -> list[bytes]:
    """Split an IPv6 packet's TCP segment behind Fragment headers (RFC 8200 §4.5)."""
    eth, ip = frame[:14], frame[14:]
    fixed, payload = ip[:40], ip[40:]
    pieces = [payload[i : i + FRAGMENT_PAYLOAD] for i in range(0, len(payload), FRAGMENT_PAYLOAD)]
    out = []
    for n, piece in enumerate(pieces):
        more = 1 if n < len(pieces) - 1 else 0
        header = bytearray(fixed)
        struct.pack_into("!HB", header, 4, 8 + len(piece), 44)
        fragment_header = struct.pack("!BBHI", 6, 0, (n * FRAGMENT_PAYLOAD) | more, identification)
        out.append(eth + bytes(header) + fragment_header + piece)
    return out[::-1] if reverse else out


def _carries_data(frame: bytes) -> bool:
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == ETHERTYPE_IPV4:
        total = struct.unpack_from("!H", frame, 16)[0]
        return total - (frame[14] & 0x0F) * 4 - (frame[46] >> 4) * 4 > 0
    if ethertype == ETHERTYPE_IPV6:
        return struct.unpack_from("!H", frame, 18)[0] - (frame[66] >> 4) * 4 > 0
    return False


def fragmented(frames: list[Frame], ipv6: bool) -> list[Frame]:
    """Every data segment fragmented; every fourth one with its fragments sent last-first."""
    out: list[Frame] = []
    count = 0
    for frame in frames:
        if not _carries_data(frame.data):
            out.append(frame)
            continue
        reverse = count % 4 == 3
        pieces = (
            fragment_ipv6(frame.data, reverse, 0x5A000000 + count)
            if ipv6
            else fragment_ipv4(frame.data, reverse)
        )
        count += 1
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1  # the fragment that completes reassembly carries the truth
            note = "fragments sent last-first" if reverse and last else None
            out.append(Frame(frame.ts_ns + n * 5000, piece, frame.messages if last else [], note))
    return out


def _write_pcap(
    path: Path,
    frames: list[Frame],
    linktype: int = LINKTYPE_ETHERNET,
    transform: Callable[[bytes], bytes] = lambda b: b,
    **options: bool,
) -> None:
    with path.open("wb") as out:
        writer = PcapWriter(out, linktype, **options)
        for frame in frames:
            writer.write(frame.ts_ns, transform(frame.data))


def _on_plc2(frame: bytes, plc2_ip: bytes) -> bool:
    return plc2_ip in frame[26:34]


def write_variants(out_dir: Path) -> list[tuple[Path, int]]:
    """Write every variant into ``out_dir`` with its truth file; returns (path, packets)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = modbus_scenarios.modbus_polling()
    frames = base.frames()
    hmi_mac = base.hosts[0].mac
    plc2_ip = PLC2.packed_ip
    written: list[tuple[Path, int]] = []

    def done(name: str, link: str, capture: Capture, variant_frames: list[Frame]) -> None:
        path = out_dir / name
        doc = capture.truth(variant_frames, link_type=link)
        doc["capture"] = f"linktypes/{name}"
        if variant_frames is frames:
            # Frame for frame the base capture: point at its truth instead of repeating it.
            doc["frames_from"] = "../modbus_polling.truth.json"
            doc["frames"] = []
        write_truth(path, doc)
        written.append((path, len(variant_frames)))

    simple: list[tuple[str, str, int, Callable[[bytes], bytes], dict[str, bool]]] = [
        (
            "modbus_polling_nsec.pcap",
            "ethernet, nanosecond pcap",
            LINKTYPE_ETHERNET,
            lambda b: b,
            {"nanosecond": True},
        ),
        (
            "modbus_polling_be.pcap",
            "ethernet, big-endian pcap",
            LINKTYPE_ETHERNET,
            lambda b: b,
            {"big_endian": True},
        ),
        ("modbus_polling_vlan.pcap", f"ethernet 802.1Q vlan {VLAN_ID}", LINKTYPE_ETHERNET, vlan, {}),
        (
            "modbus_polling_qinq.pcap",
            f"ethernet QinQ outer {SERVICE_VLAN_ID} inner {VLAN_ID}",
            LINKTYPE_ETHERNET,
            qinq,
            {},
        ),
        (
            "modbus_polling_sll.pcap",
            "linux cooked v1 (captured on the HMI)",
            LINKTYPE_LINUX_SLL,
            lambda b: sll(b, hmi_mac),
            {},
        ),
        (
            "modbus_polling_sll2.pcap",
            "linux cooked v2 (captured on the HMI)",
            LINKTYPE_LINUX_SLL2,
            lambda b: sll2(b, hmi_mac),
            {},
        ),
        ("modbus_polling_rawip.pcap", "raw IPv4 (LINKTYPE_RAW)", LINKTYPE_RAW, raw_ip, {}),
    ]
    for name, link, linktype, transform, options in simple:
        _write_pcap(out_dir / name, frames, linktype, transform, **options)
        done(name, link, base, frames)

    name = "modbus_polling.pcapng"
    with (out_dir / name).open("wb") as out:
        writer = PcapngWriter(out)
        plc1_if = writer.add_interface(LINKTYPE_ETHERNET, "tap-plc1", "SPAN of the PLC 1 switch port", 6)
        plc2_if = writer.add_interface(LINKTYPE_ETHERNET, "tap-plc2", "SPAN of the PLC 2 switch port", 9)
        for frame in frames:
            interface = plc2_if if _on_plc2(frame.data, plc2_ip) else plc1_if
            comment = (
                "FC 43/14 read device identification"
                if any(m.get("function_code") == 43 for m in frame.messages)
                else None
            )
            writer.write(interface, frame.ts_ns, frame.data, comment)
    done(name, "pcapng: two Ethernet interfaces (tap-plc1 µs, tap-plc2 ns), EPBs", base, frames)

    name = "modbus_polling_spb.pcapng"
    with (out_dir / name).open("wb") as out:
        writer = PcapngWriter(out)
        writer.add_interface(LINKTYPE_ETHERNET, "tap", "Simple Packet Blocks carry no timestamp", 6)
        for frame in frames:
            writer.write_simple(frame.data)
    done(name, "pcapng: one Ethernet interface, Simple Packet Blocks only (no timestamps)", base, frames)

    name = "modbus_polling_ipfrag.pcap"
    pieces = fragmented(frames, ipv6=False)
    _write_pcap(out_dir / name, pieces)
    done(
        name, "ethernet, IPv4: every data segment in 24-byte fragments, every fourth last-first", base, pieces
    )

    v6 = modbus_scenarios.modbus_polling(ipv6=True)
    v6_frames = v6.frames()
    name = "modbus_polling_ipv6.pcap"
    _write_pcap(out_dir / name, v6_frames)
    done(name, "ethernet, IPv6", v6, v6_frames)

    name = "modbus_polling_ipv6frag.pcap"
    pieces = fragmented(v6_frames, ipv6=True)
    _write_pcap(out_dir / name, pieces)
    done(
        name,
        "ethernet, IPv6: every data segment behind fragment headers, every fourth last-first",
        v6,
        pieces,
    )
    return written
