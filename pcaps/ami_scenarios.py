"""AMI and grid sample captures: a DLMS head-end disconnecting a meter and activating firmware on
another, a C12.22 head-end running procedures on a meter, and an IEC 104 control session.

Each capture ends with scenarios appended later (after its original frames, so their numbers stay):
what the DLMS, C12.22 and IEC 104 rules watch for, each next to its near miss.

10.20.4.0/24 is the AMI zone (meters behind the head-end's backhaul), 10.20.3.0/24 substations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import gen_ami as g
from capture import Capture
from netpackets import Host, TcpConnection, mac
from plan import MS, SCADA_MASTER, SECOND, START_NS

DLMS_PORT, C1222_PORT, IEC104_PORT = 4059, 1153, 2404  # IANA registrations

HEAD_END = Host("ami-head-end", mac("00:14:22:0a:14:1e"), "10.20.1.30")  # Dell
METER1 = Host("meter-411", mac("00:0d:6f:0a:14:0b"), "10.20.4.11")  # Ember (Silicon Labs) radio module
METER2 = Host("meter-412", mac("00:0d:6f:0a:14:0c"), "10.20.4.12")
C1222_METER = Host("meter-421", mac("00:0d:6f:0a:14:15"), "10.20.4.21")
C1222_METER2 = Host("meter-422", mac("00:0d:6f:0a:14:16"), "10.20.4.22")
C1222_RELAY = Host("c1222-relay-1", mac("00:0d:6f:0a:14:02"), "10.20.4.2")
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
        "disconnect on one meter, image transfer activate on another; then on meter 1 a SET of "
        "daylight_savings_enabled and of the time, GET of the security policy and security_activate; "
        "10 minutes in, remote disconnects of 20 meters, one of them again, then of a 21st meter "
        "(10.20.4.51-71) within 5 minutes",
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
    more = random.Random(seed + 1)  # the appended scenarios draw from their own generator
    _dlms_clock_and_security(cap, more, START_NS + 30 * SECOND)
    _dlms_mass_disconnect(cap, more, START_NS + 600 * SECOND)
    return cap


# Meters of the disconnect campaign: 10.20.4.51-71 (the 22nd request repeats meter 10.20.4.57).
CAMPAIGN_METERS = [Host(f"meter-4{n}", mac(f"00:0d:6f:0a:14:{n:02x}"), f"10.20.4.{n}") for n in range(51, 72)]
CAMPAIGN_REPEAT = 6  # index into CAMPAIGN_METERS of the meter disconnected twice


def _dlms_clock_and_security(cap: Capture, rng: random.Random, ts: int) -> int:
    """A new association with meter 1: disable daylight saving (a clock SET that is not a time set),
    set the time, read the security policy, then activate a stricter one."""
    conn = _connect(cap, rng, HEAD_END, METER1, DLMS_PORT, ts)
    ts = _exchange(conn, rng, ts + 2 * MS, g.dlms_aarq(), g.dlms_aare())
    for request in (g.dlms_set_daylight_savings(False), g.dlms_set_clock(2024, 5, 14, 6, 0, 45)):
        ts = _exchange(conn, rng, ts + 200 * MS, request, g.dlms_set_response(request))
    request = g.dlms_get(64, g.SECURITY_SETUP_OBIS, 2)
    ts = _exchange(conn, rng, ts + 200 * MS, request, g.dlms_get_response(request, g.enum(0)))
    action = g.dlms_security_activate(3)  # security policy 3: authenticated and encrypted
    ts = _exchange(conn, rng, ts + 200 * MS, action, g.dlms_action_response(action))
    return conn.close(ts + 300 * MS)


def _dlms_mass_disconnect(cap: Capture, rng: random.Random, ts: int) -> int:
    """Remote disconnects from the head-end every 6 s: 20 distinct meters, one of them again (21
    requests, 20 meters: not "more than 20 meters"), then a 21st meter — all within 5 minutes."""
    meters = [*CAMPAIGN_METERS[:20], CAMPAIGN_METERS[CAMPAIGN_REPEAT], CAMPAIGN_METERS[20]]
    cap.hosts += CAMPAIGN_METERS
    for meter in meters:
        conn = _connect(cap, rng, HEAD_END, meter, DLMS_PORT, ts)
        end = _exchange(conn, rng, ts + 2 * MS, g.dlms_aarq(), g.dlms_aare())
        action = g.dlms_remote_disconnect()
        end = _exchange(conn, rng, end + 100 * MS, action, g.dlms_action_response(action))
        conn.close(end + 200 * MS)
        ts += 6 * SECOND
    return ts


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
            (request_pdu, g.c1222_truth(action, "request", service, **extra) | _titles(C1222_METER, True)),
            (
                response_pdu,
                g.c1222_truth(action, "response", service, response_code=[0], **response_extra)
                | _titles(C1222_METER, False),
            ),
        )
    conn.close(ts + 300 * MS)
    more = random.Random(seed + 1)  # the appended scenarios draw from their own generator
    cap.hosts += [C1222_METER2, C1222_RELAY, *REGISTERING_METERS]
    cap.extra["c1222_vendor_procedures"] = C1222_VENDOR_PROCEDURES
    _c1222_secured_procedures(cap, more, START_NS + 10 * SECOND)
    _c1222_cleartext_again(cap, more, START_NS + 30 * SECOND)
    _c1222_registrations(cap, more, START_NS + 60 * SECOND, REGISTERING_METERS[:20], 2 * SECOND)
    _c1222_registrations(cap, more, START_NS + 200 * SECOND, REGISTERING_METERS, SECOND)
    return cap


# The vendor procedure table a sensor is configured with for these meters (the config file's
# [c1222.vendor_procedures] form): on "GE" meters MP12 disconnects the service switch, MP13 connects it.
C1222_VENDOR_PROCEDURES = {"GE": {"MP12": "remote_disconnect", "MP13": "remote_connect"}}
METER_TITLES = {C1222_METER.ip: g.METER_TITLE, C1222_METER2.ip: "1.3.6.1.4.1.33507.1919.20482.0"}
RELAY_TITLE = "1.3.6.1.4.1.33507.1919.1"
# Meters that register with the relay after an outage: 10.20.4.101-121.
REGISTERING_METERS = [
    Host(f"meter-4{n}", mac(f"00:0d:6f:0a:15:{n - 100:02x}"), f"10.20.4.{n}") for n in range(101, 122)
]


def _titles(meter: Host, from_head_end: bool) -> dict[str, Any]:
    """The AP titles and security mode of a cleartext message between the head-end and ``meter``."""
    meter_title = METER_TITLES[meter.ip]
    calling, called = (g.HEAD_END_TITLE, meter_title) if from_head_end else (meter_title, g.HEAD_END_TITLE)
    return {"security_mode": g.CLEARTEXT, "calling_ap_title": calling, "called_ap_title": called}


@dataclass
class C1222Session:
    """The head-end's C12.22 association with one meter over one TCP connection."""

    conn: TcpConnection
    rng: random.Random
    meter: Host
    mode: int
    invocation: int

    def exchange(
        self,
        ts: int,
        action: str,
        service: str,
        request: bytes,
        response: bytes,
        request_extra: dict[str, Any] | None = None,
        response_extra: dict[str, Any] | None = None,
        attack: dict[str, Any] | None = None,
    ) -> int:
        """One request and its response. A vendor meaning (``vendor_action``) of the request is the
        response's too (a response is named after its request)."""
        self.invocation += 1
        title = METER_TITLES[self.meter.ip]
        iv = self.rng.randbytes(4)
        request_pdu = g.c1222_message(
            title, g.HEAD_END_TITLE, [request], self.invocation, None, self.mode, iv
        )
        iv = self.rng.randbytes(4)
        response_pdu = g.c1222_message(
            g.HEAD_END_TITLE, title, [response], 900 + self.invocation, self.invocation, self.mode, iv
        )
        request_extra = dict(request_extra or {}) | ({"attack": attack} if attack else {})
        response_extra = dict(response_extra or {}) | ({"attack": attack} if attack else {})
        if "vendor_action" in request_extra:
            response_extra["vendor_action"] = request_extra["vendor_action"]
        request_truth = g.c1222_truth(action, "request", service, **request_extra)
        response_truth = g.c1222_truth(action, "response", service, response_code=[0], **response_extra)
        return _exchange(
            self.conn,
            self.rng,
            ts + 150 * MS,
            (request_pdu, request_truth | self._titles(True)),
            (response_pdu, response_truth | self._titles(False)),
        )

    def _titles(self, from_head_end: bool) -> dict[str, Any]:
        return _titles(self.meter, from_head_end) | {"security_mode": self.mode}

    def identify(self, ts: int, manufacturer: str, model: str, serial: str) -> int:
        """Logon, then a read of ST1 (the manufacturer code selects the vendor procedure table)."""
        logon = g.c1222_logon(2, b"headend", 120)
        ts = self.exchange(ts, "logon", "logon", logon, b"\x00\x00\x78")
        st1 = g.c1222_st1_data(manufacturer, model, serial)
        return self.exchange(ts, "table_read", "read", g.c1222_full_read(1), st1)


