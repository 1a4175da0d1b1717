"""A seeded generator of plant traffic as otsentry events (EVENTS.md shapes), with injected deviations.

The plant (addresses as in pcaps/plan.py): an HMI and two SCADA masters (primary and backup) in
10.20.1.0/24; two Modbus PLCs, two DNP3 RTUs and an IEC 104 RTU in 10.20.2.0/24.

Normal traffic, for as long as asked:
* the HMI polls PLC1 (unit 1) holding registers 0–9 every second; an operator writes setpoints
  10–13 about once a minute and reads the device identification now and then;
* SCADA polls PLC2 input registers 0–4 every 2 s and holding registers 100–101 every 10 s;
* the active DNP3 master (primary, link address 1; the backup, address 2, during a 10-minute
  failover) reads class 0 from RTU10 (address 10) and RTU11 (address 11) every 5 s; operators send
  CROBs on points 0–1 of RTU10 from the primary about once a minute;
* SCADA interrogates the IEC 104 RTU (common address 7) every 60 s, the RTU reports measured values
  spontaneously, both sides exchange TESTFR every 20 s;
* intervals jitter (Gaussian, 2 %), 1 % of polls are missed, connections drop and reconnect about
  every 30 minutes (a gap of 5–30 s and a new client port), process values follow a day/night
  curve (one "day" = the learning window unless given) plus noise.

With ``inject=True`` the detection part also carries one of each deviation; ``expected`` names each
as the (kind, subject) the detector must report — and nothing else may be reported.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]
Host = tuple[str, str | None]  # IP, MAC
START = 1_715_666_400.0  # 2024-05-14T06:00:00Z, as the sample captures

HMI = ("10.20.1.10", "00-14-22-0A-14-0A")
SCADA1 = ("10.20.1.11", "00-14-22-0A-14-0B")
SCADA2 = ("10.20.1.12", "00-14-22-0A-14-0C")
PLC1 = ("10.20.2.21", "00-80-F4-0A-14-15")
PLC2 = ("10.20.2.22", "00-80-F4-0A-14-16")
RTU10 = ("10.20.2.31", "00-30-A7-0A-14-1F")
RTU11 = ("10.20.2.32", "00-30-A7-0A-14-20")
RTU20 = ("10.20.2.41", "00-30-A7-0A-14-29")
ROGUE = ("10.20.1.66", "3C-97-0E-66-01-42")
PLC2_REPLACEMENT_MAC = "00-80-F4-0A-14-99"
CLASS0 = [{"group": 60, "variation": 1, "qualifier": 6}]

_SECONDS: dict[int, str] = {}


def _stamp(ts: float) -> str:
    sec = int(ts)
    prefix = _SECONDS.get(sec)
    if prefix is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        prefix = _SECONDS[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{prefix}.{int((ts - sec) * 1e6):06d}Z"


def event(
    ts: float, src: Host, dst: Host, sport: int, dport: int, client_is_src: bool, fields: dict[str, Any]
) -> Event:
    """One event as the sensor builds it: the message's endpoints and the connection's."""
    client, server = (src, dst) if client_is_src else (dst, src)
    cport, lport = (sport, dport) if client_is_src else (dport, sport)
    e: Event = {
        "@timestamp": _stamp(ts),
        "event.kind": "event",
        "event.module": "otsentry",
        "network.transport": "tcp",
        "source.ip": src[0],
        "source.port": sport,
        "destination.ip": dst[0],
        "destination.port": dport,
        "client.ip": client[0],
        "client.port": cport,
        "server.ip": server[0],
        "server.port": lport,
        "observer.name": "test",
    }
    if src[1]:
        e["source.mac"] = src[1]
    if dst[1]:
        e["destination.mac"] = dst[1]
    e.update(fields)
    return e


# -- protocol fields (EVENTS.md) ---------------------------------------------------------------------------


def modbus(fc: int, action: str, pdu: str, unit: int = 1, tid: int = 0, **extra: Any) -> dict[str, Any]:
    f = {
        "network.protocol": "modbus",
        "event.dataset": "otsentry.modbus",
        "event.action": action,
        "modbus.transaction_id": tid,
        "modbus.unit_id": unit,
        "modbus.function_code": fc,
        "modbus.pdu_type": pdu,
    }
    f.update({f"modbus.{k}": v for k, v in extra.items()})
    return f


def dnp3(
    fc: int | None,
    action: str,
    src: int,
    dst: int,
    from_master: bool,
    objects: list[dict] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    f: dict[str, Any] = {
        "network.protocol": "dnp3",
        "event.dataset": "otsentry.dnp3",
        "event.action": action,
        "dnp3.link.source": src,
        "dnp3.link.destination": dst,
        "dnp3.link.dir": int(from_master),
        "dnp3.link.prm": int(from_master),
    }
    if fc is not None:
        f["dnp3.application.function_code"] = fc
    if objects is not None:
        f["dnp3.objects"] = objects
        f["dnp3.object_gv"] = [f"g{o['group']}v{o['variation']}" for o in objects]
    f.update({f"dnp3.{k}": v for k, v in extra.items()})
    return f


def iec104(
    apci: str,
    action: str,
    type_id: int | None = None,
    cot: Any = None,
    ca: int | None = None,
    ioa: list[int] | None = None,
    values: list[float] | None = None,
) -> dict[str, Any]:
    f: dict[str, Any] = {
        "network.protocol": "iec104",
        "event.dataset": "otsentry.iec104",
        "event.action": action,
        "iec104.apci": apci,
    }
    for key, value in (
        ("type_id", type_id),
        ("cot", cot),
        ("common_address", ca),
        ("ioa", ioa),
        ("value", values),
    ):
        if value is not None:
            f[f"iec104.{key}"] = value
    return f


# -- time structure ------------------------------------------------------------------------------------------


@dataclass
class Link:
    """One TCP connection's life: its outages (reconnects) and the client port after each."""

    outages: list[tuple[float, float]] = field(default_factory=list)
    base_port: int = 49152

    def up(self, ts: float) -> bool:
        return not any(a <= ts < b for a, b in self.outages)

    def port(self, ts: float) -> int:
        return self.base_port + sum(1 for a, _ in self.outages if a <= ts)


