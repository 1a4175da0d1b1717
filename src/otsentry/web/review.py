"""Baseline review: pending deviations, what accepting each would change, accept and reject.

A deviation records the baseline fragment that accepting it merges (``detail.merge``) or the channel it
forgets (``detail.remove_channel``). The diff shown for it is exact but cheap: only the baseline rows the
fragment touches (its assets and pairs, or the pairs towards the silent responder) are loaded, the
deviation is applied to a copy of them with the inventory's own ``accept``, and
:func:`otsentry.inventory.baseline.diff` compares the two. Accepting applies it to the whole stored
baseline, as ``otsentry baseline accept`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import sqlite_utils

from otsentry.inventory.baseline import FORMAT_VERSION, Baseline, diff
from otsentry.inventory.cli import accept
from otsentry.inventory.comms import endpoint_id
from otsentry.inventory.store import InventoryStore
from otsentry.web.database import ConsoleDB

PAGE_SIZE = 25
STATUSES = ("new", "accepted", "rejected")
MAX_FACTS_SHOWN = 200


class ReviewError(Exception):
    """A deviation that cannot be accepted or rejected (unknown, or no baseline to change)."""


@dataclass
class ReviewPage:
    deviations: list[dict[str, Any]]
    counts: dict[str, int]
    summary: dict[str, Any] | None
    next_after: str | None
    available: bool = True


class BaselineReview:
    def __init__(self, db: ConsoleDB) -> None:
        self.db = db

    def store(self) -> InventoryStore:
        return InventoryStore(sqlite_utils.Database(self.db.conn()))

    def page(self, status: str = "new", after: str = "") -> ReviewPage:
        tables = self.db.tables()
        if "deviations" not in tables:
            return ReviewPage([], {}, None, None, available=False)
        counts = {s: 0 for s in STATUSES}
        for row in self.db.query("SELECT status, COUNT(*) FROM deviations GROUP BY status"):
            counts[row[0]] = int(row[1])
        where, params = ["status = ?"], [status]
        if after and "|" in after:
            first_seen, dev_id = after.split("|", 1)
            where.append("(first_seen, id) > (?, ?)")
            params += [first_seen, dev_id]
        rows = self.store().query(
            "SELECT * FROM deviations WHERE " + " AND ".join(where) + " ORDER BY first_seen, id LIMIT ?",
            (*params, PAGE_SIZE + 1),
        )
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        for row in rows:
            row["changes"] = self.changes(row) if status == "new" else None
        next_after = f"{rows[-1]['first_seen']}|{rows[-1]['id']}" if more and rows else None
        return ReviewPage(rows, counts, self.summary() if "baseline" in tables else None, next_after)

    def summary(self) -> dict[str, Any] | None:
        counts = {r[0]: int(r[1]) for r in self.db.query("SELECT kind, COUNT(*) FROM baseline GROUP BY kind")}
        if not counts:
            return None
        meta = self.db.one("SELECT doc FROM baseline WHERE kind = 'meta'")
        learned = orjson.loads(meta[0]).get("learned", {}) if meta else {}
        return {"assets": counts.get("asset", 0), "pairs": counts.get("pair", 0), "learned": learned}

    def _partial_baseline(self, detail: dict[str, Any]) -> Baseline:
        """The stored baseline rows a deviation's acceptance can change."""
        fragment = detail.get("merge") or {}
        asset_keys = [str(ip) for ip in (fragment.get("assets") or {})]
        pair_keys = [str(p) for p in (fragment.get("pairs") or {})]
        rows: list[tuple[str, str, str]] = []
        for kind, keys in (("asset", asset_keys), ("pair", pair_keys)):
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows += [
                    (kind, r[0], r[1])
                    for r in self.db.query(
                        f"SELECT key, doc FROM baseline WHERE kind = ? AND key IN ({marks})", [kind, *chunk]
                    )
                ]
        channel = detail.get("remove_channel")
        if channel:
            ip, protocol, address = channel
            suffix = f" -> {endpoint_id(ip, protocol, address)}"
            rows += [
                ("pair", r[0], r[1])
                for r in self.db.query(
                    "SELECT key, doc FROM baseline WHERE kind = 'pair' AND key LIKE ?", (f"{protocol} %",)
                )
                if r[0].endswith(suffix)
            ]
        doc: dict[str, Any] = {"otsentry_baseline": FORMAT_VERSION, "learned": {}, "assets": {}, "pairs": {}}
        for kind, key, text in rows:
            doc["assets" if kind == "asset" else "pairs"][key] = orjson.loads(text)
        return Baseline.from_doc(doc)

    def changes(self, deviation: dict[str, Any]) -> dict[str, Any]:
        """Facts accepting ``deviation`` adds to, removes from and changes in the approved baseline."""
        detail = deviation.get("detail") or {}
        try:
            before = self._partial_baseline(detail)
            after = Baseline.from_doc(before.to_doc())
            accept(after, detail)
        except (ValueError, KeyError, TypeError) as exc:
            return {"error": f"cannot compute the change: {exc}", "added": [], "removed": [], "changed": []}
        result = diff(before, after)
        facts = after.facts()
        old = before.facts()
        shown = {
            "added": [(f, facts.get(f, "")) for f in result["added"][:MAX_FACTS_SHOWN]],
            "removed": [(f, old.get(f, "")) for f in result["removed"][:MAX_FACTS_SHOWN]],
            "changed": result["changed"][:MAX_FACTS_SHOWN],
            "truncated": any(len(v) > MAX_FACTS_SHOWN for v in result.values()),
        }
        return shown

    def decide(self, deviation_id: str, decision: str) -> dict[str, Any]:
        """Accept (merge into the stored baseline) or reject a pending deviation; returns it."""
        if "deviations" not in self.db.tables():
            raise ReviewError("no deviations recorded")
        store = self.store()
        rows = store.query("SELECT * FROM deviations WHERE id = ?", (deviation_id,))
        if not rows:
            raise ReviewError(f"no deviation {deviation_id}")
        row = rows[0]
        if row["status"] != "new":
            raise ReviewError(f"deviation {deviation_id} is already {row['status']}")
        if decision == "accept":
            baseline = store.load_baseline()
            if baseline is None:
                raise ReviewError("no approved baseline to add it to (otsentry baseline learn / import)")
            accept(baseline, row["detail"] or {})
            store.save_baseline(baseline)
            store.set_deviation_status(deviation_id, "accepted")
        elif decision == "reject":
            store.set_deviation_status(deviation_id, "rejected")
        else:
            raise ReviewError(f"unknown decision {decision!r}")
        row["status"] = "accepted" if decision == "accept" else "rejected"
        return row
