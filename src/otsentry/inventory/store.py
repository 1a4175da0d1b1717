"""The inventory's SQLite tables, in the sensor's database (opened with ``otsentry.store.open_db``
so WAL and pragmas match).

Tables: ``assets`` (one row per IP), ``asset_addresses`` (its MACs and logical devices with roles
and identity), ``communications`` (pair × direction × function with counts, first/last seen,
ranges as text, polling statistics), ``process_values`` (value band per device point),
``baseline`` (the reviewed baseline, one row per asset and per pair, same schema as the YAML
export) and ``deviations`` (baseline deviations with what accepting them would teach).

Rows hold absolute values: before the inventory creates a record in memory it loads the stored
row (``load_asset``/``load_pair``), so successive replays and evicted records add up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from otsentry.inventory.assets import Asset
from otsentry.inventory.baseline import FORMAT_VERSION, Baseline
from otsentry.inventory.comms import (
    REQUEST,
    FunctionStats,
    ItemSet,
    Pair,
    PairKey,
    RangeSet,
    function_key,
    pair_id,
)
from otsentry.inventory.deviations import Deviation, format_ts
from otsentry.inventory.observe import Address, parse_timestamp
from otsentry.inventory.state import Inventory

SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL UNIQUE,
    mac TEXT,
    vendor TEXT,
    macs TEXT,
    vlans TEXT,
    protocols TEXT,
    roles TEXT,
    identity TEXT,
    first_seen TEXT,
    last_seen TEXT,
    messages INTEGER
);
CREATE TABLE IF NOT EXISTS asset_addresses (
    asset_id INTEGER NOT NULL REFERENCES assets(id),
    kind TEXT NOT NULL,
    protocol TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    roles TEXT,
    identity TEXT,
    vendor TEXT,
    first_seen TEXT,
    last_seen TEXT,
    PRIMARY KEY (asset_id, kind, protocol, address)
);
CREATE TABLE IF NOT EXISTS communications (
    id INTEGER PRIMARY KEY,
    protocol TEXT NOT NULL,
    initiator_ip TEXT NOT NULL,
    initiator_address TEXT NOT NULL DEFAULT '',
    responder_ip TEXT NOT NULL,
    responder_address TEXT NOT NULL DEFAULT '',
    direction TEXT NOT NULL,
    function TEXT NOT NULL,
    function_code INTEGER,
    function_class TEXT,
    count INTEGER,
    first_seen TEXT,
    last_seen TEXT,
    ranges TEXT,
    polling TEXT,
    UNIQUE (protocol, initiator_ip, initiator_address, responder_ip, responder_address, direction, function)
);
CREATE INDEX IF NOT EXISTS communications_responder ON communications (responder_ip);
CREATE TABLE IF NOT EXISTS process_values (
    ip TEXT NOT NULL,
    protocol TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    point TEXT NOT NULL,
    lo REAL,
    hi REAL,
    samples INTEGER,
    PRIMARY KEY (ip, protocol, address, point)
);
CREATE TABLE IF NOT EXISTS baseline (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS deviations (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT,
    expected TEXT,
    observed TEXT,
    detail TEXT,
    first_seen TEXT,
    last_seen TEXT,
    count INTEGER,
    status TEXT NOT NULL DEFAULT 'new'
);
"""

