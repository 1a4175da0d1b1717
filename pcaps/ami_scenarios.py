"""AMI and grid sample captures: a DLMS head-end disconnecting a meter and activating firmware on
another, a C12.22 head-end running procedures on a meter, and an IEC 104 control session.

10.20.4.0/24 is the AMI zone (meters behind the head-end's backhaul), 10.20.3.0/24 substations.
"""

from __future__ import annotations

import random

import gen_ami as g
from capture import Capture
from netpackets import Host, TcpConnection, mac
from plan import MS, SCADA_MASTER, SECOND, START_NS

DLMS_PORT, C1222_PORT, IEC104_PORT = 4059, 1153, 2404  # IANA registrations

HEAD_END = Host("ami-head-end", mac("00:14:22:0a:14:1e"), "10.20.1.30")  # Dell
METER1 = Host("meter-411", mac("00:0d:6f:0a:14:0b"), "10.20.4.11")  # Ember (Silicon Labs) radio module
METER2 = Host("meter-412", mac("00:0d:6f:0a:14:0c"), "10.20.4.12")
C1222_METER = Host("meter-421", mac("00:0d:6f:0a:14:15"), "10.20.4.21")
SUBSTATION_RTU = Host("substation-rtu-41", mac("00:30:a7:0a:14:29"), "10.20.3.41")  # SEL


def _connect(
    cap: Capture, rng: random.Random, client: Host, server: Host, port: int, ts: int
) -> TcpConnection:
    conn = cap.connection(
        client,
        rng.randrange(49152, 65000),
        server,
        port,
        rng.getrandbits(32),
        rng.getrandbits(32),
        client_ip_id=rng.getrandbits(16),
        server_ip_id=rng.getrandbits(16),
    )
    conn.open(ts)
    return conn


def _latency(rng: random.Random) -> int:
    return rng.randrange(20 * MS, 80 * MS) + rng.randrange(1000)  # radio/cellular backhaul


def _exchange(
    conn: TcpConnection,
    rng: random.Random,
    ts: int,
    request: tuple[bytes, g.Truth],
    response: tuple[bytes, g.Truth],
) -> int:
    """Request, response after the link latency, then the client's ACK; returns the time after it."""
    conn.send(0, ts, request[0], [request[1]])
    ts += _latency(rng)
    conn.send(1, ts, response[0], [response[1]])
    ts += 40 * MS
    conn.delayed_ack(0, ts)
    return ts


