"""Near misses cut from real DNP3 captures: take the TCP payloads of a capture, drop, retime, move or
rewrite some of them, and write them out as fresh TCP connections (handshake, consistent sequence
numbers), so the DNP3 octets stay the real devices' except where a test changes them on purpose.

Also DNP3 event dicts for unit tests of the enrichment stage, shaped as the sensor emits them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapReader

from capture_makers import Frame, write_pcap
from dnp3_frames import link_frame
from otsentry.events import format_timestamp

DNP3_PORT = 20000


@dataclass(frozen=True)
class Payload:
    """The data of one TCP segment of a capture (which frame, when, who to whom)."""

    frame: int
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    data: bytes

    def moved(self, **changes: Any) -> Payload:
        return replace(self, **changes)


def tcp_payloads(path: Path) -> list[Payload]:
    """Every TCP segment with data, numbered by its frame in ``path``."""
    out = []
    with PcapReader(str(path)) as reader:
        for number, packet in enumerate(reader, start=1):
            if IP not in packet or TCP not in packet:
                continue
            ip, tcp = packet[IP], packet[TCP]
            size = ip.len - 4 * ip.ihl - 4 * tcp.dataofs  # Ethernet padding is not TCP data
            if size > 0:
                data = bytes(tcp.payload)[:size]
                out.append(Payload(number, float(packet.time), ip.src, tcp.sport, ip.dst, tcp.dport, data))
    return out


def write_capture(path: Path, payloads: list[Payload]) -> Path:
    """``payloads`` (in time order) as TCP connections to port 20000, each opened by a handshake."""
    frames: list[Frame] = []
    next_seq: dict[tuple[str, int, str, int], int] = {}
    for p in sorted(payloads, key=lambda p: p.ts):
        client = (p.src, p.sport) if p.dport == DNP3_PORT else (p.dst, p.dport)
        server = (p.dst, p.dport) if p.dport == DNP3_PORT else (p.src, p.sport)
        up = (*client, *server)
        down = (*server, *client)
        ts_ns = round(p.ts * 1e9)
        if up not in next_seq:
            next_seq[up], next_seq[down] = 1000, 5000
            handshake = ((client, server, "S"), (server, client, "SA"), (client, server, "A"))
            for i, (a, b, flags) in enumerate(handshake):
                seq_key = (*a, *b)
                ack = next_seq[(*b, *a)] if "A" in flags else 0
                packet = (
                    Ether()
                    / IP(src=a[0], dst=b[0])
                    / TCP(sport=a[1], dport=b[1], flags=flags, seq=next_seq[seq_key], ack=ack)
                )
                if "S" in flags:
                    next_seq[seq_key] += 1
                frames.append(Frame(ts_ns - 3000 + i * 1000, bytes(packet)))
        me = (p.src, p.sport, p.dst, p.dport)
        peer = (p.dst, p.dport, p.src, p.sport)
        packet = Ether() / IP(src=p.src, dst=p.dst) / TCP(
            sport=p.sport, dport=p.dport, flags="PA", seq=next_seq[me], ack=next_seq[peer]
        ) / p.data  # fmt: skip
        next_seq[me] += len(p.data)
        frames.append(Frame(ts_ns, bytes(packet)))
    return write_pcap(path, frames)


# -- DNP3 link frames ----------------------------------------------------------------------------------


def link_user_data(frame: bytes) -> tuple[int, int, int, bytes]:
    """(control, destination, source, user data without the block CRCs) of one link frame."""
    length, control, destination, source = struct.unpack_from("<BBHH", frame, 2)
    body = frame[10:]
    data = b"".join(body[i : i + 16] for i in range(0, len(body), 18))
    return control, destination, source, data[: length - 5]


def rewrite_fragment(frame: bytes, edit: Any) -> bytes:
    """The one-frame message ``frame`` with its application fragment replaced by ``edit(fragment)``."""
    control, destination, source, data = link_user_data(frame)
    return link_frame(control, destination, source, data[:1] + edit(data[1:]))


# -- events as the sensor emits them -------------------------------------------------------------------

MASTER, OUTSTATION = "10.0.0.5", "10.0.0.20"


def crob(index: int, code: int = 3, on_time: int = 100, off_time: int = 100, qualifier: int = 0x28) -> dict:
    return {
        "group": 12, "variation": 1, "qualifier": qualifier, "count": 1,
        "points": [{"code": code, "count": 1, "on_time": on_time, "off_time": off_time, "status": 0,
                    "index": index}],
    }  # fmt: skip


def analog(index: int, value: int) -> dict:
    return {"group": 41, "variation": 2, "qualifier": 0x28, "count": 1,
            "points": [{"value": value, "status": 0, "index": index}]}  # fmt: skip


def auth_object(variation: int, **point: Any) -> dict:
    return {"group": 120, "variation": variation, "qualifier": 0x5B, "count": 1, "points": [dict(point)]}


def request(
    fc: int,
    seq: int,
    ts: float,
    objects: list[dict] | None = None,
    *,
    master: str = MASTER,
    master_address: int = 1,
    outstation: str = OUTSTATION,
    outstation_address: int = 10,
    frame: int = 1,
) -> dict[str, Any]:
    objects = objects or []
    return {
        "@timestamp": _iso(ts),
        "event.dataset": "otsentry.dnp3",
        "source.ip": master,
        "destination.ip": outstation,
        "dnp3.link.source": master_address,
        "dnp3.link.destination": outstation_address,
        "dnp3.link.dir": True,
        "dnp3.application.function_code": fc,
        "dnp3.application.sequence": seq,
        "dnp3.objects": objects,
        "dnp3.object_gv": [f"g{o['group']}v{o['variation']}" for o in objects],
        "otsentry.pcap.frame": frame,
    }


def response(
    seq: int,
    ts: float,
    objects: list[dict] | None = None,
    *,
    fc: int = 129,
    iin: int = 0,
    master: str = MASTER,
    master_address: int = 1,
    outstation: str = OUTSTATION,
    outstation_address: int = 10,
    frame: int = 2,
) -> dict[str, Any]:
    event = request(fc, seq, ts, objects, master=outstation, master_address=outstation_address,
                    outstation=master, outstation_address=master_address, frame=frame)  # fmt: skip
    event["dnp3.link.dir"] = False
    event["dnp3.iin"] = iin
    return event


def _iso(ts: float) -> str:
    return format_timestamp(1_715_666_400.0 + ts)
