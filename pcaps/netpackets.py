"""Ethernet / IPv4 / IPv6 / TCP frames with correct checksums, and TCP connections that keep seq/ack.

Frames are built from per-connection templates with ``struct`` so the same code writes the small
sample captures and the million-packet bench captures. Every frame handed to a sink is a complete
Ethernet II frame; other link types are derived from it (see ``linktypes.py``).
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
IPPROTO_TCP = 6

# TCP flag bits (RFC 9293 §3.1)
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

_LITTLE_ENDIAN = sys.byteorder == "little"


def ones_complement_sum(data: bytes | bytearray) -> int:
    """16-bit one's complement sum of ``data`` as big-endian words (RFC 1071), folded, not inverted."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    total = sum(array("H", data))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    # The sum is byte-order independent (RFC 1071 §2(B)): swap once at the end on little-endian hosts.
    return ((total & 0xFF) << 8 | total >> 8) if _LITTLE_ENDIAN else total


def internet_checksum(data: bytes | bytearray, partial: int = 0) -> int:
    """The Internet checksum of ``data`` plus an already folded ``partial`` sum."""
    total = ones_complement_sum(data) + partial
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class Host:
    """A station of the addressing plan."""

    name: str
    mac: bytes
    ip: str

    @property
    def packed_ip(self) -> bytes:
        return ipaddress.ip_address(self.ip).packed

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.ip).version


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


@dataclass
class Frame:
    """One captured frame: time in integer nanoseconds, Ethernet bytes and the ground truth it carries."""

    ts_ns: int
    data: bytes
    messages: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None


FrameSink = Callable[[Frame], None]