C1222_ATTACKS = {
    "clear_data": {
        "technique": "T0809",
        "name": "Data Destruction",
        "injected": "SP3 clear data: the meter's measurements and logs are erased",
    },
    "switch": {
        "technique": "T0831",
        "name": "Manipulation of Control",
        "injected": "manufacturer procedure that opens or closes the meter's service switch",
    },
    "downgrade": {
        "technique": "T0830",
        "name": "Adversary-in-the-Middle",
        "injected": "cleartext EPSEM between AP titles that had used authenticated EPSEMs",
    },
    "registration_storm": {
        "technique": "T0814",
        "name": "Denial of Service",
        "injected": "21 registrations with one relay within 60 s",
    },
}


def _procedure_truth(number: int, manufacturer: str | None = None) -> dict[str, Any]:
    """Truth of an ST7 write: the procedure id (bit 11 for manufacturer procedures) and, where the
    vendor table names the manufacturer procedure, the action a sensor configured with it reports."""
    if manufacturer is None:
        return {"procedure_id": number}
    meaning = C1222_VENDOR_PROCEDURES.get(manufacturer, {}).get(f"MP{number}")
    return {"procedure_id": number | g.MANUFACTURER_FLAG, "manufacturer": manufacturer} | (
        {"vendor_action": meaning} if meaning else {}
    )