def poll_times(
    rng: random.Random, t0: float, t1: float, period: float, jitter: float = 0.02, miss: float = 0.01
) -> Iterator[float]:
    ts = t0 + rng.uniform(0, period)
    while ts < t1:
        if rng.random() >= miss:
            yield ts
        ts += period * max(0.5, 1 + rng.gauss(0, jitter))


def random_times(rng: random.Random, t0: float, t1: float, mean: float) -> Iterator[float]:
    ts = t0 + rng.expovariate(1 / mean)
    while ts < t1:
        yield ts
        ts += rng.expovariate(1 / mean)


@dataclass
class Scenario:
    learn: list[Event]
    detect: list[Event]
    expected: set[tuple[str, str]]
    split: float


class Plant:
    def __init__(
        self, seed: int, learn_s: float, detect_s: float, day_s: float | None, inject: bool, start: float
    ) -> None:
        self.rng = rng = random.Random(seed)
        self.t0, self.split, self.t1 = start, start + learn_s, start + learn_s + detect_s
        self.day = day_s or learn_s
        self.events: list[tuple[float, int, Event]] = []
        self.expected: set[tuple[str, str]] = set()

        def at(lo: float, hi: float) -> float:
            return self.split + detect_s * rng.uniform(lo, hi)

        # Injection times, in the detection part (silence and MAC change early enough to be observed).
        kinds = (
            "new_asset",
            "new_pair",
            "new_protocol",
            "new_dnp3_master",
            "new_function_code",
            "write_outside_range",
            "dnp3_control_outside",
            "iec104_new_command",
            "value",
        )
        self.inj = {k: at(0.1, 0.8) for k in kinds} if inject else {}
        if inject:
            self.inj.update(polling=at(0.1, 0.6), silence=at(0.1, 0.5), new_mac=at(0.2, 0.7))
        self.failovers = [self._failover(self.t0, self.split), self._failover(self.split, self.t1)]

    def emit(
        self,
        ts: float,
        src: Host,
        dst: Host,
        sport: int,
        dport: int,
        client_is_src: bool,
        fields: dict[str, Any],
    ) -> None:
        self.events.append((ts, len(self.events), event(ts, src, dst, sport, dport, client_is_src, fields)))

    def exchange(
        self,
        ts: float,
        client: Host,
        server: Host,
        cport: int,
        sport: int,
        request: dict[str, Any],
        response: dict[str, Any] | None,
        delay: float = 0.01,
    ) -> None:
        self.emit(ts, client, server, cport, sport, True, request)
        if response is not None:
            self.emit(ts + delay, server, client, sport, cport, False, response)

    def link(self) -> Link:
        rng = self.rng
        link = Link(base_port=rng.randrange(40000, 60000))
        ts = self.t0 + rng.expovariate(1 / 1800)
        while ts < self.t1:
            link.outages.append((ts, ts + rng.uniform(5, 30)))
            ts += rng.expovariate(1 / 1800)
        return link

    def process(self, ts: float, base: float, amp: float, phase: float, noise: float) -> float:
        return (
            base + amp * math.sin(2 * math.pi * (ts - self.t0) / self.day + phase) + self.rng.gauss(0, noise)
        )

    def _failover(self, lo: float, hi: float) -> tuple[float, float]:
        a = self.rng.uniform(lo, hi - 900)
        return a, a + 600

    def master_at(self, ts: float) -> tuple[Host, int]:
        return (SCADA2, 2) if any(a <= ts < b for a, b in self.failovers) else (SCADA1, 1)

    def plc2(self, ts: float) -> Host:
        replaced = "new_mac" in self.inj and ts >= self.inj["new_mac"]
        return (PLC2[0], PLC2_REPLACEMENT_MAC if replaced else PLC2[1])

    def plc1_registers(self, ts: float, phases: list[float]) -> list[int]:
        return [max(0, int(self.process(ts, 200 + 50 * i, 40 + 5 * i, phases[i], 2))) for i in range(10)]

    # -- normal traffic ------------------------------------------------------------------------------------

    def hmi_plc1(self) -> None:
        rng, t0, t1 = self.rng, self.t0, self.t1
        link = self.link()
        self.phases = phases = [rng.uniform(0, 6.28) for _ in range(10)]
        for tid, ts in enumerate(poll_times(rng, t0, t1, 1.0)):
            if not link.up(ts):
                continue
            values = self.plc1_registers(ts, phases)
            if "value" in self.inj and self.inj["value"] <= ts < self.inj["value"] + 3.5:
                values[2] = 9999
            self.exchange(
                ts,
                HMI,
                PLC1,
                link.port(ts),
                502,
                modbus(3, "read_holding_registers", "request", tid=tid & 0xFFFF, address=0, quantity=10),
                modbus(
                    3,
                    "read_holding_registers",
                    "response",
                    tid=tid & 0xFFFF,
                    address=0,
                    quantity=10,
                    values=values,
                    matched=True,
                ),
                rng.uniform(0.005, 0.02),
            )
        for ts in random_times(rng, t0, t1, 60):
            if link.up(ts):
                reg, value = rng.choice([10, 11, 12, 13]), rng.randrange(100, 200)
                self.exchange(
                    ts,
                    HMI,
                    PLC1,
                    link.port(ts),
                    502,
                    modbus(6, "write_single_register", "request", address=reg, quantity=1, values=[value]),
                    modbus(6, "write_single_register", "response", address=reg, quantity=1, values=[value]),
                )
        identity = {
            "VendorName": "Schneider Electric",
            "ProductCode": "BMX P34 2020",
            "MajorMinorRevision": "v3.1",
        }
        for _ in range(3):
            self.exchange(
                t0 + rng.uniform(0, self.split - t0),
                HMI,
                PLC1,
                50000,
                502,
                modbus(43, "read_device_identification", "request", mei_type=14, read_device_id_code=1),
                modbus(
                    43, "read_device_identification", "response", mei_type=14, objects=identity, matched=True
                ),
            )

    def scada_plc2(self) -> None:
        rng = self.rng
        link = self.link()
        for period, fc, action, address, quantity in (
            (2.0, 4, "read_input_registers", 0, 5),
            (10.0, 3, "read_holding_registers", 100, 2),
        ):
            times = list(poll_times(rng, self.t0, self.t1, period))
            if fc == 4 and "polling" in self.inj:  # four times faster for 5 minutes
                a, b = self.inj["polling"], self.inj["polling"] + 300
                times = sorted([t for t in times if not a <= t < b] + [a + 0.5 * k for k in range(600)])
                self.expected.add(
                    (
                        "polling_period_deviation",
                        "modbus 10.20.1.11 -> 10.20.2.22/modbus:1 read_input_registers@0+5",
                    )
                )
            for ts in times:
                if link.up(ts):
                    values = [max(0, int(self.process(ts, 1000, 300, 0.5 * i, 5))) for i in range(quantity)]
                    self.exchange(
                        ts,
                        SCADA1,
                        self.plc2(ts),
                        link.port(ts),
                        502,
                        modbus(fc, action, "request", address=address, quantity=quantity),
                        modbus(
                            fc,
                            action,
                            "response",
                            address=address,
                            quantity=quantity,
                            values=values,
                            matched=True,
                        ),
                    )

    def dnp3_polls(self) -> None:
        rng = self.rng
        for rtu, address in ((RTU10, 10), (RTU11, 11)):
            links = {1: self.link(), 2: self.link()}
            phases = [rng.uniform(0, 6.28) for _ in range(4)]
            silent_from = self.inj.get("silence", math.inf) if rtu is RTU11 else math.inf
            for ts in poll_times(rng, self.t0, self.t1, 5.0):
                master, maddr = self.master_at(ts)
                link = links[maddr]
                if not link.up(ts):
                    continue
                rts = ts + rng.uniform(0.02, 0.08)
                analog = [
                    {"index": i, "value": round(self.process(rts, 50 + 10 * i, 20, phases[i], 0.5), 2)}
                    for i in range(4)
                ]
                binary = [{"index": i, "value": rng.random() < 0.1} for i in range(8)]
                objects = [
                    {"group": 30, "variation": 5, "qualifier": 1, "start": 0, "stop": 3, "points": analog},
                    {"group": 1, "variation": 2, "qualifier": 1, "start": 0, "stop": 7, "points": binary},
                ]
                response = dnp3(129, "response", address, maddr, False, objects, iin=0, iin_flags=[])
                self.exchange(
                    ts,
                    master,
                    rtu,
                    link.port(ts),
                    20000,
                    dnp3(1, "read", maddr, address, True, CLASS0),
                    response if ts < silent_from else None,
                    rts - ts,
                )
        if "silence" in self.inj:
            self.expected.add(("channel_silent", "10.20.2.32/dnp3:11 dnp3"))

    def dnp3_controls(self) -> None:
        rng = self.rng
        times = list(random_times(rng, self.t0, self.t1, 60))
        injected = self.inj.get("dnp3_control_outside")
        if injected is not None:
            times.append(injected)
            self.expected.add(
                ("write_outside_range", "dnp3 10.20.1.11/dnp3:1 -> 10.20.2.31/dnp3:10 direct_operate g12 7")
            )
        for ts in sorted(times):
            if self.master_at(ts)[1] != 1 and ts != injected:
                continue  # operators command from the primary only: a backup that never operated would alert
            index = 7 if ts == injected else rng.choice([0, 1])
            crob = [
                {
                    "group": 12,
                    "variation": 1,
                    "qualifier": 0x28,
                    "count": 1,
                    "points": [{"index": index, "code": 0x41, "count": 1, "on_time": 100, "off_time": 0}],
                }
            ]
            self.exchange(
                ts,
                SCADA1,
                RTU10,
                20001,
                20000,
                dnp3(5, "direct_operate", 1, 10, True, crob, **{"control.index": [index]}),
                dnp3(129, "response", 10, 1, False, crob, iin=0, iin_flags=[]),
                0.05,
            )

    def iec104(self) -> None:
        rng = self.rng
        cport, port = rng.randrange(40000, 60000), 2404
        self.iec104_ports = (cport, port)
        for ts in poll_times(rng, self.t0, self.t1, 60.0):
            self.exchange(
                ts,
                SCADA1,
                RTU20,
                cport,
                port,
                iec104("I", "interrogation", 100, 6, 7, [0]),
                iec104("I", "interrogation", 100, 7, 7, [0]),
                0.05,
            )
            values = [
                round(self.process(ts, 230, 5, 0, 0.3), 2),
                round(self.process(ts, 50, 0.2, 1, 0.01), 3),
            ]
            self.emit(
                ts + 0.1,
                RTU20,
                SCADA1,
                port,
                cport,
                False,
                iec104("I", "measured_value_float", 13, 20, 7, [1001, 1002], values),
            )
            self.emit(
                ts + 0.15, RTU20, SCADA1, port, cport, False, iec104("I", "interrogation", 100, 10, 7, [0])
            )
        for ts in random_times(rng, self.t0, self.t1, 5.0):
            self.emit(
                ts,
                RTU20,
                SCADA1,
                port,
                cport,
                False,
                iec104(
                    "I",
                    "measured_value_float",
                    13,
                    3,
                    7,
                    [1001],
                    [round(self.process(ts, 230, 5, 0, 0.3), 2)],
                ),
            )
        for ts in poll_times(rng, self.t0, self.t1, 20.0):
            self.exchange(
                ts, SCADA1, RTU20, cport, port, iec104("U", "testfr_act"), iec104("U", "testfr_con")
            )

    # -- injected deviations ---------------------------------------------------------------------

    def injections(self) -> None:
        inj, add = self.inj, self.expected.add
        read = modbus(3, "read_holding_registers", "request", address=0, quantity=10)
        for k in range(5):  # a laptop reads the PLC (with the PLC's real values)
            ts = inj["new_asset"] + k
            values = self.plc1_registers(ts, self.phases)
            self.exchange(
                ts,
                ROGUE,
                PLC1,
                51515,
                502,
                read,
                modbus(
                    3,
                    "read_holding_registers",
                    "response",
                    address=0,
                    quantity=10,
                    values=values,
                    matched=True,
                ),
            )
        add(("new_asset", ROGUE[0]))

        ts = inj["new_pair"]
        self.exchange(
            ts,
            HMI,
            self.plc2(ts),
            52000,
            502,
            modbus(3, "read_holding_registers", "request", address=100, quantity=2),
            modbus(
                3,
                "read_holding_registers",
                "response",
                address=100,
                quantity=2,
                values=[1000, 1000],
                matched=True,
            ),
        )
        add(("new_pair", "10.20.1.10 -> 10.20.2.22"))

        self.exchange(
            inj["new_protocol"],
            SCADA1,
            RTU10,
            52001,
            502,
            read,
            modbus(
                3, "read_holding_registers", "response", address=0, quantity=10, values=[1] * 10, matched=True
            ),
        )
        add(("new_protocol", "modbus 10.20.1.11 -> 10.20.2.31"))

        self.exchange(
            inj["new_dnp3_master"],
            HMI,
            RTU10,
            52002,
            20000,
            dnp3(1, "read", 3, 10, True, CLASS0),
            dnp3(129, "response", 10, 3, False, []),
            0.05,
        )
        add(("new_dnp3_master", "10.20.1.10/dnp3:3 -> 10.20.2.31/dnp3:10"))

        # force listen only: the PLC stops answering, so there is no response
        self.exchange(
            inj["new_function_code"],
            HMI,
            PLC1,
            52003,
            502,
            modbus(8, "diagnostics_force_listen_only", "request", sub_function=4),
            None,
        )
        add(("new_function_code", "modbus 10.20.1.10 -> 10.20.2.21/modbus:1 diagnostics_force_listen_only"))

        self.exchange(
            inj["write_outside_range"],
            HMI,
            PLC1,
            52004,
            502,
            modbus(6, "write_single_register", "request", address=500, quantity=1, values=[1]),
            modbus(6, "write_single_register", "response", address=500, quantity=1, values=[1]),
        )
        add(
            ("write_outside_range", "modbus 10.20.1.10 -> 10.20.2.21/modbus:1 write_single_register addr 500")
        )

        cport, port = self.iec104_ports
        self.exchange(
            inj["iec104_new_command"],
            SCADA1,
            RTU20,
            cport,
            port,
            iec104("I", "single_command", 45, 6, 7, [5001]),
            iec104("I", "single_command", 45, 7, 7, [5001]),
            0.05,
        )
        add(("new_function_code", "iec104 10.20.1.11 -> 10.20.2.41/iec104:7 single_command"))

        add(("value_out_of_band", "10.20.2.21/modbus:1 hr:2"))  # made in hmi_plc1
        add(("new_mac_for_ip", f"{PLC2[0]} {PLC2_REPLACEMENT_MAC}"))  # made in plc2()


def generate(
    seed: int,
    learn_s: float = 7200,
    detect_s: float = 3600,
    day_s: float | None = None,
    inject: bool = True,
    start: float = START,
) -> Scenario:
    """Traffic of ``learn_s + detect_s`` seconds; events before ``learn_s`` are for learning."""
    plant = Plant(seed, learn_s, detect_s, day_s, inject, start)
    plant.hmi_plc1()
    plant.scada_plc2()
    plant.dnp3_polls()
    plant.dnp3_controls()
    plant.iec104()
    if inject:
        plant.injections()
    plant.events.sort(key=lambda item: (item[0], item[1]))
    learn = [e for ts, _, e in plant.events if ts < plant.split]
    detect = [e for ts, _, e in plant.events if ts >= plant.split]
    return Scenario(learn, detect, plant.expected, plant.split)
