"""A real rsyslog on loopback receives UDP, TCP (octet counting), TLS and RELP; every line parses back."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from forward_helpers import EDGE_MESSAGE, acked, fill_db, make_alert, wait_for
from forward_rsyslog import Certs, Rsyslog, make_certs, needs_gtls, needs_openssl, needs_relp, needs_rsyslog
from otsentry.detect.alerts import AlertStore
from otsentry.outputs.config import Destination, parse_destination
from otsentry.outputs.forwarder import Forwarder
from otsentry.outputs.probe import send_test_alert
from outputs_parsers import Cef, parse_3164, parse_5424, parse_cef, parse_leef

pytestmark = [needs_rsyslog]

LONG = "long " * 3000  # 15 kB: more than rsyslog's default 8 kB message size


def edge_alerts() -> list[dict]:
    return [
        make_alert(1, message=EDGE_MESSAGE, **{"rule.name": "name | with \\ pipe", "event.action": "a=b"}),
        make_alert(2, message="IPv6 — Überwachung", **{"source.ip": "2001:db8::5", "destination.ip": "::1",
                                                      "rule.name": "Fernwirk-Befehl ⚡"}),
        make_alert(3, message='sd "quotes" ]', **{"rule.id": 'user]rule"id\\', "event.action": "x]y"}),
        make_alert(4, message=LONG),
    ]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "sensor.db"
    store = AlertStore(path)
    store.add(edge_alerts())
    store.close()
    return path


def deliver(db: Path, dest: Destination, count: int) -> None:
    stop = threading.Event()
    forwarder = Forwarder(dest, db)
    thread = threading.Thread(target=forwarder.run, args=(stop,))
    thread.start()
    try:
        assert wait_for(lambda: acked(db, dest.name) >= count, 15), forwarder.last_error
    finally:
        stop.set()
        thread.join(10)


def check_cef(cef: Cef, original: dict) -> None:
    expected_msg = original["message"].replace("\t", " ")
    assert cef.extension["msg"] == expected_msg
    assert cef.extension["cs6"] == str(original["otsentry.alert.seq"])
    assert cef.extension["cs5"] == original["otsentry.alert.id"]
    assert cef.name == original["rule.name"] and cef.signature_id == original["rule.id"]
    assert cef.extension["act"] == original["event.action"]
    if ":" in original["source.ip"]:
        assert cef.extension["c6a2"] == original["source.ip"]
    else:
        assert cef.extension["src"] == original["source.ip"]


def check_5424_cef_lines(lines: list[bytes]) -> None:
    originals = {a["otsentry.alert.seq"]: a for a in edge_alerts()}
    seen = set()
    for line in lines:
        outer = parse_5424(line)
        seq = int(outer.sd["otsentry@32473"]["seq"])
        original = originals[seq]
        assert outer.sd["otsentry@32473"]["rule"] == original["rule.id"]
        assert outer.sd["otsentry@32473"]["action"] == original["event.action"]
        assert outer.bom == (not outer.msg.isascii())
        check_cef(parse_cef(outer.msg), original)
        seen.add(seq)
    assert seen == set(originals)


@pytest.mark.parametrize("transport", ["udp", "tcp", pytest.param("relp", marks=needs_relp)])
def test_cef_in_rfc5424_over(transport: str, tmp_path: Path, db: Path) -> None:
    rsyslog = Rsyslog(tmp_path / "rsyslog", **{transport: True}).start()
    try:
        port = rsyslog.ports[transport]
        dest = parse_destination({"name": transport, "transport": transport, "port": port})
        deliver(db, dest, 4)
        lines = rsyslog.wait_lines(4)
    finally:
        rsyslog.stop()
    assert len(lines) == 4
    check_5424_cef_lines(lines)


def test_leef_and_rfc3164_over_tcp(tmp_path: Path, db: Path) -> None:
    rsyslog = Rsyslog(tmp_path / "rsyslog", tcp=True).start()
    originals = {a["otsentry.alert.seq"]: a for a in edge_alerts()}
    try:
        port = rsyslog.ports["tcp"]
        leef = parse_destination({"name": "leef", "transport": "tcp", "port": port, "format": "leef"})
        deliver(db, leef, 4)
        leef_lines = rsyslog.wait_lines(4)
        deliver(db, parse_destination({"name": "bsd", "transport": "tcp", "port": port, "framing": "rfc3164",
                                       "app_name": "otsentry"}), 4)
        lines = rsyslog.wait_lines(8)
    finally:
        rsyslog.stop()
    assert len(lines) == 8
    for line in leef_lines:
        leef = parse_leef(parse_5424(line).msg)
        original = originals[int(leef.attributes["alertSeq"])]
        expected = original["message"].replace("\n", " ").replace("\r", " ").replace("^", " ")
        assert leef.attributes["msg"] == expected
        assert leef.attributes["src"] == original["source.ip"]
        assert leef.event_id == original["rule.id"]
    for line in lines[4:]:
        bsd = parse_3164(line)
        assert bsd.tag == "otsentry" and bsd.hostname == "sensor-1"
        cef = parse_cef(bsd.msg)
        check_cef(cef, originals[int(cef.extension["cs6"])])


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@needs_gtls
@needs_openssl
class TestTls:
    def tls_dest(self, rsyslog: Rsyslog, certs: Certs, **extra: object) -> Destination:
        return parse_destination({"name": "tls", "transport": "tls", "host": "localhost",
                                  "port": rsyslog.ports["tls"], "tls_ca": str(certs.ca),
                                  "backoff_initial": 0.05, **extra})

    def test_server_verified_against_the_ca(self, tmp_path: Path, db: Path, certs: Certs) -> None:
        rsyslog = Rsyslog(tmp_path / "rsyslog", tls=certs).start()
        try:
            deliver(db, self.tls_dest(rsyslog, certs), 4)
            lines = rsyslog.wait_lines(4)
            wrong_ca = send_test_alert(self.tls_dest(rsyslog, certs, tls_ca=str(certs.rogue_ca)))
            wrong_name = send_test_alert(self.tls_dest(rsyslog, certs, tls_server_name="siem.example.org"))
            by_ip = send_test_alert(self.tls_dest(rsyslog, certs, host="127.0.0.1"))
            after = rsyslog.wait_lines(5, timeout=2)
        finally:
            rsyslog.stop()
        check_5424_cef_lines(lines)
        assert not wrong_ca.ok and "certificate" in wrong_ca.detail
        assert not wrong_name.ok and "certificate" in wrong_name.detail
        assert by_ip.ok  # the server certificate carries IP:127.0.0.1
        assert len(after) == 5

    def test_client_certificate_required(self, tmp_path: Path, certs: Certs) -> None:
        rsyslog = Rsyslog(tmp_path / "rsyslog", tls=certs, tls_client_auth=True).start()
        try:
            without = send_test_alert(self.tls_dest(rsyslog, certs))
            nothing = rsyslog.wait_lines(1, timeout=0.5)
            with_cert = send_test_alert(self.tls_dest(rsyslog, certs, tls_cert=str(certs.client_cert),
                                                      tls_key=str(certs.client_key)))
            lines = rsyslog.wait_lines(1)
        finally:
            rsyslog.stop()
        assert not without.ok and nothing == []
        assert with_cert.ok and len(lines) == 1
        outer = parse_5424(lines[0])
        assert outer.msgid == "test" and parse_cef(outer.msg).signature_id == "otsentry-forward-test"


@needs_relp
def test_relp_probe_and_many_alerts(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 2000)
    rsyslog = Rsyslog(tmp_path / "rsyslog", relp=True).start()
    try:
        dest = parse_destination({"name": "relp", "transport": "relp", "port": rsyslog.ports["relp"],
                                  "format": "ecs"})
        probe = send_test_alert(dest)
        deliver(db, dest, 2000)
        lines = rsyslog.wait_lines(2001)
    finally:
        rsyslog.stop()
    assert probe.ok and "rsp 200" in probe.detail
    seqs = [orjson.loads(parse_5424(line).msg)["otsentry"]["alert"]["seq"] for line in lines]
    assert seqs == [0, *range(1, 2001)]


@needs_relp
@needs_openssl
def test_relp_over_tls_with_client_certificate(tmp_path: Path, db: Path, certs: Certs) -> None:
    rsyslog = Rsyslog(tmp_path / "rsyslog", relp_tls=certs).start()
    try:
        dest = parse_destination({"name": "relp-tls", "transport": "relp", "tls": True, "host": "localhost",
                                  "port": rsyslog.ports["relp"], "tls_ca": str(certs.ca),
                                  "tls_cert": str(certs.client_cert), "tls_key": str(certs.client_key)})
        without_cert = send_test_alert(parse_destination({"name": "anon", "transport": "relp", "tls": True,
                                                          "host": "localhost", "port": rsyslog.ports["relp"],
                                                          "tls_ca": str(certs.ca)}))
        deliver(db, dest, 4)
        lines = rsyslog.wait_lines(4)
    finally:
        rsyslog.stop()
    assert not without_cert.ok and "client certificate" in without_cert.detail
    check_5424_cef_lines(lines)
