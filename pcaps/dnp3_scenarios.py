"""The DNP3 sample captures: a master polling two outstations, an intruding second master, and the
transport edge cases where Wireshark 4.0 and Suricata 7 lose messages."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import gen_dnp3 as d
from capture import Capture
from netpackets import Frame, Host, TcpConnection
from plan import MS, ROGUE, RTU10, RTU11, SCADA_MASTER, SECOND, START_NS

DNP3_PORT = 20000
MASTER_ADDRESS = 1
ROGUE_ADDRESS = 100
LINUX_DELAYED_ACK_NS = 40 * MS


@dataclass
class Dnp3Session:
    """One TCP connection from a master to an outstation carrying one DNP3 association."""

    conn: TcpConnection
    assoc: d.Association

    def send(
        self,
        from_master: bool,
        ts: int,
        fragment: d.Fragment,
        *,
        frames_per_segment: int = 0,
        gap_ns: int = 300_000,
        attack: dict[str, Any] | None = None,
        max_data: int = d.MAX_SEGMENT_DATA,
        corrupt: tuple[int, int] | None = None,
    ) -> tuple[int, list[Frame]]:
        """Send ``fragment``; link frames go ``frames_per_segment`` to a TCP segment (0 = all in one).

        The truth goes on the TCP segment holding the last link frame: that frame completes the message.
        """
        truth = fragment.truth() | self.assoc.link_truth(from_master)
        links = self.assoc.link_frames(from_master, fragment.encode(), max_data, corrupt)
        if len(links) > 1:
            truth["transport_segments"] = len(links)
        if attack:
            truth["attack"] = attack
        if corrupt:
            truth = _bad_crc_truth(truth)
        per = frames_per_segment or len(links)
        groups = [b"".join(links[i : i + per]) for i in range(0, len(links), per)]
        frames = []
        direction = 0 if from_master else 1
        for n, payload in enumerate(groups):
            last = n == len(groups) - 1
            frames.append(self.conn.send(direction, ts, payload, [truth] if last else None))
            if not last:
                ts += gap_ns
        return ts, frames

    def exchange(
        self,
        ts: int,
        request: d.Fragment,
        response: d.Fragment | None,
        latency_ns: int,
        attack: dict[str, Any] | None = None,
        **response_options: Any,
    ) -> int:
        """Request, response after ``latency_ns``, then the master's CONFIRM (if asked for) or a late ACK."""
        ts, _ = self.send(True, ts, request, attack=attack)
        ts += latency_ns
        if response is not None:
            response.sequence = request.sequence  # a response echoes its request's sequence (§4.2.2.4.3)
        if response is None:
            self.conn.ack(1, ts)
            return ts
        ts, _ = self.send(False, ts, response, attack=attack, **response_options)
        if response.con:
            ts += 2 * MS
            self.send(True, ts, d.Fragment(d.FC["confirm"], response.sequence))
        else:
            self.conn.delayed_ack(0, ts + LINUX_DELAYED_ACK_NS)
        return ts

    def request(self, function: str, objects: list[d.Obj] | None = None) -> d.Fragment:
        return d.Fragment(d.FC[function], self.assoc.next_master_seq(), objects=list(objects or []))


def _bad_crc_truth(truth: dict[str, Any]) -> dict[str, Any]:
    """A frame with a bad data CRC: its link header is valid, its user data must not be trusted."""
    keep = {
        k: truth[k]
        for k in ("link_source", "link_destination", "link_function_code", "dir", "prm", "attack")
        if k in truth
    }
    return {
        "protocol": "dnp3",
        "action": "decode_error",
        "function_code": None,
        "reason": "bad_crc",
        "crc_errors": 1,
        "intended_function_code": truth["function_code"],
    } | keep


