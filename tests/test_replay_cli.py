"""`otsentry replay` end to end: outputs, SQLite, damaged files, workers, Wireshark's Community ID."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from otsentry.sensor import Sensor
from shared import SAMPLE_PCAPS, SHARED_PCAPS, needs_shared, needs_tshark, tshark_fields

OTSENTRY = [sys.executable, "-m", "otsentry"]
MODBUS = SAMPLE_PCAPS / "modbus_suspicious.pcap"
DNP3 = SAMPLE_PCAPS / "dnp3_suspicious.pcap"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OTSENTRY, *map(str, args)], capture_output=True, text=True, timeout=300)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_go_to_json_lines_and_sqlite_alike(tmp_path: Path) -> None:
    out, db = tmp_path / "events.jsonl", tmp_path / "otsentry.db"
    result = run("replay", MODBUS, DNP3, "--events-out", out, "--db", db, "--summary-json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    events = read_jsonl(out)
    assert len(events) == sum(summary["events"].values())
    assert {e["otsentry.pcap.file"] for e in events} == {str(MODBUS), str(DNP3)}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT dataset, action, pcap_frame, doc FROM events ORDER BY id").fetchall()
        flows = conn.execute(
            "SELECT protocol, client_packets + server_packets, messages FROM flows"
        ).fetchall()
    assert [json.loads(r[3]) for r in rows] == events
    for row, event in zip(rows, events, strict=True):
        assert (row[0], row[2]) == (event["event.dataset"], event["otsentry.pcap.frame"])
    assert {p for p, _, _ in flows} == {"modbus", "dnp3"}
    assert sum(m for _, _, m in flows) == len(events)


def test_every_event_carries_the_contract_fields() -> None:
    events: list[dict] = []
    sensor = Sensor(observer_name="tap-01", sinks=[events.extend])
    sensor.replay(MODBUS)
    sensor.close()
    required = {
        "@timestamp", "event.kind", "event.module", "event.dataset", "event.action", "network.protocol",
        "network.transport", "network.community_id", "source.ip", "source.port", "destination.ip",
        "destination.port", "client.ip", "server.ip", "observer.name", "otsentry.pcap.file",
        "otsentry.pcap.frame",
    }  # fmt: skip
    for event in events:
        assert required <= event.keys(), required - event.keys()
        assert event["observer.name"] == "tap-01"
        assert event["@timestamp"].endswith("Z") and len(event["@timestamp"]) == 27
        assert event["server.port"] == 502
        if event.get("modbus.pdu_type") == "request":
            assert event["source.ip"] == event["client.ip"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "only 0 bytes long"),
        (b"this is not a capture file at all", "not a pcap or pcapng"),
    ],
)
def test_a_file_that_is_no_capture_gives_one_error_line(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    result = run("replay", bad)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("otsentry: error:") and str(bad) in lines[0] and message in lines[0]


def test_a_capture_cut_short_keeps_what_came_before(tmp_path: Path) -> None:
    whole = MODBUS.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) // 2 + 7])
    out = tmp_path / "e.jsonl"
    result = run("replay", cut, "--events-out", out, "--summary-json")
    assert result.returncode == 2
    assert "cut short" in result.stderr and "Traceback" not in result.stderr
    full: list[dict] = []
    sensor = Sensor(sinks=[full.extend])
    sensor.replay(MODBUS)
    sensor.close()
    got = read_jsonl(out)
    last_frame = json.loads(result.stdout)["packets"]
    # Every message completed before the damage is there, exactly as in the whole capture.
    expected = [
        e for e in full if e["otsentry.pcap.frame"] <= last_frame and e["event.dataset"] == "otsentry.modbus"
    ]
    assert [e["modbus.transaction_id"] for e in got if e["event.dataset"] == "otsentry.modbus"] == [
        e["modbus.transaction_id"] for e in expected
    ]


def test_workers_need_no_detect() -> None:
    result = run("replay", MODBUS, "--workers", "2")
    assert result.returncode == 2 and "--no-detect" in result.stderr


def test_replay_with_the_rule_pack_stores_alerts_and_evidence(tmp_path: Path) -> None:
    db, alerts_out = tmp_path / "otsentry.db", tmp_path / "alerts.jsonl"
    result = run("replay", MODBUS, "--db", db, "--alerts-out", alerts_out, "--summary-json")
    assert result.returncode == 0, result.stderr
    alerts = read_jsonl(alerts_out)
    assert sum(json.loads(result.stdout)["alerts"].values()) == len(alerts) > 0
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT seq, id, evidence FROM alerts ORDER BY seq").fetchall()
        outbox = [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
    assert [(a["otsentry.alert.seq"], a["otsentry.alert.id"]) for a in alerts] == [
        (s, i) for s, i, _ in stored
    ]
    assert outbox == [s for s, _, _ in stored]  # every alert queued for the SIEM in its own transaction
    for _, _, evidence in stored:  # the flow's packets around the trigger, as a readable pcap
        assert Path(evidence).read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"


def test_missing_capture_is_a_usage_error(tmp_path: Path) -> None:
    result = run("replay", tmp_path / "nope.pcap")
    assert result.returncode == 2 and "no such capture" in result.stderr


def test_workers_give_the_same_events_in_capture_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run("replay", MODBUS, DNP3, "--no-detect", "--workers", "1", "--events-out", one).returncode == 0
    assert run("replay", MODBUS, DNP3, "--no-detect", "--workers", "2", "--events-out", two).returncode == 0
    a, b = read_jsonl(one), read_jsonl(two)
    key = lambda e: (e["otsentry.pcap.file"], e["otsentry.pcap.frame"], json.dumps(e, sort_keys=True))  # noqa: E731
    assert sorted(a, key=key) == sorted(b, key=key)
    order = [(e["otsentry.pcap.file"] == str(DNP3), e["otsentry.pcap.frame"]) for e in b]
    assert order == sorted(order)


@needs_shared
@needs_tshark
@pytest.mark.parametrize(
    "capture",
    [
        "icsnpp-modbus/modbus_example.pcap",
        "zeek/dnp3/dnp3_udp_read.pcap",
        "icsnpp-c1222/c1222_over_ipv6.pcap",
    ],
)
def test_community_id_equals_wiresharks(capture: str) -> None:
    path = SHARED_PCAPS / capture
    events: list[dict] = []
    sensor = Sensor(sinks=[events.extend])
    sensor.replay(path)
    sensor.close()
    assert events
    theirs = {int(f): cid for f, cid in tshark_fields(path, ("communityid",), enable=("communityid",))}
    for event in events:
        assert event["network.community_id"] == theirs[event["otsentry.pcap.frame"]]
