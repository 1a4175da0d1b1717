"""Select-before-operate and SAv5 challenge checks on real captures, end to end through the analysis
pipeline of ``otsentry replay`` (decoding, enrichment, the DNP3 command tracker, the bundled rules).

References: the opendnp3 3.0 outstation's own verdict in the DNP3 conformance captures (its control
status NO_SELECT / SUCCESS on each OPERATE), the ITI SAv5 captures (a challenged and an aggressive-mode
DIRECT_OPERATE), and near misses cut from those captures that change only the thing a check keys on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from dnp3_commands_helpers import Payload, rewrite_fragment, tcp_payloads, write_capture
from otsentry.analysis import Analysis
from otsentry.detect.engine import DetectionEngine, bundled_rules_dir
from otsentry.inventory.dnp3_commands import Dnp3CommandTracker, settings_from_table
from otsentry.inventory.enrich import Enricher
from otsentry.sensor import Sensor
from shared import SHARED_PCAPS, needs_shared

pytestmark = [needs_shared, pytest.mark.shared]

ITI = SHARED_PCAPS / "iti-ics" / "dnp3"
CONFORMANCE = ITI / "opendnp3-3" / "conformance"
SELECT_OPERATE = ITI / "select_operate_and_responses.pcap"
CHALLENGE = ITI / "auth_control_challenge_response.pcap"
AGGRESSIVE = ITI / "operate_aggressive_mode.pcap"
SESSION_KEYS = ITI / "auth_change_session_keys.pcap"
DIRECT_OPERATE = ITI / "directoperate_and_response.pcap"

OPERATE_WITHOUT_SELECT = "3696a7be-0e45-519b-92b2-d4254a2f0019"
MISSING_CHALLENGE = "7c1913f3-0762-56f4-86c2-d93ed7e7653a"


@cache
def _engine() -> DetectionEngine:
    return DetectionEngine.from_paths([bundled_rules_dir()], strict=True)


def analyse(
    captures: list[Path], tmp_path: Path, detectors: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events and alerts of a replay through the stages of ``otsentry replay`` (``build_analysis``:
    enricher, DNP3 command tracker, the bundled rules; the rules compiled once per test session)."""
    alerts_out = tmp_path / "alerts.jsonl"
    engine = _engine()
    engine.reset()
    tracker = Dnp3CommandTracker(settings_from_table(detectors))
    analysis = Analysis(Enricher(), engine, alerts_out, tracker)
    events: list[dict[str, Any]] = []
    sensor = Sensor(sinks=[events.extend], analysis=analysis)
    for capture in captures:
        sensor.replay(capture)
    sensor.close()
    alerts = [json.loads(line) for line in alerts_out.read_text().splitlines()]
    return [e for e in events if e.get("event.dataset") == "otsentry.dnp3"], alerts


def fired(alerts: list[dict[str, Any]], rule: str) -> list[int]:
    return [a["otsentry.pcap.frame"] for a in alerts if a["rule.id"] == rule]


def operates(events: list[dict[str, Any]]) -> list[tuple[int, bool, str]]:
    return [
        (
            e["otsentry.pcap.frame"],
            e["otsentry.dnp3.operate_without_select"],
            e["otsentry.dnp3.select.result"],
        )
        for e in events
        if e.get("dnp3.application.function_code") == 4
    ]


# -- select before operate: the outstation's own verdict ------------------------------------------------

# The conformance harness waits 3000 ms on a simulated clock (log.html step 3) that the capture does not
# show: the OPERATE follows its SELECT by < 1 ms, so the outstation's TIMEOUT cannot be seen on the wire.
TIMED_BY_THE_HARNESS = {"8.2.1.2.4", "8.4.1.2.4"}


