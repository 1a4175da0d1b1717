"""Truncated frames, lying lengths and random bytes: None with one counted reason, never an exception."""

from __future__ import annotations

import struct
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from capture_makers import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    transport_samples,
    wrap,
)
from otsentry.capture import RawFrame
from otsentry.net.decode import Decoder
from otsentry.net.packet import Packet

# Every way a frame can fail; each failing frame bumps exactly one of them (a held fragment: ip_fragments).
REASONS = ("truncated", "unsupported_linktype", "non_ip", "ip_bad_header", "ip_bad_length", "tcp_bad_header",
           "udp_bad_length", "not_tcp_udp", "ip_fragments")
LINK_TYPES = [LINKTYPE_ETHERNET, LINKTYPE_NULL, LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
              LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6]
MAC = "02:00:00:00:00:01"


def decode_one(data: bytes, linktype: int = LINKTYPE_ETHERNET, wire_len: int | None = None,
               decoder: Decoder | None = None, ts: float = 1.0) -> tuple[Packet | None, Counter[str]]:
    """Decode one frame; returns the packet and how the counters moved (checked for the one-reason rule)."""
    decoder = decoder or Decoder()
    before = Counter(decoder.counters)
    pkt = decoder.decode(RawFrame(ts, linktype, data, len(data) if wire_len is None else wire_len, None), 1)
    delta = Counter(decoder.counters)
    delta.subtract(before)
    delta = +delta
    reasons = sum(delta[r] for r in REASONS)
    if pkt is None:
        assert delta["decoded"] == 0
        assert reasons == 1 or (delta["ip_fragments"] == 1 and reasons == 2), delta
    else:
        assert delta["decoded"] == 1 and (reasons == 0 or delta["ip_fragments"] == 1), delta
        assert isinstance(pkt.payload, bytes) and pkt.proto in (6, 17)
        assert len(pkt.src_addr) == len(pkt.dst_addr) == (4 if pkt.ip_version == 4 else 16)
    return pkt, delta


def eth(ip_packet) -> bytes:
    return bytes(Ether(src=MAC, dst=MAC) / ip_packet)


def tcp4(payload: bytes = b"0123456789abcdef", **ip_fields) -> IP:
    segment = TCP(sport=1000, dport=502, flags="PA") / Raw(payload)
    return IP(src="10.0.0.1", dst="10.0.0.2", **ip_fields) / segment


def with_ip_total_length(frame: bytes, total: int) -> bytes:
    return frame[:16] + struct.pack("!H", total) + frame[18:]


# -- truncation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("linktype", LINK_TYPES)
def test_every_cut_of_every_link_type(linktype: int) -> None:
    for sample in transport_samples():
        if linktype in (LINKTYPE_IPV4, LINKTYPE_IPV6) and sample.version != linktype - 224:
            continue
        frame = wrap(linktype, sample)
        full, _ = decode_one(frame, linktype)
        assert full is not None
        payload_at = len(frame) - len(full.payload)
        for cut in range(len(frame)):
            # snapped by the capture: the headers decode, the payload is what was captured
            pkt, delta = decode_one(frame[:cut], linktype, wire_len=len(frame))
            if cut < payload_at:
                assert pkt is None and delta["truncated"] == 1, (linktype, sample.summary(), cut)
            else:
                assert pkt is not None and pkt.payload == full.payload[:cut - payload_at]
                assert delta["truncated_payload"] == 1
            # the same bytes as a whole frame: the IP length lies, nothing is decoded
            pkt, delta = decode_one(frame[:cut], linktype)
            assert pkt is None


def test_snapped_frame_agrees_with_wire_length_not_guesswork() -> None:
    frame = eth(tcp4(b"x" * 100))
    pkt, delta = decode_one(frame[:96], wire_len=len(frame))
    assert pkt is not None and pkt.payload == b"x" * 42 and pkt.wire_len == len(frame)
    assert delta["truncated_payload"] == 1
    pkt, delta = decode_one(frame[:96])
    assert pkt is None and delta["ip_bad_length"] == 1