_ASSET_UPSERT = """
INSERT INTO assets (ip, mac, vendor, macs, vlans, protocols, roles, identity, first_seen, last_seen, messages)
VALUES (?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(ip) DO UPDATE SET
    mac=excluded.mac, vendor=excluded.vendor, macs=excluded.macs, vlans=excluded.vlans,
    protocols=excluded.protocols, roles=excluded.roles, identity=excluded.identity,
    first_seen=MIN(first_seen, excluded.first_seen), last_seen=MAX(last_seen, excluded.last_seen),
    messages=excluded.messages
"""
_ADDRESS_UPSERT = """
INSERT INTO asset_addresses
    (asset_id, kind, protocol, address, roles, identity, vendor, first_seen, last_seen)
VALUES ((SELECT id FROM assets WHERE ip = ?),?,?,?,?,?,?,?,?)
ON CONFLICT(asset_id, kind, protocol, address) DO UPDATE SET
    roles=excluded.roles, identity=excluded.identity, vendor=excluded.vendor,
    first_seen=MIN(first_seen, excluded.first_seen), last_seen=MAX(last_seen, excluded.last_seen)
"""
_COMM_UPSERT = """
INSERT INTO communications
    (protocol, initiator_ip, initiator_address, responder_ip, responder_address, direction,
     function, function_code, function_class, count, first_seen, last_seen, ranges, polling)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(protocol, initiator_ip, initiator_address, responder_ip, responder_address, direction, function)
DO UPDATE SET
    function_code=excluded.function_code, function_class=excluded.function_class, count=excluded.count,
    first_seen=MIN(first_seen, excluded.first_seen), last_seen=MAX(last_seen, excluded.last_seen),
    ranges=excluded.ranges, polling=COALESCE(excluded.polling, polling)
"""
_VALUE_UPSERT = """
INSERT INTO process_values (ip, protocol, address, point, lo, hi, samples) VALUES (?,?,?,?,?,?,?)
ON CONFLICT(ip, protocol, address, point) DO UPDATE SET
    lo=MIN(lo, excluded.lo), hi=MAX(hi, excluded.hi), samples=MAX(samples, excluded.samples)
"""
_DEVIATION_UPSERT = """
INSERT INTO deviations
    (id, action, subject, message, expected, observed, detail, first_seen, last_seen, count)
VALUES (?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(id) DO UPDATE SET
    message=excluded.message, expected=excluded.expected, observed=excluded.observed, detail=excluded.detail,
    first_seen=MIN(first_seen, excluded.first_seen), last_seen=MAX(last_seen, excluded.last_seen),
    count=count + excluded.count
"""


def _json(value: Any) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


def _load(text: str | None) -> Any:
    return orjson.loads(text) if text else None


def addr_text(address: Address) -> str:
    return "" if address is None else str(address)


def parse_addr(text: str | None) -> Address:
    if not text:
        return None
    return int(text) if text.isdigit() else text


def open_inventory_db(path: str | Path) -> sqlite_utils.Database:
    """The sensor's database with the inventory tables added."""
    from otsentry.store import open_db

    db = open_db(path)
    db.conn.executescript(SCHEMA)
    return db


