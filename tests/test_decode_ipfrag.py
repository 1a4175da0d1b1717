"""IPv4/IPv6 fragment reassembly: order, overlaps (first wins), loss, expiry, caps; tshark agreement."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, fragment6
from scapy.packet import Raw

from capture_makers import BASE_NS, LINKTYPE_ETHERNET, Frame, wrap, write_pcap
from otsentry.capture import RawFrame, read_capture
from otsentry.net.decode import Decoder
from otsentry.net.ipfrag import FragmentReassembler
from otsentry.net.packet import Packet
from shared import needs_tshark, tshark_fields

PAYLOAD = bytes(range(256)) * 12  # 3072 bytes: no two 8-byte blocks at different offsets look alike


def udp4(payload: bytes = PAYLOAD, ident: int = 0x1234, src: str = "10.0.0.1") -> IP:
    return IP(src=src, dst="10.0.0.2", id=ident) / UDP(sport=20000, dport=20000) / Raw(payload)


def udp6(payload: bytes = PAYLOAD, ident: int = 77) -> IPv6:
    return (IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=ident) / IPv6ExtHdrDestOpt()
            / UDP(sport=4059, dport=4063) / Raw(payload))


def raw_frames(ip_packets, start: float = 1000.0, step: float = 0.001) -> list[RawFrame]:
    frames = []
    for i, p in enumerate(ip_packets):
        data = wrap(LINKTYPE_ETHERNET, p)
        frames.append(RawFrame(start + i * step, LINKTYPE_ETHERNET, data, len(data), None))
    return frames


def decode_frames(frames: list[RawFrame], decoder: Decoder | None = None) -> tuple[list[Packet], Decoder]:
    decoder = decoder or Decoder()
    out = [decoder.decode(f, n) for n, f in enumerate(frames, 1)]
    return [p for p in out if p is not None], decoder


@pytest.mark.parametrize("order", ["in order", "reversed", "shuffled", "last first"])
def test_ipv4_udp_reassembled_in_any_order(order: str) -> None:
    pieces = fragment(udp4(), fragsize=400)
    assert len(pieces) == 8
    if order == "reversed":
        pieces = pieces[::-1]
    elif order == "shuffled":
        random.Random(7).shuffle(pieces)
    elif order == "last first":
        pieces = pieces[-1:] + pieces[:-1]
    packets, decoder = decode_frames(raw_frames(pieces))
    [pkt] = packets
    assert (pkt.proto, pkt.sport, pkt.dport, pkt.payload) == (17, 20000, 20000, PAYLOAD)
    assert pkt.frame == 8  # handed out with the fragment that completed it
    assert pkt.wire_len == sum(len(wrap(LINKTYPE_ETHERNET, p)) for p in pieces)
    counters = decoder.counters
    assert (counters["ip_fragments"], counters["ip_reassembled"], counters["decoded"]) == (8, 1, 1)
    assert len(decoder.fragments) == 0 and decoder.fragments.buffered == 0


def test_ipv4_tcp_segment_in_fragments() -> None:
    segment = IP(src="10.0.0.1", dst="10.0.0.2", id=9) / TCP(sport=40000, dport=502, flags="PA", seq=77,
                                                            ack=88) / Raw(PAYLOAD[:1500])
    packets, _ = decode_frames(raw_frames(fragment(segment, fragsize=600)))
    [pkt] = packets
    assert (pkt.proto, pkt.sport, pkt.dport, pkt.seq, pkt.ack, pkt.flags) == (6, 40000, 502, 77, 88, 0x18)
    assert pkt.payload == PAYLOAD[:1500]


def test_interleaved_datagrams_keep_apart() -> None:
    a = fragment(udp4(PAYLOAD[:2000], ident=1), fragsize=512)
    b = fragment(udp4(PAYLOAD[1000:3000], ident=2), fragsize=512)
    c = fragment(udp4(PAYLOAD[:2000], ident=1, src="10.0.0.9"), fragsize=512)  # same id, other source
    mixed = [p for trio in zip(a, b, c, strict=True) for p in trio]
    packets, decoder = decode_frames(raw_frames(mixed))
    assert sorted((p.src_addr, p.payload) for p in packets) == sorted([
        (bytes([10, 0, 0, 1]), PAYLOAD[:2000]), (bytes([10, 0, 0, 1]), PAYLOAD[1000:3000]),
        (bytes([10, 0, 0, 9]), PAYLOAD[:2000])])
    assert decoder.counters["ip_reassembled"] == 3


def test_overlap_first_wins_and_is_counted() -> None:
    pieces = fragment(udp4(PAYLOAD[:1000]), fragsize=400)  # offsets 0, 400, 800 (IP payload incl. UDP header)
    forged = pieces[1].copy()
    forged[IP].frag = 300 // 8 + 1  # 304..704 overlaps the tail of fragment 0 and the head of fragment 1
    forged[IP].flags = "MF"
    forged[Raw].load = b"\xee" * 400
    del forged[IP].len, forged[IP].chksum
    packets, decoder = decode_frames(raw_frames([pieces[0], forged, pieces[1], pieces[2]]))
    [pkt] = packets
    # fragment 0 held 0..400 and the forgery came before fragment 1: it fills 400..704 and wins there
    whole = bytes(udp4(PAYLOAD[:1000])[UDP])
    expected = whole[:400] + b"\xee" * 304 + whole[704:]
    assert bytes(pkt.payload) == expected[8:]
    assert decoder.counters["ip_frag_overlap"] == 2  # the forgery over fragment 0, fragment 1 over it


def test_later_overlap_never_rewrites_bytes_already_held() -> None:
    pieces = fragment(udp4(PAYLOAD[:1000]), fragsize=400)
    rewrite = pieces[0].copy()
    rewrite[Raw].load = b"\xaa" * len(rewrite[Raw].load)  # same offset and length, other bytes
    del rewrite[IP].len, rewrite[IP].chksum
    packets, decoder = decode_frames(raw_frames([pieces[0], rewrite, pieces[1], pieces[2]]))
    assert packets[0].payload == PAYLOAD[:1000]
    assert decoder.counters["ip_frag_overlap"] == 1


def test_missing_fragment_expires_in_packet_time_and_is_counted() -> None:
    pieces = fragment(udp4(), fragsize=400)
    frames = raw_frames(pieces[:3] + pieces[4:])  # fragment 4 lost
    later = raw_frames([udp4(b"late", ident=5)], start=frames[-1].ts + 29.0)
    packets, decoder = decode_frames(frames + later)
    assert [p.payload for p in packets] == [b"late"]  # unfragmented traffic goes on meanwhile
    assert decoder.counters["ip_frag_expired"] == 0 and len(decoder.fragments) == 1
    # Expiry is checked when fragments arrive (unfragmented traffic pays nothing for it)
    next_datagram = fragment(udp4(ident=6), fragsize=400)[:1]
    decode_frames(raw_frames(next_datagram, start=frames[0].ts + 30.5), decoder)
    assert decoder.counters["ip_frag_expired"] == 1 and len(decoder.fragments) == 1
    assert decoder.counters["ip_reassembled"] == 0


def test_flush_expires_what_is_left() -> None:
    pieces = fragment(udp4(), fragsize=400)
    _, decoder = decode_frames(raw_frames(pieces[1:]))
    decoder.flush()
    assert decoder.counters["ip_frag_expired"] == 1
    assert decoder.fragments.buffered == 0


def test_datagram_cap_evicts_the_oldest() -> None:
    decoder = Decoder(max_frag_datagrams=4)
    firsts = [fragment(udp4(ident=i), fragsize=400) for i in range(6)]
    decode_frames(raw_frames([f[0] for f in firsts]), decoder)
    assert len(decoder.fragments) == 4 and decoder.counters["ip_frag_evicted"] == 2
    packets, _ = decode_frames(raw_frames(firsts[5][1:]), decoder)  # the newest one is still complete-able
    assert [p.payload for p in packets] == [PAYLOAD]
    packets, _ = decode_frames(raw_frames(firsts[0][1:]), decoder)  # the oldest one was dropped
    assert packets == []


def test_byte_cap_evicts_the_oldest() -> None:
    counters: Counter[str] = Counter()
    frags = FragmentReassembler(counters, max_bytes=10_000)
    for ident in range(5):
        frags.add(("a", "b", ident, 17), 0, True, bytes(4000), 1.0, 4000, 17)
    assert frags.buffered <= 10_000 and counters["ip_frag_evicted"] == 3


def test_ping_of_death_fragment_is_bad() -> None:
    counters: Counter[str] = Counter()
    frags = FragmentReassembler(counters)
    assert frags.add(("k",), 65528, False, bytes(100), 1.0, 150, 17) is None  # would end at 65628 > 65535
    assert counters["ip_frag_bad"] == 1 and len(frags) == 0
    assert frags.add(("k",), 0, True, bytes(800), 1.0, 850, 17) is None
    done = frags.add(("k",), 800, False, bytes(80), 1.0, 130, 17)
    assert done == (bytes(880), 17, 980)


def test_empty_fragment_is_bad_and_blocks_nothing() -> None:
    counters: Counter[str] = Counter()
    frags = FragmentReassembler(counters)
    assert frags.add(("k",), 4000, True, b"", 1.0, 34, 17) is None  # nothing past the real end is recorded
    assert counters["ip_frag_bad"] == 1 and len(frags) == 0
    assert frags.add(("k",), 0, True, bytes(800), 1.0, 850, 17) is None
    assert frags.add(("k",), 800, False, bytes(8), 1.0, 60, 17) == (bytes(808), 17, 910)


def test_too_many_pieces_drop_the_datagram() -> None:
    counters: Counter[str] = Counter()
    frags = FragmentReassembler(counters)
    for offset in range(0, 2 * 1030 * 8, 16):  # 8-byte pieces with 8-byte holes between them
        frags.add(("k",), offset, True, bytes(8), 1.0, 60, 17)
    assert counters["ip_frag_bad"] >= 1 and len(frags) <= 1
    assert frags.buffered < 20_000


def test_contradicting_last_fragment_is_ignored() -> None:
    counters: Counter[str] = Counter()
    frags = FragmentReassembler(counters)
    assert frags.add(("k",), 800, False, bytes(80), 1.0, 130, None) is None  # end 880
    assert frags.add(("k",), 1600, False, bytes(80), 1.0, 130, None) is None  # another end: bad
    assert frags.add(("k",), 880, True, bytes(8), 1.0, 60, None) is None  # past the known end: bad
    done = frags.add(("k",), 0, True, b"\x01" * 800, 1.0, 850, 17)
    assert done is not None and done[0] == b"\x01" * 800 + bytes(80) and done[1] == 17
    assert counters["ip_frag_bad"] == 2


def test_non_tcp_udp_fragments_are_not_buffered() -> None:
    pieces = fragment(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP() / Raw(PAYLOAD), fragsize=800)
    packets, decoder = decode_frames(raw_frames(pieces))
    assert packets == [] and len(decoder.fragments) == 0
    assert decoder.counters["ip_fragments"] == len(pieces)


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_ipv6_fragments_with_extension_header_inside(order: str) -> None:
    pieces = fragment6(udp6(), 1280)
    assert len(pieces) == 3
    if order == "reversed":
        pieces = pieces[::-1]
    packets, decoder = decode_frames(raw_frames(pieces))
    [pkt] = packets
    assert (pkt.ip_version, pkt.proto, pkt.sport, pkt.dport, pkt.payload) == (6, 17, 4059, 4063, PAYLOAD)
    assert decoder.counters["ip_fragments"] == 3 and decoder.counters["ip_reassembled"] == 1


def test_ipv6_atomic_fragment_is_a_whole_datagram() -> None:
    atomic = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=5, offset=0, m=0) / UDP(
        sport=1, dport=2) / Raw(b"whole")
    packets, decoder = decode_frames(raw_frames([atomic]))
    assert [p.payload for p in packets] == [b"whole"]
    assert decoder.counters["ip_fragments"] == 0


def test_ipv6_missing_fragment_expires() -> None:
    pieces = fragment6(udp6(), 1280)
    packets, decoder = decode_frames(raw_frames([pieces[0], pieces[2]]))
    assert packets == []
    decoder.flush()
    assert decoder.counters["ip_frag_expired"] == 1


@needs_tshark
def test_reassembly_lands_on_the_same_frame_as_tshark(tmp_path: Path) -> None:
    """tshark reassembles IPv4 and IPv6 by default and shows the UDP/TCP header on the completing frame."""
    rng = random.Random(3)
    v4 = fragment(udp4(), fragsize=600)
    rng.shuffle(v4)
    v4_tcp = fragment(IP(src="10.0.0.3", dst="10.0.0.4", id=4) / TCP(sport=40001, dport=502, flags="PA")
                      / Raw(PAYLOAD[:2000]), fragsize=512)
    v6 = fragment6(udp6(PAYLOAD[:2500], ident=99), 1280)[::-1]
    ip_packets = v4 + v4_tcp + v6
    frames = [Frame(BASE_NS + i * 1000, wrap(LINKTYPE_ETHERNET, p)) for i, p in enumerate(ip_packets)]
    path = write_pcap(tmp_path / "frags.pcap", frames)
    rows = tshark_fields(path, ("udp.srcport", "tcp.srcport", "udp.length", "tcp.len"))
    tshark_done = {int(r[0]): (r[1] or r[2], int(r[3] or 0) - 8 if r[3] else int(r[4])) for r in rows
                   if r[1] or r[2]}
    decoder = Decoder()
    ours = {}
    for n, frame in enumerate(read_capture(path), 1):
        pkt = decoder.decode(frame, n)
        if pkt is not None:
            ours[n] = (str(pkt.sport), len(pkt.payload))
    assert ours == tshark_done
    assert len(ours) == 3
