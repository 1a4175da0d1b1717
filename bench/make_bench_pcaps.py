"""Write the large bench captures into bench/.cache/ (not committed).

``python bench/make_bench_pcaps.py [--cache DIR] [--modbus-packets N] [--dnp3-packets N] [--force]``

* ``modbus_bench.pcap`` (~1,000,000 packets): many HMIs/SCADA servers polling and writing many PLCs
  over long-lived TCP sessions (handshakes, reconnects), with randomised transaction ids, unit ids,
  addresses, quantities and values; reads, writes and exception responses.
* ``dnp3_bench.pcap`` (~300,000 packets): masters polling outstations (event and integrity polls with
  randomised points, some multi-segment responses), confirms, unsolicited reports, CROB operates.

Each capture gets ``<name>.meta.json`` with the packet count and how many protocol messages the
generator put in, so bench/run.py can check that every tool really parsed the file. Frames are made
from per-connection header templates with ``struct`` (pcaps/netpackets.py), not scapy. A capture is
rewritten only when it is missing, its parameters or the generator's sources changed, or ``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import struct
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "pcaps"))  # the sample generator's frame builders and pcap writer

import gen_dnp3 as d  # noqa: E402
from netpackets import ACK, PSH, Frame, Host, TcpConnection  # noqa: E402
from pcapwriter import PcapWriter  # noqa: E402

CACHE = REPO / "bench" / ".cache"
START_NS = 1_715_673_600 * 1_000_000_000  # 2024-05-14T08:00:00Z
MS = 1_000_000
SOURCES = [Path(__file__), *(REPO / "pcaps" / n for n in ("netpackets.py", "pcapwriter.py", "gen_dnp3.py"))]


class Sink:
    """Writes frames straight to the pcap and counts them."""

    def __init__(self, writer: PcapWriter) -> None:
        self.writer = writer
        self.packets = 0
        self.last_ns = 0

    def __call__(self, frame: Frame) -> None:
        self.writer.write(frame.ts_ns, frame.data)
        self.packets += 1
        self.last_ns = frame.ts_ns


def _host(rng: random.Random, name: str, ip: str, oui: bytes) -> Host:
    return Host(name, oui + rng.randbytes(3), ip)


def _hosts(
    rng: random.Random, prefix: str, first_octet3: int, count: int, oui: bytes, name: str
) -> list[Host]:
    return [
        _host(rng, f"{name}-{n}", f"{prefix}.{first_octet3 + n // 250}.{n % 250 + 2}", oui)
        for n in range(count)
    ]


# ---- Modbus ----------------------------------------------------------------------------------------

# Function-code mix of a busy SCADA network: mostly reads (Modbus spec §6 for the PDU layouts).
MODBUS_MIX = [(3, 40), (4, 15), (1, 10), (2, 8), (6, 8), (16, 8), (5, 4), (15, 4), (23, 3)]
EXCEPTION_RATE = 0.02
MBAP = struct.Struct("!HHHB")  # transaction id, protocol id, length, unit id


class ModbusSession:
    __slots__ = ("conn", "next_tid", "requests", "unit")

    def __init__(self, conn: TcpConnection, unit: int, tid: int) -> None:
        self.conn, self.unit, self.next_tid, self.requests = conn, unit, tid, 0


def _coils(rng: random.Random, count: int) -> bytes:
    data = bytearray(rng.randbytes((count + 7) // 8))
    if count % 8:
        data[-1] &= (1 << (count % 8)) - 1  # unused high bits are zero (§6.1)
    return bytes(data)


def modbus_pdus(rng: random.Random, fc: int) -> tuple[bytes, bytes]:
    """A random request PDU of ``fc`` and its normal response."""
    address = rng.randrange(0, 10000)
    if fc in (3, 4):
        quantity = rng.randint(1, 60)
        return (
            struct.pack("!BHH", fc, address, quantity),
            struct.pack("!BB", fc, 2 * quantity) + rng.randbytes(2 * quantity),
        )
    if fc in (1, 2):
        quantity = rng.randint(1, 400)
        data = _coils(rng, quantity)
        return struct.pack("!BHH", fc, address, quantity), struct.pack("!BB", fc, len(data)) + data
    if fc == 5:
        pdu = struct.pack("!BHH", 5, address, rng.choice((0xFF00, 0x0000)))
        return pdu, pdu
    if fc == 6:
        pdu = struct.pack("!BHH", 6, address, rng.getrandbits(16))
        return pdu, pdu
    if fc == 15:
        quantity = rng.randint(1, 64)
        data = _coils(rng, quantity)
        return (
            struct.pack("!BHHB", 15, address, quantity, len(data)) + data,
            struct.pack("!BHH", 15, address, quantity),
        )
    if fc == 16:
        quantity = rng.randint(1, 30)
        return (
            struct.pack("!BHHB", 16, address, quantity, 2 * quantity) + rng.randbytes(2 * quantity),
            struct.pack("!BHH", 16, address, quantity),
        )
    # FC 23: read/write multiple registers.
    read_quantity, write_quantity = rng.randint(1, 30), rng.randint(1, 20)
    return (
        struct.pack(
            "!BHHHHB", 23, address, read_quantity, rng.randrange(10000), write_quantity, 2 * write_quantity
        )
        + rng.randbytes(2 * write_quantity),
        struct.pack("!BB", 23, 2 * read_quantity) + rng.randbytes(2 * read_quantity),
    )


def make_modbus(path: Path, target_packets: int, seed: int = 1) -> dict[str, object]:
    rng = random.Random(seed)
    clients = _hosts(rng, "10.20", 1, 24, bytes.fromhex("001422"), "hmi")
    servers = _hosts(rng, "10.20", 2, 480, bytes.fromhex("0080f4"), "plc")
    codes, weights = zip(*MODBUS_MIX, strict=True)
    messages: Counter[str] = Counter()
    flows = [0]
    with path.open("wb") as out:
        sink = Sink(PcapWriter(out))
        ts = START_NS

        def connect(client: Host, server: Host) -> ModbusSession:
            nonlocal ts
            conn = TcpConnection(
                sink,
                client,
                rng.randrange(49152, 65535),
                server,
                502,
                rng.getrandbits(32),
                rng.getrandbits(32),
                client_ip_id=rng.getrandbits(16),
                server_ip_id=rng.getrandbits(16),
            )
            ts = conn.open(ts, rng.randrange(200_000, 900_000)) + 50_000
            unit = rng.choice((1, 1, 1, 255, rng.randint(2, 247)))
            flows[0] += 1
            return ModbusSession(conn, unit, rng.getrandbits(16))

        # Each server is polled by one or two clients over its own connection.
        sessions = [
            connect(rng.choice(clients), server) for server in servers for _ in range(rng.randint(1, 2))
        ]
        while sink.packets < target_packets:
            n = rng.randrange(len(sessions))
            s = sessions[n]
            fc = rng.choices(codes, weights)[0]
            request, response = modbus_pdus(rng, fc)
            if rng.random() < EXCEPTION_RATE:
                response = struct.pack("!BB", fc | 0x80, rng.choice((1, 2, 3, 4)))
                messages["exception"] += 1
            tid, s.next_tid = s.next_tid, (s.next_tid + 1) & 0xFFFF
            header = MBAP
            ts += rng.randrange(100_000, 2 * MS)
            s.conn.segment(0, ts, PSH | ACK, header.pack(tid, 0, len(request) + 1, s.unit) + request)
            ts += rng.randrange(1 * MS, 12 * MS)
            s.conn.segment(1, ts, PSH | ACK, header.pack(tid, 0, len(response) + 1, s.unit) + response)
            messages["request"] += 1
            messages["response"] += 1
            if rng.random() < 0.35:  # the client acks at once instead of with its next request
                ts += rng.randrange(50_000, 400_000)
                s.conn.segment(0, ts, ACK)
            s.requests += 1
            if s.requests > 300 and rng.random() < 0.004:  # a client reconnects (new port, new ISNs)
                ts = s.conn.close(ts + MS) + MS
                sessions[n] = connect(s.conn.client, s.conn.server)
        for s in sessions:
            ts = s.conn.close(ts + 100_000, 200_000)
    return {
        "packets": sink.packets,
        "messages": messages["request"] + messages["response"],
        "requests": messages["request"],
        "responses": messages["response"],
        "exceptions": messages["exception"],
        "flows": flows[0],
        "duration_s": (sink.last_ns - START_NS) / 1e9,
    }


# ---- DNP3 ------------------------------------------------------------------------------------------


def _binaries(rng: random.Random, start: int, count: int) -> d.Obj:
    flags = bytes(0x01 | (b & 0x80) for b in rng.randbytes(count))
    qualifier, rng_bytes = (
        (0x00, struct.pack("<BB", start, start + count - 1))
        if start + count <= 256
        else (0x01, struct.pack("<HH", start, start + count - 1))
    )
    return d.Obj(bytes([1, 2, qualifier]) + rng_bytes + flags, {"group": 1, "variation": 2})


def _flagged(rng: random.Random, count: int) -> bytes:
    """``count`` objects of an ONLINE flag + 4 random value bytes (g30v1, g20v1), without a per-point loop."""
    body = bytearray(5 * count)
    body[0::5] = b"\x01" * count
    values = rng.randbytes(4 * count)
    for n in range(4):
        body[n + 1 :: 5] = values[n::4]
    return bytes(body)


def _analogs(rng: random.Random, start: int, count: int) -> d.Obj:
    """g30v1 32-bit analog inputs with flag, 2-byte start/stop (qualifier 0x01)."""
    range_bytes = struct.pack("<HH", start, start + count - 1)
    return d.Obj(bytes([30, 1, 0x01]) + range_bytes + _flagged(rng, count), {"group": 30, "variation": 1})


def _counters(rng: random.Random, start: int, count: int) -> d.Obj:
    """g20v1 32-bit counters with flag."""
    range_bytes = struct.pack("<HH", start, start + count - 1)
    return d.Obj(bytes([20, 1, 0x01]) + range_bytes + _flagged(rng, count), {"group": 20, "variation": 1})


def _events(rng: random.Random, now_ms: int) -> list[d.Obj]:
    objects = []
    if rng.random() < 0.6:
        events = [
            (rng.randrange(64), rng.randrange(2), now_ms - rng.randrange(5000))
            for _ in range(rng.randint(1, 8))
        ]
        objects.append(d.binary_events(events))
    if rng.random() < 0.5:
        objects.append(
            d.analog_events(
                [(rng.randrange(64), rng.randrange(-1000, 30000)) for _ in range(rng.randint(1, 10))]
            )
        )
    return objects


def _integrity_objects(rng: random.Random, transport_seq: int) -> list[d.Obj]:
    """Static points for an integrity response, one in three spanning several transport segments.

    The peers must parse everything for their record counts to mean something, so multi-segment
    responses avoid the two cases the sample captures cover: a final segment of 1-3 fragment bytes
    (Suricata 7 stops logging the flow) and a transport sequence wrapping 63 -> 0 inside one fragment
    (Wireshark 4.0 drops the fragment).
    """
    while True:
        big = rng.random() < 0.3
        objects = [
            _binaries(rng, 0, rng.randint(8, 96)),
            _analogs(rng, 0, rng.randint(20, 150) if big else rng.randint(4, 30)),
            _counters(rng, 0, rng.randint(0, 12) or 1),
        ]
        length = 4 + sum(len(o.data) for o in objects)
        segments = -(-length // d.MAX_SEGMENT_DATA)
        short_tail = segments > 1 and 0 < length % d.MAX_SEGMENT_DATA <= 3
        wraps = transport_seq + segments - 1 > 63
        if not short_tail and not wraps:
            return objects


class Dnp3Pair:
    __slots__ = ("assoc", "conn")

    def __init__(self, conn: TcpConnection, assoc: d.Association) -> None:
        self.conn, self.assoc = conn, assoc


def make_dnp3(path: Path, target_packets: int, seed: int = 2) -> dict[str, object]:
    rng = random.Random(seed)
    masters = _hosts(rng, "10.30", 1, 6, bytes.fromhex("001422"), "master")
    outstations = _hosts(rng, "10.30", 2, 150, bytes.fromhex("0030a7"), "rtu")
    messages: Counter[str] = Counter()
    with path.open("wb") as out:
        sink = Sink(PcapWriter(out))
        ts = START_NS
        pairs = []
        for n, host in enumerate(outstations):
            master = masters[n % len(masters)]
            conn = TcpConnection(
                sink,
                master,
                rng.randrange(40000, 60000),
                host,
                20000,
                rng.getrandbits(32),
                rng.getrandbits(32),
                client_ttl=64,
                client_ip_id=rng.getrandbits(16),
                server_ip_id=rng.getrandbits(16),
            )
            ts = conn.open(ts, rng.randrange(200_000, 900_000)) + 50_000
            assoc = d.Association(
                1 + n % len(masters),
                rng.randrange(10, 65000),
                [rng.randrange(64), rng.randrange(64)],
                rng.randrange(16),
            )
            pairs.append(Dnp3Pair(conn, assoc))

        def send(pair: Dnp3Pair, from_master: bool, fragment: d.Fragment, one_segment: bool = True) -> None:
            nonlocal ts
            links = pair.assoc.link_frames(from_master, fragment.encode())
            direction = 0 if from_master else 1
            if one_segment or len(links) == 1:
                pair.conn.segment(direction, ts, PSH | ACK, b"".join(links))
            else:  # a serial gateway forwards each link frame in its own TCP segment
                for link in links:
                    pair.conn.segment(direction, ts, PSH | ACK, link)
                    ts += rng.randrange(100_000, 600_000)
            messages[d.FUNCTION_NAMES[fragment.function_code]] += 1
            if len(links) > 1:
                messages["multi_segment"] += 1

        while sink.packets < target_packets:
            pair = rng.choice(pairs)
            a = pair.assoc
            ts += rng.randrange(200_000, 3 * MS)
            kind = rng.random()
            if kind < 0.55:  # event poll; a response with events asks for a confirm
                request = d.Fragment(d.FC["read"], a.next_master_seq(), objects=d.class_objects(1, 2, 3))
                send(pair, True, request)
                objects = _events(rng, ts // MS)
                ts += rng.randrange(2 * MS, 25 * MS)
                send(
                    pair, False, d.Fragment(129, request.sequence, con=bool(objects), iin=0, objects=objects)
                )
                ts += rng.randrange(MS, 4 * MS)
                if objects:
                    send(pair, True, d.Fragment(d.FC["confirm"], request.sequence))
                else:
                    pair.conn.segment(0, ts, ACK)
            elif kind < 0.75:  # integrity poll with randomised static points, sometimes multi-segment
                request = d.Fragment(d.FC["read"], a.next_master_seq(), objects=d.class_objects(1, 2, 3, 0))
                send(pair, True, request)
                objects = _integrity_objects(rng, a.transport_seq[1])
                ts += rng.randrange(5 * MS, 40 * MS)
                send(
                    pair,
                    False,
                    d.Fragment(129, request.sequence, iin=0, objects=objects),
                    one_segment=rng.random() < 0.5,
                )
                ts += rng.randrange(MS, 40 * MS)
                pair.conn.segment(0, ts, ACK)
            elif kind < 0.85:  # static range read
                start, count = rng.randrange(0, 200), rng.randint(1, 40)
                range_header = d.Obj(
                    bytes([30, 0, 0x01]) + struct.pack("<HH", start, start + count - 1),
                    {"group": 30, "variation": 0},
                )
                request = d.Fragment(d.FC["read"], a.next_master_seq(), objects=[range_header])
                send(pair, True, request)
                ts += rng.randrange(2 * MS, 20 * MS)
                send(
                    pair,
                    False,
                    d.Fragment(129, request.sequence, iin=0, objects=[_analogs(rng, start, count)]),
                )
                ts += rng.randrange(MS, 40 * MS)
                pair.conn.segment(0, ts, ACK)
            elif kind < 0.93:  # CROB: SELECT + OPERATE, or DIRECT_OPERATE
                crob = d.crob(
                    rng.randrange(32),
                    rng.choice((0x41, 0x81, 0x03, 0x04, 0x01)),
                    1,
                    rng.choice((0, 500, 1000)),
                    0,
                )
                steps = ["select", "operate"] if rng.random() < 0.6 else ["direct_operate"]
                for step in steps:
                    request = d.Fragment(d.FC[step], a.next_master_seq(), objects=[crob])
                    send(pair, True, request)
                    ts += rng.randrange(5 * MS, 30 * MS)
                    send(pair, False, d.Fragment(129, request.sequence, iin=0, objects=[crob]))
                    ts += rng.randrange(MS, 40 * MS)
                    pair.conn.segment(0, ts, ACK)
            else:  # unsolicited report and its confirm
                objects = _events(rng, ts // MS) or [d.binary_events([(rng.randrange(64), 1, ts // MS)])]
                report = d.Fragment(130, a.next_unsolicited_seq(), con=True, uns=True, iin=0, objects=objects)
                send(pair, False, report)
                ts += rng.randrange(MS, 5 * MS)
                send(pair, True, d.Fragment(d.FC["confirm"], report.sequence, uns=True))
        for pair in pairs:
            ts = pair.conn.close(ts + 100_000, 200_000)
    app_messages = sum(v for k, v in messages.items() if k != "multi_segment")
    return {
        "packets": sink.packets,
        "messages": app_messages,
        "confirms": messages["confirm"],
        "multi_segment_responses": messages["multi_segment"],
        "by_function": dict(sorted(messages.items())),
        "flows": len(pairs),
        "duration_s": (sink.last_ns - START_NS) / 1e9,
    }


# ---- cache ------------------------------------------------------------------------------------------

BENCH = {"modbus_bench.pcap": make_modbus, "dnp3_bench.pcap": make_dnp3}


def _fingerprint(target: int) -> str:
    digest = hashlib.sha256(str(target).encode())
    for source in SOURCES:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def ensure(cache: Path, name: str, target: int, force: bool = False) -> tuple[Path, dict[str, object]]:
    """The capture and its metadata, (re)written when missing or stale."""
    cache.mkdir(parents=True, exist_ok=True)
    path, meta_path = cache / name, cache / (name.removesuffix(".pcap") + ".meta.json")
    fingerprint = _fingerprint(target)
    if not force and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint and meta.get("bytes") == path.stat().st_size:
            return path, meta
    started = time.perf_counter()
    meta = BENCH[name](path, target)
    meta.update(
        fingerprint=fingerprint,
        bytes=path.stat().st_size,
        generate_seconds=round(time.perf_counter() - started, 1),
    )
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return path, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--modbus-packets", type=int, default=1_000_000)
    parser.add_argument("--dnp3-packets", type=int, default=300_000)
    parser.add_argument("--force", action="store_true", help="rewrite even if the cached capture is current")
    args = parser.parse_args(argv)
    for name, target in (("modbus_bench.pcap", args.modbus_packets), ("dnp3_bench.pcap", args.dnp3_packets)):
        path, meta = ensure(args.cache, name, target, args.force)
        print(
            f"{path}: {meta['packets']:,} packets, {meta['messages']:,} messages, "
            f"{int(meta['bytes']) / 1e6:.1f} MB (generated in {meta['generate_seconds']} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
