"""Expected alerts of the sample captures, derived from the generator's ground truth (never from otsentry).

``python tests/detect_golden.py`` rewrites ``tests/data/detect_golden/<capture>.json``; the test checks
that the committed files equal a fresh derivation and that a replay through the sensor, the inventory
stage (baseline learned on the matching polling capture) and the detection engine raises exactly these
(rule, frame, count) triples for the Sigma rules (baseline deviations are the inventory's to test).

The derivation reads each truth message (function codes, IIN, link addresses, who sent it) and applies
what each rule *means* — written here independently of the rule YAML and the engine: a request from a
pair that never talked in the polling capture is "not known"; repeats of a rule for the same group
within 60 s of its first alert are one alert with a count; correlations count within their windows.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
RULES = ROOT / "rules"
OUT = Path(__file__).resolve().parent / "data" / "detect_golden"
DEDUP_SECONDS = 60.0

# capture -> the capture its baseline is learned on
GOLDEN = {
    "dnp3_suspicious": "dnp3_polling",
    "modbus_suspicious": "modbus_polling",
    "dnp3_polling": "dnp3_polling",
    "modbus_polling": "modbus_polling",
}


def _messages(name: str) -> list[tuple[int, float, dict[str, Any]]]:
    truth = json.loads((PCAPS / f"{name}.truth.json").read_text())
    return [(fr["frame"], fr["time_ns"] / 1e9, m) for fr in truth["frames"] for m in fr["messages"]]


def _pair(m: dict[str, Any]) -> tuple[Any, ...]:
    if m.get("protocol") == "dnp3":
        return (m["src"], m.get("link_source"), m["dst"], m.get("link_destination"))
    return (m["src"], m["dst"], m.get("unit_id"))


def known_pairs(name: str) -> set[tuple[Any, ...]]:
    """Pairs (requests and responses) seen in the learning capture."""
    return {_pair(m) for _f, _t, m in _messages(name) if m.get("action") != "decode_error"}


def rule_ids() -> dict[str, str]:
    """Rule file stem -> id of the file's first document (the rule or correlation that alerts)."""
    out = {}
    for path in RULES.glob("*/*.yml"):
        doc = next(yaml.safe_load_all(path.read_text()))
        out[path.stem] = str(doc["id"])
    return out


class _Alerts:
    def __init__(self) -> None:
        self.groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.alerts: list[dict[str, Any]] = []

    def raise_(self, rule: str, key: tuple[Any, ...], frame: int, ts: float, count: int = 1) -> None:
        group = self.groups.get((rule, *key))
        if group is not None and ts - group["first"] <= DEDUP_SECONDS:
            group["alert"]["count"] += count
            return
        alert = {"rule": rule, "frame": frame, "count": count}
        self.groups[(rule, *key)] = {"first": ts, "alert": alert}
        self.alerts.append(alert)


def _dnp3(
    messages: list[tuple[int, float, dict[str, Any]]], known: set[tuple[Any, ...]], out: _Alerts
) -> None:
    running: set[tuple[Any, ...]] = set()
    restart_started: dict[tuple[Any, ...], float] = {}
    unsolicited: dict[tuple[Any, ...], deque[float]] = {}
    for frame, ts, m in messages:
        pair = (m["src"], m["dst"])
        unknown = _pair(m) not in known
        fc = m.get("function_code")
        gv = m.get("object_gv") or []
        if m.get("action") == "decode_error":
            if m.get("crc_errors"):
                out.raise_("decoder_dnp3_crc", pair, frame, ts)
            continue
        if m.get("dir"):  # requests
            if fc in (13, 14):
                out.raise_("dnp3_restart", pair, frame, ts)
            if fc in (15, 16, 18):
                out.raise_("dnp3_stop_initialize_application", pair, frame, ts)
            if fc in (19, 31):
                out.raise_("dnp3_save_activate_config", pair, frame, ts)
            if fc == 21 and unknown:
                out.raise_("dnp3_disable_unsolicited", pair, frame, ts)
            if fc == 20 and unknown:
                out.raise_("dnp3_enable_unsolicited", pair, frame, ts)
            if fc in (3, 4, 5, 6) and any(g.startswith(("g12v", "g41v")) for g in gv) and unknown:
                out.raise_("dnp3_control_operate", pair, frame, ts)
            if ((fc == 2 and set(gv) & {"g50v1", "g50v3", "g50v4"}) or fc == 24) and unknown:
                out.raise_("dnp3_time_change", pair, frame, ts)
            if fc == 27:
                out.raise_("dnp3_delete_file", pair, frame, ts)
            if fc in (25, 26, 28, 29, 30) or (fc in (1, 2) and any(g.startswith("g70v") for g in gv)):
                out.raise_("dnp3_file_transfer", pair, frame, ts)
            if m.get("link_destination", 0) >= 65533:
                out.raise_("dnp3_broadcast", pair, frame, ts)
            if fc == 1 and "g60v1" in gv and unknown:
                out.raise_("dnp3_integrity_poll_unknown", pair, frame, ts)
            continue
        iin = m.get("iin") or 0
        station = (m["src"], m.get("link_source"))
        if iin & 0x0028:  # IIN2.5 config corrupt, IIN2.3 event buffer overflow
            out.raise_("dnp3_iin_config_corrupt_overflow", pair, frame, ts)
        if "g120v7" in gv:
            out.raise_("dnp3_auth_error", pair, frame, ts)
        # restart correlation: a running response, then a DEVICE_RESTART within 10 minutes
        if fc == 129 and not iin & 0x8000:
            restart_started[station] = ts
        if fc in (129, 130) and iin & 0x8000:
            start = restart_started.get(station)
            if start is not None and ts - start <= 600:
                out.raise_("dnp3_iin_restart", station, frame, ts, 2)
                del restart_started[station]
        running.add(station)
        if fc == 130:
            window = unsolicited.setdefault(station, deque())
            window.append(ts)
            while window and ts - window[0] > 10:
                window.popleft()
            if len(window) > 5:
                out.raise_("dnp3_unsolicited_storm", station, frame, ts, len(window))
                window.clear()


