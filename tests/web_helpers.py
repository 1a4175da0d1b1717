"""Helpers for the console tests: a sensor database filled through the real pipeline, a capture whose
Modbus device identification carries HTML, users, and the console served over TLS in a thread.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from otsentry.health import HealthMonitor, InterfaceCounters, PipelineCounters
from otsentry.outputs.health import raise_alert
from otsentry.outputs.state import ForwardStore, ensure_schema
from otsentry.store import EventStore
from otsentry.web.database import init_database
from otsentry.web.users import UserStore

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "pcaps"
LEARN = [SAMPLES / "modbus_polling.pcap", SAMPLES / "dnp3_polling.pcap"]
DETECT = [SAMPLES / "modbus_suspicious.pcap", SAMPLES / "dnp3_suspicious.pcap"]
PASSWORD = "correct horse battery staple"

# What a hostile device answers to "read device identification": HTML in every string object.
XSS_VENDOR = "<script>window.__xss='vendor'</script>"
XSS_PRODUCT = '<img src=x onerror="window.__xss=1">'
XSS_REVISION = "v1</td><script>alert(1)</script>"
XSS_DEVICE_IP = "10.20.2.99"


def write_device_id_capture(path: Path) -> Path:
    """A Modbus/TCP session: the HMI asks an unknown PLC for its identification (FC 43 / MEI 14); the PLC
    answers with HTML in VendorName, ProductCode and MajorMinorRevision (Modbus spec §6.21)."""
    hmi, plc = ("10.20.1.10", "00:14:22:0a:14:0a"), (XSS_DEVICE_IP, "00:80:f4:0a:14:63")
    sport, dport = 40123, 502
    c2s = Ether(src=hmi[1], dst=plc[1]) / IP(src=hmi[0], dst=plc[0])
    s2c = Ether(src=plc[1], dst=hmi[1]) / IP(src=plc[0], dst=hmi[0])
    request_pdu = bytes([43, 14, 1, 0])
    body = bytes([43, 14, 1, 0x81, 0, 0, 3])
    for object_id, text in ((0, XSS_VENDOR), (1, XSS_PRODUCT), (2, XSS_REVISION)):
        raw = text.encode()
        body += bytes([object_id, len(raw)]) + raw

    def mbap(tid: int, pdu: bytes) -> bytes:
        return struct.pack("!HHHB", tid, 0, len(pdu) + 1, 1) + pdu

    req, resp = mbap(1, request_pdu), mbap(1, body)
    cseq, sseq = 1000, 5000
    packets = [
        c2s / TCP(sport=sport, dport=dport, flags="S", seq=cseq),
        s2c / TCP(sport=dport, dport=sport, flags="SA", seq=sseq, ack=cseq + 1),
        c2s / TCP(sport=sport, dport=dport, flags="A", seq=cseq + 1, ack=sseq + 1),
        c2s / TCP(sport=sport, dport=dport, flags="PA", seq=cseq + 1, ack=sseq + 1) / req,
        s2c / TCP(sport=dport, dport=sport, flags="PA", seq=sseq + 1, ack=cseq + 1 + len(req)) / resp,
        c2s / TCP(sport=sport, dport=dport, flags="A", seq=cseq + 1 + len(req), ack=sseq + 1 + len(resp)),
    ]
    start = 1_715_667_000.0  # 2024-05-14T06:10:00Z, inside the sample captures' day
    for n, pkt in enumerate(packets):
        pkt.time = start + n * 0.002
    wrpcap(str(path), packets)
    return path


def _cli(*args: str) -> None:
    """Run an ``otsentry`` command in process, as a user would from the shell."""
    from click.testing import CliRunner

    from otsentry.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def build_database(directory: Path, extra_captures: list[Path] = ()) -> Path:
    """The sensor database as the real pipeline leaves it: ``otsentry baseline learn`` on the benign samples,
    then ``otsentry replay`` of the suspicious ones (and ``extra_captures``) through inventory, baseline
    comparison, the Sigma pack and evidence cutting; plus a SIEM destination's state, two stats intervals
    of a live sensor's metric events and one capture-loss health alert."""
    db = directory / "otsentry.db"
    _cli("baseline", "learn", *LEARN, "--db", db)
    _cli("replay", *DETECT, *extra_captures, "--db", db, "--observer-name", "sensor-1", "--summary-json")
    with sqlite3.connect(db) as conn:
        alerts = conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]

    ensure_schema(db)
    forward = ForwardStore(db)
    forward.ensure("siem-relp")
    forward.save_progress("siem-relp", acked_seq=max(1, alerts - 4), sent=alerts - 4, filtered=0)
    forward.close()

    monitor = HealthMonitor("sensor-1", ["eth1"], started=time.time() - 70)
    metrics: list[dict[str, Any]] = []
    health_alerts: list[dict[str, Any]] = []
    for n in (1, 2):
        drops = 30 * (n - 1)
        eth1 = InterfaceCounters(
            frames=12_000 * n, bytes=900_000 * n, kernel_packets=12_000 * n + drops, kernel_drops=drops
        )
        pipeline = PipelineCounters(
            events=9_000 * n, alerts=alerts, decode_errors=3 * n, flows=42, outbox_lag=4
        )
        found, raised, _stats = monitor.update(time.time() - 70 + 30 * n, {"eth1": eth1}, pipeline)
        metrics += found
        health_alerts += raised
    store = EventStore(db)
    store.add_events(metrics)
    store.close()
    for alert in health_alerts:
        raise_alert(db, alert)
    init_database(db)
    return db


def add_user(db: Path, username: str, role: str, password: str = PASSWORD) -> None:
    init_database(db)
    conn = sqlite3.connect(db)
    UserStore(conn).add(username, password, role)
    conn.close()


def login_token(html: str) -> str:
    match = re.search(r'name="login_token" value="([^"]+)"', html)
    assert match, "no login token on the sign-in page"
    return match.group(1)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningConsole:
    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(db: Path, tls_dir: Path) -> RunningConsole:
    """The console over HTTPS on a free loopback port, with a self-signed certificate (otsentry.web.tls)."""
    import uvicorn

    from otsentry.web.app import create_app
    from otsentry.web.tls import self_signed

    cert, key = self_signed(tls_dir, "127.0.0.1")
    port = free_port()
    config = uvicorn.Config(
        create_app(db),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        server_header=False,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console did not start")
        time.sleep(0.02)
    return RunningConsole(f"https://127.0.0.1:{port}", server, thread)
