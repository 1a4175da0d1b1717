"""L2–L4 decoder: a captured frame → one TCP/UDP ``Packet`` (or None, with the reason counted).

Link layers: Ethernet with 802.1Q/802.1ad/QinQ tags, BSD null/loopback, Linux cooked SLL and SLL2, raw
IP. Network: IPv4 (options, fragments) and IPv6 (extension headers, fragments). Transport: TCP and UDP.
Addresses stay raw bytes; nothing is rendered here. The common path (Ethernet/IPv4/TCP) runs without
exceptions or helper calls; every other case is a branch off it.

Every frame that yields no packet increments exactly one reason counter:

``truncated``             the frame ends inside a link, IP or TCP/UDP header
``unsupported_linktype``  a link type this decoder does not know
``non_ip``                ARP, LLDP, GOOSE, LLC…: not IPv4 or IPv6
``ip_bad_header``         wrong IP version, IPv4 header length < 20 or beyond the total length
``ip_bad_length``         IP says the datagram is longer than the frame and the frame was not snapped
``tcp_bad_header`` / ``udp_bad_length``  a TCP data offset or UDP length that contradicts the IP length
``not_tcp_udp``           ICMP, ESP, OSPF, an IPv6 "no next header"…
``ip_fragments``          a fragment, held for reassembly (see ipfrag.py for its own counters)

Besides those: ``truncated_payload`` counts packets handed out with a payload cut by the capture's
snaplen (their headers were complete; the flow layer sees the lost bytes as a gap), ``ip_len_zero``
IPv4 packets with total length 0 (TCP segmentation offload on the capturing host; the captured length
is used, as Wireshark does), and ``decoded`` the packets handed out.
"""

from __future__ import annotations

import struct
from collections import Counter

from otsentry.capture import RawFrame
from otsentry.net.ipfrag import FragmentReassembler
from otsentry.net.packet import Packet

# Link types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_DLT12 = 12  # DLT_RAW as written by some systems: raw IPv4/IPv6
LINKTYPE_RAW_DLT14 = 14  # DLT_RAW on OpenBSD
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, by the version nibble
LINKTYPE_LOOP = 108  # OpenBSD loopback: like NULL, family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
RAW_LINKTYPES = frozenset({LINKTYPE_RAW, LINKTYPE_RAW_DLT12, LINKTYPE_RAW_DLT14})
NULL_LINKTYPES = frozenset({LINKTYPE_NULL, LINKTYPE_LOOP})

# EtherTypes (IEEE Registration Authority).
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_MIN_TYPE = 0x0600  # below this the field is an IEEE 802.3 length (LLC follows), not a type
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q C-tag, 802.1ad S-tag, pre-standard QinQ

# BSD address families in a null/loopback header (Wireshark packet-null.c, libpcap's LINKTYPE_NULL notes):
# AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD/BSD/OS), 28 (FreeBSD), 30 (Darwin).
NULL_FAMILIES = {2: ETH_IPV4, 24: ETH_IPV6, 28: ETH_IPV6, 30: ETH_IPV6}

ARPHRD_ETHER = 1  # Linux cooked header: the address is a 6-byte MAC

PROTO_TCP = 6
PROTO_UDP = 17
# IPv6 extension headers walked to reach the transport (IANA "IPv6 Extension Header Types"): hop-by-hop,
# routing, destination options, mobility, HIP, shim6, experimental. All have the generic layout
# (next header, length in 8-octet units not counting the first 8); AH (51) counts 4-octet units (RFC 4302).
IPV6_EXT_GENERIC = frozenset({0, 43, 60, 135, 139, 140, 253, 254})
IPV6_FRAGMENT = 44
IPV6_AH = 51

# ver/ihl, total length, id, flags/offset, proto, src, dst
_IPV4 = struct.Struct("!BxHHHxB2x4s4s").unpack_from
_IPV6 = struct.Struct("!4xHB1x16s16s").unpack_from  # payload length, next header, src, dst
_IPV6_FRAG = struct.Struct("!BxHI").unpack_from  # next header, offset/flags, identification
_TCP = struct.Struct("!HHIIBB").unpack_from  # ports, seq, ack, data offset, flags
_UDP = struct.Struct("!HHH").unpack_from  # ports, length
# The common case in one call: Ethernet (no tag), IPv4 without options, TCP.
_ETH_IPV4_TCP = struct.Struct("!6s6sHBxHHHxB2x4s4sHHIIBB").unpack_from
ETH_IPV4_TCP_LEN = 54


