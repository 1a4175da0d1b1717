"""The asset pages: search the inventory, and one asset with identity, roles, protocols, communications,
baseline status and alerts.

Reads the inventory's tables through :class:`~otsentry.inventory.store.InventoryStore` (so JSON columns
decode the same way as for ``otsentry assets``) on the console's own connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
import sqlite_utils

from otsentry.inventory.comms import endpoint_id
from otsentry.inventory.store import InventoryStore, pair_label, parse_addr
from otsentry.web.database import ConsoleDB

PAGE_SIZE = 50
MAX_COMMS_SHOWN = 500
_IP_PREFIX = re.compile(r"^[0-9A-Fa-f:.]{1,45}$")
ACTIVE_CLASSES = ("write", "control")


def display_name(asset: dict[str, Any]) -> str:
    """What the device says it is (identity), else its MAC vendor."""
    identity = asset.get("identity") or {}
    if isinstance(identity, dict):
        parts = [str(identity[k]) for k in ("vendor", "product", "product_code", "model") if identity.get(k)]
        if parts:
            return " ".join(parts)
        for key in (
            "device_manufacturer_name",
            "product_name_and_model",
            "logical_device_name",
            "manufacturer",
        ):
            if identity.get(key):
                return str(identity[key])
    return str(asset.get("vendor") or "")


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class AssetPage:
    rows: list[dict[str, Any]]
    next_after: int | None
    total: int
    protocols: list[str]
    available: bool = True


class AssetQueries:
    def __init__(self, db: ConsoleDB) -> None:
        self.db = db

    def available(self) -> bool:
        return "assets" in self.db.tables()

    def store(self) -> InventoryStore:
        return InventoryStore(sqlite_utils.Database(self.db.conn()))

    def search(self, q: str = "", protocol: str = "", after: int = 0) -> AssetPage:
        if not self.available():
            return AssetPage([], None, 0, [], available=False)
        where, params = [], []
        q = q.strip()[:100]
        if q:
            if _IP_PREFIX.match(q) and ("." in q or ":" in q):
                where.append("ip GLOB ?")  # case-sensitive prefix: uses the ip index
                params.append(q + "*")
            else:
                columns = ("ip", "mac", "vendor", "macs", "roles", "identity", "protocols")
                where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
                params += [_like(q)] * len(columns)
        if protocol and re.fullmatch(r"[a-z0-9_]{1,32}", protocol):
            where.append("protocols LIKE ?")
            params.append(f'%"{protocol}"%')
        total_sql = "SELECT COUNT(*) FROM assets" + (" WHERE " + " AND ".join(where) if where else "")
        total = int(self.db.one(total_sql, params)[0])  # type: ignore[index]
        if after:
            where.append("id > ?")
            params.append(after)
        sql = "SELECT * FROM assets" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.store().query(sql + " ORDER BY id LIMIT ?", (*params, PAGE_SIZE + 1))
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        for row in rows:
            row["name"] = display_name(row)
        protocols = sorted(
            {
                p
                for r in self.db.query("SELECT DISTINCT protocols FROM assets LIMIT 200")
                for p in _json_list(r[0])
            }
        )
        return AssetPage(rows, rows[-1]["id"] if more and rows else None, total, protocols)

    def id_for_ip(self, ip: str) -> int | None:
        if not self.available():
            return None
        row = self.db.one("SELECT id FROM assets WHERE ip = ?", (ip,))
        return int(row[0]) if row else None

    def ids_for_ips(self, ips: list[str]) -> dict[str, int]:
        if not ips or not self.available():
            return {}
        out: dict[str, int] = {}
        for start in range(0, len(ips), 500):
            chunk = ips[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(f"SELECT ip, id FROM assets WHERE ip IN ({marks})", chunk):
                out[row[0]] = int(row[1])
        return out

    def detail(self, asset_id: int) -> dict[str, Any] | None:
        if not self.available():
            return None
        asset = self.store().asset(str(asset_id))
        if asset is None or asset["id"] != asset_id:
            return None
        asset["name"] = display_name(asset)
        comms = asset["communications"]
        asset["comms_total"] = len(comms)
        comms = comms[:MAX_COMMS_SHOWN]
        tables = self.db.tables()
        baselined_pairs: set[str] = set()
        asset["baseline"] = None
        asset["has_baseline"] = False
        if "baseline" in tables:
            asset["has_baseline"] = self.db.one("SELECT 1 FROM baseline LIMIT 1") is not None
            row = self.store().query(
                "SELECT doc FROM baseline WHERE kind = 'asset' AND key = ?", (asset["ip"],)
            )
            if row:
                asset["baseline"] = orjson.loads(row[0]["doc"])
            labels = sorted({pair_label(c) for c in comms})
            for start in range(0, len(labels), 500):
                chunk = labels[start : start + 500]
                marks = ",".join("?" * len(chunk))
                baselined_pairs |= {
                    r[0]
                    for r in self.db.query(
                        f"SELECT key FROM baseline WHERE kind = 'pair' AND key IN ({marks})", chunk
                    )
                }
        for c in comms:
            c["pair"] = pair_label(c)
            c["baselined"] = c["pair"] in baselined_pairs
            c["initiator"] = endpoint_id(c["initiator_ip"], c["protocol"], parse_addr(c["initiator_address"]))
            c["responder"] = endpoint_id(c["responder_ip"], c["protocol"], parse_addr(c["responder_address"]))
            c["active"] = c.get("function_class") in ACTIVE_CLASSES and c.get("direction") == "request"
        asset["communications"] = comms
        peers = sorted({c["initiator_ip"] for c in comms} | {c["responder_ip"] for c in comms})
        asset["peer_ids"] = self.ids_for_ips(peers)
        asset["deviations"] = self.deviations_of(asset["ip"]) if "deviations" in tables else []
        return asset

    def deviations_of(self, ip: str, limit: int = 50) -> list[dict[str, Any]]:
        """Deviations whose subject names this IP (not a longer one that starts with it)."""
        boundary = re.compile(rf"(?<![0-9A-Fa-f.:]){re.escape(ip)}(?![0-9A-Fa-f])")
        rows = self.store().query(
            "SELECT id, action, subject, message, count, first_seen, last_seen, status FROM deviations"
            " WHERE subject LIKE ? ESCAPE '\\' ORDER BY first_seen DESC LIMIT 500",
            (_like(ip),),
        )
        return [r for r in rows if boundary.search(r["subject"] or "")][:limit]


def _json_list(text: str | None) -> list[str]:
    try:
        value = orjson.loads(text) if text else []
    except orjson.JSONDecodeError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []
