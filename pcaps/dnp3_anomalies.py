"""The DNP3 anomalies capture: the dnp3_polling master and outstations doing what the DNP3 rules watch for,
each next to its near miss.

* OPERATE after its SELECT (near miss), then an OPERATE with no SELECT (the outstation answers NO_SELECT);
* IMMED_FREEZE_NR to outstation 10 (near miss), then the same to the broadcast address 0xFFFF;
* IIN DEVICE_TROUBLE and BROADCAST (near misses), then CONFIG_CORRUPT (rtu-10) and EVENT_BUFFER_OVERFLOW
  (rtu-11);
* 5 unsolicited responses within 10 s (near miss), then 6 within 10 s;
* an integrity response whose g30v1 range fits its data (near miss), then one whose range runs 2 points
  past the end of the fragment;
* OPEN_FILE/CLOSE_FILE of the sequence-of-events log, ACTIVATE_CONFIG of a settings file.
"""

from __future__ import annotations

import random
from typing import Any

import gen_dnp3 as d
from capture import Capture
from dnp3_scenarios import Dnp3Session, Outstation, _connect, _latency, _outstations
from netpackets import Frame
from plan import MS, RTU10, RTU11, SCADA_MASTER, SECOND, START_NS

ATTACKS = {
    "operate_without_select": {
        "technique": "T0855",
        "name": "Unauthorized Command Message",
        "injected": "OPERATE of breaker 2 with no SELECT before it (a replayed command)",
    },
    "unsolicited_storm": {
        "technique": "T0856",
        "name": "Spoof Reporting Message",
        "injected": "6 unsolicited responses from outstation 11 within 7.5 s",
    },
    "objects_past_end": {
        "technique": "T0814",
        "name": "Denial of Service",
        "injected": "g30v1 range 0-9 with data for 8 points: the objects run past the end of the fragment",
    },
    "response_too_short": {
        "technique": "T0814",
        "name": "Denial of Service",
        "injected": "a RESPONSE fragment of application control and function code only: no room for the IIN",
    },
}
BREAKER_2 = 0x41  # CROB PULSE_ON | TCC close, as dnp3_polling's operator uses on point 2


def _running(stations: list[Outstation]) -> list[Outstation]:
    for station in stations:
        station.iin = 0  # up and time-synchronised long before this capture starts
    return stations


def _poll(session: Dnp3Session, station: Outstation, rng: random.Random, ts: int, iin: int = 0) -> int:
    """An event poll whose response carries ``iin`` on top of the station's own bits."""
    station.evolve(rng, ts)
    response = station.events(0)
    response.iin = (response.iin or 0) | iin
    return session.exchange(ts, session.request("read", d.class_objects(1, 2, 3)), response, _latency(rng))


def _integrity(
    session: Dnp3Session,
    station: Outstation,
    rng: random.Random,
    ts: int,
    attack: dict[str, Any] | None = None,
) -> int:
    response = station.integrity(0)
    if attack:  # the analog block's range claims two points more than it carries
        response.objects[-1] = d.truncated_analog_inputs(0, station.analogs, len(station.analogs) + 2)
    return session.exchange(
        ts, session.request("read", d.class_objects(1, 2, 3, 0)), response, _latency(rng), attack
    )


def _control(session: Dnp3Session, station: Outstation, rng: random.Random, ts: int) -> int:
    """SELECT then OPERATE of breaker 2 (paired), and later an OPERATE alone: rejected with NO_SELECT."""
    select = session.request("select", [d.crob(2, BREAKER_2, 1, 500, 0)])
    ts = session.exchange(
        ts, select, station.null_response(0, [d.crob(2, BREAKER_2, 1, 500, 0)]), _latency(rng)
    )
    ts += rng.randrange(150 * MS, 300 * MS)
    operate = session.request("operate", [d.crob(2, BREAKER_2, 1, 500, 0)])
    session.exchange(ts, operate, station.null_response(0, [d.crob(2, BREAKER_2, 1, 500, 0)]), _latency(rng))
    ts = START_NS + 15 * SECOND + rng.randrange(10 * MS)
    lone = session.request("operate", [d.crob(2, BREAKER_2, 1, 500, 0)])
    rejected = station.null_response(0, [d.crob(2, BREAKER_2, 1, 500, 0, status=d.CROB_NO_SELECT)])
    return session.exchange(ts, lone, rejected, _latency(rng), ATTACKS["operate_without_select"])


def _freeze(session: Dnp3Session, ts: int, destination: int) -> int:
    """IMMED_FREEZE_NR of every counter (g20v0, all objects): no response, the outstation only ACKs."""
    assoc = session.assoc
    outstation, assoc.outstation = assoc.outstation, destination
    ts, _ = session.send(True, ts, session.request("immed_freeze_nr", [d.all_objects(20, 0)]))
    assoc.outstation = outstation
    session.conn.ack(1, ts + 3 * MS)
    return ts


