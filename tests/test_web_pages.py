"""Console pages beyond the browser journey: empty states before the other stages wrote anything, the
baseline diff each deviation shows, rejecting a deviation, and the map's SVG allow-list."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from otsentry.inventory.baseline import Baseline, diff
from otsentry.inventory.cli import accept
from otsentry.inventory.store import InventoryStore
from otsentry.store import open_db
from otsentry.web.app import create_app
from otsentry.web.database import ConsoleDB
from otsentry.web.netmap import sanitise_svg
from otsentry.web.review import BaselineReview
from web_helpers import add_user, build_database, csrf_token, login_token, write_device_id_capture


def signed_in(db: Path, username: str) -> TestClient:
    client = TestClient(create_app(db), base_url="https://testserver")
    token = login_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": username, "password": "correct horse battery staple", "login_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return client


def test_every_page_has_an_empty_state_before_the_stages_write(tmp_path: Path) -> None:
    db = tmp_path / "otsentry.db"
    open_db(db).close()  # only the core tables: no alerts, inventory, baseline or outbox yet
    add_user(db, "alice", "analyst")
    client = signed_in(db, "alice")
    hints = {
        "/alerts": "No alerts yet",
        "/alerts?status=all&severity=7%2B&asset=10.0.0.1": "No alerts yet",
        "/assets": "No inventory yet",
        "/map": "No inventory yet",
        "/baseline": "No deviations recorded",
        "/health": "No SIEM destination",
    }
    for path, hint in hints.items():
        page = client.get(path)
        assert page.status_code == 200, path
        assert hint in page.text, path
    assert client.get("/alerts/unknown").status_code == 404
    assert client.get("/assets/1").status_code == 404
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {
        "alerts",
        "assets",
        "deviations",
        "forward_state",
    }  # the console created none of them


@pytest.fixture(scope="module")
def review_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("review")
    db = build_database(directory, [write_device_id_capture(directory / "device.pcap")])
    add_user(db, "alice", "analyst")
    return db


def test_each_deviations_diff_equals_accepting_it_into_the_whole_baseline(review_db: Path) -> None:
    review = BaselineReview(ConsoleDB(review_db))
    store = InventoryStore(review_db)
    full = store.load_baseline()
    assert full is not None
    pending = store.deviations("new")
    assert {d["action"] for d in pending} >= {"new_asset", "channel_silent"}
    for deviation in pending:
        shown = review.changes(deviation)
        after = Baseline.from_doc(full.to_doc())
        accept(after, deviation["detail"] or {})
        want = diff(full, after)
        assert [fact for fact, _value in shown["added"]] == want["added"], deviation["id"]
        assert [fact for fact, _value in shown["removed"]] == want["removed"], deviation["id"]
        assert shown["changed"] == want["changed"], deviation["id"]
        assert want["added"] or want["removed"] or want["changed"]


def test_rejecting_a_deviation_leaves_the_baseline_alone(review_db: Path) -> None:
    client = signed_in(review_db, "alice")
    with sqlite3.connect(review_db) as conn:
        dev_id = conn.execute(
            "SELECT id FROM deviations WHERE status = 'new' AND action = 'channel_silent' LIMIT 1"
        ).fetchone()[0]
        baseline_before = conn.execute("SELECT kind, key, doc FROM baseline ORDER BY kind, key").fetchall()
    token = csrf_token(client.get("/baseline").text)
    response = client.post(
        f"/baseline/{dev_id}/decide",
        data={"decision": "reject", "note": "the PLC was switched off for maintenance", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    with sqlite3.connect(review_db) as conn:
        assert (
            conn.execute("SELECT status FROM deviations WHERE id = ?", (dev_id,)).fetchone()[0] == "rejected"
        )
        assert (
            conn.execute("SELECT kind, key, doc FROM baseline ORDER BY kind, key").fetchall()
            == baseline_before
        )
        assert conn.execute(
            "SELECT username, note FROM audit WHERE action = 'deviation_reject' AND target = ?",
            (f"deviation:{dev_id}",),
        ).fetchone() == ("alice", "the PLC was switched off for maintenance")
    again = client.post(
        f"/baseline/{dev_id}/decide", data={"decision": "accept", "csrf_token": token}, follow_redirects=False
    )
    assert again.status_code == 409  # decided already
    assert dev_id in client.get("/baseline?status=rejected").text


HOSTILE_SVG = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10"
     width="10pt" onload="alert(1)">
<script>alert(2)</script>
<g id="node1" class="node" style="fill:url(javascript:alert(3))"><title>a0</title>
<g id="a_node1"><a xlink:href="javascript:alert(4)" xlink:title="10.0.0.1">
<path fill="#fff" d="M0,0L1,1" onclick="alert(5)"/>
<text x="1" y="2">&lt;script&gt;alert(6)&lt;/script&gt;</text>
<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>
</a></g></g>
<g id="node2" class="node"><title>a1</title>
<g id="a_node2"><a xlink:title="10.0.0.2"><path d="M1,1"/></a></g></g>
<g id="edge1" class="edge"><title>a0&#45;&gt;a1</title><path d="M0,0" stroke="red"/></g>
<image href="https://evil.example/x.png"/>
</svg>"""


def test_map_svg_keeps_only_drawing_elements_and_links_assets() -> None:
    svg = sanitise_svg(HOSTILE_SVG, {"10.0.0.1": "/assets/7"})
    lowered = svg.lower()
    for banned in (
        "<script",
        "onload",
        "onclick",
        "javascript:",
        "foreignobject",
        "<image",
        "style=",
        "evil",
    ):
        assert banned not in lowered, banned
    assert '<a href="/assets/7" class="map-asset" data-ip="10.0.0.1">' in svg
    assert "&lt;script&gt;alert(6)&lt;/script&gt;" in svg  # label text stays text
    assert "<title>10.0.0.1 → 10.0.0.2</title>" in svg  # edge titles name the assets
    assert svg.count("href=") == 1  # 10.0.0.2 is not a known asset: no link
    assert 'viewBox="0 0 10 10"' in svg and "width=" not in svg
