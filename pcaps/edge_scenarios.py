"""Captures for the transport edge cases: DNP3 transport-sequence wrap, a short final DNP3 segment, and
TCP flows picked up mid-connection with a retransmission, reordering and a PDU over three segments."""

from __future__ import annotations

import random
from typing import Any

import gen_dnp3 as d
import gen_modbus as mb
from capture import Capture
from dnp3_scenarios import Dnp3Session, Outstation, _connect, _latency, _outstations
from modbus_scenarios import MODBUS_PORT, ModbusLink
from netpackets import ACK, PSH, Frame, TcpConnection
from plan import HMI, MS, PLC1, RTU10, SCADA_MASTER, SECOND, START_NS

WIRESHARK_WRAP = (
    "Wireshark 4.0 drops a DNP3 fragment whose transport sequence wraps 63->0 inside it "
    "(packet-dnp.c reassembly keys on the sequence number)"
)
SURICATA_LEN_TOO_SMALL = (
    "Suricata 7 raises dnp3.len_too_small on a link frame with 1-3 fragment bytes and "
    "logs nothing more from this flow"
)


def _big_integrity(
    station: Outstation, rng: random.Random, binaries: int, analogs: int, counts: int
) -> d.Fragment:
    return d.Fragment(
        d.FC["response"],
        0,
        iin=0,
        objects=[
            d.binary_inputs(0, [rng.randrange(2) for _ in range(binaries)]),
            d.analog_inputs(0, [rng.randrange(-500, 20000) for _ in range(analogs)]),
            d.counters(0, [rng.randrange(100000) for _ in range(counts)]),
        ],
    )


def _event_polls(session: Dnp3Session, station: Outstation, rng: random.Random, ts: int, count: int) -> int:
    for _ in range(count):
        station.evolve(rng, ts)
        ts = (
            session.exchange(
                ts, session.request("read", d.class_objects(1, 2, 3)), station.events(0), _latency(rng)
            )
            + SECOND
        )
    return ts


def dnp3_transport_wrap(seed: int = 6364) -> Capture:
    cap = Capture(
        "dnp3_transport_wrap.pcap",
        "Master 1 polls outstation 10; outstation transport sequence "
        "starts at 58 so the 4-segment integrity response carries sequences 62, 63, 0, 1 (one link "
        "frame per TCP segment). Wireshark 4.0 drops that response.",
        [SCADA_MASTER, RTU10],
    )
    rng = random.Random(seed)
    station = _outstations()[0]
    station.iin = 0
    session = _connect(cap, rng, SCADA_MASTER, station, START_NS)
    session.assoc.transport_seq = [5, 58]
    ts = _event_polls(session, station, rng, START_NS + SECOND, 4)
    request = session.request("read", d.class_objects(1, 2, 3, 0))
    ts, _ = session.send(True, ts, request)
    response = _big_integrity(station, rng, 64, 120, 32)
    response.sequence = request.sequence
    assert session.assoc.transport_seq[1] == 62
    ts, frames = session.send(False, ts + 25 * MS, response, frames_per_segment=1, gap_ns=400_000)
    cap.expect_difference(frames[-1], "tshark", WIRESHARK_WRAP)
    session.conn.ack(0, ts + 40 * MS)
    ts = _event_polls(session, station, rng, ts + 2 * SECOND, 3)
    session.conn.close(ts)
    return cap


def _exact_response(rng: random.Random, fragment_length: int) -> d.Fragment:
    """A response of exactly ``fragment_length`` bytes: analogs, then binaries to fill up."""
    analogs = d.analog_inputs(0, [rng.randrange(0, 30000) for _ in range(40)])
    used = 4 + len(analogs.data) + 5  # app header, g30v1 block, g1v2 header with 1-byte start/stop
    binaries = d.binary_inputs(0, [rng.randrange(2) for _ in range(fragment_length - used)])
    fragment = d.Fragment(d.FC["response"], 0, iin=0, objects=[analogs, binaries])
    assert len(fragment.encode()) == fragment_length
    return fragment