class InventoryStore:
    """Writes the inventory, baseline and deviations; reads them back for the CLI."""

    def __init__(self, db: sqlite_utils.Database | str | Path) -> None:
        self.db = db if isinstance(db, sqlite_utils.Database) else open_inventory_db(db)
        if isinstance(db, sqlite_utils.Database):
            self.db.conn.executescript(SCHEMA)
        self.conn = self.db.conn

    def close(self) -> None:
        self.db.close()

    # -- inventory -------------------------------------------------------------------------------

    def write(self, inventory: Inventory, assets: list[Asset], pairs: list[Pair]) -> None:
        asset_rows, address_rows, comm_rows, value_rows = [], [], [], []
        for a in assets:
            mac = inventory.host_mac(a)
            asset_rows.append(
                (
                    a.ip,
                    mac,
                    inventory.vendor(a),
                    _json({m: format_ts(t) for m, t in a.macs.items()}),
                    _json(sorted(a.vlans)) if a.vlans else None,
                    _json(sorted(a.protocols)),
                    _json(a.roles),
                    _json(a.identity or None),
                    format_ts(a.first),
                    format_ts(a.last),
                    a.messages,
                )
            )
            for m, last in a.macs.items():
                vendor = None if inventory.is_router_mac(m) else inventory.vendor_of(m)
                address_rows.append(
                    (a.ip, "mac", "", m, None, None, vendor, format_ts(last), format_ts(last))
                )
            for (protocol, address), dev in a.devices.items():
                address_rows.append(
                    (
                        a.ip,
                        "device",
                        protocol,
                        addr_text(address),
                        _json(sorted(dev.roles)),
                        _json(dev.identity or None),
                        None,
                        format_ts(dev.first),
                        format_ts(dev.last),
                    )
                )
                for point, (lo, hi, n) in (dev.values or {}).items():
                    value_rows.append((a.ip, protocol, addr_text(address), point, lo, hi, n))
        for p in pairs:
            protocol, iip, iaddr, rip, raddr = p.key
            polls: dict[str, dict[str, Any]] = {}
            for sig, tracker in p.trackers.items():
                if tracker.n:
                    polls.setdefault(tracker.function, {})[sig] = tracker.summary()
            for (direction, name), f in p.functions.items():
                poll = polls.get(name) if direction == REQUEST else None
                comm_rows.append(
                    (
                        protocol,
                        iip,
                        addr_text(iaddr),
                        rip,
                        addr_text(raddr),
                        direction,
                        name,
                        f.code,
                        f.fclass,
                        f.count,
                        format_ts(f.first),
                        format_ts(f.last),
                        _json(f.ranges() or None),
                        _json(poll),
                    )
                )
        with self.conn:
            self.conn.executemany(_ASSET_UPSERT, asset_rows)
            self.conn.executemany(_ADDRESS_UPSERT, address_rows)
            self.conn.executemany(_COMM_UPSERT, comm_rows)
            self.conn.executemany(_VALUE_UPSERT, value_rows)

    def load_asset(self, ip: str) -> Asset | None:
        row = self.conn.execute(
            "SELECT id, macs, vlans, protocols, first_seen, last_seen, messages FROM assets WHERE ip = ?",
            (ip,),
        ).fetchone()
        if row is None:
            return None
        asset_id, macs, vlans, protocols, first, last, messages = row
        asset = Asset(ip, parse_timestamp(first))
        asset.last = parse_timestamp(last)
        asset.macs = {m: parse_timestamp(t) for m, t in (_load(macs) or {}).items()}
        asset.vlans = set(_load(vlans) or ()) or None
        asset.protocols = frozenset(_load(protocols) or ())
        asset.messages = messages or 0
        from otsentry.inventory.assets import Device

        for protocol, address, roles, identity, dfirst, dlast in self.conn.execute(
            "SELECT protocol, address, roles, identity, first_seen, last_seen FROM asset_addresses"
            " WHERE asset_id = ? AND kind = 'device'",
            (asset_id,),
        ):
            dev = Device(protocol, parse_addr(address), parse_timestamp(dfirst))
            dev.last = parse_timestamp(dlast)
            dev.roles = frozenset(_load(roles) or ())
            dev.identity = _load(identity)
            asset.devices[(protocol, dev.address)] = dev
        return asset

    def load_pair(self, key: PairKey) -> Pair | None:
        protocol, iip, iaddr, rip, raddr = key
        rows = self.conn.execute(
            "SELECT direction, function, function_code, function_class, count, first_seen, last_seen, ranges"
            " FROM communications WHERE protocol = ? AND initiator_ip = ? AND initiator_address = ?"
            " AND responder_ip = ? AND responder_address = ?",
            (protocol, iip, addr_text(iaddr), rip, addr_text(raddr)),
        ).fetchall()
        if not rows:
            return None
        pair: Pair | None = None
        for direction, name, code, fclass, count, first, last, ranges in rows:
            f = FunctionStats(code, fclass or "other", parse_timestamp(first))
            f.last = parse_timestamp(last)
            f.count = count or 0
            spaces = _load(ranges)
            if spaces:
                f.set_spaces(
                    {s: ItemSet(v) if isinstance(v, list) else RangeSet.parse(v) for s, v in spaces.items()}
                )
            if pair is None:
                pair = Pair(key, f.last)
            pair.add_function(function_key(direction, name), f)
        return pair

    # -- baseline ----------------------------------------------------------------------------------

    def save_baseline(self, baseline: Baseline) -> None:
        doc = baseline.to_doc()
        rows = [("meta", "", _json({"otsentry_baseline": FORMAT_VERSION, "learned": doc["learned"]}))]
        rows += [("asset", ip, _json(entry)) for ip, entry in doc["assets"].items()]
        rows += [("pair", pid, _json(entry)) for pid, entry in doc["pairs"].items()]
        with self.conn:
            self.conn.execute("DELETE FROM baseline")
            self.conn.executemany("INSERT INTO baseline (kind, key, doc) VALUES (?,?,?)", rows)

    def load_baseline(self) -> Baseline | None:
        rows = self.conn.execute("SELECT kind, key, doc FROM baseline ORDER BY rowid").fetchall()
        if not rows:
            return None
        doc: dict[str, Any] = {"otsentry_baseline": FORMAT_VERSION, "learned": {}, "assets": {}, "pairs": {}}
        for kind, key, text in rows:
            if kind == "meta":
                doc.update(_load(text))
            elif kind == "asset":
                doc["assets"][key] = _load(text)
            elif kind == "pair":
                doc["pairs"][key] = _load(text)
        return Baseline.from_doc(doc)

    # -- deviations -----------------------------------------------------------------------------------

    def write_deviations(self, deviations: list[Deviation]) -> None:
        rows = []
        for d in deviations:
            rows.append(
                (
                    d.id,
                    d.action,
                    d.subject,
                    d.message,
                    _json(d.expected),
                    _json(d.observed),
                    _json(d.detail()),
                    format_ts(d.first_seen),
                    format_ts(d.last_seen),
                    d.count,
                )
            )
            d.count = 0  # stored counts add up across flushes and runs
            d.dirty = False
        with self.conn:
            self.conn.executemany(_DEVIATION_UPSERT, rows)

    def deviation(self, dev_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM deviations WHERE id = ? OR id LIKE ?", (dev_id, f"{dev_id}%"))
        return rows[0] if len(rows) == 1 else None

    def set_deviation_status(self, dev_id: str, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE deviations SET status = ? WHERE id = ?", (status, dev_id))

    # -- reading -------------------------------------------------------------------------------------------

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        json_columns = {
            "macs",
            "vlans",
            "protocols",
            "roles",
            "identity",
            "ranges",
            "polling",
            "expected",
            "observed",
            "detail",
        }
        out = []
        for row in self.db.query(sql, params):
            out.append(
                {k: _load(v) if k in json_columns and isinstance(v, str) else v for k, v in row.items()}
            )
        return out

    def assets(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM assets ORDER BY id")

    def asset(self, ident: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM assets WHERE ip = ? OR CAST(id AS TEXT) = ?", (ident, ident))
        if not rows:
            return None
        asset = rows[0]
        asset["addresses"] = self.query(
            "SELECT kind, protocol, address, roles, identity, vendor, first_seen, last_seen"
            " FROM asset_addresses"
            " WHERE asset_id = ? ORDER BY kind, protocol, address",
            (asset["id"],),
        )
        asset["communications"] = self.comms(ip=asset["ip"])
        asset["process_values"] = self.query(
            "SELECT protocol, address, point, lo, hi, samples FROM process_values WHERE ip = ?"
            " ORDER BY protocol, address, point",
            (asset["ip"],),
        )
        return asset

    def comms(self, ip: str | None = None, protocol: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        if ip:
            where.append("(initiator_ip = ? OR responder_ip = ?)")
            params += [ip, ip]
        if protocol:
            where.append("protocol = ?")
            params.append(protocol)
        sql = "SELECT * FROM communications"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self.query(
            sql + " ORDER BY protocol, initiator_ip, responder_ip, responder_address, direction DESC,"
            " function",
            tuple(params),
        )

    def deviations(self, status: str | None = None) -> list[dict[str, Any]]:
        if status:
            return self.query("SELECT * FROM deviations WHERE status = ? ORDER BY first_seen", (status,))
        return self.query("SELECT * FROM deviations ORDER BY first_seen")


def pair_label(row: dict[str, Any]) -> str:
    key = (
        row["protocol"],
        row["initiator_ip"],
        parse_addr(row["initiator_address"]),
        row["responder_ip"],
        parse_addr(row["responder_address"]),
    )
    return pair_id(key)