def outstation_verdicts(events: list[dict[str, Any]]) -> list[tuple[int, bool | None, str | None, str]]:
    """(frame, our field, our result, the outstation's control status) for each answered OPERATE. Some
    masters pipeline requests, so each response answers the oldest OPERATE of its sequence number."""
    out, waiting = [], defaultdict(list)
    for e in events:
        fc = e.get("dnp3.application.function_code")
        ends = (e["source.ip"], e["dnp3.link.source"], e["destination.ip"], e["dnp3.link.destination"])
        if fc == 4:
            waiting[ends].append(e)
        elif fc == 129:
            queue = waiting[ends[2:] + ends[:2]]
            operate = next(
                (o for o in queue if o["dnp3.application.sequence"] == e["dnp3.application.sequence"]), None
            )
            if operate is None:
                continue
            queue.remove(operate)
            statuses = {p["status_name"] for o in e["dnp3.objects"] for p in o.get("points", [])}
            assert len(statuses) == 1, statuses
            out.append(
                (
                    operate["otsentry.pcap.frame"],
                    operate.get("otsentry.dnp3.operate_without_select"),
                    operate.get("otsentry.dnp3.select.result"),
                    statuses.pop(),
                )
            )
    return out


def test_conformance_captures_agree_with_the_opendnp3_outstation(tmp_path: Path) -> None:
    """Procedures 8.2.1.2.x (CROB) and 8.4.1.2.x (analog output) check select-before-operate: other
    point, code, off time or qualifier, wrong sequence number, a second OPERATE, a repeated one. Our
    field is true exactly where the outstation answered NO_SELECT."""
    procedures = sorted(p.parent for p in CONFORMANCE.glob("8.[24].[14].*/dump.pcap"))
    compared, true_verdicts = 0, 0
    for procedure in procedures:
        events, alerts = analyse([procedure / "dump.pcap"], tmp_path)
        verdicts = outstation_verdicts(events)
        for frame, without_select, result, status in verdicts:
            where = f"{procedure.name} frame {frame}: {result} vs {status}"
            if procedure.name in TIMED_BY_THE_HARNESS:
                assert (without_select, status) == (False, "TIMEOUT"), where
                continue
            assert status in ("SUCCESS", "NO_SELECT"), where
            assert without_select is (status == "NO_SELECT"), where
            compared += 1
            true_verdicts += without_select
        # repeats of a rule for the same pair within a minute are grouped into the first alert
        assert fired(alerts, OPERATE_WITHOUT_SELECT) == [f for f, w, _, _ in verdicts if w][:1]
    assert compared >= 20 and true_verdicts >= 9, (compared, true_verdicts)


def test_the_harness_timeout_fires_once_the_wait_is_on_the_wire(tmp_path: Path) -> None:
    """8.2.1.2.4 with its OPERATE moved 3 s after the SELECT (the harness's wait) and a 2 s select
    timeout: expired, as the outstation said (TIMEOUT)."""
    payloads = tcp_payloads(CONFORMANCE / "8.2.1.2.4" / "dump.pcap")
    select_ts = payloads[0].ts
    retimed = [p.moved(ts=p.ts + 3.0) if p.ts > select_ts + 0.0002 else p for p in payloads]
    capture = write_capture(tmp_path / "timeout.pcap", retimed)
    events, alerts = analyse([capture], tmp_path, {"dnp3_select_timeout": 2.0})
    assert [(w, r) for _, w, r in operates(events)] == [(True, "expired")]
    assert len(fired(alerts, OPERATE_WITHOUT_SELECT)) == 1
    events, _ = analyse([capture], tmp_path)  # the default 10 s timeout keeps it armed
    assert [(w, r) for _, w, r in operates(events)] == [(False, "matched")]


def test_icsnpp_select_operate_traffic_pairs_every_operate(tmp_path: Path) -> None:
    """A real master's 134 SELECTs and 133 OPERATEs, some pipelined (SELECT 7, OPERATE 8, SELECT 7,
    OPERATE 8 before the first answer): each OPERATE the outstation accepted is paired."""
    events, alerts = analyse([SHARED_PCAPS / "icsnpp-dnp3" / "dnp3_example.pcap"], tmp_path)
    verdicts = outstation_verdicts(events)
    assert len(verdicts) == 133
    assert {(w, r, s) for _, w, r, s in verdicts} == {(False, "matched", "SUCCESS")}
    assert fired(alerts, OPERATE_WITHOUT_SELECT) == []


def test_zeek_udp_select_operate_is_paired(tmp_path: Path) -> None:
    events, _ = analyse([SHARED_PCAPS / "zeek" / "dnp3" / "dnp3_udp_select_operate.pcap"], tmp_path)
    assert [(w, r) for _, w, r in operates(events)] == [(False, "matched")]


# -- select before operate: near misses of the ITI capture ----------------------------------------------


