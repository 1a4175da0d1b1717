"""The alerts queue: every filter and sort, keyset pagination forwards and back, counts by severity,
against the same selection done in Python on all rows. Rows go in through the detection stage's store."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from otsentry.detect.alerts import AlertStore
from otsentry.web.alerts import STATUS_FILTERS, AlertQueries, QueueFilter
from otsentry.web.app import create_app
from otsentry.web.database import ConsoleDB, init_database
from web_helpers import add_user, login_token

SEVERITIES = {1: "informational", 3: "low", 5: "medium", 7: "high", 10: "critical"}
IPS = [f"10.1.0.{n}" for n in range(1, 9)]
COUNT = 330


@pytest.fixture(scope="module")
def alerts_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    rng = random.Random(7)
    db = tmp_path_factory.mktemp("queue") / "otsentry.db"
    init_database(db)
    store = AlertStore(db)
    rows = []
    for seq in range(1, COUNT + 1):
        sev = rng.choice(list(SEVERITIES))
        src, dst = rng.sample(IPS, 2)
        minute = rng.randrange(0, 60)  # many alerts share a timestamp: the keyset must break ties
        row = {
            "@timestamp": f"2024-05-14T07:{minute:02d}:00.000000Z",
            "rule.id": f"rule-{rng.randrange(6)}",
            "rule.name": f"Rule {rng.randrange(6)}",
            "event.severity": sev,
            "log.level": SEVERITIES[sev],
            "message": f"alert {seq}",
            "network.protocol": rng.choice(["modbus", "dnp3", "iec104"]),
            "source.ip": src,
            "destination.ip": dst,
            "otsentry.alert.id": f"alert-{seq:04d}",
            "otsentry.alert.seq": seq,
            "otsentry.alert.status": rng.choice(["new", "new", "acknowledged", "closed"]),
        }
        rows.append(row)
    store.add(rows)
    store.close()
    return db, rows


def expected(rows: list[dict[str, Any]], f: QueueFilter) -> list[int]:
    statuses = STATUS_FILTERS[f.status]
    out = []
    for r in rows:
        sev = r["event.severity"]
        if statuses and r["otsentry.alert.status"] not in statuses:
            continue
        if f.severity:
            number = int(f.severity.rstrip("+"))
            if (sev < number) if f.severity.endswith("+") else (sev != number):
                continue
        if f.rule and r["rule.id"] != f.rule:
            continue
        if f.protocol and r["network.protocol"] != f.protocol:
            continue
        if f.asset and f.asset not in (r["source.ip"], r["destination.ip"]):
            continue
        if f.since and r["@timestamp"] < f.since:
            continue
        if f.until and r["@timestamp"] >= f.until:
            continue
        out.append(r)
    keys = {
        "newest": lambda r: -r["otsentry.alert.seq"],
        "oldest": lambda r: r["otsentry.alert.seq"],
        "severity": lambda r: (-r["event.severity"], -r["otsentry.alert.seq"]),
        "time": lambda r: (tuple(-ord(c) for c in r["@timestamp"]), -r["otsentry.alert.seq"]),
    }
    return [r["otsentry.alert.seq"] for r in sorted(out, key=keys[f.sort])]


FILTERS = [
    {},
    {"status": "all"},
    {"status": "all", "sort": "severity", "size": "25"},
    {"status": "new", "sort": "time", "size": "25"},
    {"status": "all", "sort": "oldest", "severity": "7+"},
    {"status": "closed", "severity": "5", "sort": "severity"},
    {"status": "all", "protocol": "dnp3", "asset": "10.1.0.3", "sort": "time"},
    {
        "status": "all",
        "rule": "rule-2",
        "since": "2024-05-14T07:10",
        "until": "2024-05-14T07:40",
        "size": "25",
    },
    {"status": "acknowledged", "asset": "10.1.0.1", "protocol": "modbus"},
]


@pytest.mark.parametrize(
    "params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "default"
)
def test_pages_walk_the_whole_selection_both_ways(alerts_db, params: dict[str, str]) -> None:
    db, rows = alerts_db
    queries = AlertQueries(ConsoleDB(db))
    f = QueueFilter.from_query(params)
    assert not f.problems
    want = expected(rows, f)
    pages: list[list[int]] = []
    current = f
    while True:
        page = queries.queue(current)
        assert page.total == len(want)
        assert len(page.rows) <= f.size
        pages.append([r["seq"] for r in page.rows])
        if page.next_cursor is None:
            break
        current = QueueFilter.from_query({**params, "after": page.next_cursor})
    assert [seq for p in pages for seq in p] == want
    # ...and back from the last page with the "previous" cursors, page by page.
    back = [pages[-1]]
    while True:
        page = queries.queue(current)
        if page.prev_cursor is None:
            break
        current = QueueFilter.from_query({**params, "before": page.prev_cursor})
        back.append([r["seq"] for r in queries.queue(current).rows])
    assert [seq for p in reversed(back) for seq in p] == want


def test_counts_by_severity_ignore_only_the_severity_filter(alerts_db) -> None:
    db, rows = alerts_db
    queries = AlertQueries(ConsoleDB(db))
    f = QueueFilter.from_query({"status": "open", "protocol": "dnp3", "severity": "10"})
    page = queries.queue(f)
    counts = {number: count for number, _level, count in page.counts}
    for number in SEVERITIES:
        assert counts[number] == len(
            [
                r
                for r in rows
                if r["network.protocol"] == "dnp3"
                and r["event.severity"] == number
                and r["otsentry.alert.status"] in ("new", "acknowledged")
            ]
        )
    assert page.total == counts[10]
    assert {rid for rid, _name in page.rules} == {r["rule.id"] for r in rows}
    assert page.protocols == ["dnp3", "iec104", "modbus"]


def test_bad_parameters_are_ignored_not_trusted(alerts_db) -> None:
    f = QueueFilter.from_query(
        {
            "status": "x' OR 1=1",
            "severity": "11",
            "size": "100000",
            "since": "yesterday",
            "asset": "<b>",
            "sort": "x",
        }
    )
    assert (f.status, f.severity, f.size, f.since, f.asset, f.sort) == ("open", "", 50, "", "", "newest")
    assert len(f.problems) == 6
    db, _rows = alerts_db
    page = AlertQueries(ConsoleDB(db)).queue(QueueFilter.from_query({"after": "1~2~3", "sort": "severity"}))
    assert page.prev_cursor is None  # a malformed cursor means the first page


def test_bulk_triage_acts_on_exact_ids_only(alerts_db) -> None:
    db, _rows = alerts_db
    add_user(db, "alice", "analyst")
    with TestClient(create_app(db), base_url="https://testserver") as c:
        token = login_token(c.get("/login").text)
        c.post(
            "/login",
            data={"username": "alice", "password": "correct horse battery staple", "login_token": token},
        )
        page = c.get("/alerts?status=all")
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = c.post(
            "/alerts/bulk",
            data={
                "csrf_token": csrf,
                "action": "close",
                "note": "bulk",
                "ids": ["alert-0001", "alert-0002", "alert-00", "1", "nope"],
                "return": "status=all&sort=severity",
            },
            follow_redirects=False,
        )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/alerts?status=all&sort=severity&done=close&n=2")
    with sqlite3.connect(db) as conn:
        closed_by_alice = conn.execute(
            'SELECT id FROM alerts WHERE history LIKE \'%"by":"alice"%\' ORDER BY id'
        ).fetchall()
    assert [r[0] for r in closed_by_alice] == ["alert-0001", "alert-0002"]
