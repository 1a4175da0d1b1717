"""The Modbus/TCP sample captures: an HMI polling two PLCs, and the same with an intruder."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import gen_modbus as mb
from capture import Capture
from netpackets import Frame, Host, TcpConnection
from plan import HMI, MS, PLC1, PLC2, ROGUE, SECOND, START_NS, as_ipv6

MODBUS_PORT = 502
DELAYED_ACK_NS = 200 * MS  # Windows' delayed-ACK timer: the HMI acks the last response of a cycle late
DEVICE_ID = {0: "Telemecanique", 1: "BMX P34 2020", 2: "v3.20"}  # vendor, product code, revision (§6.21)


@dataclass
class ModbusLink:
    """A client↔server connection with its next transaction id."""

    conn: TcpConnection
    next_tid: int

    def transact(
        self,
        ts: int,
        unit: int,
        request: tuple[bytes, mb.Truth],
        response: tuple[bytes, mb.Truth] | None,
        latency_ns: int,
        attack: dict[str, Any] | None = None,
        answered: bool = True,
    ) -> tuple[int, Frame, Frame | None]:
        """Request at ``ts``, response ``latency_ns`` later (or only a TCP ACK when not ``answered``)."""
        tid, self.next_tid = self.next_tid, (self.next_tid + 1) & 0xFFFF
        pdu, truth = request
        truth.update(transaction_id=tid, unit_id=unit)
        if attack:
            truth["attack"] = attack
        sent = self.conn.send(0, ts, mb.mbap(tid, unit, pdu), [truth])
        reply_ts = ts + latency_ns
        if response is None or not answered:
            self.conn.ack(1, reply_ts)
            return reply_ts, sent, None
        pdu, truth = response
        truth.update(transaction_id=tid, unit_id=unit)
        if attack:
            truth["attack"] = attack
        return reply_ts, sent, self.conn.send(1, reply_ts, mb.mbap(tid, unit, pdu), [truth])


@dataclass
class PlcModel:
    """Process values a PLC serves: registers drift like measurements, coils change rarely."""

    host: Host
    unit: int
    register_address: int
    registers: list[int]
    coils: list[int]
    silent_from_ns: int | None = None  # after FC 8 force-listen-only the PLC stops answering
    link: ModbusLink | None = field(default=None, repr=False)

    def drift(self, rng: random.Random) -> None:
        for i in range(len(self.registers) - 2):  # the last two are setpoints, changed only by writes
            self.registers[i] = max(0, min(0xFFFF, self.registers[i] + rng.randint(-7, 7)))
        if rng.random() < 0.1:
            i = rng.randrange(len(self.coils))
            self.coils[i] ^= 1


def _latency(rng: random.Random) -> int:
    return rng.randrange(3 * MS, 12 * MS) + rng.randrange(1000)


def polling(
    cap: Capture,
    rng: random.Random,
    start_ns: int,
    cycles: int,
    silent_from_ns: dict[str, int] | None = None,
    hosts: tuple[Host, Host, Host] = (HMI, PLC1, PLC2),
) -> tuple[list[PlcModel], int]:
    """The HMI polls both PLCs every 2 s (FC 3 then FC 1) with a few operator writes and one FC 43/14.

    ``silent_from_ns`` maps a PLC's IP to the time it stops answering; the random draws stay the same.
    """
    hmi, plc1, plc2 = hosts
    plcs = [
        PlcModel(
            plc1, 1, 0, [512, 730, 1180, 215, 600, 650], [1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1]
        ),
        PlcModel(plc2, 2, 100, [48, 3300, 2975, 77, 1500, 1400, 0, 12], [0] * 8 + [1] * 8),
    ]
    for plc in plcs:
        plc.silent_from_ns = (silent_from_ns or {}).get(plc.host.ip)
    for n, plc in enumerate(plcs):
        conn = cap.connection(
            hmi,
            rng.randrange(49152, 65000),
            plc.host,
            MODBUS_PORT,
            rng.getrandbits(32),
            rng.getrandbits(32),
            client_ip_id=rng.getrandbits(16),
            server_ip_id=rng.getrandbits(16),
        )
        plc.link = ModbusLink(conn, rng.randrange(1, 0x4000))
        conn.open(start_ns + n * 37 * MS)
    # Right after connecting the HMI asks PLC 1 who it is.
    plcs[0].link.transact(
        start_ns + 80 * MS,
        1,
        mb.read_device_id_request(),  # type: ignore[union-attr]
        mb.read_device_id_response(DEVICE_ID),
        _latency(rng),
    )
    writes = {(7, 0): "fc6", (15, 1): "fc16", (22, 0): "fc6", (26, 1): "fc6"}
    t = start_ns
    for cycle in range(cycles):
        t = start_ns + SECOND + cycle * 2 * SECOND + rng.randrange(40 * MS)
        for n, plc in enumerate(plcs):
            link = plc.link
            assert link is not None
            answered = plc.silent_from_ns is None or t + n * 30 * MS < plc.silent_from_ns
            ts = t + n * 30 * MS + rng.randrange(2 * MS)
            plc.drift(rng)
            quantity = len(plc.registers)
            ts, _, _ = link.transact(
                ts,
                plc.unit,
                mb.read_request(3, plc.register_address, quantity),
                mb.read_registers_response(3, plc.registers),
                _latency(rng),
                answered=answered,
            )
            ts += rng.randrange(400_000, 1_500_000)
            ts, _, _ = link.transact(
                ts,
                plc.unit,
                mb.read_request(1, 0, len(plc.coils)),
                mb.read_bits_response(1, plc.coils),
                _latency(rng),
                answered=answered,
            )
            kind = writes.get((cycle, n))
            if kind:
                ts += rng.randrange(300 * MS, 600 * MS)  # the operator types a new setpoint
                setpoint = len(plc.registers) - 2
                if kind == "fc6":
                    value = plc.registers[setpoint] + rng.choice([-50, 25, 50])
                    ts, _, _ = link.transact(
                        ts,
                        plc.unit,
                        mb.write_single_register(plc.register_address + setpoint, value),
                        mb.write_single_register(plc.register_address + setpoint, value, "response"),
                        _latency(rng),
                        answered=answered,
                    )
                    plc.registers[setpoint] = value
                else:
                    values = [plc.registers[setpoint] + 100, plc.registers[setpoint + 1] + 100, 1]
                    address = plc.register_address + setpoint
                    ts, _, _ = link.transact(
                        ts,
                        plc.unit,
                        mb.write_multiple_registers(address, values),
                        mb.write_multiple_response(16, address, 3),
                        _latency(rng),
                        answered=answered,
                    )
                    plc.registers[setpoint : setpoint + 2] = values[:2]
            link.conn.delayed_ack(0, ts + DELAYED_ACK_NS + rng.randrange(MS))
    end = t + SECOND
    for n, plc in enumerate(plcs):
        assert plc.link is not None
        plc.link.conn.close(end + n * 5 * MS)
    return plcs, end


def modbus_polling(seed: int = 502, ipv6: bool = False) -> Capture:
    hosts = (HMI, PLC1, PLC2)
    if ipv6:
        hosts = (as_ipv6(HMI), as_ipv6(PLC1), as_ipv6(PLC2))
    hmi, plc1, plc2 = hosts
    cap = Capture(
        "modbus_polling.pcap",
        f"HMI {hmi.ip} polls PLC {plc1.ip} (unit 1) and PLC {plc2.ip} "
        "(unit 2) every 2 s: FC 3 and FC 1, a few FC 6/16 operator writes, one FC 43/14 device "
        "identification. Normal traffic.",
        list(hosts),
    )
    polling(cap, random.Random(seed), START_NS, cycles=30, hosts=hosts)
    return cap


ATTACKS = {
    "scan": {
        "technique": "T0888",
        "name": "Remote System Information Discovery",
        "injected": "function-code sweep from an unknown client",
    },
    "write_registers": {
        "technique": "T0836",
        "name": "Modify Parameter",
        "injected": "unknown client overwrites holding registers (FC 16)",
    },
    "write_coils": {
        "technique": "T0855",
        "name": "Unauthorized Command Message",
        "injected": "unknown client forces coils (FC 15, FC 5)",
    },
    "malformed": {
        "technique": "T0814",
        "name": "Denial of Service",
        "injected": "MBAP header with protocol id 0x1234 (must be 0)",
    },
    "umas_stop": {
        "technique": "T0858",
        "name": "Change Operating Mode",
        "injected": "UMAS (FC 90) STOP PLC from an unknown client",
    },
    "listen_only": {
        "technique": "T0814",
        "name": "Denial of Service",
        "injected": "FC 8 sub-function 4 force listen only mode: the PLC stops answering",
    },
}
SCAN_FUNCTIONS = [7, 11, 12, 17, 20, 21, 22, 24, 41, 42, 65, 100, 125]


def modbus_suspicious(seed: int = 502) -> Capture:
    cap = Capture(
        "modbus_suspicious.pcap",
        "The modbus_polling traffic plus an unknown client 10.20.1.66: "
        "function-code sweep (exceptions), FC 16/15/5 writes, a malformed MBAP (protocol id != 0), "
        "UMAS STOP PLC, and FC 8 force-listen-only that silences PLC 2.",
        [HMI, PLC1, PLC2, ROGUE],
    )
    rng = random.Random(seed)
    attack_rng = random.Random(seed + 1)
    listen_only_at = START_NS + 50 * SECOND
    # The polling part is drawn from the same seed as modbus_polling; PLC 2 goes silent after the attack.
    polling(cap, rng, START_NS, cycles=30, silent_from_ns={PLC2.ip: listen_only_at})

    def rogue_link(host: Host, at: int) -> ModbusLink:
        conn = cap.connection(
            ROGUE,
            attack_rng.randrange(49152, 65000),
            host,
            MODBUS_PORT,
            attack_rng.getrandbits(32),
            attack_rng.getrandbits(32),
            client_ttl=64,
            client_ip_id=attack_rng.getrandbits(16),
            server_ip_id=attack_rng.getrandbits(16),
        )
        conn.open(at)
        return ModbusLink(conn, 1)  # attack tools count transaction ids from 0/1

    link = rogue_link(PLC1, START_NS + 14 * SECOND)
    ts = START_NS + 15 * SECOND
    for fc in SCAN_FUNCTIONS:
        ts, _, _ = link.transact(
            ts,
            1,
            mb.bare_function(fc),
            mb.exception_response(fc, mb.EXCEPTION_ILLEGAL_FUNCTION),
            _latency(attack_rng),
            ATTACKS["scan"],
        )
        ts += attack_rng.randrange(20 * MS, 60 * MS)
    ts = START_NS + 30 * SECOND + attack_rng.randrange(10 * MS)
    values = [9999, 0, 0xFFFF, 1]
    ts, _, _ = link.transact(
        ts,
        1,
        mb.write_multiple_registers(0, values),
        mb.write_multiple_response(16, 0, 4),
        _latency(attack_rng),
        ATTACKS["write_registers"],
    )
    bits = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    ts, _, _ = link.transact(
        ts + 150 * MS,
        1,
        mb.write_multiple_coils(0, bits),
        mb.write_multiple_response(15, 0, len(bits)),
        _latency(attack_rng),
        ATTACKS["write_coils"],
    )
    ts, _, _ = link.transact(
        ts + 150 * MS,
        1,
        mb.write_single_coil(12, True),
        mb.write_single_coil(12, True, "response"),
        _latency(attack_rng),
        ATTACKS["write_coils"],
    )
    # A malformed MBAP: protocol id 0x1234. The PLC drops it (TCP ACK only).
    ts = START_NS + 38 * SECOND
    tid = link.next_tid
    link.next_tid += 1
    bad = mb.mbap(tid, 1, bytes.fromhex("0300000002"), protocol_id=0x1234)
    link.conn.send(
        0,
        ts,
        bad,
        [
            {
                "protocol": "modbus",
                "action": "decode_error",
                "function_code": None,
                "reason": "mbap_protocol_id_not_zero",
                "protocol_id": 0x1234,
                "transaction_id": tid,
                "unit_id": 1,
                "attack": ATTACKS["malformed"],
            }
        ],
    )
    link.conn.ack(1, ts + 2 * MS)
    ts = START_NS + 45 * SECOND + attack_rng.randrange(10 * MS)
    ts, _, _ = link.transact(
        ts,
        1,
        mb.umas(0, 0x41, b"\xff\x00"),
        mb.umas(0, 0xFE, b"", "response", request_function=0x41),
        _latency(attack_rng),
        ATTACKS["umas_stop"],
    )
    link.conn.close(ts + SECOND)
    # Force listen only on PLC 2: no response, the PLC only acks at TCP level.
    link2 = rogue_link(PLC2, listen_only_at - SECOND)
    link2.transact(
        listen_only_at, 2, mb.diagnostics(mb.DIAG_FORCE_LISTEN_ONLY, 0), None, 2 * MS, ATTACKS["listen_only"]
    )
    link2.conn.close(listen_only_at + 500 * MS)
    return cap
