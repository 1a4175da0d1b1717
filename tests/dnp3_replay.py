"""Replay a capture through the DNP3 analyzers without the sensor: scapy reads the packets, a
minimal per-direction TCP sequencer (SYN, in-order, overlaps, gaps) feeds on_data/on_gap, UDP goes
to on_datagram. Shared by the DNP3 reference tests and by the timing script."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otsentry.protocols.dnp3 import Dnp3DatagramAnalyzer, Dnp3StreamAnalyzer, probe

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps"
DNP3_PORTS = {20000, 20001}  # 20001: zeek's dnp3_read_p20001.pcap (found by the probe as well)


@dataclass
class _Flow:
    analyzer: Any
    client: tuple[str, int]
    server: tuple[str, int]
    next_seq: list[int | None] = field(default_factory=lambda: [None, None])
    syn: list[bool] = field(default_factory=lambda: [False, False])


@dataclass
class Replay:
    messages: list[tuple[int, int, dict[str, Any]]]  # (frame, direction, fields)
    analyzers: list[Any]
    flows: list[tuple[tuple[str, int], tuple[str, int]]]  # (client, server) of each message


def payloads(path: Path) -> list[tuple[int, str, tuple[str, int], tuple[str, int], int, int, bytes]]:
    """(frame, proto, src, dst, flags, seq, payload) for every TCP/UDP packet of a capture."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    out = []
    with PcapReader(str(path)) as reader:
        for number, pkt in enumerate(reader, 1):
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            if ip is None:
                continue
            l4 = ip.getlayer(TCP) or ip.getlayer(UDP)
            if l4 is None:
                continue
            proto = "tcp" if isinstance(l4, TCP) else "udp"
            data = bytes(l4.payload)
            if isinstance(ip, IP) and ip.len is not None:  # drop Ethernet padding
                data = data[: max(0, ip.len - ip.ihl * 4 - (l4.dataofs * 4 if proto == "tcp" else 8))]
            flags = int(l4.flags) if proto == "tcp" else 0
            seq = l4.seq if proto == "tcp" else 0
            out.append((number, proto, (ip.src, l4.sport), (ip.dst, l4.dport), flags, seq, data))
    return out


def replay(path: Path, **analyzer_args: Any) -> Replay:
    flows: dict[tuple, _Flow] = {}
    messages: list[tuple[int, int, dict[str, Any]]] = []
    analyzers = []
    message_flows = []
    for number, proto, src, dst, flags, seq, data in payloads(path):
        key = (proto, *sorted([src, dst]))
        flow = flows.get(key)
        if flow is None:
            if proto == "tcp" and flags & 0x02:  # SYN: the sender is the client (SYN/ACK: the receiver)
                client = dst if flags & 0x10 else src
            elif dst[1] in DNP3_PORTS:
                client = src
            elif src[1] in DNP3_PORTS:
                client = dst
            elif data and probe(data):
                client = src
            else:
                continue
            analyzer = (
                Dnp3StreamAnalyzer(**analyzer_args)
                if proto == "tcp"
                else Dnp3DatagramAnalyzer(**analyzer_args)
            )
            flow = flows[key] = _Flow(analyzer, client, dst if client == src else src)
            analyzers.append(analyzer)
        direction = 0 if src == flow.client else 1
        out: list = []
        if proto == "udp":
            if data:
                flow.analyzer.on_datagram(direction, data, 0.0, number, out)
        else:
            if flags & 0x02:
                flow.next_seq[direction] = (seq + 1) & 0xFFFFFFFF
                flow.syn[direction] = True
            if data:
                expected = flow.next_seq[direction]
                if expected is None:
                    flow.analyzer.on_gap(direction)  # joined mid-stream
                    expected = seq
                diff = (seq - expected) & 0xFFFFFFFF
                if diff >= 1 << 31:  # starts before what we have: keep only new octets
                    skip = (expected - seq) & 0xFFFFFFFF
                    data = data[skip:] if skip < len(data) else b""
                    seq = expected
                elif diff:
                    flow.analyzer.on_gap(direction)
                if data:
                    flow.analyzer.on_data(direction, data, 0.0, number, out)
                    flow.next_seq[direction] = (seq + len(data)) & 0xFFFFFFFF
        messages.extend((frame, d, fields) for d, _ts, frame, fields in out)
        message_flows.extend([(flow.client, flow.server)] * len(out))
    return Replay(messages, analyzers, message_flows)