def _modbus(
    messages: list[tuple[int, float, dict[str, Any]]], known: set[tuple[Any, ...]], out: _Alerts
) -> None:
    exceptions: dict[tuple[Any, ...], deque[float]] = {}
    busy: dict[Any, deque[float]] = {}
    for frame, ts, m in messages:
        pair = (m["src"], m["dst"])
        fc = m.get("function_code")
        if m.get("action") == "decode_error":
            if str(m.get("reason", "")).startswith("mbap"):
                out.raise_("decoder_modbus_mbap", pair, frame, ts)
            continue
        unknown = _pair(m) not in known
        if m.get("pdu_type") == "request":
            if fc in (5, 6, 15, 16, 22, 23) and unknown:
                out.raise_("modbus_write_unknown_client", pair, frame, ts)
            if fc == 8 and m.get("sub_function") == 4:
                out.raise_("modbus_force_listen_only", pair, frame, ts)
            if fc == 8 and m.get("sub_function") == 1:
                out.raise_("modbus_restart_communications", pair, frame, ts)
            if fc == 8 and m.get("sub_function") in (10, 20):
                out.raise_("modbus_clear_counters", pair, frame, ts)
            if ((fc == 43 and m.get("mei_type") == 14) or fc == 17) and unknown:
                out.raise_("modbus_device_recon", pair, frame, ts)
            if fc in (40, 90, 125, 126) and unknown:
                out.raise_("modbus_vendor_programming", (*pair, fc), frame, ts)
            if fc == 90 and m.get("umas_function") in (0x40, 0x41, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35):
                out.raise_("modbus_umas_run_state", pair, frame, ts)
        if m.get("pdu_type") == "exception":
            window = exceptions.setdefault(pair, deque())
            window.append(ts)
            while window and ts - window[0] > 30:
                window.popleft()
            if len(window) > 5:
                out.raise_("modbus_exception_burst", pair, frame, ts, len(window))
                window.clear()
            if m.get("exception_code") in (5, 6):
                flood = busy.setdefault(m["src"], deque())
                flood.append(ts)
                while flood and ts - flood[0] > 10:
                    flood.popleft()
                if len(flood) > 10:
                    out.raise_("modbus_busy_flood", (m["src"],), frame, ts, len(flood))
                    flood.clear()


def expected(capture: str) -> dict[str, Any]:
    learn = GOLDEN[capture]
    known = known_pairs(learn)
    out = _Alerts()
    messages = _messages(capture)
    if capture.startswith("dnp3"):
        _dnp3(messages, known, out)
    else:
        _modbus(messages, known, out)
    ids = rule_ids()
    alerts = sorted(
        (
            {"rule": a["rule"], "rule_id": ids[a["rule"]], "frame": a["frame"], "count": a["count"]}
            for a in out.alerts
        ),
        key=lambda a: (a["frame"], a["rule"]),
    )
    return {"capture": f"{capture}.pcap", "baseline_learned_on": f"{learn}.pcap", "alerts": alerts}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for capture in GOLDEN:
        data = expected(capture)
        (OUT / f"{capture}.json").write_text(json.dumps(data, indent=1) + "\n")
        print(capture, len(data["alerts"]), "alerts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
