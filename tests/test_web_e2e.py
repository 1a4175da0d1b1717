"""The analyst console end to end in a real headless browser (Debian's chromium driven by Playwright).

The database is filled by replaying the sample captures through the real pipeline (inventory, baseline
comparison, the Sigma pack, evidence cutting); the console runs over TLS on a loopback port. An analyst
signs in, filters the queue, opens an alert, acknowledges it, downloads its evidence, opens the asset,
opens the map and clicks through it, accepts a deviation and closes alerts in bulk; after each step the
database holds the change and the audit log names the analyst. Screenshots of every page go to
docs/screenshots/ (docs/console.md shows them).
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from web_helpers import (
    PASSWORD,
    XSS_PRODUCT,
    XSS_VENDOR,
    add_user,
    build_database,
    serve_in_thread,
    write_device_id_capture,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


class Page:
    """A browser tab on the console that records CSP violations, script errors and dialogs."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 1400, "height": 900}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.base = base
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def login(self, username: str) -> None:
        self.goto("/alerts")
        assert "/login" in self.page.url
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        with self.page.expect_navigation():
            self.page.click("form[action='/login'] button[type=submit]")
        assert self.page.url.endswith("/alerts"), self.page.url

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    def close(self) -> None:
        self.context.close()


def _audit(db: Path) -> list[tuple[str, str, str | None, str | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT username, action, target, note FROM audit ORDER BY id").fetchall()


def _alert(db: Path, alert_id: str) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone())
    row["history"] = orjson.loads(row["history"])
    return row


def test_analyst_journey(tmp_path: Path, browser: Any) -> None:
    db = build_database(tmp_path)
    add_user(db, "alice", "analyst")
    add_user(db, "ada", "admin")
    console = serve_in_thread(db, tmp_path / "tls")
    tab = Page(browser, console.url)
    page = tab.page
    try:
        # Sign in (the login page first, for the screenshot).
        tab.goto("/alerts")
        assert "/login?next=" in page.url
        tab.shot("login")
        tab.login("alice")
        assert page.locator("#queue tbody tr").count() > 0
        assert page.locator(".sevcounts .sev-critical b").inner_text() == "1"
        tab.shot("alerts")

        # Filter the queue: DNP3, high and above.
        page.select_option("select[name=protocol]", "dnp3")
        page.select_option("select[name=severity]", "7+")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert "protocol=dnp3" in page.url and "severity=7%2B" in page.url
        with sqlite3.connect(db) as conn:
            expected = conn.execute(
                "SELECT COUNT(*) FROM alerts WHERE protocol = 'dnp3' AND severity >= 7"
                " AND status IN ('new', 'acknowledged')"
            ).fetchone()[0]
        rows = page.locator("#queue tbody tr")
        assert rows.count() == expected > 0
        assert set(page.locator("#queue tbody td:nth-child(8)").all_inner_texts()) == {"dnp3"}

        # Open the DIRECT_OPERATE alert.
        page.locator("#queue tbody tr", has_text="DIRECT_OPERATE").locator("td.message a").click()
        page.wait_for_url(re.compile(r"/alerts/[0-9a-f-]{36}$"))
        alert_id = page.url.rsplit("/", 1)[1]
        stored = _alert(db, alert_id)
        assert page.locator("#alert-message").inner_text() == stored["message"]
        technique = orjson.loads(stored["doc"])["threat.technique.id"][0]
        assert page.locator(".technique", has_text=technique).count() == 1
        event_table = page.locator("details.event table.fields")
        assert (
            event_table.locator("tr", has_text="dnp3.application.function_code").locator("td").inner_text()
            == "5"
        )
        tab.shot("alert")

        # Download the evidence pcap.
        with page.expect_download() as download_info:
            page.click("#evidence")
        evidence = Path(download_info.value.path()).read_bytes()
        assert evidence[:4] == bytes.fromhex("d4c3b2a1") and len(evidence) > 24

        # Acknowledge it with a note.
        page.fill("form.triage textarea[name=note]", "Calling the substation about the trip")
        with page.expect_navigation():
            page.click("form.triage button[value=ack]")
        assert "Acknowledged 1 alert" in page.locator(".flash").inner_text()
        stored = _alert(db, alert_id)
        assert stored["status"] == "acknowledged"
        assert stored["history"][-1]["by"] == "alice"
        assert stored["history"][-1]["note"] == "Calling the substation about the trip"
        assert ("alice", "alert_ack", f"alert:{alert_id}", "Calling the substation about the trip") in _audit(
            db
        )
        assert ("alice", "evidence_download", f"alert:{alert_id}", None) in _audit(db)
        assert page.locator("#history tbody tr").last.locator("td").nth(2).inner_text() == "alice"

        # Open the asset it targets.
        page.locator("table.facts a", has_text=stored["destination_ip"]).first.click()
        page.wait_for_url(re.compile(r"/assets/\d+$"))
        assert page.locator("#asset-ip").inner_text() == stored["destination_ip"]
        assert page.locator("#comms tbody tr").count() > 0
        assert "In the approved baseline" in page.locator("#baseline-status").inner_text()
        tab.goto("/assets/2")
        tab.shot("asset")
        tab.goto("/assets")
        assert page.locator("#assets tbody tr").count() == 7
        tab.shot("assets")

        # The map: zoom, then click through to an asset.
        page.click("nav a[href='/map']")
        page.wait_for_selector("svg.map-svg")
        nodes = page.locator("a.map-asset")
        assert nodes.count() == 7
        tab.shot("map")
        before = page.get_attribute("svg.map-svg", "viewBox")
        page.click("button[data-zoom=in]")
        assert page.get_attribute("svg.map-svg", "viewBox") != before
        page.click("button[data-zoom=reset]")
        page.locator("a.map-asset[data-ip='10.20.2.21']").click()
        page.wait_for_url(re.compile(r"/assets/\d+$"))
        assert page.locator("#asset-ip").inner_text() == "10.20.2.21"

        # Baseline review: accept the new asset 10.20.1.66.
        tab.goto("/baseline")
        tab.shot("baseline")
        card = page.locator("article.deviation", has_text="New asset 10.20.1.66")
        assert card.locator(".diff li.add", has_text="asset 10.20.1.66").count() >= 1
        deviation_id = card.get_attribute("id").removeprefix("dev-")
        card.locator("input[name=note]").fill("Commissioning laptop, approved by ops")
        with page.expect_navigation():
            card.locator("button[value=accept]").click()
        assert "Deviation accepted" in page.locator(".flash").inner_text()
        with sqlite3.connect(db) as conn:
            status = conn.execute("SELECT status FROM deviations WHERE id = ?", (deviation_id,)).fetchone()[0]
            in_baseline = conn.execute(
                "SELECT COUNT(*) FROM baseline WHERE kind = 'asset' AND key = '10.20.1.66'"
            ).fetchone()[0]
        assert status == "accepted" and in_baseline == 1
        assert (
            "alice",
            "deviation_accept",
            f"deviation:{deviation_id}",
            "Commissioning laptop, approved by ops",
        ) in _audit(db)

        # Bulk: close the two newest Modbus alerts.
        tab.goto("/alerts?protocol=modbus")
        boxes = page.locator("#queue tbody input[name=ids]")
        chosen = [boxes.nth(0).get_attribute("value"), boxes.nth(1).get_attribute("value")]
        boxes.nth(0).check()
        boxes.nth(1).check()
        page.fill(".bulkbar input[name=note]", "Known maintenance window")
        with page.expect_navigation():
            page.click(".bulkbar button[value=close]")
        assert "Closed 2 alert(s)" in page.locator(".flash").inner_text()
        for closed_id in chosen:
            stored = _alert(db, closed_id)
            assert stored["status"] == "closed" and stored["history"][-1]["by"] == "alice"
            assert ("alice", "alert_close", f"alert:{closed_id}", "Known maintenance window") in _audit(db)

        tab.goto("/health")
        capture = page.locator("#capture tbody tr")
        assert capture.count() == 1
        assert capture.locator("td").nth(1).inner_text() == "eth1"
        assert capture.locator("td").nth(2).inner_text() == "400"  # 12 000 frames in a 30 s interval
        assert capture.locator("td").nth(4).inner_text() == "30"  # kernel drops in that interval
        assert page.locator("#pipeline tbody tr").count() == 1
        assert "Interface eth1 lost 30 of 12030 packets" in page.locator("#health-alerts").inner_text()
        assert page.locator("#outbox tbody tr td").first.inner_text() == "siem-relp"
        tab.shot("health")

        # Sign out: the old session no longer opens pages.
        with page.expect_navigation():
            page.click("form.who button")
        assert page.url.endswith("/login")
        tab.goto("/alerts")
        assert "/login" in page.url

        # An admin reads the audit log: every action above, by alice.
        tab.login("ada")
        tab.goto("/audit?user=alice")
        actions = page.locator("#audit tbody td:nth-child(4)").all_inner_texts()
        assert {
            "login",
            "alert_ack",
            "evidence_download",
            "deviation_accept",
            "alert_close",
            "logout",
        } <= set(actions)
        tab.shot("audit")

        assert tab.problems == [], tab.problems
        assert tab.dialogs == []
    finally:
        tab.close()
        console.stop()


def test_packet_html_is_inert_in_the_browser(tmp_path: Path, browser: Any) -> None:
    """A PLC whose device identification is HTML: every page shows the text, no script runs."""
    capture = write_device_id_capture(tmp_path / "device_id_html.pcap")
    db = build_database(tmp_path, [capture])
    add_user(db, "alice", "analyst")
    console = serve_in_thread(db, tmp_path / "tls")
    tab = Page(browser, console.url)
    page = tab.page
    try:
        tab.login("alice")
        with sqlite3.connect(db) as conn:
            asset_id = conn.execute("SELECT id FROM assets WHERE ip = '10.20.2.99'").fetchone()[0]
            alert_id = conn.execute(
                "SELECT id FROM alerts WHERE destination_ip = '10.20.2.99' ORDER BY seq LIMIT 1"
            ).fetchone()[0]
        tab.goto(f"/assets/{asset_id}")
        assert XSS_VENDOR in page.locator("#asset-name").inner_text()
        assert XSS_PRODUCT in page.locator("#identity").inner_text()
        for path in ("/assets", "/map", f"/alerts/{alert_id}", "/baseline", "/alerts"):
            tab.goto(path)
        assert page.evaluate("window.__xss") is None
        tab.goto("/map")
        assert "<script>window.__xss='vendor'</script>" in page.locator("svg.map-svg").text_content()
        assert page.evaluate("window.__xss") is None
        assert tab.dialogs == []
        assert [p for p in tab.problems if "Content Security Policy" in p] == []
    finally:
        tab.close()
        console.stop()
