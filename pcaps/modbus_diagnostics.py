"""The Modbus diagnostics capture: serial-line diagnostics, a busy PLC and a PDU fuzzer, each next to
its near miss.

Every rule that fires here has a neighbour that differs only in what the rule keys on: FC 8 sub-functions
1, 10 and 20 beside 0 and 11; eleven "server device busy" exceptions within 10 s beside ten; 21 malformed
requests from one host within 10 s beside 20.
"""

from __future__ import annotations

import random

import gen_modbus as mb
from capture import Capture
from modbus_scenarios import MODBUS_PORT, ModbusLink, _latency
from netpackets import Host
from plan import HMI, MS, PLC1, PLC2, ROGUE, SECOND, START_NS

PLC2_REGISTERS = (100, 8)  # PLC 2's measurement block (address, quantity), as modbus_polling reads it
BUSY_RETRY_NS = 900 * MS  # an HMI that retries a busy server quickly
FUZZ_INTERVAL_NS = 400 * MS

# Requests too short for their function code (Modbus spec §6): 2 of 4 address/quantity bytes (FC 3),
# 3 of 4 (FC 6), 4 of the 5-byte FC 16 header, 2 of 4 (FC 5). The fuzzer cycles through them.
MALFORMED = [(3, b"\x00\x00"), (6, b"\x00\x01\x00"), (16, b"\x00\x00\x00\x02"), (5, b"\x00\x0c")]

ATTACKS = {
    "restart": {
        "technique": "T0816",
        "name": "Device Restart/Shutdown",
        "injected": "FC 8 sub-function 1 restart communications option",
    },
    "clear_counters": {
        "technique": "T0872",
        "name": "Indicator Removal on Host",
        "injected": "FC 8 sub-functions 10 and 20 clear the diagnostic counters",
    },
    "fuzz": {
        "technique": "T0814",
        "name": "Denial of Service",
        "injected": "PDU fuzzer: requests too short for their function code in valid MBAP headers",
    },
}


def _link(cap: Capture, rng: random.Random, client: Host, server: Host, at: int, tid: int) -> ModbusLink:
    conn = cap.connection(
        client,
        rng.randrange(49152, 65000),
        server,
        MODBUS_PORT,
        rng.getrandbits(32),
        rng.getrandbits(32),
        client_ttl=64 if client is ROGUE else 128,
        client_ip_id=rng.getrandbits(16),
        server_ip_id=rng.getrandbits(16),
    )
    conn.open(at)
    return ModbusLink(conn, tid)


def _diagnostics(link: ModbusLink, rng: random.Random, ts: int) -> int:
    """An engineer checks PLC 1's serial port: echo test and message count (near misses), then
    clears the counters (sub 10 and 20) and restarts the port (sub 1)."""
    for sub, data, reply, attack in (
        (mb.DIAG_RETURN_QUERY_DATA, 0xA537, 0xA537, None),
        (mb.DIAG_RETURN_BUS_MESSAGE_COUNT, 0, 1184, None),
        (mb.DIAG_CLEAR_COUNTERS, 0, 0, ATTACKS["clear_counters"]),
        (mb.DIAG_CLEAR_OVERRUN, 0, 0, ATTACKS["clear_counters"]),
        (mb.DIAG_RESTART_COMMUNICATIONS, 0, 0, ATTACKS["restart"]),
    ):
        ts, _, _ = link.transact(
            ts, 1, mb.diagnostics(sub, data), mb.diagnostics(sub, reply, "response"), _latency(rng), attack
        )
        ts += rng.randrange(700 * MS, 1200 * MS)
    return ts


def _busy_polls(link: ModbusLink, rng: random.Random, ts: int, polls: int) -> int:
    """The HMI reads PLC 2 while it is busy (program download): every poll gets exception 6."""
    address, quantity = PLC2_REGISTERS
    for _ in range(polls):
        link.transact(
            ts,
            2,
            mb.read_request(3, address, quantity),
            mb.exception_response(3, mb.EXCEPTION_SERVER_DEVICE_BUSY),
            _latency(rng),
        )
        ts += BUSY_RETRY_NS
    return ts


def _normal_polls(link: ModbusLink, rng: random.Random, ts: int, polls: int, values: list[int]) -> int:
    address, quantity = PLC2_REGISTERS
    for _ in range(polls):
        values = [max(0, v + rng.randint(-5, 5)) for v in values]
        link.transact(
            ts, 2, mb.read_request(3, address, quantity), mb.read_registers_response(3, values), _latency(rng)
        )
        ts += 2 * SECOND
    return ts


def _fuzz(link: ModbusLink, ts: int, count: int) -> int:
    """``count`` malformed requests; the PLC drops each (a TCP ACK, no Modbus answer)."""
    for n in range(count):
        function, data = MALFORMED[n % len(MALFORMED)]
        link.transact(ts, 1, mb.truncated_request(function, data), None, 2 * MS, ATTACKS["fuzz"])
        ts += FUZZ_INTERVAL_NS
    return ts


def modbus_diagnostics(seed: int = 508) -> Capture:
    cap = Capture(
        "modbus_diagnostics.pcap",
        "HMI 10.20.1.10 runs FC 8 diagnostics on PLC 10.20.2.21: return query data and bus message "
        "count, then clear counters (sub 10), clear overrun (sub 20) and restart communications (sub 1). "
        "PLC 10.20.2.22 answers polls with exception 6 (server device busy): 10 within 10 s, normal "
        "answers, then 11 within 10 s. Unknown client 10.20.1.66 fuzzes PLC 10.20.2.21 with requests "
        "too short for their function code: 20 within 10 s, a pause, then 21 within 10 s.",
        [HMI, PLC1, PLC2, ROGUE],
    )
    rng = random.Random(seed)
    plc1 = _link(cap, rng, HMI, PLC1, START_NS, rng.randrange(1, 0x4000))
    plc2 = _link(cap, rng, HMI, PLC2, START_NS + 37 * MS, rng.randrange(1, 0x4000))
    ts = _diagnostics(plc1, rng, START_NS + SECOND)
    plc1.conn.close(ts + SECOND)

    ts = _busy_polls(plc2, rng, START_NS + 10 * SECOND, 10)  # ten within 9 s: not a flood
    ts = _normal_polls(plc2, rng, ts + 3 * SECOND, 4, [48, 3300, 2975, 77, 1500, 1400, 0, 12])
    ts = _busy_polls(plc2, rng, START_NS + 40 * SECOND, 11)  # eleven within 10 s: a flood
    ts = _normal_polls(plc2, rng, ts + 3 * SECOND, 2, [51, 3297, 2980, 75, 1500, 1400, 0, 12])
    plc2.conn.delayed_ack(0, ts)
    plc2.conn.close(ts + SECOND)

    fuzzer = _link(cap, rng, ROGUE, PLC1, START_NS + 69 * SECOND, 1)
    _fuzz(fuzzer, START_NS + 70 * SECOND, 20)  # 20 within 7.6 s: below the burst threshold
    ts = _fuzz(fuzzer, START_NS + 90 * SECOND, 21)  # 21 within 8 s: a burst
    fuzzer.conn.close(ts + SECOND)
    return cap