def _unsolicited(session: Dnp3Session, station: Outstation, ts: int, count: int, every_ns: int) -> int:
    """``count`` unsolicited responses ``every_ns`` apart, each a binary change the master confirms."""
    for n in range(count):
        point = 8 + n % 4
        station.binaries[point] ^= 1
        station.pending_binary.append((point, station.binaries[point], ts // MS))
        fragment = station.events(session.assoc.next_unsolicited_seq(), unsolicited=True)
        attack = ATTACKS["unsolicited_storm"] if every_ns < 2 * SECOND else None
        sent, _ = session.send(False, ts, fragment, attack=attack)
        session.send(True, sent + 3 * MS, d.Fragment(d.FC["confirm"], fragment.sequence, uns=True))
        session.conn.delayed_ack(1, sent + 3 * MS + 40 * MS)
        ts += every_ns
    return ts


def _files_and_configuration(session: Dnp3Session, station: Outstation, rng: random.Random, ts: int) -> int:
    """The engineer fetches the sequence-of-events log (OPEN_FILE, CLOSE_FILE) and activates new settings."""
    handle = 0x1001
    ts = session.exchange(
        ts,
        session.request(
            "open_file", [d.file_command("/log/soe.log", 21, mode=d.FILE_MODE_READ, max_block=1024)]
        ),
        station.null_response(0, [d.file_command_status(21, handle=handle)]),
        _latency(rng),
    )
    ts = session.exchange(
        ts + SECOND,
        session.request("close_file", [d.file_command_status(22, handle=handle)]),
        station.null_response(0, [d.file_command_status(22, handle=handle)]),
        _latency(rng),
    )
    return session.exchange(
        ts + 4 * SECOND,
        session.request("activate_config", [d.file_specification("/cfg/settings-2024-05.xml")]),
        station.null_response(0, [d.activation_status(5000)]),
        _latency(rng),
    )


def _short_response(session: Dnp3Session, ts: int) -> Frame:
    """A response fragment too short to hold its IIN: a length anomaly, decoded as an error."""
    fragment = bytes([0xC0, d.FC["response"]])  # FIR|FIN, sequence 0; IIN1/IIN2 missing
    truth = session.assoc.link_truth(False) | {
        "protocol": "dnp3",
        "action": "decode_error",
        "function_code": None,
        "reason": "response_too_short",
        "attack": ATTACKS["response_too_short"],
    }
    return session.conn.send(1, ts, b"".join(session.assoc.link_frames(False, fragment)), [truth])


def dnp3_anomalies(seed: int = 20001) -> Capture:
    cap = Capture(
        "dnp3_anomalies.pcap",
        "Master 10.20.1.11 (address 1) with outstations 10 (10.20.2.31) and 11 (10.20.2.32): SELECT/"
        "OPERATE, then an OPERATE without SELECT (NO_SELECT); IMMED_FREEZE_NR to outstation 10, then to "
        "broadcast 0xFFFF; IIN DEVICE_TROUBLE, BROADCAST, CONFIG_CORRUPT and EVENT_BUFFER_OVERFLOW; 5 "
        "unsolicited responses within 10 s, later 6; a g30v1 range that runs past the end of the "
        "fragment; OPEN_FILE/CLOSE_FILE and ACTIVATE_CONFIG; a RESPONSE too short for its IIN.",
        [SCADA_MASTER, RTU10, RTU11],
    )
    rng = random.Random(seed)
    rtu10, rtu11 = _running(_outstations())
    s10 = _connect(cap, rng, SCADA_MASTER, rtu10, START_NS)
    s11 = _connect(cap, rng, SCADA_MASTER, rtu11, START_NS + 50 * MS)
    _integrity(s10, rtu10, rng, START_NS + SECOND)
    _integrity(s11, rtu11, rng, START_NS + SECOND + 300 * MS)
    _poll(s10, rtu10, rng, START_NS + 5 * SECOND, d.IIN_DEVICE_TROUBLE)
    _control(s10, rtu10, rng, START_NS + 8 * SECOND)
    _freeze(s10, START_NS + 20 * SECOND, rtu10.address)
    _freeze(s10, START_NS + 25 * SECOND, d.BROADCAST_NO_CONFIRM)
    _poll(s10, rtu10, rng, START_NS + 30 * SECOND, d.IIN_BROADCAST)  # it heard the broadcast
    _poll(s10, rtu10, rng, START_NS + 35 * SECOND, d.IIN_CONFIG_CORRUPT)
    _poll(s11, rtu11, rng, START_NS + 36 * SECOND, d.IIN_EVENT_BUFFER_OVERFLOW)
    s11.exchange(
        START_NS + 40 * SECOND,
        s11.request("enable_unsolicited", d.class_objects(1, 2, 3)),
        rtu11.null_response(0),
        _latency(rng),
    )
    _unsolicited(s11, rtu11, START_NS + 42 * SECOND, 5, 2 * SECOND)  # 5 within 8 s: no storm
    _unsolicited(s11, rtu11, START_NS + 70 * SECOND, 6, 1500 * MS)  # 6 within 7.5 s: a storm
    s11.exchange(
        START_NS + 80 * SECOND,
        s11.request("disable_unsolicited", d.class_objects(1, 2, 3)),
        rtu11.null_response(0),
        _latency(rng),
    )
    _integrity(s10, rtu10, rng, START_NS + 82 * SECOND)
    _integrity(s10, rtu10, rng, START_NS + 85 * SECOND, ATTACKS["objects_past_end"])
    ts = _files_and_configuration(s10, rtu10, rng, START_NS + 95 * SECOND)
    short = _short_response(s10, ts + 2 * SECOND)
    cap.expect_difference(
        short,
        "tshark",
        "tshark 4.0 reports the function code of a response too short for its IIN; otsentry reports the "
        "fragment as a decode error (IIN missing) and no function code",
    )
    s10.conn.close(ts + 3 * SECOND)
    s11.conn.close(ts + SECOND + 5 * MS)
    for frame in cap.frames():
        if any(m.get("action") == "activate_config" for m in frame.messages):
            cap.expect_difference(
                frame,
                "tshark",
                "tshark 4.0 does not dissect the object headers of an ACTIVATE_CONFIG request (g70v8 here)",
                field="objects",
            )
    return cap
