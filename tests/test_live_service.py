"""``otsentry run`` as a service: SIGHUP reloads without closing the capture, health alerts, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from live_events import OTSENTRY, read_jsonl
from live_netns import veth_pair

ROOT = os.geteuid() == 0


def _frame(dport: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 1, 0, 0x50, 0x18, 8192, 0, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        40,
        1,
        0,
        64,
        6,
        0,
        socket.inet_aton("10.0.0.1"),
        socket.inet_aton("10.0.0.2"),
    )
    return bytes.fromhex("020000000002020000000001") + b"\x08\x00" + ip + tcp


@pytest.fixture
def veth() -> Iterator[tuple[socket.socket, str]]:
    with veth_pair("otv") as pair:
        yield pair


def _config(path: Path, ifname: str, out: Path, filter_text: str, extra: str = "") -> None:
    path.write_text(f"""
[sensor]
name = "tap-1"
[capture]
interfaces = ["{ifname}"]
filter = "{filter_text}"
workers = 2
ring_mb = 4
block_kb = 256
snaplen = 65535
block_timeout_ms = 10
[outputs]
events_file = "{out}/events.jsonl"
alerts_file = "{out}/alerts.jsonl"
db = "{out}/otsentry.db"
flush_interval = 0.1
[health]
stats_interval = 0.3
silent_after = 1.0
[logging]
format = "json"
{extra}
""")


def _until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {getattr(check, '__name__', check)}")


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.mark.skipif(not ROOT, reason="needs root for a veth pair and CAP_NET_RAW")
def test_sighup_reloads_the_filter_without_dropping_the_capture(veth, tmp_path: Path) -> None:
    sender, ifname = veth
    config = tmp_path / "otsentry.toml"
    _config(config, ifname, tmp_path, "tcp port 502")
    log_path = tmp_path / "service.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([*OTSENTRY, "run", "--config", str(config)], stderr=log_file)
    try:

        def capturing() -> bool:
            assert proc.poll() is None, log_path.read_text()
            return any(e["event"] == "capturing" for e in _log(log_path))

        _until(capturing, 30)

        def frames_total() -> int:
            stats = [
                e for e in read_jsonl(tmp_path / "events.jsonl") if e.get("event.action") == "capture_stats"
            ]
            return stats[-1]["otsentry.health.frames_total"] if stats else -1

        # Nothing arrives: after silent_after the health alert is raised, stored and queued.
        silent = _until(
            lambda: [
                a
                for a in read_jsonl(tmp_path / "alerts.jsonl")
                if a.get("event.action") == "interface_silent"
            ]
        )
        assert (
            silent[0]["observer.ingress.interface.name"] == ifname and silent[0]["rule.ruleset"] == "sensor"
        )
        assert silent[0]["otsentry.alert.seq"] >= 1 and silent[0]["observer.name"] == "tap-1"

        for _ in range(5):
            sender.send(_frame(502))
        _until(lambda: frames_total() == 5)

        _config(config, ifname, tmp_path, "tcp port 20000", extra="")
        text = config.read_text().replace("ring_mb = 4", "ring_mb = 8")
        config.write_text(text)
        proc.send_signal(signal.SIGHUP)
        _until(lambda: any(e["event"] == "reloaded" for e in _log(log_path)))
        restart = [e for e in _log(log_path) if e["event"] == "restart_needed"]
        assert restart and restart[0]["settings"] == ["capture.ring_mb"]
        time.sleep(0.3)  # the workers apply the new filter at their next housekeeping tick
        for _ in range(5):
            sender.send(_frame(502))  # no longer captured
        for _ in range(3):
            sender.send(_frame(20000))
        _until(lambda: frames_total() == 8)

        config.write_text(config.read_text() + "\n[capture2]\n")
        proc.send_signal(signal.SIGHUP)
        failed = _until(lambda: [e for e in _log(log_path) if e["event"] == "reload_failed"])
        assert failed[0]["error"] == f"{config}: unknown table [capture2] (did you mean 'capture'?)"
        sender.send(_frame(20000))  # still capturing with the last good config
        _until(lambda: frames_total() == 9)
        time.sleep(0.5)
        assert frames_total() == 9
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(30)
    assert returncode == 0
    entries = _log(log_path)
    assert [e["event"] for e in entries].count("capturing") == 1  # never reopened
    assert entries[-1]["event"] == "stopped"
    db = sqlite3.connect(tmp_path / "otsentry.db")
    rows = db.execute("SELECT a.rule_id, o.seq FROM alerts a JOIN outbox o ON o.seq = a.seq").fetchall()
    assert ("otsentry-capture-silent", silent[0]["otsentry.alert.seq"]) in rows


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[capture]\ninterfaces = ["eth1"]\nworkers = "two"\n')
    done = subprocess.run(
        [*OTSENTRY, "run", "--config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"otsentry: error: {bad}: capture.workers: expected an integer or 'auto', got string 'two'"
    )


def test_bad_flag_value_names_the_command_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*OTSENTRY, "run", "-i", "eth1", "--set", "capture.ring_mb=true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "otsentry: error: command line: capture.ring_mb: expected an integer, got boolean True"
    )


def test_check_prints_the_effective_config_and_filter(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[capture]\ninterfaces = ["eth1"]\nextra_tcp_ports = [4063]\nvlan = false\n')
    done = subprocess.run(
        [*OTSENTRY, "run", "--config", str(config), "--workers", "2", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["capture"]["interfaces"] == ["eth1"] and doc["capture"]["workers"] == 2
    assert (
        "port 4063" in doc["capture"]["compiled_filter"] and "vlan" not in doc["capture"]["compiled_filter"]
    )


@pytest.mark.skipif(not ROOT, reason="needs CAP_NET_RAW to get past the socket")
def test_missing_interface_exits_1_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*OTSENTRY, "run", "-i", "nosuchif0", "--no-detect"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "otsentry: error: nosuchif0: no such network interface"


@pytest.mark.skipif(
    not ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv to drop capabilities"
)
def test_capture_needs_only_cap_net_raw(veth, tmp_path: Path) -> None:
    """Ring, filter, promiscuous membership and fanout with CAP_NET_RAW as the only capability left."""
    sender, ifname = veth
    log_path = tmp_path / "service.log"
    argv = [
        "setpriv",
        "--bounding-set=-all,+net_raw",
        "--inh-caps=-all",
        *OTSENTRY,
        "run",
        "-i",
        ifname,
        "--workers",
        "2",
        "--no-detect",
        "--events-out",
        str(tmp_path / "events.jsonl"),
        "--stats-interval",
        "0.3",
        "--set",
        "logging.format='json'",
        "--set",
        "capture.ring_mb=4",
        "--set",
        "capture.block_kb=256",
        "--set",
        "capture.snaplen=65535",
        "--set",
        "capture.block_timeout_ms=10",
    ]
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(argv, stderr=log_file)
    try:

        def capturing() -> bool:
            assert proc.poll() is None, log_path.read_text()
            return any(e["event"] == "capturing" for e in _log(log_path))

        _until(capturing, 30)
        caps = Path(f"/proc/{proc.pid}/status").read_text()
        assert "CapEff:\t0000000000002000" in caps  # CAP_NET_RAW (13) and nothing else
        link = subprocess.run(["ip", "-d", "link", "show", ifname], capture_output=True, text=True).stdout
        assert "promiscuity 2" in link  # one membership per worker socket
        for _ in range(4):
            sender.send(_frame(502))

        def captured() -> bool:
            stats = [
                e for e in read_jsonl(tmp_path / "events.jsonl") if e.get("event.action") == "capture_stats"
            ]
            return bool(stats) and stats[-1]["otsentry.health.frames_total"] == 4

        _until(captured)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    link = subprocess.run(["ip", "-d", "link", "show", ifname], capture_output=True, text=True).stdout
    assert "promiscuity 0" in link  # the kernel dropped the memberships with the sockets
