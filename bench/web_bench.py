"""Console page times with real volumes: 100 000 alerts, 10 000 assets (not a test).

    .venv/bin/python bench/web_bench.py [--db PATH] [--alerts N] [--assets N] [--repeat N]

Fills a sensor database (kept in bench/.cache/web_bench.db unless --db is given, and reused when it
already holds the requested volume) through the stages' own stores where they write in bulk — the
detection stage's AlertStore, the core EventStore — and with the inventory's table schema for assets,
logical devices, communications, deviations and baseline rows (a seeded plant: 40 masters/HMIs polling
field devices, a Zipf-like spread of alerts over assets so a few PLCs carry thousands). Then it times
each console page in process (Starlette's test client, signed in as an analyst; no TLS, no network):
the median and the worst of ``--repeat`` requests, each after a first untimed one (except the map,
whose first drawing is reported on its own).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import orjson

from otsentry.detect.alerts import AlertStore
from otsentry.inventory.store import SCHEMA as INVENTORY_SCHEMA
from otsentry.store import EventStore
from otsentry.web.database import init_database
from otsentry.web.users import UserStore

CACHE = Path(__file__).resolve().parent / ".cache"
PASSWORD = "bench password 123"
START = 1_715_666_400  # 2024-05-14T06:00:00Z
LEVELS = [(1, "informational"), (3, "low"), (5, "medium"), (7, "high"), (10, "critical")]
RULE_KINDS = (
    "write from unknown client, DNP3 direct operate, cold restart, exception burst, new asset,"
    " channel silent, C12.22 remote disconnect, DLMS clock set, IEC 104 command, malformed MBAP,"
    " unsolicited storm, UMAS stop, file delete, time write, value out of band, new pair"
).split(", ")
RULES = [(f"rule-{n:02d}", f"Bench rule {n}: {kind}") for n, kind in enumerate(RULE_KINDS)]
PROTOCOLS = ["modbus", "dnp3", "c1222", "dlms", "iec104"]


def ts(offset: float) -> str:
    sec = int(START + offset)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{int((offset % 1) * 1e6):06d}Z"


def json(value: Any) -> str:
    return orjson.dumps(value).decode()


def asset_ip(n: int) -> str:
    return f"10.{20 + n // 65000}.{(n // 250) % 256}.{n % 250 + 1}"


def fill(db: Path, n_alerts: int, n_assets: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    init_database(db)
    ips = [asset_ip(n) for n in range(n_assets)]
    masters = ips[:40]
    weights = [1 / (rank + 1) for rank in range(n_assets)]  # Zipf-like: a few assets carry most alerts

    conn = sqlite3.connect(db)
    conn.executescript(INVENTORY_SCHEMA)
    asset_rows, address_rows, comm_rows, baseline_rows = [], [], [], []
    for n, ip in enumerate(ips):
        protocol = PROTOCOLS[n % len(PROTOCOLS)]
        role = f"{protocol} {'client' if ip in masters else 'server'}"
        identity = (
            {"vendor": "Schneider Electric", "product_code": f"BMX P34 {2000 + n % 50}"} if n % 3 else None
        )
        mac = f"00-80-F4-{n >> 16 & 255:02X}-{n >> 8 & 255:02X}-{n & 255:02X}"
        asset_rows.append(
            (n + 1, ip, mac, "Schneider Electric", "{}", None, json([protocol]), json([role]),
             json(identity) if identity else None, ts(0), ts(3600 + n % 600), 100 + n % 5000)
        )  # fmt: skip
        address_rows.append(
            (
                n + 1,
                "device",
                protocol,
                str(n % 247 + 1),
                json([role.split()[1]]),
                None,
                None,
                ts(0),
                ts(3600),
            )
        )
        if n < n_assets * 8 // 10:
            baseline_rows.append(("asset", ip, json({"macs": [mac]})))
    for n, ip in enumerate(ips[40:], start=40):
        master = masters[n % len(masters)]
        protocol = PROTOCOLS[n % len(PROTOCOLS)]
        for direction in ("request", "response"):
            for function, fclass in (("read_holding_registers", "read"), ("write_single_register", "write")):
                code = 3 if fclass == "read" else 6
                comm_rows.append(
                    (protocol, master, "", ip, str(n % 247 + 1), direction, function, code, fclass,
                     rng.randrange(10, 10000), ts(0), ts(3600), json({"addr": "0-99"}), None)
                )  # fmt: skip
        if n < n_assets * 8 // 10:
            pid = f"{protocol} {master} -> {ip}/{protocol}:{n % 247 + 1}"
            baseline_rows.append(
                ("pair", pid, orjson.dumps({"requests": {"read_holding_registers": {}}}).decode())
            )
    baseline_rows.append(
        ("meta", "", orjson.dumps({"otsentry_baseline": 1, "learned": {"events": 1}}).decode())
    )
    deviation_rows = [
        (f"dev{n:09d}", "new_asset", ip, f"New asset {ip}", json("one of the baseline assets"),
         json(f"{ip} (modbus server)"),
         json({"merge": {"otsentry_baseline": 1, "assets": {ip: {"macs": []}}, "pairs": {}},
               "remove_channel": None}),
         ts(3600 + n), ts(3600 + n), 1, "new")
        for n, ip in enumerate(ips[n_assets * 8 // 10:])
    ]  # fmt: skip
    with conn:
        conn.executemany("INSERT INTO assets VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", asset_rows)
        conn.executemany(
            "INSERT INTO asset_addresses (asset_id, kind, protocol, address, roles, identity, vendor,"
            " first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)",
            address_rows,
        )
        conn.executemany(
            "INSERT INTO communications (protocol, initiator_ip, initiator_address, responder_ip,"
            " responder_address, direction, function, function_code, function_class, count, first_seen,"
            " last_seen, ranges, polling) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            comm_rows,
        )
        conn.executemany("INSERT INTO baseline (kind, key, doc) VALUES (?,?,?)", baseline_rows)
        conn.executemany("INSERT INTO deviations VALUES (?,?,?,?,?,?,?,?,?,?,?)", deviation_rows)
    conn.close()

    events = EventStore(db)
    store = AlertStore(db)
    batch: list[dict[str, Any]] = []
    event_batch: list[dict[str, Any]] = []
    for seq in range(1, n_alerts + 1):
        offset = seq * 86400 * 7 / n_alerts  # a week of alerts
        number, level = rng.choices(LEVELS, weights=[5, 30, 40, 20, 5])[0]
        rule_id, rule_name = rng.choice(RULES)
        target = rng.choices(ips, weights=weights)[0]
        source = rng.choice(masters)
        protocol = rng.choice(PROTOCOLS)
        community = f"1:{seq % 5000:08d}bench="
        event = {
            "@timestamp": ts(offset),
            "event.kind": "event",
            "event.dataset": f"otsentry.{protocol}",
            "event.action": "write_single_register",
            "network.protocol": protocol,
            "network.community_id": community,
            "source.ip": source,
            "destination.ip": target,
            "otsentry.pcap.file": "bench.pcap",
            "otsentry.pcap.frame": seq * 3,
            "modbus.address": seq % 1000,
            "modbus.values": [seq % 65536],
        }
        if seq % 2 == 0:
            event_batch.append(event)
        batch.append(
            {
                **event,
                "event.kind": "alert",
                "rule.id": rule_id,
                "rule.name": rule_name,
                "rule.ruleset": "sigma",
                "event.severity": number,
                "log.level": level,
                "message": f"{rule_name} on {target} from {source} (#{seq})",
                "threat.technique.id": ["T0855"],
                "threat.technique.name": ["Unauthorized Command Message"],
                "otsentry.alert.id": f"bench-{seq:08d}",
                "otsentry.alert.seq": seq,
                "otsentry.alert.status": rng.choices(["new", "acknowledged", "closed"], weights=[60, 15, 25])[
                    0
                ],
                "otsentry.alert.frames": [seq * 3],
            }
        )
        if len(batch) >= 10_000:
            store.add(batch)
            events.add_events(event_batch)
            batch, event_batch = [], []
    store.add(batch)
    events.add_events(event_batch)
    store.close()
    events.close()
    conn = sqlite3.connect(db)
    UserStore(conn).add("bench", PASSWORD, "admin")
    conn.close()


def volume(db: Path) -> tuple[int, int]:
    try:
        conn = sqlite3.connect(db)
        counts = tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("alerts", "assets"))
        conn.close()
        return counts  # type: ignore[return-value]
    except sqlite3.Error:
        return (0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=CACHE / "web_bench.db")
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

    from otsentry.web.app import create_app

    if volume(args.db) != (args.alerts, args.assets):
        args.db.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        started = time.perf_counter()
        fill(args.db, args.alerts, args.assets)
        print(f"filled {args.db} in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    app = create_app(args.db)
    print(f"console start (page indexes on {args.alerts:,} alerts): {time.perf_counter() - started:.2f} s")
    client = TestClient(app, base_url="https://bench")
    page = client.get("/login").text
    token = page.split('name="login_token" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"username": "bench", "password": PASSWORD, "login_token": token})

    conn = sqlite3.connect(args.db)
    hot_ip = conn.execute(
        "SELECT destination_ip FROM alerts GROUP BY destination_ip ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()[0]
    hot_count = conn.execute("SELECT COUNT(*) FROM alerts WHERE destination_ip = ?", (hot_ip,)).fetchone()[0]
    hot_asset = conn.execute("SELECT id FROM assets WHERE ip = ?", (hot_ip,)).fetchone()[0]
    deep = conn.execute("SELECT seq FROM alerts ORDER BY seq LIMIT 1 OFFSET 500").fetchone()[0]
    conn.close()
    mid_alert = f"bench-{args.alerts // 2:08d}"

    t0 = time.perf_counter()
    assert client.get("/map").status_code == 200
    map_first = time.perf_counter() - t0
    pages = [
        ("alerts queue (open, newest)", "/alerts"),
        ("alerts: severity high+ sorted by severity", "/alerts?severity=7%2B&sort=severity"),
        ("alerts: one rule, all statuses", "/alerts?status=all&rule=rule-03"),
        ("alerts: protocol dnp3, closed", "/alerts?status=closed&protocol=dnp3"),
        (f"alerts: hot asset ({hot_count:,} alerts)", f"/alerts?status=all&asset={hot_ip}"),
        (
            "alerts: one day, by time",
            "/alerts?status=all&since=2024-05-16T00:00&until=2024-05-17T00:00&sort=time",
        ),
        ("alerts: deep keyset page", f"/alerts?status=all&sort=oldest&after={deep}"),
        ("alert detail (events, related, history)", f"/alerts/{mid_alert}"),
        ("assets list", "/assets"),
        ("assets search 'BMX P34 2042'", "/assets?q=BMX+P34+2042"),
        ("assets search IP prefix", "/assets?q=10.20.7."),
        (f"asset detail (hot asset, {hot_count:,} alerts)", f"/assets/{hot_asset}"),
        ("network map (cached drawing)", "/map"),
        ("baseline review (pending deviations)", "/baseline"),
        ("sensor health", "/health"),
        ("audit log", "/audit"),
    ]
    print(f"\n{args.alerts:,} alerts, {args.assets:,} assets; median and worst of {args.repeat} requests\n")
    print(f"| page | median ms | worst ms |\n|---|---:|---:|\n| network map, first drawing (300 assets) | "
          f"{map_first * 1000:,.0f} | – |")  # fmt: skip
    for name, path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - t0)
        print(f"| {name} | {statistics.median(times) * 1000:,.1f} | {max(times) * 1000:,.1f} |")


if __name__ == "__main__":
    main()
