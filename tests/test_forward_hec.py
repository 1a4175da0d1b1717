"""Splunk HEC against a stand-in server with the documented endpoints: batching, acks, busy, token, TLS."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from forward_hec import FakeHec
from forward_helpers import acked, fill_db, forward_state, wait_for
from forward_rsyslog import make_certs, needs_openssl
from otsentry.outputs.config import Destination, parse_destination
from otsentry.outputs.forwarder import Forwarder
from otsentry.outputs.probe import send_test_alert

FAST = {"backoff_initial": 0.02, "backoff_max": 0.2}


def hec_dest(hec: FakeHec, **extra: object) -> Destination:
    return parse_destination({"name": "splunk", "transport": "hec", "url": hec.url, "token": hec.token,
                              "sourcetype": "otsentry:alert", "index": "ot", **FAST, **extra})


class Running:
    def __init__(self, dest: Destination, db: Path) -> None:
        self.forwarder = Forwarder(dest, db)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.forwarder.run, args=(self.stop,))

    def __enter__(self) -> Forwarder:
        self.thread.start()
        return self.forwarder

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(15)


def test_batches_without_acks(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 1200)
    with FakeHec() as hec, Running(hec_dest(hec, batch_size=500, window=500), db):
        assert wait_for(lambda: acked(db, "splunk") == 1200, 15)
        requests = list(hec.requests)
        event = hec.indexed[0]
    assert hec.seqs() == list(range(1, 1201))
    assert requests == [("/services/collector/event", 200)] * 3  # 500 + 500 + 200
    assert event["sourcetype"] == "otsentry:alert" and event["index"] == "ot" and event["host"] == "sensor-1"
    assert event["event"]["source"]["ip"] == "10.0.0.5" and event["event"]["rule"]["name"]


def test_indexer_acks_gate_progress_and_lost_acks_are_resent(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 1000)
    with FakeHec(acks=True) as hec:
        hec.ack_after_polls = 1
        hec.lose_acks = {1}  # the second batch (seq 251..500) is never indexed
        hec.hold_acks.set()
        dest = hec_dest(hec, hec_acks=True, batch_size=250, window=1000, ack_timeout=1.0)
        with Running(dest, db):
            assert wait_for(lambda: len([r for r in hec.requests if r[0].endswith("/event")]) >= 4, 10)
            time.sleep(0.5)
            held = acked(db, "splunk")  # sent, answered 200, but not indexed yet
            hec.hold_acks.clear()
            assert wait_for(lambda: acked(db, "splunk") == 1000, 20)
        channels_ok = all(status == 200 for _, status in hec.requests)
    assert held == 0
    counts = Counter(hec.seqs())
    assert set(counts) == set(range(1, 1001))  # nothing missing
    duplicates = sum(c - 1 for c in counts.values())
    assert all(counts[s] == 1 for s in range(1, 251))  # acknowledged before the lost one: sent once
    assert duplicates <= 750  # the lost batch is resent with whatever followed it
    assert "no acknowledgement" in forward_state(db, "splunk")["last_error"]
    assert channels_ok


def test_busy_server_is_retried_with_backoff(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 300)
    with FakeHec() as hec:
        hec.busy = 3
        with Running(hec_dest(hec, batch_size=100, window=100), db):
            assert wait_for(lambda: acked(db, "splunk") == 300, 15)
            state = forward_state(db, "splunk")
        statuses = [status for _, status in hec.requests]
    assert statuses[:3] == [503, 503, 503] and statuses[3:] == [200, 200, 200]
    assert hec.seqs() == list(range(1, 301))  # no duplicate: nothing was accepted while busy
    assert state["failures"] == 3 and state["status"] == "running"


def test_invalid_token_is_a_hard_error_in_status(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 10)
    with FakeHec() as hec:
        dest = parse_destination({"name": "splunk", "transport": "hec", "url": hec.url, "token": "wrong",
                                  **FAST})
        probe = send_test_alert(dest)
        with Running(dest, db):
            assert wait_for(lambda: forward_state(db, "splunk").get("status") == "error", 10)
        state = forward_state(db, "splunk")
    assert not probe.ok and "invalid token" in probe.detail.lower()
    assert state["acked_seq"] == 0 and state["status"] == "stopped"
    assert "code 4" in state["last_error"] and "invalid token" in state["last_error"]
    assert hec.indexed == []


def test_channel_is_sent_when_acks_are_on(tmp_path: Path) -> None:
    with FakeHec(acks=True) as hec:
        probe = send_test_alert(hec_dest(hec, hec_acks=True), timeout=5)
        no_channel = send_test_alert(hec_dest(hec, hec_acks=False), timeout=5)  # server needs a channel
    assert probe.ok and hec.indexed[0]["event"]["otsentry"]["alert"]["test"] is True
    assert not no_channel.ok and "code 10" in no_channel.detail


@needs_openssl
def test_https_with_ca_verification(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    db = tmp_path / "sensor.db"
    fill_db(db, 50)
    with FakeHec(certfile=certs.server_cert, keyfile=certs.server_key) as hec:
        rogue = send_test_alert(hec_dest(hec, tls_ca=str(certs.rogue_ca)))
        with Running(hec_dest(hec, tls_ca=str(certs.ca)), db):
            assert wait_for(lambda: acked(db, "splunk") == 50, 15)
    assert not rogue.ok and "certificate" in rogue.detail.lower()
    assert hec.seqs()[-50:] == list(range(1, 51))


@pytest.mark.parametrize("path", ["", "/services/collector", "/services/collector/event"])
def test_url_may_name_the_collector_path(path: str) -> None:
    from otsentry.outputs.transports.hec import HecTransport

    url = f"https://splunk:8088{path}"
    dest = parse_destination({"name": "s", "transport": "hec", "url": url, "token": "t"})
    transport = HecTransport(dest)
    assert (transport.host, transport.port, transport.base) == ("splunk", 8088, "")
