"""L2–L4 decoder on every link type, each frame checked field by field against tshark on the same file."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from capture_makers import (
    BASE_NS,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    MAC_A_BYTES,
    MAC_B_BYTES,
    epb,
    idb,
    shb,
    transport_samples,
    wrap,
    write_pcapng,
)
from otsentry.capture import RawFrame, read_capture
from otsentry.net.decode import Decoder
from otsentry.net.packet import Packet
from shared import needs_tshark, tshark_fields

# (link type, variant) → one pcapng interface each; every transport sample goes through each of them.
INTERFACES = [
    (LINKTYPE_ETHERNET, ""), (LINKTYPE_ETHERNET, "dot1q"), (LINKTYPE_ETHERNET, "qinq"),
    (LINKTYPE_ETHERNET, "qinq9100"), (LINKTYPE_NULL, ""), (LINKTYPE_NULL, "big"), (LINKTYPE_NULL, "freebsd"),
    (LINKTYPE_NULL, "darwin"), (LINKTYPE_LOOP, ""), (LINKTYPE_LINUX_SLL, ""), (LINKTYPE_LINUX_SLL2, ""),
    (LINKTYPE_RAW, ""), (12, ""), (14, ""), (LINKTYPE_IPV4, ""), (LINKTYPE_IPV6, ""),
]
FIELDS = ("frame.interface_id", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "udp.srcport", "udp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.len", "udp.length",
          "vlan.id", "ieee8021ad.id", "eth.src", "eth.dst", "sll.src.eth")


def fits(linktype: int, ip_packet) -> bool:
    if linktype == LINKTYPE_IPV4:
        return ip_packet.version == 4
    if linktype == LINKTYPE_IPV6:
        return ip_packet.version == 6
    return True


def padded_ethernet() -> bytes:
    """A short UDP frame padded to Ethernet's 60-byte minimum: the padding is no payload."""
    frame = bytes(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / IP(src="10.1.1.1", dst="10.1.1.2")
                  / UDP(sport=20000, dport=20001) / Raw(b"hi"))
    return frame + b"\x00" * (60 - len(frame))


