"""The engine: indexing, alerts per EVENTS.md, duplicate grouping, baseline deviations, storage, evidence."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from otsentry.capture import read_capture
from otsentry.detect.alerts import AlertStore
from otsentry.detect.cli import register
from otsentry.detect.engine import DetectionEngine, bundled_rules_dir
from otsentry.detect.evidence import EvidenceRecorder, write_pcap
from otsentry.detect.severity import SEVERITIES
from otsentry.events import format_timestamp

T0 = 1_715_666_400.0
PACK = bundled_rules_dir()


@pytest.fixture(scope="module")
def pack() -> DetectionEngine:
    return DetectionEngine.from_paths([PACK], strict=True)


def dnp3_operate(t: float = 0.0, frame: int = 55, **extra: Any) -> dict[str, Any]:
    return {
        "@timestamp": format_timestamp(T0 + t),
        "event.kind": "event",
        "event.module": "otsentry",
        "event.dataset": "otsentry.dnp3",
        "event.action": "direct_operate",
        "network.protocol": "dnp3",
        "network.transport": "tcp",
        "network.community_id": "1:abc=",
        "source.ip": "10.0.0.5",
        "destination.ip": "10.20.2.31",
        "dnp3.link.source": 100,
        "dnp3.link.destination": 10,
        "dnp3.application.function_code": 5,
        "dnp3.application.function": "direct_operate",
        "dnp3.object_gv": ["g12v1"],
        "dnp3.control.index": [3],
        "dnp3.control.tcc": ["TRIP"],
        "otsentry.baseline.known_pair": False,
        "otsentry.pcap.file": "x.pcap",
        "otsentry.pcap.frame": frame,
        **extra,
    }


def test_rule_for_one_service_is_never_evaluated_on_another(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text("""
title: everything dnp3
id: 5d1c6a36-6f0c-4c43-8e0a-2b4c5b9a0e11
logsource: {product: otsentry, service: dnp3}
detection:
  sel: {event.module: otsentry}
  condition: sel
level: low
""")
    eng = DetectionEngine.from_paths([tmp_path], strict=True)
    modbus = {
        "@timestamp": format_timestamp(T0),
        "event.module": "otsentry",
        "event.dataset": "otsentry.modbus",
        "event.action": "write_single_register",
        "source.ip": "1.1.1.1",
        "destination.ip": "2.2.2.2",
    }
    assert eng([modbus]) == []
    assert eng.stats["tests"] == 0  # not evaluated at all, not merely not matched
    assert len(eng([dnp3_operate()])) == 1
    assert eng.stats["tests"] == 1


def test_index_keys_each_dataset_on_the_field_that_pins_most_rules(pack: DetectionEngine) -> None:
    assert pack._index["otsentry.modbus"][0] == "modbus.function_code"
    assert pack._index["otsentry.dnp3"][0] == "dnp3.application.function_code"
    assert pack._index["otsentry.dlms"][0] == "event.action"
    restart = {"event.dataset": "otsentry.dnp3", "dnp3.application.function_code": 13}
    read = {"event.dataset": "otsentry.dnp3", "dnp3.application.function_code": 1}
    titles = {r.title for r in pack.candidates(restart)}
    assert "DNP3 cold or warm restart command" in titles
    assert "DNP3 cold or warm restart command" not in {r.title for r in pack.candidates(read)}
    write = {"event.dataset": "otsentry.modbus", "modbus.function_code": 16}
    assert all(r.dataset == "otsentry.modbus" for r in pack.candidates(write))
    assert len(pack.candidates(write)) < len([r for r in pack.rules if r.dataset == "otsentry.modbus"])
    # a list-valued key field: every element's bucket
    listed = {"event.dataset": "otsentry.dnp3", "dnp3.application.function_code": [13, 27]}
    both = {r.title for r in pack.candidates(listed)}
    assert {"DNP3 cold or warm restart command", "DNP3 file deleted on an outstation"} <= both


def test_index_is_sound_for_every_case_event(pack: DetectionEngine) -> None:
    """No rule that matches an event is left out of that event's candidates."""
    import yaml

    from otsentry.detect.ruletest import build_cases, case_files

    for path in case_files([PACK]):
        doc = yaml.safe_load(path.read_text())
        for case in doc["cases"]:
            fire, misses = build_cases(doc["defaults"], case)
            for event in fire + [e for m in misses for e in m]:
                candidates = pack.candidates(event)
                for rule in pack.rules:  # the logsource (dataset) is the index's part of a rule
                    if rule.dataset not in (None, event.get("event.dataset")) or rule.detection is None:
                        continue
                    if rule.detection(event):
                        assert rule in candidates, (rule.title, event)


