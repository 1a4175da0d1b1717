"""IEC 60870-5-104 test helpers: APDU builders (hand-made bytes) and capture replay into the analyzer."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from otsentry.protocols.base import Fields
from otsentry.protocols.iec104 import Iec104Analyzer

SHARED_PCAPS = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps"
IEC104_CAPTURES = [
    SHARED_PCAPS / "zeek-iec104" / "iec104.pcap",
    *sorted((SHARED_PCAPS / "iti-ics" / "IEC60870-5-104").glob("*.pcap")),
]
PARSITECTS = SHARED_PCAPS / "zeek-iec104" / "baselines" / "parsitects-annotated-hex"
IEC104_PORT = 2404


# -- builders ------------------------------------------------------------------------------------


def ioa(address: int) -> bytes:
    return address.to_bytes(3, "little")


def asdu(
    type_id: int,
    objects: bytes,
    count: int = 1,
    *,
    sq: bool = False,
    cot: int = 6,
    negative: bool = False,
    test: bool = False,
    originator: int = 0,
    common_address: int = 1,
) -> bytes:
    """ASDU header (type, VSQ, 2-octet COT, 2-octet common address) + ``objects`` as given."""
    vsq = (0x80 if sq else 0) | count
    cot_octet = cot | (0x40 if negative else 0) | (0x80 if test else 0)
    return struct.pack("<BBBBH", type_id, vsq, cot_octet, originator, common_address) + objects


def i_frame(asdu_bytes: bytes, send: int = 0, recv: int = 0) -> bytes:
    return bytes([0x68, 4 + len(asdu_bytes)]) + struct.pack("<HH", send << 1, recv << 1) + asdu_bytes


def s_frame(recv: int) -> bytes:
    return bytes([0x68, 4, 0x01, 0x00]) + struct.pack("<H", recv << 1)


def u_frame(function_bit: int) -> bytes:
    return bytes([0x68, 4, function_bit | 0x03, 0, 0, 0])


STARTDT_ACT = u_frame(0x04)
TESTFR_CON = u_frame(0x80)


def cp56(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    ms: int,
    *,
    invalid: bool = False,
    summer: bool = False,
) -> bytes:
    return struct.pack(
        "<HBBBBB",
        ms,
        minute | (0x80 if invalid else 0),
        hour | (0x80 if summer else 0),
        day,
        month,
        year % 100,
    )


def decode_stream(*chunks: bytes, direction: int = 0) -> list[Fields]:
    """Fields of every message the analyzer emits for ``chunks`` fed in order to one direction."""
    analyzer = Iec104Analyzer()
    out: list = []
    for frame, chunk in enumerate(chunks, 1):
        analyzer.on_data(direction, chunk, float(frame), frame, out)
    return [message[3] for message in out]


# -- capture replay -------------------------------------------------------------------------------


@dataclass
class Replay:
    """Messages of one capture keyed by the frame that completed them, plus every APDU seen."""

    by_frame: dict[int, list[Fields]] = field(default_factory=dict)
    apdus: list[bytes] = field(default_factory=list)


def tcp_segments(path: Path) -> Iterator[tuple[int, tuple, int, int, bytes]]:
    """(frame, connection key, direction, sequence number, payload) of TCP segments with data."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as reader:
        for frame, packet in enumerate(reader, 1):
            if IP not in packet or TCP not in packet:
                continue
            tcp = packet[TCP]
            ip = packet[IP]
            payload = tcp_payload(ip, tcp)
            if not payload:
                continue
            if tcp.dport == IEC104_PORT:
                key, direction = (ip.src, tcp.sport, ip.dst, tcp.dport), 0
            elif tcp.sport == IEC104_PORT:
                key, direction = (ip.dst, tcp.dport, ip.src, tcp.sport), 1
            else:
                continue
            yield frame, key, direction, tcp.seq, payload


def tcp_payload(ip, tcp) -> bytes:
    """The segment's data by the IP total length: Ethernet padding of short frames is not data."""
    size = ip.len - ip.ihl * 4 - tcp.dataofs * 4
    return bytes(tcp.payload)[: max(size, 0)]


def replay(path: Path) -> Replay:
    """Feed each direction's in-order TCP bytes to one analyzer per connection (retransmitted
    bytes are trimmed, a hole is an ``on_gap``), as the sensor's reassembly does."""
    result = Replay()
    analyzers: dict[tuple, Iec104Analyzer] = {}
    next_seq: dict[tuple, int] = {}
    for frame, key, direction, seq, payload in tcp_segments(path):
        analyzer = analyzers.setdefault(key, Iec104Analyzer())
        expected = next_seq.get((key, direction))
        if expected is not None:
            if seq < expected:
                payload = payload[expected - seq :]
                seq = expected
            elif seq > expected:
                analyzer.on_gap(direction)
        if not payload:
            continue
        next_seq[(key, direction)] = seq + len(payload)
        out: list = []
        analyzer.on_data(direction, payload, 0.0, frame, out)
        for _direction, _ts, message_frame, fields in out:
            result.by_frame.setdefault(message_frame, []).append(fields)
        result.apdus += _apdus_in(payload)
    return result


def _apdus_in(payload: bytes) -> list[bytes]:
    """Complete APDUs that start a segment and chain within it (fuzz seeds)."""
    found = []
    pos = 0
    while pos + 6 <= len(payload) and payload[pos] == 0x68:
        end = pos + 2 + payload[pos + 1]
        if end > len(payload):
            break
        found.append(payload[pos:end])
        pos = end
    return found