class Decoder:
    """Turns ``RawFrame``s into ``Packet``s; holds the IP fragment reassembler and the counters."""

    def __init__(self, frag_timeout: float = 30.0, max_frag_datagrams: int = 4096) -> None:
        self._counters: Counter[str] = Counter()
        self.decoded = 0  # a plain int on the hot path; folded into ``counters`` when read
        self.fragments = FragmentReassembler(self._counters, frag_timeout, max_frag_datagrams)

    @property
    def counters(self) -> Counter[str]:
        self._counters["decoded"] = self.decoded
        return self._counters

    def flush(self) -> None:
        """End of input: incomplete fragmented datagrams expire (and are counted)."""
        self.fragments.flush()

    def decode(self, frame: RawFrame, frame_no: int) -> Packet | None:
        ts, linktype, data, wire_len, ifname = frame
        size = len(data)
        if linktype == LINKTYPE_ETHERNET and size >= ETH_IPV4_TCP_LEN:
            # Fast path: one unpack for all three headers, taken only when every check below passes;
            # anything unusual (tags, options, fragments, odd lengths) goes the general way.
            (dst_mac, src_mac, etype, ver_ihl, total, _, frag, proto, src, dst, sport, dport, seq, ack, doff,
             flags) = _ETH_IPV4_TCP(data, 0)
            doff = (doff >> 4) << 2
            end = 14 + total
            if (etype == ETH_IPV4 and ver_ihl == 0x45 and proto == PROTO_TCP and not frag & 0x3FFF
                    and 20 <= doff <= total - 20 and end <= size):
                self.decoded += 1
                return Packet(ts, frame_no, src_mac, dst_mac, None, None, 4, src, dst, PROTO_TCP, sport,
                              dport, flags, seq, ack, data[34 + doff:end], wire_len, ifname)
        return self._decode(ts, linktype, data, size, wire_len, ifname, frame_no)

    def _decode(self, ts: float, linktype: int, data: bytes, size: int, wire_len: int, ifname: str | None,
                frame_no: int) -> Packet | None:
        src_mac = dst_mac = vlan = inner_vlan = None
        if linktype == LINKTYPE_ETHERNET:
            if size < 14:
                self._counters["truncated"] += 1
                return None
            etype = (data[12] << 8) | data[13]
            off = 14
            dst_mac = data[:6]
            src_mac = data[6:12]
        elif linktype in RAW_LINKTYPES or linktype in (LINKTYPE_IPV4, LINKTYPE_IPV6):
            if not size:
                self._counters["truncated"] += 1
                return None
            version = data[0] >> 4
            etype = ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else 0
            if not etype or (linktype == LINKTYPE_IPV4 and version != 4) or (
                    linktype == LINKTYPE_IPV6 and version != 6):
                self._counters["ip_bad_header"] += 1
                return None
            off = 0
        elif linktype in NULL_LINKTYPES:
            if size < 4:
                self._counters["truncated"] += 1
                return None
            family = int.from_bytes(data[:4], "little")
            if family > 0xFFFF:  # written by a big-endian host (and always for LINKTYPE_LOOP)
                family = int.from_bytes(data[:4], "big")
            etype = NULL_FAMILIES.get(family, 0)
            off = 4
        elif linktype == LINKTYPE_LINUX_SLL:
            if size < 16:
                self._counters["truncated"] += 1
                return None
            etype = (data[14] << 8) | data[15]
            off = 16
            if data[2:4] == b"\x00\x01" and data[4:6] == b"\x00\x06":  # ARPHRD_ETHER, 6-byte address
                src_mac = data[6:12]
        elif linktype == LINKTYPE_LINUX_SLL2:
            if size < 20:
                self._counters["truncated"] += 1
                return None
            etype = (data[0] << 8) | data[1]
            off = 20
            if data[8:10] == b"\x00\x01" and data[11] == 6:
                src_mac = data[12:18]
        else:
            self._counters["unsupported_linktype"] += 1
            return None

        if etype in VLAN_TPIDS:  # 802.1Q / QinQ: outer tag → vlan, inner → inner_vlan, any further skipped
            if off + 4 > size:
                self._counters["truncated"] += 1
                return None
            vlan = ((data[off] << 8) | data[off + 1]) & 0x0FFF
            etype = (data[off + 2] << 8) | data[off + 3]
            off += 4
            while etype in VLAN_TPIDS:
                if off + 4 > size:
                    self._counters["truncated"] += 1
                    return None
                if inner_vlan is None:
                    inner_vlan = ((data[off] << 8) | data[off + 1]) & 0x0FFF
                etype = (data[off + 2] << 8) | data[off + 3]
                off += 4

        if etype == ETH_IPV4:
            if off + 20 > size:
                self._counters["truncated"] += 1
                return None
            ver_ihl, total, ident, frag, proto, src, dst = _IPV4(data, off)
            ihl = (ver_ihl & 0x0F) << 2
            if ver_ihl >> 4 != 4 or ihl < 20:
                self._counters["ip_bad_header"] += 1
                return None
            end = off + total
            snapped = False
            if end > size or total < ihl:
                if total == 0:  # TSO on the capturing host: the NIC fills the length in later
                    self._counters["ip_len_zero"] += 1
                    end = size
                elif total < ihl:
                    self._counters["ip_bad_header"] += 1
                    return None
                elif wire_len > size:  # cut by the snaplen: decode what was captured
                    end = size
                    snapped = True
                else:
                    self._counters["ip_bad_length"] += 1
                    return None
            l4 = off + ihl
            if l4 > end:
                self._counters["truncated"] += 1
                return None
            if frag & 0x3FFF:  # MF set or a non-zero offset: a fragment
                return self._ipv4_fragment(ts, frame_no, data, l4, end, ident, frag, proto, src, dst, src_mac,
                                           dst_mac, vlan, inner_vlan, wire_len, ifname)
            if proto == PROTO_TCP:
                if l4 + 20 > end:
                    self._counters["truncated" if snapped else "tcp_bad_header"] += 1
                    return None
                sport, dport, seq, ack, doff, flags = _TCP(data, l4)
                doff = (doff >> 4) << 2
                if doff < 20 or l4 + doff > end:
                    self._counters["truncated" if snapped and doff >= 20 else "tcp_bad_header"] += 1
                    return None
                if snapped:
                    self._counters["truncated_payload"] += 1
                self.decoded += 1
                return Packet(ts, frame_no, src_mac, dst_mac, vlan, inner_vlan, 4, src, dst, PROTO_TCP, sport,
                              dport, flags, seq, ack, data[l4 + doff:end], wire_len, ifname)
            return self._transport(ts, frame_no, data, l4, end, snapped, 4, proto, src, dst, src_mac, dst_mac,
                                   vlan, inner_vlan, wire_len, ifname)
        if etype == ETH_IPV6:
            return self._ipv6(ts, frame_no, data, off, src_mac, dst_mac, vlan, inner_vlan, wire_len, ifname)
        self._counters["non_ip"] += 1
        return None

    def _ipv4_fragment(self, ts: float, frame_no: int, data: bytes, l4: int, end: int, ident: int, frag: int,
                       proto: int, src: bytes, dst: bytes, src_mac: bytes | None, dst_mac: bytes | None,
                       vlan: int | None, inner_vlan: int | None, wire_len: int,
                       ifname: str | None) -> Packet | None:
        counters = self._counters
        counters["ip_fragments"] += 1
        if proto != PROTO_TCP and proto != PROTO_UDP:
            return None  # nothing downstream wants it: do not spend memory on it
        done = self.fragments.add((src, dst, ident, proto), (frag & 0x1FFF) << 3, bool(frag & 0x2000),
                                  data[l4:end], ts, wire_len, proto)
        if done is None:
            return None
        payload, proto, wire_len = done
        return self._transport(ts, frame_no, payload, 0, len(payload), False, 4, proto, src, dst, src_mac,
                               dst_mac, vlan, inner_vlan, wire_len, ifname)

    def _ipv6(self, ts: float, frame_no: int, data: bytes, off: int, src_mac: bytes | None,
              dst_mac: bytes | None, vlan: int | None, inner_vlan: int | None, wire_len: int,
              ifname: str | None) -> Packet | None:
        counters = self._counters
        size = len(data)
        if off + 40 > size:
            counters["truncated"] += 1
            return None
        if data[off] >> 4 != 6:
            counters["ip_bad_header"] += 1
            return None
        plen, nxt, src, dst = _IPV6(data, off)
        pos = off + 40
        end = pos + plen
        snapped = False
        if end > size:
            if wire_len <= size:
                counters["ip_bad_length"] += 1
                return None
            end = size
            snapped = True
        while True:  # walk the extension headers; each is ≥ 8 bytes, so this ends within the datagram
            if nxt in (PROTO_TCP, PROTO_UDP):
                break
            if nxt in IPV6_EXT_GENERIC or nxt == IPV6_AH:
                if pos + 8 > end:
                    counters["truncated"] += 1
                    return None
                length = (data[pos + 1] + 2) << 2 if nxt == IPV6_AH else (data[pos + 1] + 1) << 3
                nxt = data[pos]
                pos += length
                if pos > end:
                    counters["truncated"] += 1
                    return None
            elif nxt == IPV6_FRAGMENT:
                if pos + 8 > end:
                    counters["truncated"] += 1
                    return None
                inner, offset_flags, ident = _IPV6_FRAG(data, pos)
                pos += 8
                offset, more = offset_flags & 0xFFF8, bool(offset_flags & 1)
                if offset == 0 and not more:  # an atomic fragment (RFC 6946): a whole datagram
                    nxt = inner
                    continue
                counters["ip_fragments"] += 1
                done = self.fragments.add((src, dst, ident), offset, more, data[pos:end], ts, wire_len,
                                          inner if offset == 0 else None)
                if done is None:
                    return None
                data, nxt, wire_len = done  # the reassembled fragmentable part: keep walking it
                pos, end, snapped = 0, len(data), False
            else:
                counters["not_tcp_udp"] += 1
                return None
        return self._transport(ts, frame_no, data, pos, end, snapped, 6, nxt, src, dst, src_mac, dst_mac,
                               vlan, inner_vlan, wire_len, ifname)

    def _transport(self, ts: float, frame_no: int, data: bytes, l4: int, end: int, snapped: bool,
                   version: int, proto: int, src: bytes, dst: bytes, src_mac: bytes | None,
                   dst_mac: bytes | None, vlan: int | None, inner_vlan: int | None, wire_len: int,
                   ifname: str | None) -> Packet | None:
        counters = self._counters
        if proto == PROTO_TCP:
            if l4 + 20 > end:
                counters["truncated" if snapped else "tcp_bad_header"] += 1
                return None
            sport, dport, seq, ack, doff, flags = _TCP(data, l4)
            doff = (doff >> 4) << 2
            if doff < 20 or l4 + doff > end:
                counters["truncated" if snapped and doff >= 20 else "tcp_bad_header"] += 1
                return None
            payload = data[l4 + doff:end]
            seq_ack = seq, ack
        elif proto == PROTO_UDP:
            if l4 + 8 > end:
                counters["truncated" if snapped else "udp_bad_length"] += 1
                return None
            sport, dport, length = _UDP(data, l4)
            if length < 8 or (l4 + length > end and not snapped):
                counters["udp_bad_length"] += 1
                return None
            payload = data[l4 + 8:min(l4 + length, end)]  # a UDP length shorter than IP's: trailer dropped
            flags, seq_ack = 0, (0, 0)
        else:
            counters["not_tcp_udp"] += 1
            return None
        if snapped:
            counters["truncated_payload"] += 1
        self.decoded += 1
        return Packet(ts, frame_no, src_mac, dst_mac, vlan, inner_vlan, version, src, dst, proto, sport,
                      dport, flags, seq_ack[0], seq_ack[1], payload, wire_len, ifname)