def test_alert_carries_the_events_md_fields_and_a_plain_message(pack: DetectionEngine) -> None:
    pack.reset()
    [alert] = pack([dnp3_operate()])
    assert alert["message"] == (
        "DNP3 DIRECT_OPERATE TRIP on point 3 of outstation 10 from 10.0.0.5, which is not a known master"
    )
    assert alert["event.kind"] == "alert"
    assert alert["rule.ruleset"] == "sigma"
    assert uuid.UUID(alert["rule.id"])
    assert alert["rule.name"].startswith("DNP3 control")
    assert (alert["event.severity"], alert["log.level"]) == (SEVERITIES["high"].number, "high")
    assert alert["threat.framework"] == "MITRE ATT&CK for ICS"
    assert alert["threat.technique.id"] == ["T0855"]
    assert alert["threat.technique.name"] == ["Unauthorized Command Message"]
    assert alert["threat.tactic.name"] == ["Impair Process Control"]
    assert uuid.UUID(alert["otsentry.alert.id"])
    assert alert["otsentry.alert.status"] == "new"
    assert alert["otsentry.alert.frames"] == [55]
    assert alert["@timestamp"] == format_timestamp(T0)  # packet time of the triggering message
    assert alert["dnp3.control.tcc"] == ["TRIP"]  # the triggering event's fields


def test_duplicates_are_grouped_within_the_window(pack: DetectionEngine) -> None:
    pack.reset()
    first = pack([dnp3_operate(0, 55), dnp3_operate(10, 60)])
    assert len(first) == 1
    assert first[0]["otsentry.alert.count"] == 2
    assert first[0]["otsentry.alert.frames"] == [55, 60]
    assert first[0]["otsentry.alert.last_seen"] == format_timestamp(T0 + 10)
    assert pack([dnp3_operate(30, 61)]) == []
    assert first[0]["otsentry.alert.count"] == 3
    other_sender = pack([dnp3_operate(31, 62, **{"source.ip": "10.0.0.6"})])
    assert len(other_sender) == 1
    later = pack([dnp3_operate(61, 63)])  # past 60 s after the first: a new alert
    assert len(later) == 1 and later[0]["otsentry.alert.count"] == 1


def test_seq_is_monotonic_and_continues_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    eng = DetectionEngine.from_paths([PACK], store=AlertStore(db))
    a = eng([dnp3_operate(0, 1), dnp3_operate(0, 2, **{"source.ip": "10.0.0.7"})])
    assert [x["otsentry.alert.seq"] for x in a] == [1, 2]
    again = DetectionEngine.from_paths([PACK], store=AlertStore(db))
    b = again([dnp3_operate(100, 3)])
    assert b[0]["otsentry.alert.seq"] == 3


def test_store_writes_alert_and_outbox_together_and_bumps_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    store = AlertStore(db)
    eng = DetectionEngine.from_paths([PACK], store=store)
    [alert] = eng([dnp3_operate(0, 1)])
    assert store.outbox() == [(1, alert["otsentry.alert.id"])]
    eng([dnp3_operate(5, 2)])  # grouped: count in the store, no new outbox row
    row = store.get(alert["otsentry.alert.id"])
    assert row is not None and row["count"] == 2 and row["status"] == "new"
    assert len(store.outbox()) == 1
    # the outbox row and the alert are one transaction: a failing insert leaves neither
    broken = dict(alert, **{"otsentry.alert.seq": 99})  # same alert id: UNIQUE violation
    with pytest.raises(Exception):  # noqa: B017 - sqlite3.IntegrityError
        store.add([broken])
    assert store.outbox() == [(1, alert["otsentry.alert.id"])]