# -- lying lengths ------------------------------------------------------------------------------------------

def test_ip_total_length_larger_than_the_frame() -> None:
    frame = with_ip_total_length(eth(tcp4()), 1400)
    pkt, delta = decode_one(frame)
    assert pkt is None and delta["ip_bad_length"] == 1


def test_ip_total_length_smaller_than_the_header() -> None:
    pkt, delta = decode_one(with_ip_total_length(eth(tcp4()), 12))
    assert pkt is None and delta["ip_bad_header"] == 1


def test_ip_total_length_trims_the_ethernet_trailer() -> None:
    frame = eth(tcp4(b"abc")) + b"\x00" * 3 + b"TRAILER"
    pkt, _ = decode_one(frame)
    assert pkt is not None and pkt.payload == b"abc"


def test_ip_total_length_zero_means_segmentation_offload() -> None:
    frame = with_ip_total_length(eth(tcp4(b"offloaded")), 0)
    pkt, delta = decode_one(frame)
    assert pkt is not None and pkt.payload == b"offloaded" and delta["ip_len_zero"] == 1


@pytest.mark.parametrize("ver_ihl", [0x44, 0x4F, 0x65, 0x05])
def test_bad_version_or_header_length(ver_ihl: int) -> None:
    frame = bytearray(eth(tcp4()))
    frame[14] = ver_ihl
    pkt, delta = decode_one(bytes(frame))
    assert pkt is None and delta["ip_bad_header"] == 1


def test_ip_options_are_skipped() -> None:
    pkt, _ = decode_one(eth(tcp4(b"opt", options=[b"\x94\x04\x00\x00", b"\x01\x01\x01\x00"])))
    assert pkt is not None and (pkt.sport, pkt.payload) == (1000, b"opt")


@pytest.mark.parametrize("data_offset", [0, 4, 15])
def test_tcp_data_offset_out_of_range(data_offset: int) -> None:
    frame = bytearray(eth(tcp4(b"abc")))
    frame[14 + 20 + 12] = data_offset << 4
    pkt, delta = decode_one(bytes(frame))
    assert pkt is None and delta["tcp_bad_header"] == 1


def test_tcp_header_longer_than_the_datagram() -> None:
    frame = eth(IP(src="10.0.0.1", dst="10.0.0.2") / TCP()) [:14 + 20 + 12]
    pkt, delta = decode_one(with_ip_total_length(frame, 32))
    assert pkt is None and delta["tcp_bad_header"] == 1


@pytest.mark.parametrize(("udp_length", "reason"), [(3, "udp_bad_length"), (7, "udp_bad_length"),
                                                      (600, "udp_bad_length")])
def test_udp_length_lies(udp_length: int, reason: str) -> None:
    frame = bytearray(eth(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"z" * 20)))
    frame[14 + 20 + 4:14 + 20 + 6] = struct.pack("!H", udp_length)
    pkt, delta = decode_one(bytes(frame))
    assert pkt is None and delta[reason] == 1


def test_udp_length_shorter_than_ip_payload_trims() -> None:
    frame = bytearray(eth(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"z" * 20)))
    frame[14 + 20 + 4:14 + 20 + 6] = struct.pack("!H", 8 + 5)
    pkt, _ = decode_one(bytes(frame))
    assert pkt is not None and pkt.payload == b"zzzzz"


def test_ipv6_payload_length_lies() -> None:
    frame = bytearray(eth(IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2) / Raw(b"q" * 10)))
    frame[14 + 4:14 + 6] = struct.pack("!H", 500)
    pkt, delta = decode_one(bytes(frame))
    assert pkt is None and delta["ip_bad_length"] == 1
    pkt, delta = decode_one(bytes(frame), wire_len=14 + 40 + 500)  # snapped instead
    assert pkt is not None and pkt.payload == b"q" * 10 and delta["truncated_payload"] == 1