def select_operate() -> tuple[list[Payload], Payload, Payload]:
    """The capture's payloads, its SELECT (frame 4) and its OPERATE (frame 7)."""
    payloads = tcp_payloads(SELECT_OPERATE)
    by_frame = {p.frame: p for p in payloads}
    return payloads, by_frame[4], by_frame[7]


def test_iti_select_then_operate(tmp_path: Path) -> None:
    events, alerts = analyse([SELECT_OPERATE], tmp_path)
    assert operates(events) == [(7, False, "matched")]
    assert fired(alerts, OPERATE_WITHOUT_SELECT) == []


def _crob_index(fragment: bytes, index: int) -> bytes:
    # C0 03 | 0C 01 28 | 01 00 | index (2 octets) | CROB: code, count, on, off, status
    assert fragment[2:5] == bytes([12, 1, 0x28]), fragment.hex()
    return fragment[:7] + index.to_bytes(2, "little") + fragment[9:]


def _crob_code(fragment: bytes, code: int) -> bytes:
    return fragment[:9] + bytes([code]) + fragment[10:]


@pytest.mark.parametrize(
    ("variant", "result"),
    [
        ("operate 11 s after the select", "expired"),
        ("select dropped", "no_select"),
        ("select from another master", "no_select"),
        ("select of another point", "different_objects"),
        ("select with another control code", "different_objects"),
    ],
)
def test_iti_near_misses_fire(tmp_path: Path, variant: str, result: str) -> None:
    payloads, select, operate = select_operate()
    if variant == "operate 11 s after the select":
        changed = [p.moved(ts=p.ts + 11.0) if p.ts >= operate.ts else p for p in payloads]
    elif variant == "select dropped":
        changed = [p for p in payloads if p.frame not in (4, 6)]  # the SELECT and its response
    elif variant == "select from another master":
        changed = [p.moved(src="192.168.60.2") if p is select else p for p in payloads]
    elif variant == "select of another point":
        changed = [p.moved(data=rewrite_fragment(p.data, lambda f: _crob_index(f, 1))) if p is select else p
                   for p in payloads]  # fmt: skip
    else:
        changed = [p.moved(data=rewrite_fragment(p.data, lambda f: _crob_code(f, 4))) if p is select else p
                   for p in payloads]  # fmt: skip
    capture = write_capture(tmp_path / "near_miss.pcap", changed)
    events, alerts = analyse([capture], tmp_path)
    assert [(w, r) for _, w, r in operates(events)] == [(True, result)], variant
    frame = next(e["otsentry.pcap.frame"] for e in events if e.get("dnp3.application.function_code") == 4)
    assert fired(alerts, OPERATE_WITHOUT_SELECT) == [frame]
    # the untouched payloads, rewritten the same way, pair: the difference is the variant's alone
    events, alerts = analyse([write_capture(tmp_path / "same.pcap", payloads)], tmp_path)
    assert [(w, r) for _, w, r in operates(events)] == [(False, "matched")]


# -- SAv5: critical requests answered without a challenge ----------------------------------------------


def auth(event: dict[str, Any]) -> dict[str, Any]:
    return {
        k.removeprefix("otsentry.dnp3.auth."): v
        for k, v in event.items()
        if k.startswith("otsentry.dnp3.auth.")
    }


