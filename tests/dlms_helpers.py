"""Shared helpers for the DLMS tests: wrapper frames, gurux-built requests, the shared captures.

Frames come from gurux-dlms (an independent implementation) wherever it can produce them, so
the analyzer is tested on bytes a real client writes, not on bytes written to match it.
"""

from __future__ import annotations

import re
import struct
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from otsentry.protocols.dlms import DlmsAnalyzer

SHARED_DLMS = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps" / "wireshark-dlms"


def wrap(apdu: bytes, source: int = 0x10, destination: int = 0x01) -> bytes:
    """An IEC 62056-47 wrapper frame around ``apdu``."""
    return struct.pack(">HHHH", 1, source, destination, len(apdu)) + apdu


def unwrap(frame: bytes) -> bytes:
    length = struct.unpack_from(">H", frame, 6)[0]
    assert len(frame) == 8 + length
    return frame[8:]


def run(frames: Iterable[tuple[int, bytes]], analyzer: DlmsAnalyzer | None = None) -> list[dict[str, Any]]:
    """Feed (direction, bytes) to one analyzer; return the fields of every message."""
    analyzer = analyzer or DlmsAnalyzer()
    out: list = []
    for n, (direction, data) in enumerate(frames, 1):
        analyzer.on_data(direction, data, float(n), n, out)
    return [fields for _, _, _, fields in out]


def flatten(messages: Any) -> list[bytes]:
    """gurux returns frames as lists (or lists of lists for with-list requests)."""
    if isinstance(messages, (bytes, bytearray)):
        return [bytes(messages)]
    frames: list[bytes] = []
    for item in messages:
        frames.extend(flatten(item))
    return frames


def gurux_client(
    authentication: Any = None, password: Any = None, security: Any = None, system_title: bytes | None = None
) -> Any:
    from gurux_dlms.enums import Authentication, Conformance, InterfaceType
    from gurux_dlms.secure import GXDLMSSecureClient

    client = GXDLMSSecureClient(
        True, 16, 1, authentication or Authentication.NONE, password, InterfaceType.WRAPPER
    )
    client.setNegotiatedConformance(
        Conformance.MULTIPLE_REFERENCES
        | Conformance.GET
        | Conformance.SET
        | Conformance.ACTION
        | Conformance.SELECTIVE_ACCESS
    )
    if security is not None:
        client.ciphering.security = security
        client.ciphering.systemTitle = system_title or b"GRX12345"
    return client


# -- the shared captures ------------------------------------------------------------------------


@lru_cache(maxsize=16)
def capture_streams(path: Path) -> list[dict[int, list[tuple[bytes, int]]]]:
    """TCP payloads per flow and direction (0 = the SYN sender, else the ephemeral port),
    in capture order, retransmissions dropped: [{direction: [(payload, frame number)]}]."""
    from scapy.all import IP, TCP, IPv6, rdpcap

    flows: dict[frozenset, dict[str, Any]] = {}
    for number, packet in enumerate(rdpcap(str(path)), 1):
        if TCP not in packet:
            continue
        ip = packet[IP] if IP in packet else packet[IPv6]
        tcp = packet[TCP]
        src, dst = (ip.src, tcp.sport), (ip.dst, tcp.dport)
        flow = flows.setdefault(frozenset((src, dst)), {"client": None, "segments": [], "next": {}})
        if tcp.flags & 0x02 and not tcp.flags & 0x10:
            flow["client"] = src
        payload = bytes(tcp.payload)
        if payload:
            flow["segments"].append((src, tcp.seq, payload, number))
    result = []
    for key, flow in flows.items():
        client = flow["client"] or max(key, key=lambda end: end[1])
        streams: dict[int, list[tuple[bytes, int]]] = defaultdict(list)
        next_seq: dict[tuple, int] = {}
        for src, seq, payload, number in flow["segments"]:
            if src in next_seq and (seq - next_seq[src]) & 0x80000000:
                continue  # retransmission of bytes already taken
            next_seq[src] = (seq + len(payload)) & 0xFFFFFFFF
            streams[0 if src == client else 1].append((payload, number))
        result.append(dict(streams))
    return result


