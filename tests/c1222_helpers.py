"""ANSI C12.22 test helpers: BER/EPSEM builders for hand-made messages, capture replay (scapy) into
the analyzer and into the flow table, and readers for the ICSNPP Zeek baselines."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from otsentry.net.flows import FlowTable
from otsentry.net.packet import Packet
from otsentry.protocols import ProtocolSpec
from otsentry.protocols.base import Fields, Message
from otsentry.protocols.c1222 import SPEC, C1222DatagramAnalyzer, C1222StreamAnalyzer

SHARED_PCAPS = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps"
C1222_DIR = SHARED_PCAPS / "icsnpp-c1222"
C1222_CAPTURES = (
    sorted(p for p in C1222_DIR.glob("*") if p.suffix in {".pcap", ".cap"}) if C1222_DIR.is_dir() else []
)
BASELINES = C1222_DIR / "baselines"
PORT = 1153


# -- BER / EPSEM builders --------------------------------------------------------------------------


def ber_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + ber_len(len(content)) + content


def _base128(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def oid(text: str) -> bytes:
    """An OBJECT IDENTIFIER element (06) for ``1.3.6...``, or a relative one (80) for ``.123.4``."""
    if text.startswith("."):
        return tlv(0x80, b"".join(_base128(int(a)) for a in text[1:].split(".")))
    arcs = [int(a) for a in text.split(".")]
    return tlv(0x06, _base128(40 * arcs[0] + arcs[1]) + b"".join(_base128(a) for a in arcs[2:]))


def integer(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return tlv(0x02, body)


def epsem(
    *services: bytes, control: int = 0x80, ed_class: bytes | None = None, mac: bytes | None = None
) -> bytes:
    """EPSEM: control, optional ed-class, each service with its BER length, optional MAC."""
    body = bytes([control | (0x10 if ed_class else 0)]) + (ed_class or b"")
    body += b"".join(ber_len(len(s)) + s for s in services)
    return body + (mac or b"")


def acse(
    called: str = "1.3.6.1.4.1.33507.1919.12345678.0",
    calling: str = "1.3.6.1.4.1.33507",
    user_information: bytes | None = None,
    *,
    calling_invocation: int | None = 7,
    called_invocation: int | None = None,
    auth: bytes | None = None,
    extra: bytes = b"",
) -> bytes:
    """A C12.22 message: ``60 len`` + elements in the standard's order."""
    elements = tlv(0xA2, oid(called))
    if called_invocation is not None:
        elements += tlv(0xA4, integer(called_invocation))
    elements += tlv(0xA6, oid(calling))
    if calling_invocation is not None:
        elements += tlv(0xA8, integer(calling_invocation))
    if auth is not None:
        elements += tlv(0xAC, auth)
    elements += extra
    if user_information is not None:
        elements += tlv(0xBE, tlv(0x28, tlv(0x81, user_information)))
    return tlv(0x60, elements)


def cksum(data: bytes) -> int:
    return (-sum(data)) & 0xFF


def full_write(table: int, data: bytes) -> bytes:
    return struct.pack(">BHH", 0x40, table, len(data)) + data + bytes([cksum(data)])


def offset_write(table: int, offset: int, data: bytes) -> bytes:
    return (
        struct.pack(">BH", 0x4F, table)
        + offset.to_bytes(3, "big")
        + struct.pack(">H", len(data))
        + data
        + bytes([cksum(data)])
    )


def procedure_write(
    number: int,
    *,
    mfg: bool = False,
    sequence: int = 1,
    params: bytes = b"",
    selector: int = 0,
    big_endian: bool = False,
) -> bytes:
    word = number | (0x0800 if mfg else 0) | selector << 12
    return full_write(7, word.to_bytes(2, "big" if big_endian else "little") + bytes([sequence]) + params)


def full_read(table: int) -> bytes:
    return struct.pack(">BH", 0x30, table)


def offset_read(table: int, offset: int, count: int) -> bytes:
    return struct.pack(">BH", 0x3F, table) + offset.to_bytes(3, "big") + struct.pack(">H", count)


def read_ok(data: bytes) -> bytes:
    return struct.pack(">BH", 0x00, len(data)) + data + bytes([cksum(data)])


def security(password: bytes, user_id: int | None = None) -> bytes:
    return b"\x51" + password.ljust(20, b"\x00") + (b"" if user_id is None else struct.pack(">H", user_id))