def test_ipv6_extension_header_running_past_the_end() -> None:
    frame = bytearray(eth(IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrDestOpt() / UDP() / Raw(b"q")))
    frame[14 + 40 + 1] = 200  # header length 201 × 8 bytes
    pkt, delta = decode_one(bytes(frame))
    assert pkt is None and delta["truncated"] == 1


@pytest.mark.parametrize("next_header", [50, 58, 59, 132])  # ESP, ICMPv6, no next header, SCTP
def test_ipv6_without_tcp_or_udp(next_header: int) -> None:
    frame = eth(IPv6(src="fd00::1", dst="fd00::2", nh=next_header) / Raw(b"\x00" * 16))
    pkt, delta = decode_one(frame)
    assert pkt is None and delta["not_tcp_udp"] == 1


def test_truncated_vlan_tags() -> None:
    tagged = wrap(LINKTYPE_ETHERNET, transport_samples()[0], "qinq")
    for cut in (15, 17, 19, 21):
        pkt, delta = decode_one(tagged[:cut])
        assert pkt is None and delta["truncated"] == 1


def test_many_stacked_vlan_tags_end() -> None:
    frame = bytes(6) + bytes(6) + b"\x81\x00\x00\x05" * 2000 + b"\x81\x00"  # tags to the end of the frame
    pkt, delta = decode_one(frame)
    assert pkt is None and delta["truncated"] == 1


# -- fuzz --------------------------------------------------------------------------------------------------

VALID = [(lt, wrap(lt, s)) for lt in LINK_TYPES for s in transport_samples()
         if not (lt == LINKTYPE_IPV4 and s.version != 4) and not (lt == LINKTYPE_IPV6 and s.version != 6)]
VALID += [(LINKTYPE_ETHERNET, wrap(LINKTYPE_ETHERNET, s, v)) for s in transport_samples()
          for v in ("dot1q", "qinq", "qinq9100")]


@settings(max_examples=400, deadline=None)
@given(linktype=st.sampled_from([*LINK_TYPES, 105, 276]), data=st.binary(max_size=120),
       extra_wire=st.integers(0, 3000))
def test_random_bytes_on_every_link_type(linktype: int, data: bytes, extra_wire: int) -> None:
    decode_one(data, linktype, wire_len=len(data) + extra_wire)


@settings(max_examples=300, deadline=None)
@given(valid=st.sampled_from(VALID), edits=st.lists(st.tuples(st.integers(0, 1600), st.integers(0, 255)),
                                                      max_size=6),
       cut=st.integers(0, 1600), snapped=st.booleans())
def test_mutated_valid_frames(valid: tuple[int, bytes], edits: list[tuple[int, int]], cut: int,
                              snapped: bool) -> None:
    linktype, frame = valid
    data = bytearray(frame)
    for pos, value in edits:
        data[pos % len(data)] = value
    data = data[:cut] if cut < len(data) else data
    decode_one(bytes(data), linktype, wire_len=len(frame) if snapped else len(data))


@settings(max_examples=150, deadline=None)
@given(fragments=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 8191), st.booleans(),
                                    st.integers(0, 1480), st.floats(0, 100)), max_size=40))
def test_random_ipv4_fragment_sequences(fragments: list[tuple[int, int, bool, int, float]]) -> None:
    decoder = Decoder(frag_timeout=30.0, max_frag_datagrams=3)
    for ident, offset, more, length, ts in fragments:
        flags_offset = (0x2000 if more else 0) | offset
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, ident, flags_offset, 64, 17, 0,
                             b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")
        data = header + bytes([ident]) * length  # raw IPv4: the fragment fields exactly as drawn
        decode_one(data, LINKTYPE_RAW, decoder=decoder, ts=ts)
        assert len(decoder.fragments) <= 3
        assert decoder.fragments.buffered <= 3 * 65535