def split_wrapper(stream: bytes) -> list[bytes]:
    """Independent of the analyzer's framer: cut a clean stream by the wrapper lengths."""
    apdus = []
    offset = 0
    while offset + 8 <= len(stream):
        length = struct.unpack_from(">H", stream, offset + 6)[0]
        apdus.append(stream[offset + 8 : offset + 8 + length])
        offset += 8 + length
    assert offset == len(stream), "stream does not end on a wrapper frame boundary"
    return apdus


def analyze_capture(path: Path) -> list[tuple[int, int, dict[str, Any]]]:
    """(frame, direction, fields) of every message, flows analysed one by one."""
    messages = []
    for streams in capture_streams(path):
        analyzer = DlmsAnalyzer()
        out: list = []
        pending = sorted(
            (number, direction, payload) for direction, segs in streams.items() for payload, number in segs
        )
        for number, direction, payload in pending:
            analyzer.on_data(direction, payload, 0.0, number, out)
        messages.extend((frame, direction, fields) for direction, _, frame, fields in out)
    return messages


# -- gurux's translator as the reference ---------------------------------------------------------

_ROOT = re.compile(r"<(\w+)")


def gurux_view(apdu: bytes) -> dict[str, Any]:
    """What GXDLMSTranslator says about one APDU: root element and the references in it.

    Read with regular expressions, not an XML parser: gurux 1.0.203 writes mismatched tags
    (``<ProposedConformance>…</NegotiatedConformance>``) in release responses.
    """
    from gurux_dlms import GXDLMSTranslator
    from gurux_dlms.enums import TranslatorOutputType

    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    xml = translator.pduToXml(apdu)
    tags = _ROOT.findall(xml)
    view: dict[str, Any] = {"root": tags[0] if tags else None, "second": tags[1] if len(tags) > 1 else None}
    for name in ("ClassId", "InstanceId", "AttributeId", "MethodId"):
        view[name] = [
            int(v, 16) if name != "InstanceId" else bytes.fromhex(v)
            for v in re.findall(rf'<{name} Value="([0-9A-Fa-f]+)"', xml)
        ]
    view["xml"] = xml
    return view


# -- every capture, quickly: first payloads for the probe's false-positive test -------------------

_LINK_HEADER = {0: 4, 1: 14, 113: 16, 101: 0, 228: 0, 229: 0, 12: 0}


def first_payloads(path: Path) -> list[tuple[str, bytes]]:
    """("tcp"|"udp", payload) of the first payload segment of each flow direction.

    A plain-struct pcap walk (scapy would take seconds over all shared captures); IPv4 and IPv6
    without extension headers, VLAN tags skipped — enough to reach the payloads in these files.
    """
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack_from(endian + "I", data, 20)[0]
    if link not in _LINK_HEADER:
        return []
    seen: set[tuple] = set()
    out: list[tuple[str, bytes]] = []
    offset = 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        pos = _LINK_HEADER[link]
        if link == 1:
            ethertype = struct.unpack_from(">H", frame, 12)[0] if len(frame) >= 14 else 0
            while ethertype in (0x8100, 0x88A8) and len(frame) >= pos + 4:
                ethertype = struct.unpack_from(">H", frame, pos + 2)[0]
                pos += 4
        ip = frame[pos:]
        if len(ip) < 20:
            continue
        if ip[0] >> 4 == 4:
            proto, header = ip[9], (ip[0] & 0x0F) * 4
            src, dst = ip[12:16], ip[16:20]
        elif ip[0] >> 4 == 6 and len(ip) >= 40:
            proto, header, src, dst = ip[6], 40, ip[8:24], ip[24:40]
        else:
            continue
        l4 = ip[header:]
        if proto == 6 and len(l4) >= 20:
            sport, dport = struct.unpack_from(">HH", l4)
            payload = l4[(l4[12] >> 4) * 4 :]
            kind = "tcp"
        elif proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack_from(">HH", l4)
            payload = l4[8:]
            kind = "udp"
        else:
            continue
        key = (kind, src, sport, dst, dport)
        if payload and key not in seen:
            seen.add(key)
            out.append((kind, bytes(payload)))
    return out
