"""Forwarding throughput: alerts/s from the outbox to an acknowledging local receiver, per transport.

``python bench/forward_bench.py [--alerts 20000] [--runs 3] [--transports udp,tcp,tls,relp,hec,...]``

For each transport a fresh database holds ``--alerts`` alerts (outbox rows written with them, as the
sensor does); one :class:`~otsentry.outputs.forwarder.Forwarder` drains it and the clock stops when
``forward_state.acked_seq`` reaches the last one — i.e. what the receiver acknowledged, by that
transport's meaning (RELP rsp, HEC 200/indexer ack, TCP ACK of every byte, fsync, UDP handed to the
kernel). Receivers: a real rsyslogd on loopback (udp, tcp, tls, relp; Debian packages from
tests/siem_setup.sh), the HEC stand-in of the tests (HTTP, acks polled every 0.25 s), a local file.
Payload: CEF in RFC 5424 for syslog, nested ECS JSON for HEC and the file. Median of ``--runs``.
The encoding rate per format (no I/O) is printed too. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from forward_hec import FakeHec  # noqa: E402
from forward_helpers import acked, fill_db, make_alert  # noqa: E402
from forward_rsyslog import Rsyslog, make_certs  # noqa: E402
from otsentry.logs import configure_logging  # noqa: E402
from otsentry.outputs.config import Destination, parse_destination  # noqa: E402
from otsentry.outputs.encode import build_encoder  # noqa: E402
from otsentry.outputs.forwarder import Forwarder  # noqa: E402

ALL = ("udp", "tcp", "tls", "relp", "hec", "hec-acks", "file")


def drain(dest: Destination, db: Path, count: int, timeout: float = 300.0) -> float:
    forwarder = Forwarder(dest, db, poll_interval=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=forwarder.run, args=(stop,))
    started = time.perf_counter()
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while acked(db, dest.name) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dest.name}: not done in {timeout} s ({forwarder.last_error})")
            time.sleep(0.005)
        return time.perf_counter() - started
    finally:
        stop.set()
        thread.join(30)


def one_run(kind: str, work: Path, count: int) -> float:
    db = work / f"{kind}.db"
    fill_db(db, count)
    settings = {"name": kind, "batch_size": 500, "window": 2000}
    if kind in ("udp", "tcp", "relp"):
        rsyslog = Rsyslog(work / f"rsyslog-{kind}", **{kind: True}).start()
        try:
            dest = parse_destination({**settings, "transport": kind, "port": rsyslog.ports[kind]})
            return drain(dest, db, count)
        finally:
            rsyslog.stop()
    if kind == "tls":
        certs = make_certs(work / "certs")
        rsyslog = Rsyslog(work / "rsyslog-tls", tls=certs).start()
        try:
            dest = {**settings, "transport": "tls", "host": "localhost", "port": rsyslog.ports["tls"],
                    "tls_ca": str(certs.ca)}
            return drain(parse_destination(dest), db, count)
        finally:
            rsyslog.stop()
    if kind.startswith("hec"):
        with FakeHec(acks=kind == "hec-acks") as hec:
            dest = {**settings, "transport": "hec", "url": hec.url, "token": hec.token,
                    "hec_acks": kind == "hec-acks"}
            return drain(parse_destination(dest), db, count)
    return drain(parse_destination({**settings, "transport": "file", "path": str(work / "alerts.jsonl")}),
                 db, count)


def encode_rate(fmt: str, framing: str, count: int = 5000) -> float:
    transport = {"ecs-hec": "hec", "ecs-file": "file"}.get(fmt, "tcp")
    dest = parse_destination({"name": "x", "transport": transport, "url": "http://x", "token": "t",
                              "path": "/dev/null", "format": fmt.split("-")[0], "framing": framing})
    encode: Callable = build_encoder(dest)
    alerts = [make_alert(i) for i in range(1, count + 1)]
    started = time.perf_counter()
    for alert in alerts:
        encode(alert)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--transports", default=",".join(ALL))
    args = parser.parse_args()
    configure_logging("console", level=logging.WARNING)  # the forwarders' info lines would drown the table
    kinds = [k for k in args.transports.split(",") if k]
    print("encoding only (alerts/s):")
    for fmt, framing in (("cef", "rfc5424"), ("leef", "rfc5424"), ("cef", "rfc3164"), ("ecs", "rfc5424"),
                         ("ecs-hec", "none"), ("ecs-file", "none")):
        print(f"  {fmt:9} {framing:8} {encode_rate(fmt, framing):10,.0f}")
    print(f"\nend to end, {args.alerts} alerts, median of {args.runs} (alerts/s acknowledged):")
    for kind in kinds:
        seconds = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix=f"fwd-bench-{kind}-") as tmp:
                seconds.append(one_run(kind, Path(tmp), args.alerts))
        median = statistics.median(seconds)
        runs = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"  {kind:9} {args.alerts / median:10,.0f}   ({median:.2f} s; runs {runs})")


if __name__ == "__main__":
    main()