class _Direction:
    """The fixed header bytes and counters of one direction of a connection."""

    __slots__ = (
        "addresses",
        "dport",
        "dst",
        "dst_ip",
        "eth",
        "ip_const",
        "ip_id",
        "next_seq",
        "sport",
        "src",
        "src_ip",
        "tcp_const",
        "ttl",
        "v6",
        "window",
    )

    def __init__(
        self, src: Host, sport: int, dst: Host, dport: int, isn: int, ip_id: int, ttl: int, window: int
    ) -> None:
        self.src, self.dst = src, dst
        self.src_ip, self.dst_ip = src.packed_ip, dst.packed_ip
        self.v6 = src.version == 6
        ethertype = ETHERTYPE_IPV6 if self.v6 else ETHERTYPE_IPV4
        self.eth = dst.mac + src.mac + struct.pack("!H", ethertype)
        self.sport, self.dport = sport, dport
        self.next_seq = isn & 0xFFFFFFFF
        self.ip_id = ip_id & 0xFFFF
        self.ttl, self.window = ttl, window
        self.addresses = self.src_ip + self.dst_ip
        # Constant parts of the checksums: the pseudo-header without the TCP length (RFC 9293 §3.1,
        # RFC 8200 §8.1) plus the ports and window; the IPv4 header without length and id (RFC 791).
        self.tcp_const = ones_complement_sum(
            self.addresses + struct.pack("!HHHHH", 0, IPPROTO_TCP, sport, dport, window)
        )
        self.ip_const = ones_complement_sum(
            struct.pack("!HHBB", 0x4500, 0x4000, ttl, IPPROTO_TCP) + self.addresses
        )

    def build(self, flags: int, seq: int, ack: int, payload: bytes, options: bytes = b"") -> bytes:
        """Ethernet + IP + TCP bytes. Checksums are summed from the field values (no second pass over
        the headers): this is the bench generator's hot path."""
        ack = ack if flags & ACK else 0
        offset_flags = ((20 + len(options)) // 4) << 12 | flags
        tcp_len = 20 + len(options) + len(payload)
        total = (
            self.tcp_const
            + tcp_len
            + (seq >> 16)
            + (seq & 0xFFFF)
            + (ack >> 16)
            + (ack & 0xFFFF)
            + offset_flags
        )
        if payload:
            total += ones_complement_sum(payload)
        if options:
            total += ones_complement_sum(options)
        csum = ~_fold(total) & 0xFFFF
        tcp = (
            _TCP.pack(self.sport, self.dport, seq, ack, offset_flags, self.window, csum, 0)
            + options
            + payload
        )
        if self.v6:
            return self.eth + _IP6.pack(0x60000000, tcp_len, IPPROTO_TCP, self.ttl) + self.addresses + tcp
        ip_len = 20 + tcp_len
        ip_csum = ~_fold(self.ip_const + ip_len + self.ip_id) & 0xFFFF
        ip = _IP4.pack(0x45, 0, ip_len, self.ip_id, 0x4000, self.ttl, IPPROTO_TCP, ip_csum)
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        return self.eth + ip + self.addresses + tcp


_TCP = struct.Struct("!HHIIHHHH")
_IP4 = struct.Struct("!BBHHHBBH")
_IP6 = struct.Struct("!IHBB")


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


# SYN options of a typical Windows/Linux stack: MSS 1460, NOP, WS 8, NOP, NOP, SACK permitted.
SYN_OPTIONS = bytes.fromhex("020405b40103030801010402")


class TcpConnection:
    """A TCP connection between a client and a server whose frames go to ``sink`` in the order made.

    Direction 0 is client→server, 1 is server→client (as in the analyzer contract). ``send`` acks
    everything the peer has sent; ``segment`` builds anything else (retransmissions, reordering).
    """

    def __init__(
        self,
        sink: FrameSink,
        client: Host,
        client_port: int,
        server: Host,
        server_port: int,
        client_isn: int,
        server_isn: int,
        client_ip_id: int = 0x1000,
        server_ip_id: int = 0x0100,
        client_ttl: int = 128,
        server_ttl: int = 64,
    ) -> None:
        self.sink = sink
        self.owes_ack = [False, False]  # direction d has received data it has not acknowledged yet
        self.dirs = (
            _Direction(client, client_port, server, server_port, client_isn, client_ip_id, client_ttl, 64240),
            _Direction(server, server_port, client, client_port, server_isn, server_ip_id, server_ttl, 8192),
        )

    @property
    def client(self) -> Host:
        return self.dirs[0].src

    @property
    def server(self) -> Host:
        return self.dirs[1].src

    def endpoints(self, direction: int) -> tuple[str, str]:
        d = self.dirs[direction]
        return d.src.ip, d.dst.ip

    def segment(
        self,
        direction: int,
        ts_ns: int,
        flags: int,
        payload: bytes = b"",
        seq: int | None = None,
        messages: list[dict[str, Any]] | None = None,
        advance: bool = True,
        options: bytes = b"",
        note: str | None = None,
    ) -> Frame:
        """Emit one segment; ``seq`` defaults to the direction's next sequence number."""
        me, peer = self.dirs[direction], self.dirs[1 - direction]
        seq_no = me.next_seq if seq is None else seq & 0xFFFFFFFF
        frame = Frame(ts_ns, me.build(flags, seq_no, peer.next_seq, payload, options), messages or [], note)
        if advance and seq is None:
            me.next_seq = (me.next_seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        if flags & ACK:
            self.owes_ack[direction] = False
        if payload or flags & (SYN | FIN):
            self.owes_ack[1 - direction] = True
        self.sink(frame)
        return frame

    def open(self, ts_ns: int, rtt_ns: int = 400_000) -> int:
        """Three-way handshake starting at ``ts_ns``; returns the time of the final ACK."""
        self.segment(0, ts_ns, SYN, options=SYN_OPTIONS)
        self.segment(1, ts_ns + rtt_ns // 2, SYN | ACK, options=SYN_OPTIONS)
        self.segment(0, ts_ns + rtt_ns, ACK)
        return ts_ns + rtt_ns

    def stamp(self, direction: int, messages: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        """Add the sender and receiver IPs to ground-truth messages."""
        src, dst = self.endpoints(direction)
        for message in messages or ():
            message.setdefault("src", src)
            message.setdefault("dst", dst)
        return messages

    def send(
        self,
        direction: int,
        ts_ns: int,
        payload: bytes,
        messages: list[dict[str, Any]] | None = None,
        note: str | None = None,
    ) -> Frame:
        """A data segment (PSH|ACK) carrying ``payload``; ``messages`` is its ground truth."""
        return self.segment(
            direction, ts_ns, PSH | ACK, payload, messages=self.stamp(direction, messages), note=note
        )

    def ack(self, direction: int, ts_ns: int) -> Frame:
        return self.segment(direction, ts_ns, ACK)

    def delayed_ack(self, direction: int, ts_ns: int) -> Frame | None:
        """A pure ACK, only if ``direction`` has received data it has not acknowledged (no duplicate ACKs)."""
        return self.ack(direction, ts_ns) if self.owes_ack[direction] else None

    def close(self, ts_ns: int, rtt_ns: int = 400_000, initiator: int = 0) -> int:
        """FIN from ``initiator``, FIN|ACK back, final ACK; returns the time of the last frame."""
        self.segment(initiator, ts_ns, FIN | ACK)
        self.segment(1 - initiator, ts_ns + rtt_ns // 2, FIN | ACK)
        self.segment(initiator, ts_ns + rtt_ns, ACK)
        return ts_ns + rtt_ns


IPPROTO_UDP = 17
_UDP = struct.Struct("!HHHH")


class UdpFlow:
    """Datagrams between two IPv4 endpoints (direction 0: ``a`` → ``b``), with IP ids that count up per
    sender and correct IPv4 and UDP checksums (RFC 791, RFC 768)."""

    def __init__(
        self,
        sink: FrameSink,
        a: Host,
        a_port: int,
        b: Host,
        b_port: int,
        a_ip_id: int,
        b_ip_id: int,
        ttl: int = 64,
    ) -> None:
        if a.version != 4 or b.version != 4:
            raise ValueError("UdpFlow builds IPv4 only")
        self.sink = sink
        self.ends = ((a, a_port, b, b_port), (b, b_port, a, a_port))
        self.ip_id = [a_ip_id & 0xFFFF, b_ip_id & 0xFFFF]
        self.ttl = ttl

    def send(
        self, direction: int, ts_ns: int, payload: bytes, messages: list[dict[str, Any]] | None = None
    ) -> Frame:
        src, sport, dst, dport = self.ends[direction]
        for message in messages or ():
            message.setdefault("src", src.ip)
            message.setdefault("dst", dst.ip)
        udp_len = 8 + len(payload)
        addresses = src.packed_ip + dst.packed_ip
        pseudo = ones_complement_sum(addresses + struct.pack("!HH", IPPROTO_UDP, udp_len))
        checksum = internet_checksum(_UDP.pack(sport, dport, udp_len, 0) + payload, pseudo) or 0xFFFF
        ip_id = self.ip_id[direction]
        self.ip_id[direction] = (ip_id + 1) & 0xFFFF
        header = _IP4.pack(0x45, 0, 20 + udp_len, ip_id, 0x4000, self.ttl, IPPROTO_UDP, 0)
        ip_csum = internet_checksum(header + addresses)
        ip = header[:10] + struct.pack("!H", ip_csum) + addresses
        eth = dst.mac + src.mac + struct.pack("!H", ETHERTYPE_IPV4)
        frame = Frame(ts_ns, eth + ip + _UDP.pack(sport, dport, udp_len, checksum) + payload, messages or [])
        self.sink(frame)
        return frame