def dnp3_short_final_segment(seed: int = 2491) -> Capture:
    cap = Capture(
        "dnp3_short_final_segment.pcap",
        "Master 1 polls outstation 10; three integrity responses "
        "span two transport segments whose final segment carries 1, 2 and 3 bytes of fragment data "
        "(Suricata 7 raises LEN_TOO_SMALL and stops logging the flow after the first); normal event "
        "polls and a SELECT/OPERATE follow in the same flow.",
        [SCADA_MASTER, RTU10],
    )
    rng = random.Random(seed)
    station = _outstations()[0]
    station.iin = 0
    session = _connect(cap, rng, SCADA_MASTER, station, START_NS)
    ts = _event_polls(session, station, rng, START_NS + SECOND, 3)
    short_frames = []
    for tail in (2, 1, 3):
        request = session.request("read", d.class_objects(1, 2, 3, 0))
        ts, _ = session.send(True, ts, request)
        response = _exact_response(rng, d.MAX_SEGMENT_DATA + tail)
        response.sequence = request.sequence
        ts, frames = session.send(False, ts + 20 * MS, response, frames_per_segment=1, gap_ns=300_000)
        frames[-1].note = f"final transport segment carries {tail} fragment byte(s)"
        short_frames.append(frames[-1])
        session.conn.ack(0, ts + 40 * MS)
        ts = _event_polls(session, station, rng, ts + SECOND, 3)
    code = 0x41
    ts = session.exchange(
        ts,
        session.request("select", [d.crob(1, code, 1, 500)]),
        station.null_response(0, [d.crob(1, code, 1, 500)]),
        _latency(rng),
    )
    ts = session.exchange(
        ts + 200 * MS,
        session.request("operate", [d.crob(1, code, 1, 500)]),
        station.null_response(0, [d.crob(1, code, 1, 500)]),
        _latency(rng),
    )
    ts = _event_polls(session, station, rng, ts + SECOND, 3)
    session.conn.close(ts)
    for frame in cap.frames():
        if frame.messages and frame.ts_ns >= short_frames[0].ts_ns:
            cap.expect_difference(frame, "suricata", SURICATA_LEN_TOO_SMALL)
    return cap


# ---- mid-stream pickup -------------------------------------------------------------------------

WIRESHARK_OUT_OF_ORDER = (
    "tshark 4.0 (tcp.reassemble_out_of_order off) dissects a segment that arrives ahead of "
    "a hole on arrival and skips the late segment that fills the hole; a reassembling "
    "decoder completes the messages, in stream order, when the hole is filled"
)


def _segments(
    conn: TcpConnection, direction: int, pieces: list[tuple[int, bytes]], order: list[int]
) -> list[Frame]:
    """Send consecutive ``pieces`` (time, bytes) of one direction's stream, emitting them in ``order``."""
    base = conn.dirs[direction].next_seq
    offsets = [0]
    for _, data in pieces:
        offsets.append(offsets[-1] + len(data))
    frames: list[Frame] = [None] * len(pieces)  # type: ignore[list-item]
    for position, n in enumerate(order):
        ts = pieces[position][0]
        frames[n] = conn.segment(direction, ts, PSH | ACK, pieces[n][1], seq=base + offsets[n])
    conn.dirs[direction].next_seq = (base + offsets[-1]) & 0xFFFFFFFF
    return frames