def dlms_disconnect(seed: int = 4059) -> Capture:
    """The head-end reads clock and energy on two meters, disconnects meter 1 and activates a
    transferred firmware image on meter 2."""
    rng = random.Random(seed)
    cap = Capture(
        "dlms_disconnect.pcap",
        "DLMS/COSEM head-end (wrapper, TCP 4059): AARQ/AARE, GET clock and active energy, remote "
        "disconnect on one meter, image transfer activate on another",
        hosts=[HEAD_END, METER1, METER2],
    )
    ts = START_NS
    for meter, energy, command in ((METER1, 1_482_337, g.dlms_remote_disconnect()), (METER2, 903_118, None)):
        conn = _connect(cap, rng, HEAD_END, meter, DLMS_PORT, ts)
        ts += 2 * MS
        ts = _exchange(conn, rng, ts, g.dlms_aarq(), g.dlms_aare())
        request = g.dlms_get(8, g.CLOCK_OBIS, 2)
        clock = g.cosem_date_time(2024, 5, 14, 6, 0, ts // SECOND % 60)
        ts = _exchange(conn, rng, ts + 100 * MS, request, g.dlms_get_response(request, clock))
        request = g.dlms_get(3, g.ENERGY_OBIS, 2)
        value = g.double_long_unsigned(energy)
        ts = _exchange(conn, rng, ts + 100 * MS, request, g.dlms_get_response(request, value))
        action = command or g.dlms_image_activate()
        ts = _exchange(conn, rng, ts + 500 * MS, action, g.dlms_action_response(action))
        ts = conn.close(ts + 300 * MS) + 200 * MS
    return cap


def c1222_procedures(seed: int = 1153) -> Capture:
    """Logon, security (password), SP10 set date/time, SP9 remote reset and an ST8 read of the result."""
    rng = random.Random(seed)
    cap = Capture(
        "c1222_procedures.pcap",
        "ANSI C12.22 (TCP 1153): logon, security, ST7 procedures SP10 set date/time and SP9 remote "
        "reset, ST8 procedure response read",
        hosts=[HEAD_END, C1222_METER],
    )
    conn = _connect(cap, rng, HEAD_END, C1222_METER, C1222_PORT, START_NS)
    ts = START_NS + 2 * MS
    invocation = 40
    steps = [
        ("logon", "logon", g.c1222_logon(2, b"headend", 120), b"\x00\x00\x78", {}),
        ("security", "security", g.c1222_security(b"C1222-demo-pass"), b"\x00", {}),
        (
            g.PROCEDURE_NAMES[10],
            "write",
            g.c1222_procedure(10, 1, bytes([24, 5, 14, 6, 0, 5])),  # YY MM DD hh mm ss
            b"\x00",
            {"procedure_id": 10},
        ),
        (g.PROCEDURE_NAMES[9], "write", g.c1222_procedure(9, 2), b"\x00", {"procedure_id": 9}),
        ("table_read", "read_partial_offset", g.c1222_st8_read(), g.c1222_st8_data(9, 2, 0), {}),
    ]
    for action, service, request, response, extra in steps:
        invocation += 1
        request_pdu = g.c1222_message(g.METER_TITLE, g.HEAD_END_TITLE, [request], invocation, None)
        response_pdu = g.c1222_message(
            g.HEAD_END_TITLE, g.METER_TITLE, [response], 900 + invocation, invocation
        )
        response_extra = {"procedure_id": 9, "procedure_result": 0} if action == "table_read" else {}
        ts = _exchange(
            conn,
            rng,
            ts + 150 * MS,
            (request_pdu, g.c1222_truth(action, "request", service, **extra)),
            (response_pdu, g.c1222_truth(action, "response", service, response_code=[0], **response_extra)),
        )
    conn.close(ts + 300 * MS)
    return cap


def iec104_control(seed: int = 2404) -> Capture:
    """A control centre starts data transfer, interrogates, operates a breaker (select/execute),
    synchronises the clock, resets the process and tests the link."""
    rng = random.Random(seed)
    cap = Capture(
        "iec104_control.pcap",
        "IEC 60870-5-104 (TCP 2404): STARTDT, general interrogation with float measurements, single "
        "command select/execute, clock sync, reset process, TESTFR",
        hosts=[SCADA_MASTER, SUBSTATION_RTU],
    )
    conn = _connect(cap, rng, SCADA_MASTER, SUBSTATION_RTU, IEC104_PORT, START_NS)
    ca = 41
    seq = [0, 0]  # N(S) of the master (0) and the RTU (1)

    def i_frame(
        direction: int, type_id: int, cot: int, objects: list[tuple[int, bytes]]
    ) -> tuple[bytes, g.Truth]:
        frame = g.iec104_i(seq[direction], seq[1 - direction], type_id, cot, objects, ca)
        seq[direction] = (seq[direction] + 1) & 0x7FFF
        return frame

    def send(direction: int, ts: int, pdu: tuple[bytes, g.Truth]) -> int:
        conn.send(direction, ts, pdu[0], [pdu[1]])
        return ts + rng.randrange(5 * MS, 15 * MS)

    ts = START_NS + 2 * MS
    ts = send(0, ts, g.iec104_u(g.STARTDT_ACT))
    ts = send(1, ts, g.iec104_u(g.STARTDT_CON))
    qoi_station = bytes([20])  # QOI 20: station interrogation
    ts = send(0, ts, i_frame(0, 100, g.COT_ACT, [(0, qoi_station)]))
    ts = send(1, ts, i_frame(1, 100, g.COT_ACTCON, [(0, qoi_station)]))
    measurements = [(4001, 229.7), (4002, 231.2), (4003, 412.5), (4004, 49.98)]  # kV/A/Hz
    ts = send(1, ts, i_frame(1, 13, g.COT_INROGEN, [(a, g.float_measurement(v)) for a, v in measurements]))
    ts = send(1, ts, i_frame(1, 100, g.COT_ACTTERM, [(0, qoi_station)]))
    ts = send(0, ts, g.iec104_s(seq[1]))
    breaker = 3001
    for select in (True, False):
        sco = g.single_command(False, select)  # open the breaker
        ts = send(0, ts + 800 * MS, i_frame(0, 45, g.COT_ACT, [(breaker, sco)]))
        ts = send(1, ts, i_frame(1, 45, g.COT_ACTCON, [(breaker, sco)]))
    ts = send(1, ts, i_frame(1, 45, g.COT_ACTTERM, [(breaker, g.single_command(False, False))]))
    clock = g.cp56time2a(2024, 5, 14, 6, 0, 3_250)
    ts = send(0, ts + SECOND, i_frame(0, 103, g.COT_ACT, [(0, clock)]))
    ts = send(1, ts, i_frame(1, 103, g.COT_ACTCON, [(0, clock)]))
    qrp_general = bytes([1])  # QRP 1: general reset of process
    ts = send(0, ts + SECOND, i_frame(0, 105, g.COT_ACT, [(0, qrp_general)]))
    ts = send(1, ts, i_frame(1, 105, g.COT_ACTCON, [(0, qrp_general)]))
    ts = send(0, ts + 5 * SECOND, g.iec104_s(seq[1]))
    ts = send(0, ts + 20 * SECOND, g.iec104_u(g.TESTFR_ACT))
    ts = send(1, ts, g.iec104_u(g.TESTFR_CON))
    conn.delayed_ack(0, ts + 40 * MS)
    conn.close(ts + SECOND)
    return cap
