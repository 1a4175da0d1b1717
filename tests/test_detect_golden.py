"""End to end: captures → sensor → inventory stage → detection engine, against truth-derived expectations.

* Sample captures (every one in pcaps/, link-type variants included): the alerts equal
  ``tests/data/detect_golden/<capture>.json`` (rule, frame, count), which ``tests/detect_golden.py``
  derives from the generator's truth files — checked here too — both with the baseline the file names
  and, for captures that have one, without any baseline.
* Shared captures: a listed benign set raises no Sigma alert after learning a baseline on it; a
  committed must-fire map (what the file names and MANIFEST say the captures hold, ISSUE-NOTES'
  list of non-benign captures) names the rules that must fire without a baseline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detect_golden import GOLDEN, OUT, RULES, capture_file, derive_dnp3, expected, rule_ids
from detect_replay import detect, golden_baseline, learn
from otsentry.capture import read_capture
from otsentry.detect.evidence import cut_from_capture, requests_from_alerts
from shared import SAMPLE_PCAPS, SHARED_PCAPS, needs_shared

# capture -> {(rule, frame): reason}: frames where the truth and otsentry disagree, so the alert differs
# (in the replay with the golden's baseline or without one). Every entry must still be a difference: a
# stale one would hide a regression — and an entry marked "otsentry bug" must go once the bug is fixed.
EXPECTED_DIFFERENCES: dict[str, dict[tuple[str, int], str]] = {}


def _sigma_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["rule.ruleset"] in ("sigma", "decoder")]


def _golden(capture: str) -> dict[str, Any]:
    return json.loads((OUT / f"{capture}.json").read_text())


def test_every_sample_capture_has_a_golden_file() -> None:
    captures = {
        str(p.relative_to(SAMPLE_PCAPS)) for p in SAMPLE_PCAPS.rglob("*") if p.suffix in (".pcap", ".pcapng")
    }
    assert {capture_file(c) for c in GOLDEN} == captures
    files = {str(p.relative_to(OUT).with_suffix("")) for p in OUT.rglob("*.json")}
    assert files == set(GOLDEN), "golden files without a capture (or captures without a golden file)"


def test_every_rule_fires_in_some_sample_capture() -> None:
    """Goldens that only prove silence are weak: every Sigma and decoder rule must be expected to fire
    somewhere in the samples (baseline deviations are the inventory tests' to cover)."""
    expected_rules = {
        a["rule"]
        for capture in GOLDEN
        for key in ("alerts", "alerts_without_baseline")
        for a in _golden(capture).get(key, [])
    }
    rules = {p.stem for p in RULES.glob("*/*.yml") if p.parent.name != "baseline"}
    assert sorted(rules - expected_rules) == []


@pytest.mark.parametrize("capture", sorted(GOLDEN))
def test_committed_golden_file_is_the_truth_derivation(capture: str) -> None:
    assert _golden(capture) == expected(capture), "regenerate with: python tests/detect_golden.py"


def _diff(capture: str, alerts: list[dict[str, Any]], want: list[dict[str, Any]]) -> tuple[list[str], set]:
    """Unlisted differences as text, and the EXPECTED_DIFFERENCES keys that were differences."""
    got = {(a["rule.id"], a["otsentry.pcap.frame"]): a["otsentry.alert.count"] for a in _sigma_alerts(alerts)}
    wanted = {(a["rule_id"], a["frame"]): a["count"] for a in want}
    names = {rule_id: stem for stem, rule_id in rule_ids().items()}
    allowed = EXPECTED_DIFFERENCES.get(capture, {})
    unlisted, used = [], set()
    for key in sorted(set(got) | set(wanted)):
        if got.get(key) == wanted.get(key):
            continue
        rule = names.get(key[0], key[0])
        if (rule, key[1]) in allowed:
            used.add((rule, key[1]))
        else:
            unlisted.append(f"{rule} frame {key[1]}: expected count {wanted.get(key)}, got {got.get(key)}")
    return unlisted, used


@pytest.mark.parametrize("capture", sorted(GOLDEN))
def test_replay_raises_the_golden_alerts(capture: str) -> None:
    golden = _golden(capture)
    path = SAMPLE_PCAPS / golden["capture"]
    config = golden.get("sensor_config")
    alerts = detect([path], golden_baseline(golden["baseline_learned_on"], SAMPLE_PCAPS), config)
    unlisted, used = _diff(capture, alerts, golden["alerts"])
    if "alerts_without_baseline" in golden:
        bare = detect([path], config=config)
        more, used_bare = _diff(capture, bare, golden["alerts_without_baseline"])
        unlisted += [f"without a baseline: {line}" for line in more]
        used |= used_bare
        alerts += bare
    assert unlisted == []
    assert used == set(EXPECTED_DIFFERENCES.get(capture, {})), "stale EXPECTED_DIFFERENCES entries"
    for a in alerts:  # baseline deviations carry their mapping too
        assert a.get("threat.technique.id"), a["rule.name"]
        assert a["otsentry.alert.status"] == "new" and a["otsentry.alert.seq"] >= 1


@pytest.mark.parametrize("capture", sorted(c for c in GOLDEN if c.startswith("linktypes/")))
def test_link_type_variants_expect_what_modbus_polling_expects(capture: str) -> None:
    """Same traffic, other container or link layer: the same rules with the same counts (the frame
    numbers of the fragmented variants differ)."""

    def rules(alerts: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return sorted((a["rule"], a["count"]) for a in alerts)

    variant, original = _golden(capture), _golden("modbus_polling")
    assert rules(variant["alerts"]) == rules(original["alerts"])
    assert rules(variant["alerts_without_baseline"]) == rules(original["alerts_without_baseline"])
    assert variant["alerts_without_baseline"], "the no-baseline pass must expect alerts to be a real check"


def _dnp3_control(
    frame: int, ts: float, fc: int, index: int, code: int = 65, src: str = "10.0.0.1"
) -> tuple[int, float, dict[str, Any]]:
    crob = {"group": 12, "variation": 1, "points": [{"index": index, "code": code}]}
    return (
        frame,
        ts,
        {
            "protocol": "dnp3",
            "src": src,
            "dst": "10.0.0.9",
            "link_source": 1,
            "link_destination": 10,
            "dir": True,
            "function_code": fc,
            "object_gv": ["g12v1"],
            "objects": [crob],
        },
    )


def test_operate_without_select_derivation() -> None:
    """The samples have one OPERATE without its SELECT (dnp3_anomalies): check the oracle itself on more
    near misses (the unpaired OPERATEs are > 60 s apart, so each is an alert of its own)."""
    msgs = [
        _dnp3_control(1, 0.0, 3, index=2),
        _dnp3_control(2, 0.5, 4, index=2),  # paired
        _dnp3_control(3, 1.0, 4, index=2),  # the SELECT was consumed by frame 2
        _dnp3_control(4, 100.0, 3, index=2),
        _dnp3_control(5, 100.4, 4, index=3),  # other point
        _dnp3_control(6, 200.0, 3, index=2),
        _dnp3_control(7, 200.4, 4, index=2, code=66),  # other code
        _dnp3_control(8, 300.0, 3, index=2),
        _dnp3_control(9, 310.5, 4, index=2),  # select expired
        _dnp3_control(10, 400.0, 3, index=2, src="10.0.0.2"),
        _dnp3_control(11, 400.1, 4, index=2),  # the SELECT came from another master
        _dnp3_control(12, 500.0, 3, index=2),
        _dnp3_control(13, 509.9, 4, index=2),  # paired, 9.9 s
    ]
    fired = [a["frame"] for a in derive_dnp3(msgs, known=None) if a["rule"] == "dnp3_operate_without_select"]
    assert fired == [3, 5, 7, 9, 11]


def test_benign_samples_raise_nothing_after_learning() -> None:
    for capture in ("modbus_polling", "dnp3_polling", "dnp3_transport_wrap", "dnp3_short_final_segment"):
        path = SAMPLE_PCAPS / f"{capture}.pcap"
        assert detect([path], learn([path])) == [], capture


def test_evidence_is_cut_from_the_capture(tmp_path: Path) -> None:
    capture = SAMPLE_PCAPS / "dnp3_suspicious.pcap"
    alerts = detect([capture])
    for a in alerts:
        a["otsentry.alert.evidence"] = str(tmp_path / f"{a['otsentry.alert.id']}.pcap")
    operate = next(a for a in alerts if a["otsentry.pcap.frame"] == 55)
    written = cut_from_capture(
        capture, requests_from_alerts(alerts, capture), before_seconds=2, after_seconds=2
    )
    path = Path(operate["otsentry.alert.evidence"])
    assert written[path] >= 2
    trigger = list(read_capture(capture))[54]  # frame 55
    cut = list(read_capture(path))
    assert trigger.data in [f.data for f in cut]
    assert all(abs(f.ts - trigger.ts) <= 2 for f in cut)


# -- shared captures -----------------------------------------------------------------------------------------

BENIGN_SHARED = [
    "icsnpp-modbus/modbus_example.pcap",
    "iti-ics/ModbusTCP/Modbus/modbus_test.pcap",
    "zeek/modbus/modbus-eit.pcap",
    "zeek/modbus/modbusBig.pcap",
    "zeek/modbus/4SICS-GeekLounge-151022-min.pcap",
    "icsnpp-dnp3/dnp3_example.pcap",
    "zeek/dnp3/dnp3_read.pcap",
    "zeek/dnp3/dnp3_udp_read.pcap",
    "iti-ics/dnp3/read_and_response.pcap",
    "iti-ics/dnp3/select_operate_and_responses.pcap",
    "zeek-iec104/iec104.pcap",
    "iti-ics/IEC60870-5-104/090813_diverse.pcap",
    "iti-ics/IEC60870-5-104/JavaRMI_and_IEC_Misc.pcap",
    "icsnpp-c1222/c1222_ident_service_tcp.pcap",
    "icsnpp-c1222/c1222_reg_service_tcp.pcap",
    "icsnpp-c1222/c1222_rw_service_tcp.pcap",
    "icsnpp-c1222/c1222overIPv4.cap",
    "wireshark-dlms/Output.pcap",
    "wireshark-dlms/Output-EPRI.pcap",
    "wireshark-dlms/Output-Ciphered.pcap",
]

# capture -> rule files (rules/<folder>/<stem>.yml) that must raise an alert on a replay without a baseline
MUST_FIRE = {
    "iti-ics/dnp3/cold_restart_and_response.pcap": ["dnp3_restart"],
    "iti-ics/dnp3/warm_restart_and_response.pcap": ["dnp3_restart"],
    "iti-ics/dnp3/file_delete.pcap": ["dnp3_delete_file"],
    "iti-ics/dnp3/file_read.pcap": ["dnp3_file_transfer"],
    "iti-ics/dnp3/file_write.pcap": ["dnp3_file_transfer"],
    "iti-ics/dnp3/file_list_directory.pcap": ["dnp3_file_transfer"],
    "iti-ics/dnp3/disable_unsolcited_and_response.pcap": ["dnp3_disable_unsolicited"],
    "iti-ics/dnp3/enable_unsolicited_and_response.pcap": ["dnp3_enable_unsolicited"],
    "iti-ics/dnp3/directoperate_and_response.pcap": ["dnp3_control_operate"],
    "iti-ics/dnp3/direct_operate_analog_output.pcap": ["dnp3_control_operate"],
    "iti-ics/dnp3/select_operate_and_responses.pcap": ["dnp3_control_operate"],
    "zeek/dnp3/dnp3_udp_select_operate.pcap": ["dnp3_control_operate"],
    "iti-ics/dnp3/lan_time_sync.pcap": ["dnp3_time_change"],
    "iti-ics/dnp3/serial_time_sync.pcap": ["dnp3_time_change"],
    "zeek/dnp3/dnp3_rec_time.pcap": ["dnp3_time_change"],
    "zeek/dnp3/dnp3.pcap": ["dnp3_stop_initialize_application", "dnp3_disable_unsolicited", "dnp3_restart"],
    "zeek/modbus/fuzz-72.pcap": ["decoder_modbus_mbap"],
    "icsnpp-c1222/c1222_logon_service_tcp.pcap": ["c1222_cleartext_logon"],
    "iti-ics/IEC60870-5-104/090813_diverse.pcap": ["iec104_command_unknown_station"],
    "zeek-iec104/iec104.pcap": ["iec104_command_unknown_station"],
}


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("capture", BENIGN_SHARED)
def test_benign_shared_capture_is_quiet_after_learning(capture: str) -> None:
    path = SHARED_PCAPS / capture
    alerts = detect([path], learn([path]))
    assert [(a["rule.name"], a["message"]) for a in _sigma_alerts(alerts)] == []


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("capture", sorted(MUST_FIRE))
def test_must_fire_map(capture: str) -> None:
    ids = rule_ids()
    fired = {a["rule.id"] for a in detect([SHARED_PCAPS / capture])}
    missing = [stem for stem in MUST_FIRE[capture] if ids[stem] not in fired]
    assert missing == []
