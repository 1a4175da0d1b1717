"""End to end: captures → sensor → inventory stage → detection engine, against truth-derived expectations.

* Sample captures: the alerts equal ``tests/data/detect_golden/<capture>.json`` (rule, frame, count),
  which ``tests/detect_golden.py`` derives from the generator's truth files — checked here too.
* Shared captures: a listed benign set raises no Sigma alert after learning a baseline on it; a
  committed must-fire map (what the file names and MANIFEST say the captures hold, ISSUE-NOTES'
  list of non-benign captures) names the rules that must fire without a baseline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detect_golden import GOLDEN, OUT, expected
from detect_replay import detect, learn
from otsentry.capture import read_capture
from otsentry.detect.evidence import cut_from_capture, requests_from_alerts
from shared import SAMPLE_PCAPS, SHARED_PCAPS, needs_shared

# Frames where the truth and otsentry's analyzers legitimately disagree, so the alert differs.
EXPECTED_DIFFERENCES: dict[str, dict[tuple[str, int], str]] = {
    "modbus_suspicious": {
        ("modbus_write_unknown_client", 103): (
            "the FC 22 probe of the sweep carries no data bytes: the truth records a mask_write_register "
            "request, the Modbus analyzer reports it as a decode error (0 data bytes, need 6), so the write "
            "rule does not see it; the same client's FC 16 write at frame 190 raises the alert instead"
        ),
        ("modbus_write_unknown_client", 190): "see frame 103: the first write the analyzer decodes",
    },
}


def _sigma_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["rule.ruleset"] in ("sigma", "decoder")]


@pytest.mark.parametrize("capture", sorted(GOLDEN))
def test_committed_golden_file_is_the_truth_derivation(capture: str) -> None:
    committed = json.loads((OUT / f"{capture}.json").read_text())
    assert committed == expected(capture), "regenerate with: python tests/detect_golden.py"


@pytest.mark.parametrize("capture", sorted(GOLDEN))
def test_replay_raises_the_golden_alerts(capture: str) -> None:
    golden = json.loads((OUT / f"{capture}.json").read_text())
    baseline = learn([SAMPLE_PCAPS / golden["baseline_learned_on"]])
    alerts = detect([SAMPLE_PCAPS / golden["capture"]], baseline)
    got = {(a["rule.id"], a["otsentry.pcap.frame"]): a["otsentry.alert.count"] for a in _sigma_alerts(alerts)}
    want = {(a["rule_id"], a["frame"]): a["count"] for a in golden["alerts"]}
    names = {rule_id: stem for stem, rule_id in _rule_ids_by_stem().items()}
    allowed = EXPECTED_DIFFERENCES.get(capture, {})
    diff = []
    for key in sorted(set(got) | set(want)):
        if got.get(key) != want.get(key) and (names.get(key[0]), key[1]) not in allowed:
            rule = names.get(key[0], key[0])
            diff.append(f"{rule} frame {key[1]}: expected count {want.get(key)}, got {got.get(key)}")
    assert diff == []
    for a in alerts:  # baseline deviations carry their mapping too
        assert a.get("threat.technique.id"), a["rule.name"]
        assert a["otsentry.alert.status"] == "new" and a["otsentry.alert.seq"] >= 1


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


def _rule_ids_by_stem() -> dict[str, str]:
    from detect_golden import rule_ids

    return rule_ids()


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
    ids = _rule_ids_by_stem()
    fired = {a["rule.id"] for a in detect([SHARED_PCAPS / capture])}
    missing = [stem for stem in MUST_FIRE[capture] if ids[stem] not in fired]
    assert missing == []