def _modbus_midstream(cap: Capture, rng: random.Random, t0: int) -> None:
    def sink(frame: Frame) -> None:
        if frame.ts_ns >= t0:
            cap.sink(frame)

    conn = TcpConnection(
        sink,
        HMI,
        50321,
        PLC1,
        MODBUS_PORT,
        rng.getrandbits(32),
        rng.getrandbits(32),
        client_ip_id=rng.getrandbits(16),
        server_ip_id=rng.getrandbits(16),
    )
    link = ModbusLink(conn, 4100)
    registers = [rng.randrange(2000) for _ in range(10)]
    # Before the capture starts: a request, and a response the PLC writes as MBAP header + PDU.
    pdu, _ = mb.read_registers_response(3, registers)
    conn.send(0, t0 - 12 * MS, mb.mbap(4099, 1, mb.read_request(3, 0, 10)[0]))
    response = mb.mbap(4099, 1, pdu)
    conn.send(1, t0 - 5 * MS, response[:7])
    first = conn.send(1, t0, response[7:])
    first.note = "capture starts here: the tail of a response whose MBAP header was not captured"
    conn.ack(0, t0 + 200 * MS)
    ts = t0 + SECOND
    ts, _, _ = link.transact(
        ts, 1, mb.read_request(3, 0, 10), mb.read_registers_response(3, registers), 6 * MS
    )
    # A request the PLC never saw the first time: retransmitted after the RTO, then answered.
    ts += SECOND
    tid = link.next_tid
    request, truth = mb.read_request(1, 0, 16)
    truth.update(transaction_id=tid, unit_id=1)
    payload = mb.mbap(tid, 1, request)
    seq = conn.dirs[0].next_seq
    original = conn.send(0, ts, payload, [truth])
    retransmission = conn.segment(0, ts + 300 * MS, PSH | ACK, payload, seq=seq)
    retransmission.note = f"retransmission of transaction {tid}"
    link.next_tid += 1
    pdu, truth = mb.read_bits_response(1, [rng.randrange(2) for _ in range(16)])
    truth.update(transaction_id=tid, unit_id=1)
    conn.send(1, ts + 306 * MS, mb.mbap(tid, 1, pdu), [truth])
    del original
    # Two pipelined requests; the tap delivers the second segment first.
    ts += SECOND
    pieces, truths = [], []
    for n, (fc, qty) in enumerate(((3, 10), (4, 4))):
        tid = link.next_tid + n
        pdu, truth = mb.read_request(fc, 0, qty)
        truths.append(truth | {"transaction_id": tid, "unit_id": 1})
        pieces.append((ts + n * 200_000, mb.mbap(tid, 1, pdu)))
    frames = _segments(conn, 0, pieces, order=[1, 0])
    frames[0].messages = conn.stamp(0, truths) or []  # both complete when the first segment arrives
    frames[1].note = "out of order: arrives before the segment that precedes it"
    cap.expect_difference(frames[1], "tshark", WIRESHARK_OUT_OF_ORDER)
    cap.expect_difference(frames[0], "tshark", WIRESHARK_OUT_OF_ORDER)
    for n, fc in enumerate((3, 4)):
        tid = link.next_tid + n
        values = [rng.randrange(5000) for _ in range(10 if fc == 3 else 4)]
        pdu, truth = mb.read_registers_response(fc, values)
        truth.update(transaction_id=tid, unit_id=1)
        conn.send(1, ts + (7 + n) * MS, mb.mbap(tid, 1, pdu), [truth])
    link.next_tid += 2
    # One write request over three segments: MBAP + function | address, quantity, count, 2 values | rest.
    # (The first piece holds 8 bytes: tshark 4.0 gives up on a segment of less than 8 Modbus/TCP bytes.)
    ts += SECOND
    tid = link.next_tid
    link.next_tid += 1
    values = [rng.randrange(65536) for _ in range(12)]
    pdu, truth = mb.write_multiple_registers(40, values)
    truth.update(transaction_id=tid, unit_id=1)
    payload = mb.mbap(tid, 1, pdu)
    conn.send(0, ts, payload[:8])
    conn.send(0, ts + 150_000, payload[8:17])
    conn.send(0, ts + 300_000, payload[17:], [truth])
    pdu, truth = mb.write_multiple_response(16, 40, len(values))
    truth.update(transaction_id=tid, unit_id=1)
    conn.send(1, ts + 8 * MS, mb.mbap(tid, 1, pdu), [truth])
    ts += SECOND
    link.transact(ts, 1, mb.read_request(3, 0, 10), mb.read_registers_response(3, registers), 6 * MS)
    conn.ack(0, ts + 206 * MS)