@pytest.fixture(scope="module")
def every_link_type(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    blocks = [shb()] + [idb(lt, name=f"{lt}{variant}") for lt, variant in INTERFACES]
    payloads: list[bytes] = []
    ts = BASE_NS // 1000
    for iface, (linktype, variant) in enumerate(INTERFACES):
        for sample in transport_samples():
            if fits(linktype, sample):
                blocks.append(epb(iface, ts, wrap(linktype, sample, variant)))
                payloads.append(bytes(sample[TCP].payload if TCP in sample else sample[UDP].payload))
                ts += 1000
    blocks.append(epb(0, ts, padded_ethernet()))
    payloads.append(b"hi")
    return write_pcapng(tmp_path_factory.mktemp("lt") / "every-link-type.pcapng", blocks), payloads


def render(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


def expected_vlans(vlan_ids: str, s_tag: str) -> tuple[int | None, int | None]:
    """tshark puts an 802.1ad S-tag in ieee8021ad.id and every 802.1Q/0x9100 tag in vlan.id."""
    ids = [int(v) for v in vlan_ids.split(",") if v]
    if s_tag:
        ids.insert(0, int(s_tag))
    return (ids[0] if ids else None), (ids[1] if len(ids) > 1 else None)


def decode_all(path: Path) -> list[Packet | None]:
    decoder = Decoder()
    return [decoder.decode(frame, n) for n, frame in enumerate(read_capture(path), 1)]


@needs_tshark
def test_every_link_type_agrees_with_tshark(every_link_type: tuple[Path, list[bytes]]) -> None:
    path, payloads = every_link_type
    packets = decode_all(path)
    rows = tshark_fields(path, FIELDS)
    assert len(packets) == len(rows) == len(payloads) > 100
    for pkt, row, payload in zip(packets, rows, payloads, strict=True):
        (number, iface, ip_src, ip_dst, ip6_src, ip6_dst, tcp_sport, tcp_dport, udp_sport, udp_dport, seq,
         ack, flags, tcp_len, udp_len, vlan_ids, s_tag, eth_src, eth_dst, sll_src) = row
        assert pkt is not None, f"frame {number} (interface {INTERFACES[int(iface)]}) not decoded"
        where = f"frame {number}, interface {INTERFACES[int(iface)]}"
        assert pkt.frame == int(number)
        addresses = (ip_src, ip_dst) if ip_src else (ip6_src, ip6_dst)
        assert (render(pkt.src_addr), render(pkt.dst_addr)) == addresses
        assert pkt.ip_version == (4 if ip_src else 6)
        if tcp_sport:
            assert (pkt.proto, pkt.sport, pkt.dport) == (6, int(tcp_sport), int(tcp_dport)), where
            assert (pkt.seq, pkt.ack, pkt.flags) == (int(seq), int(ack), int(flags, 16) & 0xFF), where
            assert len(pkt.payload) == int(tcp_len), where
        else:
            assert (pkt.proto, pkt.sport, pkt.dport) == (17, int(udp_sport), int(udp_dport)), where
            assert (pkt.seq, pkt.ack, pkt.flags) == (0, 0, 0)
            assert len(pkt.payload) == int(udp_len) - 8, where
        assert pkt.payload == payload, where
        assert (pkt.vlan, pkt.inner_vlan) == expected_vlans(vlan_ids, s_tag), where
        src_mac = eth_src or sll_src
        assert pkt.src_mac == (bytes.fromhex(src_mac.replace(":", "")) if src_mac else None), where
        assert pkt.dst_mac == (bytes.fromhex(eth_dst.replace(":", "")) if eth_dst else None), where
        assert pkt.ifname == f"{INTERFACES[int(iface)][0]}{INTERFACES[int(iface)][1]}"


def test_vlan_ids_and_macs_by_variant(every_link_type: tuple[Path, list[bytes]]) -> None:
    """The same check without tshark: what each Ethernet variant must give."""
    path, _ = every_link_type
    by_iface: dict[str, set] = {}
    for pkt in decode_all(path):
        assert pkt is not None
        by_iface.setdefault(pkt.ifname, set()).add((pkt.vlan, pkt.inner_vlan, pkt.src_mac, pkt.dst_mac))
    assert by_iface["1"] == {(None, None, MAC_A_BYTES, MAC_B_BYTES)}
    assert by_iface["1dot1q"] == {(100, None, MAC_A_BYTES, MAC_B_BYTES)}
    assert by_iface["1qinq"] == {(300, 42, MAC_A_BYTES, MAC_B_BYTES)}
    assert by_iface["1qinq9100"] == {(7, 8, MAC_A_BYTES, MAC_B_BYTES)}
    assert by_iface["113"] == by_iface["276"] == {(None, None, MAC_A_BYTES, None)}
    for name in ("0", "0big", "108", "101", "12", "14", "228", "229"):
        assert by_iface[name] == {(None, None, None, None)}


def test_frame_metadata_is_carried_over() -> None:
    frame_bytes = wrap(LINKTYPE_ETHERNET, transport_samples()[2])
    pkt = Decoder().decode(RawFrame(1234.5, 1, frame_bytes, 1600, "eth1"), 77)
    assert pkt is not None
    assert (pkt.ts, pkt.frame, pkt.wire_len, pkt.ifname) == (1234.5, 77, 1600, "eth1")


def test_non_ip_and_unknown_link_types_are_counted() -> None:
    decoder = Decoder()
    arp = bytes(Ether() / ARP())
    assert decoder.decode(RawFrame(0.0, 1, arp, len(arp), None), 1) is None
    assert decoder.decode(RawFrame(0.0, 1, arp[:12] + b"\x00\x2e" + bytes(46), 60, None), 2) is None  # 802.3
    assert decoder.decode(RawFrame(0.0, 0, b"\x07\x00\x00\x00" + bytes(40), 44, None), 3) is None  # AF 7
    assert decoder.decode(RawFrame(0.0, 105, bytes(60), 60, None), 4) is None  # 802.11
    sll_arp = bytes(6) + bytes(8) + b"\x08\x06" + bytes(28)
    assert decoder.decode(RawFrame(0.0, 113, sll_arp, len(sll_arp), None), 5) is None
    v6_in_228 = bytes(IPv6() / UDP())
    assert decoder.decode(RawFrame(0.0, 228, v6_in_228, len(v6_in_228), None), 6) is None
    counters = decoder.counters
    assert counters["non_ip"] == 4
    assert counters["unsupported_linktype"] == 1
    assert counters["ip_bad_header"] == 1
    assert counters["decoded"] == 0