def _c1222_secured_procedures(cap: Capture, rng: random.Random, ts: int) -> int:
    """Authenticated EPSEMs (security mode 1): on GE meter 421 MP3 (a manufacturer procedure: not clear
    data), SP3 clear data, MP12 disconnect, MP13 connect; on meter 422 (another vendor) MP12 means
    nothing the vendor table knows."""
    manufacturer_action = "procedure_manufacturer"  # what a decoder reports without a vendor table
    conn = _connect(cap, rng, HEAD_END, C1222_METER, C1222_PORT, ts)
    session = C1222Session(conn, rng, C1222_METER, g.CLEARTEXT_AUTHENTICATED, 60)
    ts = session.identify(ts + 2 * MS, "GE", "I210+c", "1919204810")
    ok = b"\x00"
    ts = session.exchange(
        ts, manufacturer_action, "write", g.c1222_manufacturer_procedure(3, 3), ok, _procedure_truth(3, "GE")
    )
    clear = g.c1222_procedure(3, 4)
    ts = session.exchange(
        ts, g.PROCEDURE_NAMES[3], "write", clear, ok, _procedure_truth(3), None, C1222_ATTACKS["clear_data"]
    )
    for number, sequence in ((12, 5), (13, 6)):
        request = g.c1222_manufacturer_procedure(number, sequence)
        truth = _procedure_truth(number, "GE")
        ts = session.exchange(
            ts, manufacturer_action, "write", request, ok, truth, None, C1222_ATTACKS["switch"]
        )
    ts = session.exchange(ts, "logoff", "logoff", g.c1222_logoff(), ok)
    conn.close(ts + 300 * MS)

    conn = _connect(cap, rng, HEAD_END, C1222_METER2, C1222_PORT, ts + 5 * SECOND)
    session = C1222Session(conn, rng, C1222_METER2, g.CLEARTEXT_AUTHENTICATED, 70)
    ts = session.identify(ts + 5 * SECOND + 2 * MS, "ITRN", "CENTRON", "2207331505")
    request = g.c1222_manufacturer_procedure(12, 1)
    ts = session.exchange(ts, manufacturer_action, "write", request, ok, _procedure_truth(12, "ITRN"))
    ts = session.exchange(ts, "logoff", "logoff", g.c1222_logoff(), ok)
    return conn.close(ts + 300 * MS)