def _dnp3_midstream(cap: Capture, rng: random.Random, t0: int) -> None:
    def sink(frame: Frame) -> None:
        if frame.ts_ns >= t0:
            cap.sink(frame)

    station = _outstations()[0]
    station.iin = 0
    conn = TcpConnection(
        sink,
        SCADA_MASTER,
        47011,
        RTU10,
        20000,
        rng.getrandbits(32),
        rng.getrandbits(32),
        client_ttl=64,
        client_ip_id=rng.getrandbits(16),
        server_ip_id=rng.getrandbits(16),
    )
    session = Dnp3Session(conn, d.Association(1, 10, [17, 33], 9))
    assoc = session.assoc
    # Before the capture: an event poll; the outstation answers and, in the same write, sends an
    # unsolicited report. TCP splits that write; the capture starts inside the first link frame.
    session.send(True, t0 - 30 * MS, session.request("read", d.class_objects(1, 2, 3)))
    station.pending_analog.append((3, 411))
    answer = station.events(assoc.master_seq - 1 & 0xF)
    answer_frames = assoc.link_frames(False, answer.encode())
    station.pending_binary.append((5, 1, (t0 - 6 * MS) // MS))
    unsolicited = station.events(assoc.next_unsolicited_seq(), unsolicited=True)
    unsolicited_truth = unsolicited.truth() | assoc.link_truth(False)
    write = answer_frames[0] + assoc.link_frames(False, unsolicited.encode())[0]
    cut = len(answer_frames[0]) - 14
    conn.send(1, t0 - 6 * MS, write[:cut])
    first = conn.send(1, t0, write[cut:], [unsolicited_truth])
    first.note = "capture starts here: the last 14 bytes of a link frame, then a whole unsolicited response"
    cap.expect_difference(
        first,
        "tshark",
        "tshark 4.0 does not look for a DNP3 start (0x0564 + header CRC) "
        "inside a segment that begins mid-frame",
    )
    session.send(True, t0 + 2 * MS, d.Fragment(d.FC["confirm"], answer.sequence))
    session.send(True, t0 + 3 * MS, d.Fragment(d.FC["confirm"], unsolicited.sequence, uns=True))
    ts = t0 + SECOND + 100 * MS
    ts = _event_polls(session, station, rng, ts, 1)
    # A response retransmitted (the master's ACK was lost behind the tap).
    request = session.request("read", d.class_objects(1, 2, 3))
    ts, _ = session.send(True, ts, request)
    station.pending_binary.append((6, 1, ts // MS))
    response = station.events(request.sequence)
    seq = conn.dirs[1].next_seq
    ts, frames = session.send(False, ts + 15 * MS, response)
    again = conn.segment(1, ts + 250 * MS, PSH | ACK, frames[0].data[54:], seq=seq)
    again.note = "retransmission of the previous response"
    session.send(True, ts + 253 * MS, d.Fragment(d.FC["confirm"], response.sequence))
    # An integrity response in two link frames / two TCP segments, captured in swapped order.
    ts += SECOND
    request = session.request("read", d.class_objects(1, 2, 3, 0))
    ts, _ = session.send(True, ts, request)
    big = _big_integrity(station, rng, 32, 60, 8)
    big.sequence = request.sequence
    truth: dict[str, Any] = big.truth() | assoc.link_truth(False)
    links = assoc.link_frames(False, big.encode())
    truth["transport_segments"] = len(links)
    assert len(links) == 2
    frames = _segments(conn, 1, [(ts + 20 * MS, links[0]), (ts + 20 * MS + 300_000, links[1])], order=[1, 0])
    frames[0].messages = conn.stamp(1, [truth]) or []
    frames[1].note = "out of order: the second link frame arrives before the first"
    cap.expect_difference(frames[0], "tshark", WIRESHARK_OUT_OF_ORDER)
    conn.ack(0, ts + 60 * MS)
    # A SELECT whose single link frame is split over three TCP segments, then OPERATE.
    ts += SECOND
    select = session.request("select", [d.crob(3, 0x03)])
    select_truth = select.truth() | assoc.link_truth(True)
    link_bytes = assoc.link_frames(True, select.encode())[0]
    conn.send(0, ts, link_bytes[:6])
    conn.send(0, ts + 100_000, link_bytes[6:20])
    conn.send(0, ts + 200_000, link_bytes[20:], [select_truth])
    session.send(False, ts + 18 * MS, station.null_response(select.sequence, [d.crob(3, 0x03)]))
    ts += 300 * MS
    session.exchange(
        ts,
        session.request("operate", [d.crob(3, 0x03)]),
        station.null_response(0, [d.crob(3, 0x03)]),
        _latency(rng),
    )


def tcp_midstream(seed: int = 1500) -> Capture:
    cap = Capture(
        "tcp_midstream.pcap",
        "A Modbus flow (10.20.1.10 -> 10.20.2.21:502) and a DNP3 flow "
        "(10.20.1.11 -> 10.20.2.31:20000) captured mid-connection: no handshake, the first segment "
        "of each starts inside a PDU; each flow has a retransmission, an out-of-order pair of "
        "segments and one PDU split across three segments.",
        [HMI, PLC1, SCADA_MASTER, RTU10],
    )
    rng = random.Random(seed)
    _modbus_midstream(cap, rng, START_NS)
    _dnp3_midstream(cap, rng, START_NS + 400 * MS)
    return cap
