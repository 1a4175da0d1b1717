"""Security of the analyst console over plain HTTP requests (no browser): sessions, CSRF, roles, login
rate limiting, headers, escaping of packet-derived text, evidence paths, users and TLS material.

The database comes from the real pipeline with one extra capture: a PLC whose Modbus device
identification (FC 43 / MEI 14) carries HTML in its vendor, product and revision strings.
"""

from __future__ import annotations

import re
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from starlette.routing import Route
from starlette.testclient import TestClient

from otsentry.detect.alerts import AlertStore
from otsentry.inventory.deviations import Deviation
from otsentry.inventory.store import InventoryStore
from otsentry.web.app import create_app
from otsentry.web.security import SESSION_COOKIE
from web_helpers import (
    PASSWORD,
    XSS_DEVICE_IP,
    XSS_PRODUCT,
    XSS_REVISION,
    XSS_VENDOR,
    add_user,
    build_database,
    csrf_token,
    login_token,
    write_device_id_capture,
)

HTML_TITLE = "<script>alert('c1222')</script>"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("console")
    capture = write_device_id_capture(directory / "device_id_html.pcap")
    path = build_database(directory, [capture])
    for name, role in (("alice", "analyst"), ("vic", "viewer"), ("ada", "admin")):
        add_user(path, name, role)
    # An alert and a deviation whose text fields carry HTML, as a C12.22 AP title could.
    store = AlertStore(path)
    store.add(
        [
            {
                "@timestamp": "2024-05-14T06:20:00.000000Z",
                "rule.id": "c1222-test",
                "rule.name": "C12.22 <b>procedure</b> write",
                "event.severity": 7,
                "log.level": "high",
                "message": f"C12.22 remote disconnect from {HTML_TITLE}",
                "network.protocol": "c1222",
                "source.ip": "10.20.3.5",
                "destination.ip": "10.20.3.9",
                "c1222.calling_ap_title": HTML_TITLE,
                "c1222.called_ap_title": ".2.16.124.113620.1.22.0",
                "otsentry.alert.id": "c1222-html-alert",
                "otsentry.alert.seq": store.last_seq() + 1,
                "otsentry.alert.evidence": "/etc/passwd",
            }
        ]
    )
    store.close()
    InventoryStore(path).write_deviations(
        [
            Deviation(
                "htmlhtmlhtml", "new_asset", "10.20.3.5", f"New asset {HTML_TITLE}", "x", "y", 1.7e9, 1.7e9
            )
        ]
    )
    return path


@pytest.fixture(autouse=True)
def _fresh_login_counters(db: Path) -> None:
    """Tests sign in from the same client address: each starts with no failed logins counted."""
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM web_login_failures")


@pytest.fixture()
def client(db: Path) -> Iterator[TestClient]:
    with TestClient(create_app(db), base_url="https://testserver") as c:
        yield c


def login(client: TestClient, username: str, password: str = PASSWORD, next_url: str = "/alerts"):
    token = login_token(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "login_token": token, "next": next_url},
        follow_redirects=False,
    )


def signed_in(db: Path, username: str) -> TestClient:
    c = TestClient(create_app(db), base_url="https://testserver")
    assert login(c, username).status_code == 303
    return c


def alert_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM alerts ORDER BY seq")]


def snapshot(db: Path) -> tuple:
    with sqlite3.connect(db) as conn:
        return (
            conn.execute("SELECT id, status, history FROM alerts ORDER BY seq").fetchall(),
            conn.execute("SELECT id, status FROM deviations ORDER BY id").fetchall(),
            conn.execute("SELECT kind, key, doc FROM baseline ORDER BY kind, key").fetchall(),
        )


def action_paths(db: Path) -> list[str]:
    """Every POST route of the console except the login form, with real ids filled in."""
    with sqlite3.connect(db) as conn:
        deviation = conn.execute("SELECT id FROM deviations WHERE status = 'new' LIMIT 1").fetchone()[0]
    alert = alert_ids(db)[0]
    paths = []
    for route in create_app(db).routes:
        if isinstance(route, Route) and "POST" in (route.methods or ()) and route.path != "/login":
            paths.append(route.path.replace("{alert_id}", alert).replace("{deviation_id}", deviation))
    return paths


FORMS = {"action": "ack", "decision": "accept", "note": "x"}


