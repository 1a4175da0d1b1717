#!/usr/bin/env python3
"""Memory of the in-memory inventory at 100 000 assets / 1 000 000 pairs (a benchmark, not a test).

10 000 Modbus clients each poll 100 of 90 000 servers (one unit id each): one million pairs, each with a
read request and its response (address range, four process values). A tenth of the pairs are then
polled ten more times, so their interval reservoirs fill. Events go through the enrichment stage's
own path (``observe`` → ``Inventory.update``); the script reports resident memory (VmRSS/VmHWM from
/proc) before and after, and the stage's rate.

Eviction order when a limit (otsentry.inventory.settings.Limits) is reached — cheapest loss first:

1. poll trackers (interval reservoirs) updated least recently, past ``max_poll_trackers``
   (250 000 by default): counts and ranges stay, the pair just restarts its interval sampling;
2. pairs seen least recently, past ``max_pairs`` (1 000 000): written to SQLite first when a store
   is attached, reloaded and merged if they talk again;
3. assets seen least recently, past ``max_assets`` (200 000), the same way.

Inside a record every collection is capped (devices per asset, MACs, functions, request types and
value points per pair, ranges and items per address space), so no single talker grows without bound.

    .venv/bin/python bench/inventory_memory.py [--pairs 1000000] [--assets 100000]
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from otsentry.inventory import oui
from otsentry.inventory.observe import observe
from otsentry.inventory.settings import Limits
from otsentry.inventory.state import Inventory

START = 1_715_666_400


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def ip(n: int) -> str:
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def mac(n: int) -> str:
    return f"00-80-F4-{n >> 16 & 255:02X}-{n >> 8 & 255:02X}-{n & 255:02X}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--polled-fraction", type=float, default=0.1)
    parser.add_argument("--polls", type=int, default=10)
    args = parser.parse_args()
    clients = args.assets // 10
    servers = args.assets - clients
    per_client = args.pairs // clients

    oui.vendor_table()
    gc.collect()
    before, _ = rss_mib()
    inventory = Inventory(Limits())
    update = inventory.update
    request = {
        "@timestamp": "",
        "event.kind": "event",
        "network.protocol": "modbus",
        "event.dataset": "otsentry.modbus",
        "event.action": "read_holding_registers",
        "modbus.function_code": 3,
        "modbus.pdu_type": "request",
        "modbus.address": 0,
        "modbus.quantity": 4,
    }
    response = dict(request, **{"modbus.pdu_type": "response", "modbus.matched": True})
    events = 0
    started = time.process_time()

    def exchange(ts: float, client: int, server: int, unit: int) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ts))) + f".{int(ts % 1 * 1e6):06d}Z"
        cip, sip, cmac, smac = ip(client), ip(clients + server), mac(client), mac(clients + server)
        request.update(
            {
                "@timestamp": stamp,
                "source.ip": cip,
                "destination.ip": sip,
                "source.mac": cmac,
                "destination.mac": smac,
                "modbus.unit_id": unit,
                "modbus.address": unit * 10,
            }
        )
        update(observe(request))  # type: ignore[arg-type]
        response.update(
            {
                "@timestamp": stamp,
                "source.ip": sip,
                "destination.ip": cip,
                "source.mac": smac,
                "destination.mac": cmac,
                "modbus.unit_id": unit,
                "modbus.address": unit * 10,
                "modbus.values": [client & 255, server & 255, unit, 7],
            }
        )
        update(observe(response))  # type: ignore[arg-type]

    for c in range(clients):
        for k in range(per_client):
            server = (c * 7919 + k * 104729) % servers  # spread clients over servers
            exchange(START + c * 0.001 + k, c, server, 1 + server % 4)
            events += 2
    polled = int(clients * args.polled_fraction)
    for c in range(polled):
        for k in range(per_client):
            server = (c * 7919 + k * 104729) % servers
            for p in range(args.polls):
                exchange(START + 10_000 + p * 2.0 + c * 0.001 + k * 0.0001, c, server, 1 + server % 4)
                events += 2
    elapsed = time.process_time() - started
    gc.collect()
    after, peak = rss_mib()
    stats = inventory.stats()
    pairs, assets = stats["pairs"], stats["assets"]
    print(f"assets {assets:,}  pairs {pairs:,}  poll trackers {stats['poll_trackers']:,}  events {events:,}")
    print(f"evicted: {stats['evicted']}")
    print(
        f"RSS before {before:,.0f} MiB, after {after:,.0f} MiB, peak {peak:,.0f} MiB;"
        f" inventory {after - before:,.0f} MiB = {(after - before) * 2**20 / max(pairs, 1):,.0f} B per pair"
    )
    print(f"{events / elapsed:,.0f} events/s through observe + Inventory.update (CPU time {elapsed:.1f} s)")
    verdict = "under" if peak < 1024 else "OVER"
    print(f"peak RSS {peak:,.0f} MiB is {verdict} the 1 GiB budget")


if __name__ == "__main__":
    main()