def answered(events: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return [(e["otsentry.pcap.frame"], auth(e)) for e in events if auth(e)]


def test_challenged_direct_operate_raises_nothing(tmp_path: Path) -> None:
    events, alerts = analyse([CHALLENGE], tmp_path)
    assert answered(events) == [
        (4, {"challenge_missing": False, "mode": "challenge", "request_function": "direct_operate",
             "request_function_code": 5, "request_frame": 1}),
    ]  # fmt: skip
    assert fired(alerts, MISSING_CHALLENGE) == []


def test_aggressive_mode_direct_operate_raises_nothing(tmp_path: Path) -> None:
    events, alerts = analyse([AGGRESSIVE], tmp_path)
    assert [(f, a["challenge_missing"], a["mode"]) for f, a in answered(events)] == [(2, False, "aggressive")]
    assert fired(alerts, MISSING_CHALLENGE) == []


def test_session_key_change_and_plain_direct_operate_raise_nothing(tmp_path: Path) -> None:
    """Key change messages are no critical requests; a DIRECT_OPERATE on an association that never
    showed SAv5 is not judged."""
    for capture in (SESSION_KEYS, DIRECT_OPERATE):
        events, alerts = analyse([capture], tmp_path)
        assert answered(events) == [], capture.name
        assert fired(alerts, MISSING_CHALLENGE) == [], capture.name


def test_challenge_removed_fires_on_the_response(tmp_path: Path) -> None:
    """The session key exchange (same master and outstation), then the challenged DIRECT_OPERATE with
    the challenge and its reply cut out: the outstation executed it unchallenged."""
    keys = tcp_payloads(SESSION_KEYS)
    operate = [p for p in tcp_payloads(CHALLENGE) if p.frame not in (2, 3)]
    capture = write_capture(tmp_path / "no_challenge.pcap", keys + operate)
    events, alerts = analyse([capture], tmp_path)
    [(frame, fields)] = answered(events)
    assert fields["challenge_missing"] is True and fields["mode"] == "none"
    assert fields["request_function"] == "direct_operate"
    assert fired(alerts, MISSING_CHALLENGE) == [frame]
    alert = next(a for a in alerts if a["rule.id"] == MISSING_CHALLENGE)
    assert alert["message"] == (
        "DNP3 outstation 4 at 192.168.1.1 executed DIRECT_OPERATE from 192.168.1.2 (master 3) without a "
        "Secure Authentication challenge (none)"
    )
    assert alert["threat.technique.id"][:1] == ["T0855"]
    # near miss: the same capture with the challenge and reply kept
    capture = write_capture(tmp_path / "challenge.pcap", keys + tcp_payloads(CHALLENGE))
    events, alerts = analyse([capture], tmp_path)
    assert [a["challenge_missing"] for _, a in answered(events)] == [False]
    assert fired(alerts, MISSING_CHALLENGE) == []


def _strip_mac(fragment: bytes) -> bytes:
    # the request ends with g120v9 (78 09), qualifier 0x5B, count 1, a 2-octet size and the MAC
    at = fragment.rindex(bytes([120, 9, 0x5B]))
    size = int.from_bytes(fragment[at + 4 : at + 6], "little")
    assert at + 6 + size == len(fragment), fragment.hex()
    return fragment[:at]


def test_aggressive_mode_without_its_mac_fires(tmp_path: Path) -> None:
    payloads = tcp_payloads(AGGRESSIVE)
    request = next(p for p in payloads if p.frame == 1)
    changed = [p.moved(data=rewrite_fragment(p.data, _strip_mac)) if p is request else p for p in payloads]
    events, alerts = analyse([write_capture(tmp_path / "no_mac.pcap", changed)], tmp_path)
    assert "g120v9" not in events[0]["dnp3.object_gv"] and "g120v3" in events[0]["dnp3.object_gv"]
    [(frame, fields)] = answered(events)
    assert (fields["challenge_missing"], fields["mode"]) == (True, "aggressive_without_mac")
    assert fired(alerts, MISSING_CHALLENGE) == [frame]
    events, alerts = analyse([write_capture(tmp_path / "mac.pcap", payloads)], tmp_path)
    assert fired(alerts, MISSING_CHALLENGE) == []


def test_replay_cli_carries_the_fields_and_alerts(tmp_path: Path) -> None:
    """``otsentry replay`` over two captures (state carries from one to the next)."""
    keys = write_capture(tmp_path / "keys.pcap", tcp_payloads(SESSION_KEYS))
    operate = write_capture(
        tmp_path / "op.pcap", [p for p in tcp_payloads(CHALLENGE) if p.frame not in (2, 3)]
    )
    events_out, alerts_out = tmp_path / "events.jsonl", tmp_path / "alerts.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "otsentry", "replay", str(keys), str(operate), "--events-out", str(events_out),
         "--alerts-out", str(alerts_out), "--summary-json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in events_out.read_text().splitlines()]
    assert [e["otsentry.pcap.frame"] for e in events if e.get("otsentry.dnp3.auth.challenge_missing")] == [5]
    alerts = [json.loads(line) for line in alerts_out.read_text().splitlines()]
    assert [
        (a["otsentry.pcap.file"], a["otsentry.pcap.frame"])
        for a in alerts
        if a["rule.id"] == MISSING_CHALLENGE
    ] == [(str(operate), 5)]