def _c1222_cleartext_again(cap: Capture, rng: random.Random, ts: int) -> int:
    """The head-end reads meter 421's procedure result in cleartext after using authenticated EPSEMs
    with it: a security downgrade in both directions."""
    conn = _connect(cap, rng, HEAD_END, C1222_METER, C1222_PORT, ts)
    session = C1222Session(conn, rng, C1222_METER, g.CLEARTEXT, 80)
    result = g.c1222_st8_data(13 | g.MANUFACTURER_FLAG, 6, 0)
    outcome = {"procedure_id": 13 | g.MANUFACTURER_FLAG, "procedure_result": 0}
    read = g.c1222_st8_read()
    ts = session.exchange(
        ts, "table_read", "read_partial_offset", read, result, None, outcome, C1222_ATTACKS["downgrade"]
    )
    return conn.close(ts + 300 * MS)


def _c1222_registrations(cap: Capture, rng: random.Random, ts: int, meters: list[Host], every_ns: int) -> int:
    """Each meter registers with the relay over UDP (one datagram each way)."""
    storm = len(meters) > 20
    for n, meter in enumerate(meters):
        flow = cap.udp_flow(
            meter,
            rng.randrange(49152, 65000),
            C1222_RELAY,
            C1222_PORT,
            rng.getrandbits(16),
            rng.getrandbits(16),
        )
        title = f"1.3.6.1.4.1.33507.1919.20481.{int(meter.ip.rsplit('.', 1)[1])}"
        native = meter.packed_ip + C1222_PORT.to_bytes(2, "big")
        request = g.c1222_registration(title, str(4_000_000 + n), native, 86_400)
        request_pdu = g.c1222_message(RELAY_TITLE, title, [request], rng.randrange(1, 1000), None)
        response_pdu = g.c1222_message(
            title, RELAY_TITLE, [g.c1222_registration_ok(title, 30, 86_400)], 1, None
        )
        attack = {"attack": C1222_ATTACKS["registration_storm"]} if storm else {}
        titles = {"security_mode": g.CLEARTEXT, "calling_ap_title": title, "called_ap_title": RELAY_TITLE}
        flow.send(
            0, ts, request_pdu, [g.c1222_truth("registration", "request", "registration") | titles | attack]
        )
        reverse = {"calling_ap_title": RELAY_TITLE, "called_ap_title": title}
        response_truth = g.c1222_truth("registration", "response", "registration", response_code=[0])
        flow.send(1, ts + _latency(rng), response_pdu, [response_truth | titles | reverse])
        ts += every_ns
    return ts


def iec104_control(seed: int = 2404) -> Capture:
    """A control centre starts data transfer, interrogates, operates a breaker (select/execute),
    synchronises the clock, resets the process and tests the link."""
    rng = random.Random(seed)
    cap = Capture(
        "iec104_control.pcap",
        "IEC 60870-5-104 (TCP 2404): STARTDT, general interrogation with float measurements, single "
        "command select/execute, clock sync, reset process, TESTFR; then a new connection reads a "
        "threshold parameter (P_ME_NC_1, cause requested) and activates a new one (cause activation)",
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

    # Appended: a new connection reads a measurand's threshold (P_ME_NC_1 with cause "requested": not a
    # parameter change), then activates a new threshold (cause "activation") and gets its confirmation.
    rng = random.Random(seed + 1)  # the appended scenario draws from its own generator (send uses it)
    conn = _connect(cap, rng, SCADA_MASTER, SUBSTATION_RTU, IEC104_PORT, START_NS + 60 * SECOND)
    seq[:] = [0, 0]
    ts = START_NS + 60 * SECOND + 2 * MS
    ts = send(0, ts, g.iec104_u(g.STARTDT_ACT))
    ts = send(1, ts, g.iec104_u(g.STARTDT_CON))
    threshold = 4003  # the current measurand of the interrogation above
    ts = send(0, ts + 500 * MS, i_frame(0, 102, g.COT_REQ, [(threshold, b"")]))
    ts = send(1, ts, i_frame(1, 112, g.COT_REQ, [(threshold, g.parameter_float(5.0))]))
    ts = send(0, ts + 2 * SECOND, i_frame(0, 112, g.COT_ACT, [(threshold, g.parameter_float(0.5))]))
    ts = send(1, ts, i_frame(1, 112, g.COT_ACTCON, [(threshold, g.parameter_float(0.5))]))
    ts = send(0, ts + SECOND, g.iec104_s(seq[1]))
    conn.close(ts + SECOND)
    return cap