# -- no page and no action without a session -------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/alerts",
        "/alerts?status=all&severity=7%2B",
        "/alerts/{alert}",
        "/alerts/{alert}/evidence",
        "/assets",
        "/assets/1",
        "/assets/ip/10.20.2.21",
        "/map",
        "/baseline",
        "/health",
        "/audit",
        "/no-such-page",
    ],
)
def test_pages_need_a_session(client: TestClient, db: Path, path: str) -> None:
    path = path.replace("{alert}", alert_ids(db)[0])
    page = client.get(path, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=")
    api = client.get(path, headers={"accept": "application/json"}, follow_redirects=False)
    assert api.status_code == 401
    assert "10.20." not in page.text + api.text


def test_only_static_files_and_login_are_public(client: TestClient) -> None:
    assert client.get("/login").status_code == 200
    assert client.get("/static/console.css").status_code == 200
    assert client.get("/static/console.js").status_code == 200


def test_actions_need_a_session(client: TestClient, db: Path) -> None:
    before = snapshot(db)
    for path in action_paths(db):
        response = client.post(path, data={**FORMS, "csrf_token": "guess"}, follow_redirects=False)
        assert response.status_code == 401, path
    assert snapshot(db) == before


def test_session_cookie_is_secure_httponly_samesite_strict(client: TestClient, db: Path) -> None:
    response = login(client, "alice")
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= attributes.keys()
    assert attributes["samesite"].strip().lower() == "samesite=strict"
    assert "max-age" not in attributes and "domain" not in attributes  # a __Host- browser-session cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    with sqlite3.connect(db) as conn:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM web_sessions")]
    assert token not in stored  # only its hash is kept


def test_logout_and_expiry_end_the_session(db: Path) -> None:
    c = signed_in(db, "alice")
    page = c.get("/alerts")
    c.post("/logout", data={"csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert c.get("/alerts", follow_redirects=False).status_code == 303
    c = signed_in(db, "alice")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE web_sessions SET last_seen = last_seen - 31 * 60 WHERE username = 'alice'")
    assert c.get("/alerts", follow_redirects=False).status_code == 303


def test_login_redirect_stays_on_the_console(client: TestClient, db: Path) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM web_login_failures")
        client.cookies.clear()
        response = login(client, "alice", next_url=target)
        assert response.headers["location"] == "/alerts", target
    client.cookies.clear()
    assert login(client, "alice", next_url="/map?max=50").headers["location"] == "/map?max=50"


# -- headers ------------------------------------------------------------------------------------------------


def test_security_headers_on_every_response(client: TestClient, db: Path) -> None:
    login(client, "alice")
    for path in (
        "/login",
        "/alerts",
        f"/alerts/{alert_ids(db)[0]}",
        "/map",
        "/static/console.js",
        "/no-such",
    ):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert "server" not in response.headers
    assert client.get("/alerts").headers["cache-control"] == "no-store"


def test_pages_carry_no_inline_script_style_or_handler(client: TestClient, db: Path) -> None:
    """What the CSP would block must not be in the pages (packet text is escaped, so cannot add it)."""
    login(client, "ada")
    with sqlite3.connect(db) as conn:
        asset = conn.execute("SELECT id FROM assets WHERE ip = ?", (XSS_DEVICE_IP,)).fetchone()[0]
    for path in ("/login", "/alerts", f"/alerts/{alert_ids(db)[-1]}", f"/assets/{asset}", "/assets",
                 "/map", "/baseline", "/health", "/audit"):  # fmt: skip
        html = client.get(path).text
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], path
        assert re.findall(r"<[^>]+\sstyle\s*=", html) == [], path
        assert re.findall(r"<[^>]+\son[a-z]+\s*=", html) == [], path
        assert "javascript:" not in html, path


# -- CSRF ---------------------------------------------------------------------------------------------------


def test_every_action_needs_the_sessions_csrf_token(db: Path) -> None:
    alice = signed_in(db, "alice")
    valid = csrf_token(alice.get("/alerts").text)
    other = csrf_token(signed_in(db, "ada").get("/alerts").text)
    before = snapshot(db)
    for path in action_paths(db):
        for token in (None, "", "forged", other, valid[:-1]):
            data = {**FORMS} if token is None else {**FORMS, "csrf_token": token}
            response = alice.post(path, data=data, follow_redirects=False)
            assert response.status_code == 403, (path, token)
        # The right token from another site's page is refused too.
        for headers in (
            {"origin": "https://evil.example"},
            {"sec-fetch-site": "cross-site"},
            {"origin": "null"},
        ):
            response = alice.post(
                path, data={**FORMS, "csrf_token": valid}, headers=headers, follow_redirects=False
            )
            assert response.status_code == 403, (path, headers)
    assert snapshot(db) == before
    # With the token the same request goes through.
    target = alert_ids(db)[0]
    response = alice.post(
        f"/alerts/{target}/triage",
        data={"action": "ack", "note": "csrf ok", "csrf_token": valid},
        headers={"origin": "https://testserver"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    with sqlite3.connect(db) as conn:
        status, history = conn.execute(
            "SELECT status, history FROM alerts WHERE id = ?", (target,)
        ).fetchone()
    assert status == "acknowledged" and orjson.loads(history)[-1]["by"] == "alice"
    alice.post(
        f"/alerts/{target}/triage", data={"action": "reopen", "csrf_token": valid}, follow_redirects=False
    )


def test_login_form_needs_its_token(client: TestClient) -> None:
    no_token = client.post("/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False)
    assert no_token.status_code == 403
    client.get("/login")
    wrong = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "login_token": "x"}, follow_redirects=False
    )
    assert wrong.status_code == 403
    assert SESSION_COOKIE not in "".join(
        no_token.headers.get_list("set-cookie") + wrong.headers.get_list("set-cookie")
    )


# -- roles --------------------------------------------------------------------------------------------------


def test_a_viewer_reads_but_cannot_ack_or_review(db: Path) -> None:
    viewer = signed_in(db, "vic")
    target = alert_ids(db)[1]
    page = viewer.get(f"/alerts/{target}")
    assert page.status_code == 200
    assert 'action="/alerts/' not in page.text and "Acknowledge" not in page.text
    assert 'name="ids"' not in viewer.get("/alerts").text
    token = csrf_token(page.text)
    before = snapshot(db)
    for path in action_paths(db):
        if path == "/logout":
            continue
        response = viewer.post(
            path, data={**FORMS, "ids": target, "csrf_token": token}, follow_redirects=False
        )
        assert response.status_code == 403, path
    assert snapshot(db) == before
    for path in ("/assets", "/map", "/baseline", "/health"):
        assert viewer.get(path).status_code == 200
    assert viewer.get("/audit").status_code == 403
    assert signed_in(db, "alice").get("/audit").status_code == 403
    assert signed_in(db, "ada").get("/audit").status_code == 200


def test_role_change_and_removal_apply_to_open_sessions(db: Path) -> None:
    from otsentry.web.cli import users_group

    add_user(db, "temp", "analyst")
    session = signed_in(db, "temp")
    runner = CliRunner()
    assert runner.invoke(users_group, ["role", "temp", "viewer", "--db", str(db)]).exit_code == 0
    page = session.get(f"/alerts/{alert_ids(db)[0]}")
    assert "Acknowledge" not in page.text
    assert runner.invoke(users_group, ["remove", "temp", "--db", str(db)]).exit_code == 0
    assert session.get("/alerts", follow_redirects=False).status_code == 303


# -- login rate limiting ---------------------------------------------------------------------------------


def test_wrong_passwords_are_rate_limited(client: TestClient, db: Path) -> None:
    add_user(db, "bob", "viewer")
    for _ in range(5):
        assert login(client, "bob", "not the password at all").status_code == 401
    throttled = login(client, "bob")  # right password, but locked now
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in "".join(throttled.headers.get_list("set-cookie"))
    assert "Too many failed sign-ins" in throttled.text
    with sqlite3.connect(db) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit WHERE username = 'bob'")]
        assert actions.count("login_failed") == 5 and "login_throttled" in actions
        # Time passes: the lock runs out, the right password works and clears the counter.
        conn.execute("UPDATE web_login_failures SET locked_until = ?", (time.time() - 1,))
    assert login(client, "bob").status_code == 303
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM web_login_failures WHERE key = 'user:bob'").fetchone()[0] == 0
        )


def test_guessing_across_user_names_locks_the_client(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otsentry.web import sessions

    monkeypatch.setitem(
        sessions.ALLOWED_FAILURES, "client", 6
    )  # 20 in service; fewer slow argon2 checks here
    for n in range(6):
        assert login(client, f"nobody{n}", "wrong password guess").status_code == 401
    assert login(client, "alice").status_code == 429


# -- escaping of packet-derived text ------------------------------------------------------------------


def test_html_from_packets_is_escaped_on_every_page(db: Path) -> None:
    c = signed_in(db, "alice")
    with sqlite3.connect(db) as conn:
        asset = conn.execute("SELECT id, identity FROM assets WHERE ip = ?", (XSS_DEVICE_IP,)).fetchone()
        device_alert = conn.execute(
            "SELECT id FROM alerts WHERE destination_ip = ? ORDER BY seq LIMIT 1", (XSS_DEVICE_IP,)
        ).fetchone()[0]
    assert orjson.loads(asset[1])["vendor"] == XSS_VENDOR  # the inventory kept the device's own words
    pages = {
        "asset": f"/assets/{asset[0]}",
        "assets": f"/assets?q={XSS_DEVICE_IP}",
        "map": "/map",
        "alert": f"/alerts/{device_alert}",
        "queue": "/alerts?status=all",
        "c1222 alert": "/alerts/c1222-html-alert",
        "baseline": "/baseline",
    }
    for name, path in pages.items():
        html = c.get(path).text
        for raw in (XSS_VENDOR, XSS_PRODUCT, XSS_REVISION, HTML_TITLE, "<b>procedure</b>", "<img src=x"):
            assert raw not in html, (name, raw)
        assert "<script>window" not in html and "<script>alert" not in html, name
    escaped = "&lt;script&gt;window.__xss="
    for name in ("asset", "assets", "map"):
        assert escaped in c.get(pages[name]).text, name
    assert "&lt;script&gt;alert(" in c.get(pages["c1222 alert"]).text
    assert "&lt;script&gt;alert(" in c.get(pages["baseline"]).text
    assert "C12.22 &lt;b&gt;procedure&lt;/b&gt; write" in c.get(pages["queue"]).text


# -- evidence ---------------------------------------------------------------------------------------------


def test_evidence_is_served_only_from_the_evidence_directory(db: Path) -> None:
    c = signed_in(db, "alice")
    assert c.get("/alerts/c1222-html-alert/evidence").status_code == 404  # its path says /etc/passwd
    with sqlite3.connect(db) as conn:
        alert_id = conn.execute("SELECT id FROM alerts WHERE evidence LIKE '%.pcap' LIMIT 1").fetchone()[0]
        conn.execute(
            "UPDATE alerts SET evidence = ? WHERE id = ?", (str(db.parent / "otsentry.db"), alert_id)
        )
    assert c.get(f"/alerts/{alert_id}/evidence").status_code == 404
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE alerts SET evidence = ? WHERE id = ?",
            (str(db.parent / "evidence" / "../otsentry.db"), alert_id),
        )
        good = conn.execute(
            "SELECT id, evidence FROM alerts WHERE evidence LIKE '%.pcap' AND id != ? LIMIT 1", (alert_id,)
        ).fetchone()
    assert c.get(f"/alerts/{alert_id}/evidence").status_code == 404
    response = c.get(f"/alerts/{good[0]}/evidence")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.tcpdump.pcap"
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.content == Path(good[1]).read_bytes()


# -- users and TLS --------------------------------------------------------------------------------------


def test_users_command_manages_argon2_accounts(tmp_path: Path) -> None:
    from otsentry.web.cli import users_group

    db = tmp_path / "users.db"
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None):
        return runner.invoke(users_group, [*args, "--db", str(db)], input=stdin)

    assert run("add", "carol", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n").exit_code == 0
    assert "exists" in run("add", "carol", "--password-stdin", stdin=PASSWORD + "\n").output
    assert "at least 12" in run("add", "dave", "--password-stdin", stdin="short\n").output
    assert "user names" in run("add", "<bad>", "--password-stdin", stdin=PASSWORD + "\n").output
    with sqlite3.connect(db) as conn:
        (hashed,) = conn.execute("SELECT password_hash FROM web_users WHERE username = 'carol'").fetchone()
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    session = signed_in(db, "carol")
    assert run("passwd", "carol", "--password-stdin", stdin="another long passphrase\n").exit_code == 0
    assert session.get("/alerts", follow_redirects=False).status_code == 303  # the password change ended it
    assert login(TestClient(create_app(db), base_url="https://testserver"), "carol").status_code == 401
    assert "carol\tanalyst" in run("list").output
    assert run("remove", "carol").exit_code == 0
    assert "no user" in run("remove", "carol").output
    with sqlite3.connect(db) as conn:
        actions = conn.execute(
            "SELECT username, action, target FROM audit WHERE action LIKE 'user%' ORDER BY id"
        ).fetchall()
    assert [a[1] for a in actions] == ["user_add", "user_passwd", "user_remove"]
    assert all(a[0].startswith("cli:") and a[2] == "user:carol" for a in actions)


def test_serve_needs_a_user_and_a_valid_listen_address(tmp_path: Path) -> None:
    from otsentry.web.cli import parse_listen, serve

    db = tmp_path / "empty.db"
    from otsentry.web.database import init_database

    init_database(db)
    result = CliRunner().invoke(serve, ["--db", str(db)])
    assert result.exit_code != 0 and "no console users" in result.output
    assert parse_listen("127.0.0.1:8443") == ("127.0.0.1", 8443)
    assert parse_listen("[::1]:9443") == ("::1", 9443)
    for bad in ("127.0.0.1", "host:0", "host:99999", "host:x"):
        with pytest.raises(Exception, match="HOST:PORT"):
            parse_listen(bad)


def test_self_signed_certificate(tmp_path: Path) -> None:
    import ipaddress

    from cryptography import x509

    from otsentry.web.tls import self_signed

    cert_path, key_path = self_signed(tmp_path / "tls", "192.0.2.7")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = set(san.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("192.0.2.7")} <= ips
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    first = cert_path.read_bytes()
    assert self_signed(tmp_path / "tls", "192.0.2.7")[0].read_bytes() == first  # reused while valid