@dataclass
class Outstation:
    """An outstation's points; changes between polls become events."""

    host: Host
    address: int
    binaries: list[int]
    outputs: list[int]
    counts: list[int]
    analogs: list[int]
    pending_binary: list[tuple[int, int, int]] = field(default_factory=list)
    pending_analog: list[tuple[int, int]] = field(default_factory=list)
    iin: int = d.IIN_DEVICE_RESTART | d.IIN_NEED_TIME
    restart_at_ns: int | None = None

    def evolve(self, rng: random.Random, ts: int) -> None:
        for i in range(len(self.analogs)):
            self.analogs[i] += rng.randint(-20, 20)
            if abs(rng.gauss(0, 1)) > 2.3:  # a deadband crossing
                self.pending_analog.append((i, self.analogs[i]))
        for i in range(len(self.counts)):
            self.counts[i] += rng.randint(0, 9)
        if rng.random() < 0.15:
            i = rng.randrange(len(self.binaries))
            self.binaries[i] ^= 1
            self.pending_binary.append((i, self.binaries[i], ts // MS))
        if self.restart_at_ns is not None and ts >= self.restart_at_ns:
            self.iin |= d.IIN_DEVICE_RESTART | d.IIN_NEED_TIME
            self.restart_at_ns = None

    def current_iin(self) -> int:
        events = d.IIN_CLASS1_EVENTS if self.pending_binary else 0
        events |= d.IIN_CLASS2_EVENTS if self.pending_analog else 0
        return self.iin | events

    def integrity(self, sequence: int) -> d.Fragment:
        self.pending_binary.clear()
        self.pending_analog.clear()
        return d.Fragment(
            d.FC["response"],
            sequence,
            iin=self.current_iin(),
            objects=[
                d.binary_inputs(0, self.binaries),
                d.binary_inputs(0, self.outputs, group=10),
                d.counters(0, self.counts),
                d.analog_inputs(0, self.analogs),
            ],
        )

    def events(self, sequence: int, unsolicited: bool = False) -> d.Fragment:
        objects = []
        if self.pending_binary:
            objects.append(d.binary_events(self.pending_binary[:]))
        if self.pending_analog:
            objects.append(d.analog_events(self.pending_analog[:]))
        self.pending_binary.clear()
        self.pending_analog.clear()
        function = d.FC["unsolicited_response" if unsolicited else "response"]
        return d.Fragment(
            function,
            sequence,
            con=bool(objects) or unsolicited,
            uns=unsolicited,
            iin=self.current_iin(),
            objects=objects,
        )

    def null_response(self, sequence: int, objects: list[d.Obj] | None = None) -> d.Fragment:
        return d.Fragment(d.FC["response"], sequence, iin=self.current_iin(), objects=list(objects or []))


def _latency(rng: random.Random) -> int:
    return rng.randrange(8 * MS, 30 * MS) + rng.randrange(1000)


def _outstations() -> list[Outstation]:
    return [
        Outstation(
            RTU10,
            10,
            [1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1, 0],
            [1, 0, 0, 1],
            [1200, 455, 0, 78],
            [13800, 12950, 410, 402, 398, 5000, -12, 600],
        ),
        Outstation(
            RTU11,
            11,
            [0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1],
            [0, 1, 0, 0],
            [88, 9021, 3, 0],
            [13750, 12990, 388, 391, 405, 4200, 7, 580],
        ),
    ]


def _connect(
    cap: Capture,
    rng: random.Random,
    master: Host,
    outstation: Outstation,
    ts: int,
    master_address: int = MASTER_ADDRESS,
) -> Dnp3Session:
    conn = cap.connection(
        master,
        rng.randrange(40000, 60000),
        outstation.host,
        DNP3_PORT,
        rng.getrandbits(32),
        rng.getrandbits(32),
        client_ttl=64,
        client_ip_id=rng.getrandbits(16),
        server_ip_id=rng.getrandbits(16),
    )
    conn.open(ts)
    return Dnp3Session(
        conn,
        d.Association(
            master_address, outstation.address, [rng.randrange(64), rng.randrange(64)], rng.randrange(16)
        ),
    )


def _startup(session: Dnp3Session, station: Outstation, rng: random.Random, ts: int) -> int:
    """Integrity poll, clear the restart bit, LAN time sync (record current time, write g50v3)."""
    ts = session.exchange(
        ts, session.request("read", d.class_objects(1, 2, 3, 0)), station.integrity(0), _latency(rng)
    )
    return _clear_restart_and_sync(session, station, rng, ts + 20 * MS)


def _clear_restart_and_sync(session: Dnp3Session, station: Outstation, rng: random.Random, ts: int) -> int:
    station.iin &= ~d.IIN_DEVICE_RESTART
    ts = session.exchange(
        ts, session.request("write", [d.clear_restart()]), station.null_response(0), _latency(rng)
    )
    ts += 20 * MS
    ts = session.exchange(ts, session.request("record_current_time"), station.null_response(0), _latency(rng))
    station.iin &= ~d.IIN_NEED_TIME
    ts += 5 * MS
    return session.exchange(
        ts,
        session.request("write", [d.last_recorded_time(ts // MS - 3)]),
        station.null_response(0),
        _latency(rng),
    )


def polling(
    cap: Capture, rng: random.Random, start: int, seconds: int, restart_at_ns: dict[str, int] | None = None
) -> list[Dnp3Session]:
    """Master 1 polls outstations 10 and 11: startup, event polls every 5 s, integrity every 30 s,
    unsolicited from 11, a SELECT/OPERATE on 10, a link status check."""
    stations = _outstations()
    for s in stations:
        s.restart_at_ns = (restart_at_ns or {}).get(s.host.ip)
    sessions = [_connect(cap, rng, SCADA_MASTER, s, start + n * 50 * MS) for n, s in enumerate(stations)]
    for n, (session, station) in enumerate(zip(sessions, stations, strict=True)):
        _startup(session, station, rng, start + SECOND + n * 300 * MS)
    rtu11 = sessions[1]
    rtu11.exchange(
        start + 2 * SECOND,
        rtu11.request("enable_unsolicited", d.class_objects(1, 2, 3)),
        stations[1].null_response(0),
        _latency(rng),
    )
    for tick in range(1, seconds // 5):
        t = start + tick * 5 * SECOND + rng.randrange(50 * MS)
        for n, (session, station) in enumerate(zip(sessions, stations, strict=True)):
            ts = t + n * 120 * MS
            station.evolve(rng, ts)
            if station.iin & d.IIN_DEVICE_RESTART:
                ts = session.exchange(
                    ts,
                    session.request("read", d.class_objects(1, 2, 3, 0)),
                    station.integrity(0),
                    _latency(rng),
                )
                _clear_restart_and_sync(session, station, rng, ts + 20 * MS)
            elif tick % 6 == 0:
                session.exchange(
                    ts,
                    session.request("read", d.class_objects(1, 2, 3, 0)),
                    station.integrity(0),
                    _latency(rng),
                )
            else:
                session.exchange(
                    ts, session.request("read", d.class_objects(1, 2, 3)), station.events(0), _latency(rng)
                )
        if tick == 8:  # rtu-11 reports a change by itself; the master confirms with UNS set
            station = stations[1]
            ts = t + 2500 * MS
            station.pending_binary.append((4, 0, ts // MS))
            station.binaries[4] = 0
            unsolicited = station.events(rtu11.assoc.next_unsolicited_seq(), unsolicited=True)
            ts, _ = rtu11.send(False, ts, unsolicited)
            rtu11.send(True, ts + 3 * MS, d.Fragment(d.FC["confirm"], unsolicited.sequence, uns=True))
        if tick == 9:  # the operator closes breaker 2 on rtu-10: SELECT, then OPERATE
            session, station = sessions[0], stations[0]
            ts = t + 2 * SECOND
            code = 0x41  # PULSE_ON | TCC close
            ts = session.exchange(
                ts,
                session.request("select", [d.crob(2, code, 1, 500, 0)]),
                station.null_response(0, [d.crob(2, code, 1, 500, 0)]),
                _latency(rng),
            )
            ts += rng.randrange(150 * MS, 300 * MS)
            session.exchange(
                ts,
                session.request("operate", [d.crob(2, code, 1, 500, 0)]),
                station.null_response(0, [d.crob(2, code, 1, 500, 0)]),
                _latency(rng),
            )
            station.outputs[2] = 1
        if tick == 11:  # link-layer keep-alive (REQUEST_LINK_STATUS / LINK_STATUS): link-only frames
            _link_status(rtu11, t + 3 * SECOND)
    end = start + seconds * SECOND
    for n, session in enumerate(sessions):
        session.conn.close(end + n * 5 * MS)
    return sessions


def _link_status(session: Dnp3Session, ts: int) -> None:
    a = session.assoc
    request = d.link_frame(d.DIR | d.PRM | d.LINK_REQUEST_LINK_STATUS, a.outstation, a.master)
    session.conn.send(
        0,
        ts,
        request,
        [
            {"protocol": "dnp3", "action": "link_request_link_status", "function_code": None}
            | a.link_truth(True, d.LINK_REQUEST_LINK_STATUS)
        ],
    )
    response = d.link_frame(d.LINK_STATUS, a.master, a.outstation)
    session.conn.send(
        1,
        ts + 4 * MS,
        response,
        [
            {"protocol": "dnp3", "action": "link_status", "function_code": None}
            | a.link_truth(False, d.LINK_STATUS, prm=False)
        ],
    )
    session.conn.ack(0, ts + 4 * MS + LINUX_DELAYED_ACK_NS)


def dnp3_polling(seed: int = 20000) -> Capture:
    cap = Capture(
        "dnp3_polling.pcap",
        "DNP3 master 10.20.1.11 (address 1) polls outstations 10.20.2.31 "
        "(address 10) and 10.20.2.32 (address 11) on TCP 20000: integrity and event polls with "
        "binary/analog/counter points and confirms, clear-restart and LAN time sync (record current "
        "time + write g50v3), enable unsolicited, an unsolicited response + confirm, SELECT/OPERATE "
        "of a CROB, a link status check. Normal traffic.",
        [SCADA_MASTER, RTU10, RTU11],
    )
    polling(cap, random.Random(seed), START_NS, 90)
    return cap


ATTACKS = {
    "direct_operate": {
        "technique": "T0855",
        "name": "Unauthorized Command Message",
        "injected": "unknown master (address 100) DIRECT_OPERATE on a CROB: trip breaker 0",
    },
    "disable_unsolicited": {
        "technique": "T0804",
        "name": "Block Reporting Message",
        "injected": "DISABLE_UNSOLICITED from an unknown master",
    },
    "delete_file": {
        "technique": "T0809",
        "name": "Data Destruction",
        "injected": "DELETE_FILE (g70v3) of the outstation's configuration",
    },
    "bad_crc": {
        "technique": "T0855",
        "name": "Unauthorized Command Message",
        "injected": "DIRECT_OPERATE in a link frame whose first data-block CRC is wrong",
    },
    "stop_application": {
        "technique": "T0881",
        "name": "Service Stop",
        "injected": "STOP_APPL (g90v1, all applications) from an unknown master",
    },
    "cold_restart": {
        "technique": "T0816",
        "name": "Device Restart/Shutdown",
        "injected": "COLD_RESTART from an unknown master",
    },
}


def dnp3_suspicious(seed: int = 20000) -> Capture:
    cap = Capture(
        "dnp3_suspicious.pcap",
        "The dnp3_polling master plus an unknown second master 10.20.1.66 "
        "(address 100) talking to outstation 10: DIRECT_OPERATE of a CROB, DISABLE_UNSOLICITED, "
        "DELETE_FILE (g70v3), a frame with a bad CRC, STOP_APPL and COLD_RESTART; afterwards the "
        "outstation reports DEVICE_RESTART to the legitimate master.",
        [SCADA_MASTER, RTU10, RTU11, ROGUE],
    )
    rng = random.Random(seed)
    attack_rng = random.Random(seed + 1)
    restart = START_NS + 45 * SECOND + 40 * MS
    polling(cap, rng, START_NS, 60, restart_at_ns={RTU10.ip: restart})
    rtu10 = _outstations()[0]
    rtu10.iin = 0
    rogue = _connect(cap, attack_rng, ROGUE, rtu10, START_NS + 19 * SECOND, ROGUE_ADDRESS)
    ts = START_NS + 20 * SECOND + attack_rng.randrange(10 * MS)
    trip = d.crob(0, 0x81, 1, 300, 0)  # PULSE_ON | TCC trip
    rogue.exchange(
        ts,
        rogue.request("direct_operate", [trip]),
        rtu10.null_response(0, [d.crob(0, 0x81, 1, 300, 0)]),
        _latency(attack_rng),
        ATTACKS["direct_operate"],
    )
    ts = START_NS + 25 * SECOND + attack_rng.randrange(10 * MS)
    rogue.exchange(
        ts,
        rogue.request("disable_unsolicited", d.class_objects(1, 2, 3)),
        rtu10.null_response(0),
        _latency(attack_rng),
        ATTACKS["disable_unsolicited"],
    )
    ts = START_NS + 30 * SECOND + attack_rng.randrange(10 * MS)
    rogue.exchange(
        ts,
        rogue.request("delete_file", [d.file_command("/cfg/protection.cfg", 7)]),
        rtu10.null_response(0, [d.file_command_status(7)]),
        _latency(attack_rng),
        ATTACKS["delete_file"],
    )
    ts = START_NS + 35 * SECOND + attack_rng.randrange(10 * MS)
    rogue.send(
        True,
        ts,
        rogue.request("direct_operate", [d.crob(1, 0x81, 1, 300, 0)]),
        attack=ATTACKS["bad_crc"],
        corrupt=(0, 1),
    )
    rogue.conn.ack(1, ts + 3 * MS)  # the outstation discards the frame: TCP ACK only
    ts = START_NS + 40 * SECOND + attack_rng.randrange(10 * MS)
    rogue.exchange(
        ts,
        rogue.request("stop_appl", [d.all_objects(90, 1)]),
        rtu10.null_response(0),
        _latency(attack_rng),
        ATTACKS["stop_application"],
    )
    rogue.exchange(
        START_NS + 45 * SECOND,
        rogue.request("cold_restart"),
        rtu10.null_response(0, [d.time_delay_fine(15000)]),
        20 * MS,
        ATTACKS["cold_restart"],
    )
    rogue.conn.close(START_NS + 45 * SECOND + 200 * MS)
    for frame in cap.frames():
        if any(m.get("action") == "stop_appl" for m in frame.messages):
            cap.expect_difference(
                frame,
                "tshark",
                "tshark 4.0 does not dissect the object headers of a STOP_APPL request (g90v1 here)",
                field="objects",
            )
    return cap