def logon(user_id: int, user: bytes, timeout: int = 60) -> bytes:
    return struct.pack(">BH", 0x50, user_id) + user.ljust(10, b" ") + struct.pack(">H", timeout)


# -- replay ---------------------------------------------------------------------------------------


@dataclass
class Segment:
    frame: int
    ts: float
    proto: int  # 6 or 17
    ip_version: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    flags: int
    seq: int
    ack: int
    payload: bytes
    src_mac: bytes | None


@cache
def read_segments(path: Path) -> list[Segment]:
    """Every TCP/UDP packet of ``path`` (Ethernet, Linux SLL; IPv4/IPv6) in capture order."""
    import ipaddress

    from scapy.all import IP, TCP, UDP, Ether, IPv6, rdpcap

    segments = []
    for frame, pkt in enumerate(rdpcap(str(path)), 1):
        ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
        if ip is None:
            continue
        l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
        if l4 is None:
            continue
        tcp = TCP in pkt
        segments.append(
            Segment(
                frame=frame,
                ts=float(pkt.time),
                proto=6 if tcp else 17,
                ip_version=4 if IP in pkt else 6,
                src=ipaddress.ip_address(ip.src).packed,
                dst=ipaddress.ip_address(ip.dst).packed,
                sport=l4.sport,
                dport=l4.dport,
                flags=int(l4.flags) if tcp else 0,
                seq=l4.seq if tcp else 0,
                ack=l4.ack if tcp else 0,
                payload=bytes(l4.payload),
                src_mac=bytes.fromhex(pkt[Ether].src.replace(":", "")) if Ether in pkt else None,
            )
        )
    return segments


def analyze_capture(path: Path, **analyzer_args) -> list[Message]:
    """Feed each direction's payloads, in capture order, straight into one analyzer per flow
    (direction 0 = towards port 1153): TCP into the stream analyzer, UDP into the datagram one."""
    analyzers: dict[tuple, C1222StreamAnalyzer | C1222DatagramAnalyzer] = {}
    out: list[Message] = []
    for seg in read_segments(path):
        if not seg.payload:
            continue
        key = (seg.proto, *sorted([(seg.src, seg.sport), (seg.dst, seg.dport)]))
        direction = 0 if seg.dport == PORT else 1
        if seg.proto == 6:
            stream = analyzers.setdefault(key, C1222StreamAnalyzer(**analyzer_args))
            assert isinstance(stream, C1222StreamAnalyzer)
            stream.on_data(direction, seg.payload, seg.ts, seg.frame, out)
        else:
            datagram = analyzers.setdefault(key, C1222DatagramAnalyzer(**analyzer_args))
            assert isinstance(datagram, C1222DatagramAnalyzer)
            datagram.on_datagram(direction, seg.payload, seg.ts, seg.frame, out)
    return out


def flow_table_capture(path: Path, spec: ProtocolSpec = SPEC) -> list[Message]:
    """The capture through the sensor's own flow table and TCP reassembly."""
    got: list[Message] = []
    table = FlowTable([spec], lambda flow, msgs: got.extend(msgs))
    for seg in read_segments(path):
        addresses = (seg.ip_version, seg.src, seg.dst, seg.proto, seg.sport, seg.dport)
        tcp = (seg.flags, seg.seq, seg.ack, seg.payload, 54 + len(seg.payload))
        table.packet(Packet(seg.ts, seg.frame, seg.src_mac, None, None, None, *addresses, *tcp))
    table.flush()
    return got


def c1222_fields(messages: list[Message]) -> list[Fields]:
    return [m[3] for m in messages]


# -- Zeek / ICSNPP baselines -----------------------------------------------------------------------


def zeek_rows(capture: Path, log: str) -> list[list[str]]:
    """Rows of ``baselines/tests.<capture stem>/<log>`` (zeek-cut output without headers)."""
    path = BASELINES / f"tests.{capture.stem}" / log
    if not path.exists():
        return []
    return [
        line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if not line.startswith("#")
    ]


def zeek_bytes(text: str) -> bytes:
    """A Zeek string column with ``\\xNN`` escapes back to its octets."""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode("latin-1"))


def zeek_value(text: str) -> str | None:
    return None if text in ("-", "(empty)") else text