def test_cli_lists_shows_and_triages(tmp_path: Path) -> None:
    import click

    db = tmp_path / "o.db"
    eng = DetectionEngine.from_paths([PACK], store=AlertStore(db))
    [alert] = eng([dnp3_operate()])

    @click.group()
    def cli() -> None:
        pass

    register(cli)
    runner = CliRunner()
    out = runner.invoke(cli, ["alerts", "--db", str(db), "--severity", "high", "--json"])
    assert out.exit_code == 0, out.output
    assert '"status": "new"' in out.output
    assert (
        runner.invoke(cli, ["alerts", "--db", str(db), "--severity", "critical", "--json"]).output.strip()
        == "[]"
    )
    short = alert["otsentry.alert.id"][:8]
    out = runner.invoke(cli, ["alerts", "ack", short, "--note", "operator confirmed a test", "--db", str(db)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["alerts", "show", short, "--db", str(db), "--json"])
    assert '"acknowledged"' in out.output and "operator confirmed a test" in out.output
    runner.invoke(cli, ["alerts", "close", "1", "--db", str(db)])
    assert AlertStore(db).get(alert["otsentry.alert.id"])["status"] == "closed"  # type: ignore[index]
    listed = runner.invoke(cli, ["alerts", "list", "--db", str(db), "--status", "new", "--json"])
    assert listed.output.strip() == "[]"


def deviation(action: str = "new_dnp3_master") -> dict[str, Any]:
    return {
        "@timestamp": format_timestamp(T0),
        "event.kind": "alert",
        "event.module": "otsentry",
        "event.dataset": "otsentry.baseline",
        "event.action": action,
        "rule.ruleset": "baseline",
        "rule.id": f"otsentry.baseline.{action}",
        "rule.name": "x",
        "event.severity": 7,
        "log.level": "high",
        "message": "10.20.1.66/dnp3:100 acts as DNP3 master of outstation 10.20.2.31/dnp3:10",
        "source.ip": "10.20.1.66",
        "destination.ip": "10.20.2.31",
        "otsentry.alert.status": "new",
    }


def test_baseline_deviation_gets_the_rules_mapping_and_stays_one_alert(pack: DetectionEngine) -> None:
    pack.reset()
    [alert] = pack([deviation()])
    assert alert["rule.ruleset"] == "baseline"
    assert alert["threat.technique.id"] == ["T0848"]
    assert alert["message"].startswith("10.20.1.66/dnp3:100 acts as DNP3 master")
    assert alert["otsentry.baseline.rule_id"] == "otsentry.baseline.new_dnp3_master"
    assert alert["otsentry.alert.seq"] >= 1
    [unknown] = pack([deviation("some_future_kind")])  # no rule for it: passes through, stamped
    assert unknown["rule.id"] == "otsentry.baseline.some_future_kind"
    assert uuid.UUID(unknown["otsentry.alert.id"])


def frames(n: int, t0: float = 100.0) -> list[tuple[float, int, bytes]]:
    return [(t0 + i, 1, bytes([i]) * 60) for i in range(n)]


def test_write_pcap_round_trips_through_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "e.pcap"
    assert write_pcap(path, [*frames(3), (200.0, 113, b"other link type")]) == 3
    back = list(read_capture(path))
    assert [(round(f.ts, 6), f.linktype, f.data) for f in back] == [
        (100.0 + i, 1, bytes([i]) * 60) for i in range(3)
    ]
    assert struct.unpack_from("<I", path.read_bytes())[0] == 0xA1B2C3D4


def test_recorder_keeps_before_and_after_the_trigger(tmp_path: Path) -> None:
    rec = EvidenceRecorder(tmp_path, before_frames=4, after_frames=2, after_seconds=60)
    for ts, lt, data in frames(10):
        rec.packet("flow-a", ts, lt, data)
        rec.packet("flow-b", ts, lt, b"b" * 10)
    path = rec.request("alert-1", "flow-a", 109.0)  # trigger = the last frame seen
    assert not path.exists()  # waits for frames after the trigger
    rec.packet("flow-a", 110.0, 1, b"after1")
    rec.packet("flow-a", 111.0, 1, b"after2")
    assert path.exists()
    got = [f.data for f in read_capture(path)]
    assert got == [bytes([i]) * 60 for i in range(6, 10)] + [b"after1", b"after2"]
    late = rec.request("alert-2", "flow-b", 105.0)  # requested late: ring frames after the trigger count
    rec.close()
    assert late.exists()
    assert all(f.data == b"b" * 10 for f in read_capture(late))


def test_engine_names_the_evidence_file(tmp_path: Path) -> None:
    eng = DetectionEngine.from_paths([PACK], evidence_dir=tmp_path / "evidence")
    [alert] = eng([dnp3_operate()])
    assert alert["otsentry.alert.evidence"] == str(
        tmp_path / "evidence" / f"{alert['otsentry.alert.id']}.pcap"
    )
