"""Expected alerts of the sample captures, derived from the generator's ground truth (never from otsentry).

``python tests/detect_golden.py`` rewrites ``tests/data/detect_golden/<capture>.json`` for every capture
in ``pcaps/`` (``linktypes/`` included); the test checks that the committed files equal a fresh
derivation and that a replay through the sensor, the inventory stage (baseline learned on the captures
named in ``baseline_learned_on``, or none) and the detection engine raises exactly these
(rule, frame, count) triples for the Sigma and decoder rules (baseline deviations are the inventory's
to test). A golden's ``sensor_config`` is the configuration the replay needs (the C12.22 vendor
procedure table the capture's truth names). Captures with a baseline also list
``alerts_without_baseline``: the same capture replayed with no baseline, where every "not a known pair"
rule fires — so a golden of "no alert" cannot pass just because the capture was never decoded.

The derivation reads each truth message (function codes, IIN, link addresses, objects, cause of
transmission, procedures, who sent it) and applies what each rule *means* — written here independently
of the rule YAML and the engine: a request from a pair that never talked in the learning captures is
"not known" (with no baseline nothing is known); repeats of a rule for the same group (sender/receiver
unless the rule groups otherwise) within 60 s of its first alert are one alert with a count;
correlations count within their windows and start over after firing.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
RULES = ROOT / "rules"
OUT = Path(__file__).resolve().parent / "data" / "detect_golden"
DEDUP_SECONDS = 60.0

Message = tuple[int, float, dict[str, Any]]  # (frame, seconds, truth message)
Messages = tuple[Message, ...] | list[Message]


@dataclass(frozen=True)
class Golden:
    """Which captures (relative to pcaps/) the baseline is learned on — None: no baseline — and why."""

    learned_on: tuple[str, ...] | None
    why: str


_OWN = "the polling capture itself: normal traffic (a benign capture raises nothing after learning on it)"
_SAME_PLANT = "the {} capture: the same hosts' normal traffic, so only what the capture adds is new"
_NO_BASELINE = (
    "no baseline: no benign capture of these hosts exists among the samples, and learning on this capture "
    "itself would make its commands 'known'; otsentry.baseline.known_pair is absent, so the rules that are "
    "quiet for known pairs fire on every matching message"
)
_LINKTYPE = (
    "modbus_polling.pcap: the same traffic in the classic container, so a baseline learned there must know "
    "every pair of this variant and the golden equals modbus_polling's"
)
_LINKTYPE_V6 = (
    "linktypes/modbus_polling_ipv6.pcap: modbus_polling with IPv6 addresses (a baseline of the IPv4 hosts "
    "cannot know them); the golden equals modbus_polling's"
)

# capture (path under pcaps/ without extension) -> its baseline
GOLDEN: dict[str, Golden] = {
    "modbus_polling": Golden(("modbus_polling.pcap",), _OWN),
    "modbus_suspicious": Golden(("modbus_polling.pcap",), _SAME_PLANT.format("modbus_polling")),
    "dnp3_polling": Golden(("dnp3_polling.pcap",), _OWN),
    "dnp3_suspicious": Golden(("dnp3_polling.pcap",), _SAME_PLANT.format("dnp3_polling")),
    "dnp3_transport_wrap": Golden(("dnp3_polling.pcap",), _SAME_PLANT.format("dnp3_polling")),
    "dnp3_short_final_segment": Golden(("dnp3_polling.pcap",), _SAME_PLANT.format("dnp3_polling")),
    "tcp_midstream": Golden(
        ("modbus_polling.pcap", "dnp3_polling.pcap"), _SAME_PLANT.format("modbus_polling and dnp3_polling")
    ),
    "modbus_diagnostics": Golden(("modbus_polling.pcap",), _SAME_PLANT.format("modbus_polling")),
    "dnp3_anomalies": Golden(("dnp3_polling.pcap",), _SAME_PLANT.format("dnp3_polling")),
    "dnp3_secure_auth": Golden(("dnp3_polling.pcap",), _SAME_PLANT.format("dnp3_polling")),
    "iec104_control": Golden(None, _NO_BASELINE),
    "dlms_disconnect": Golden(None, _NO_BASELINE),
    "c1222_procedures": Golden(None, _NO_BASELINE),
}
for _variant in ("", "_be", "_nsec", "_spb", "_vlan", "_qinq", "_sll", "_sll2", "_rawip", "_ipfrag"):
    GOLDEN[f"linktypes/modbus_polling{_variant}"] = Golden(("modbus_polling.pcap",), _LINKTYPE)
for _variant in ("_ipv6", "_ipv6frag"):
    GOLDEN[f"linktypes/modbus_polling{_variant}"] = Golden(
        ("linktypes/modbus_polling_ipv6.pcap",), _LINKTYPE_V6
    )


def truth(capture: str) -> dict[str, Any]:
    """The truth file of a capture, with the frames of the capture it names in ``frames_from``."""
    path = PCAPS / f"{capture}.truth.json"
    data: dict[str, Any] = json.loads(path.read_text())
    if data.get("frames_from"):
        data["frames"] = json.loads((path.parent / data["frames_from"]).read_text())["frames"]
    return data


def capture_file(capture: str) -> str:
    """The capture's file name under pcaps/ (``linktypes/modbus_polling.pcapng``)."""
    return str(truth(capture)["capture"])


def _truth_of_file(name: str) -> str:
    return name.rsplit(".", 1)[0]


@cache
def messages(capture: str) -> tuple[Message, ...]:
    """The truth messages of a capture in frame order (cached: the derivations only read them)."""
    frames = truth(capture)["frames"]
    return tuple((fr["frame"], fr["time_ns"] / 1e9, m) for fr in frames for m in fr["messages"])


def _pair(m: dict[str, Any]) -> tuple[Any, ...]:
    """Who talks to whom, at the granularity the inventory keys pairs on (logical devices)."""
    protocol = m.get("protocol")
    if protocol == "dnp3":
        return (protocol, m["src"], m.get("link_source"), m["dst"], m.get("link_destination"))
    if protocol == "modbus":
        return (protocol, m["src"], m["dst"], m.get("unit_id"))
    if protocol == "iec104":
        return (protocol, m["src"], m["dst"], m.get("common_address"))
    # DLMS wrapper ports / C12.22 AP titles are not in the truth: the hosts stand for the devices.
    return (protocol, m["src"], m["dst"])


def known_pairs(captures: tuple[str, ...] | None) -> set[tuple[Any, ...]]:
    """Pairs (requests and responses) seen in the learning captures; none without a baseline."""
    return {
        _pair(m)
        for name in captures or ()
        for _f, _t, m in messages(_truth_of_file(name))
        if m.get("action") != "decode_error"
    }


@cache
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


class _Burst:
    """ "More than ``limit`` in ``seconds``" per group: fires on the message that crosses the limit with
    the number in the window, then the group starts over (one burst, one hit)."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self.windows: dict[tuple[Any, ...], deque[float]] = {}

    def add(self, key: tuple[Any, ...], ts: float) -> int:
        window = self.windows.setdefault(key, deque())
        window.append(ts)
        while window and ts - window[0] > self.seconds:
            window.popleft()
        if len(window) > self.limit:
            count = len(window)
            window.clear()
            return count
        return 0


# -- decoder (every protocol) ----------------------------------------------------------------------------

# Truth reasons of a length or framing anomaly (decoder_dnp3_length: lengths that do not match the data).
_LENGTH_WORDS = ("length", "truncated", "short", "long", "past_end", "framing")


def _decoder(msgs: Messages, known: set[tuple[Any, ...]], out: _Alerts) -> None:
    burst = _Burst(20, 10)  # decoder_error_burst: > 20 decode errors from one host in 10 s
    for frame, ts, m in msgs:
        pair = (m["src"], m["dst"])
        if m.get("protocol") == "dnp3" and m.get("objects_truncated"):
            # object headers whose ranges or counts run past the end of the fragment: the message itself
            # (function code, earlier objects) is still readable, so it is flagged, not a decode error
            out.raise_("dnp3_objects_past_fragment", pair, frame, ts)
        if m.get("action") != "decode_error":
            continue
        reason = str(m.get("reason") or "")
        if m.get("protocol") == "dnp3" and m.get("crc_errors"):
            out.raise_("decoder_dnp3_crc", pair, frame, ts)
        if m.get("protocol") == "dnp3" and (m.get("truncated") or any(w in reason for w in _LENGTH_WORDS)):
            out.raise_("decoder_dnp3_length", pair, frame, ts)
        if m.get("protocol") == "modbus" and reason.startswith("mbap"):
            out.raise_("decoder_modbus_mbap", pair, frame, ts)
        count = burst.add((m["src"],), ts)
        if count:
            out.raise_("decoder_error_burst", (m["src"],), frame, ts, count)


# -- DNP3 ------------------------------------------------------------------------------------------------

SELECT_TIMEOUT = 10.0  # seconds an outstation keeps a SELECT armed (otsentry's operate-without-select window)
# SAv5 (IEEE 1815-2012 clause 7): requests an outstation challenges because they change its state —
# writes, controls, freeze-and-clear, restarts, application and configuration control, unsolicited
# enable/disable, class assignment, file changes.
SA_CRITICAL = frozenset({2, 3, 4, 5, 6, 9, 10, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 25, 26, 27, 30, 31})
AUTHENTICATE_REQUESTS = frozenset({32, 33})  # the SAv5 exchange itself: replies, key changes


def _controls(m: dict[str, Any]) -> tuple[Any, ...]:
    """The control objects of a SELECT/OPERATE: group, variation, index and the CROB code or AO value."""
    out = []
    for obj in m.get("objects") or []:
        for point in obj.get("points") or []:
            what = point.get("code") if obj["group"] == 12 else point.get("value")
            out.append((obj["group"], obj["variation"], point.get("index"), what))
    return tuple(out)


def _dnp3(msgs: Messages, known: set[tuple[Any, ...]], out: _Alerts) -> None:
    restart_started: dict[tuple[Any, ...], float] = {}
    unsolicited = _Burst(5, 10)
    selects: dict[tuple[Any, ...], list[tuple[float, tuple[Any, ...]]]] = {}
    secure: set[tuple[Any, ...]] = set()  # associations that have exchanged SAv5 (g120) objects
    critical: dict[tuple[Any, ...], tuple[int, bool]] = {}  # association -> (sequence, authenticated)
    for frame, ts, m in msgs:
        if m.get("action") == "decode_error":
            continue
        pair = (m["src"], m["dst"])
        unknown = _pair(m) not in known
        fc = m.get("function_code")
        gv = m.get("object_gv") or []
        if "g120v7" in gv:  # SAv5 error object, whoever sends it
            out.raise_("dnp3_auth_error", pair, frame, ts)
        if m.get("dir"):
            association = (m["src"], m.get("link_source"), m["dst"], m.get("link_destination"))
        else:
            association = (m["dst"], m.get("link_destination"), m["src"], m.get("link_source"))
        if any(g.startswith("g120v") for g in gv):
            secure.add(association)
        _sa_challenge(association, frame, ts, m, association in secure, critical, out)
        if m.get("dir"):  # from the master
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
            # select-before-operate: an OPERATE consumes the armed SELECT of the same controls from the
            # same master (IP + link source) to the same outstation (IP + link destination)
            session = (m["src"], m.get("link_source"), m["dst"], m.get("link_destination"))
            if fc == 3:
                selects.setdefault(session, []).append((ts, _controls(m)))
            if fc == 4:
                armed = [(t, c) for t, c in selects.get(session, []) if ts - t <= SELECT_TIMEOUT]
                match = next((s for s in armed if s[1] == _controls(m)), None)
                if match is None:
                    out.raise_("dnp3_operate_without_select", pair, frame, ts)
                else:
                    armed.remove(match)
                selects[session] = armed
            continue
        iin = m.get("iin") or 0
        station = (m["src"], m.get("link_source"))
        if iin & 0x0028:  # IIN2.5 config corrupt, IIN2.3 event buffer overflow
            out.raise_("dnp3_iin_config_corrupt_overflow", pair, frame, ts)
        # restart correlation: a running solicited response, then DEVICE_RESTART within 10 minutes
        if fc == 129 and not iin & 0x8000:
            restart_started[station] = ts
        if fc in (129, 130) and iin & 0x8000:
            start = restart_started.get(station)
            if start is not None and ts - start <= 600:
                out.raise_("dnp3_iin_restart", station, frame, ts, 2)
                del restart_started[station]
        if fc == 130:
            count = unsolicited.add(station, ts)
            if count:
                out.raise_("dnp3_unsolicited_storm", station, frame, ts, count)


def _sa_challenge(
    association: tuple[Any, ...],
    frame: int,
    ts: float,
    m: dict[str, Any],
    is_secure: bool,
    critical: dict[tuple[Any, ...], tuple[int, bool]],
    out: _Alerts,
) -> None:
    """SAv5 (IEEE 1815-2012 §7.5.2): an outstation answers a critical request with a challenge (g120v1)
    unless the request authenticated itself in aggressive mode (g120v3 first, g120v9 MAC last); after a
    correct reply it executes and responds, after a wrong one it sends an error (g120v7). A normal
    response (129) to a critical request that was neither challenged nor aggressive, on an association
    that speaks SAv5, means the command ran unauthenticated: alert on that response."""
    fc, gv = m["function_code"], m.get("object_gv") or []
    if fc is None:  # a link-layer frame: no application message
        return
    if m.get("dir"):
        if fc in AUTHENTICATE_REQUESTS or fc == 0:  # the challenge reply / key change; confirms
            return
        if fc in SA_CRITICAL:
            critical[association] = (m.get("app_sequence"), "g120v3" in gv and "g120v9" in gv)
        else:
            critical.pop(association, None)
        return
    pending = critical.get(association)
    if pending is None or fc not in (129, 131):
        return
    if "g120v1" in gv:
        critical[association] = (pending[0], True)
        return
    if "g120v7" in gv:
        del critical[association]
        return
    if fc != 129 or m.get("app_sequence") != pending[0]:
        return
    del critical[association]
    if is_secure and not pending[1] and not (m.get("iin") or 0) & 0x0001:  # IIN2.0: function not run
        out.raise_("dnp3_auth_missing_challenge", (m["src"], m["dst"]), frame, ts)


# -- Modbus ----------------------------------------------------------------------------------------------


def _modbus(msgs: Messages, known: set[tuple[Any, ...]], out: _Alerts) -> None:
    exceptions = _Burst(5, 30)
    busy = _Burst(10, 10)
    for frame, ts, m in msgs:
        if m.get("action") == "decode_error":
            continue
        pair = (m["src"], m["dst"])
        fc = m.get("function_code")
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
            count = exceptions.add(pair, ts)
            if count:
                out.raise_("modbus_exception_burst", pair, frame, ts, count)
            if m.get("exception_code") in (5, 6):  # server busy, acknowledge
                count = busy.add((m["src"],), ts)
                if count:
                    out.raise_("modbus_busy_flood", (m["src"],), frame, ts, count)


# -- IEC 60870-5-104 -------------------------------------------------------------------------------------

# IEC 60870-5-101 §7.2.1.1 type ids: commands and set points (C_SC..C_BO 45-51, with time tag 58-64),
# parameters (P_ME_NA..P_AC_NA 110-113); cause of transmission 6 = activation (§7.2.3).
IEC104_COMMANDS = frozenset(range(45, 52)) | frozenset(range(58, 65))
IEC104_PARAMETERS = frozenset(range(110, 114))
COT_ACTIVATION = 6


def _iec104(msgs: Messages, known: set[tuple[Any, ...]], out: _Alerts) -> None:
    for frame, ts, m in msgs:
        if m.get("action") == "decode_error" or m.get("cot") != COT_ACTIVATION:
            continue
        pair = (m["src"], m["dst"])
        type_id = m.get("type_id")
        unknown = _pair(m) not in known
        if type_id in IEC104_COMMANDS and unknown:
            out.raise_("iec104_command_unknown_station", pair, frame, ts)
        if type_id == 100 and unknown:  # C_IC_NA_1 general interrogation
            out.raise_("iec104_interrogation_unknown", pair, frame, ts)
        if type_id == 103 and unknown:  # C_CS_NA_1 clock synchronisation
            out.raise_("iec104_clock_sync_unknown", pair, frame, ts)
        if type_id == 105:  # C_RP_NA_1 reset process
            out.raise_("iec104_reset_process", pair, frame, ts)
        if type_id in IEC104_PARAMETERS:
            out.raise_("iec104_parameter_change", pair, frame, ts)


# -- DLMS/COSEM ------------------------------------------------------------------------------------------

DLMS_CLOCK_SET = frozenset(
    {
        "clock_set",
        "clock_shift_time",
        "clock_preset_adjusting_time",
        "clock_adjust_to_preset_time",
        "clock_time_zone_set",
    }
)
DLMS_SECURITY = frozenset(
    {
        "security_policy_change",
        "security_key_change",
        "association_secret_change",
        "security_certificate_import",
        "security_certificate_remove",
    }
)


def _dlms(msgs: Messages, known: set[tuple[Any, ...]], out: _Alerts) -> None:
    # mass disconnect: remote disconnects to > 20 distinct meters from one host in 5 minutes
    disconnects: dict[str, dict[str, float]] = {}
    for frame, ts, m in msgs:
        action = m.get("action")
        pair = (m["src"], m["dst"])
        if action in ("remote_disconnect", "remote_reconnect"):
            out.raise_("dlms_remote_disconnect", (*pair, action), frame, ts)
        if action == "image_activate":
            out.raise_("dlms_image_activate", pair, frame, ts)
        if action in DLMS_CLOCK_SET and _pair(m) not in known:
            out.raise_("dlms_clock_set", pair, frame, ts)
        if action in DLMS_SECURITY:
            out.raise_("dlms_security_change", pair, frame, ts)
        if action == "remote_disconnect":
            meters = disconnects.setdefault(m["src"], {})
            meters[m["dst"]] = ts
            for meter in [d for d, t in meters.items() if ts - t > 300]:
                del meters[meter]
            if len(meters) > 20:
                out.raise_("dlms_mass_disconnect", (m["src"],), frame, ts, len(meters))
                meters.clear()


# -- ANSI C12.22 -----------------------------------------------------------------------------------------

# ANSI C12.22-2008 §5.3.2.4 service request codes (the ones the rules key on).
C1222_SERVICE_CODES = {
    "identify": 0x20,
    "registration": 0x27,
    "logon": 0x50,
    "security": 0x51,
    "logoff": 0x52,
}
C1219_MANUFACTURER_FLAG = 0x0800  # C12.19 §9.1.8 TBL_PROC_NBR bit 11: manufacturer procedure
C1222_PROCEDURE_RULES = {3: "c1222_clear_data", 9: "c1222_remote_reset"}  # SP3, SP9


def _c1222(msgs: Messages, known: set[tuple[Any, ...]], out: _Alerts) -> None:
    registrations = _Burst(20, 60)
    secured: dict[tuple[Any, ...], float] = {}  # (calling, called AP title) -> last secured EPSEM
    for frame, ts, m in msgs:
        if m.get("action") == "decode_error":
            continue
        pair = (m["src"], m["dst"])
        request = m.get("pdu_type") == "request"
        mode = m["security_mode"]  # EPSEM control bits 2-3 (C12.22 §5.3.2.2): 0 cleartext
        codes = {C1222_SERVICE_CODES.get(s) for s in m.get("service") or []}
        if request and mode == 0 and codes & {0x50, 0x51}:
            out.raise_("c1222_cleartext_logon", pair, frame, ts)
        if request and 0x27 in codes:
            count = registrations.add((m["dst"],), ts)
            if count:
                out.raise_("c1222_registration_storm", (m["dst"],), frame, ts, count)
        procedure = m.get("procedure_id")
        if request and isinstance(procedure, int) and not procedure & C1219_MANUFACTURER_FLAG:
            if procedure in C1222_PROCEDURE_RULES:
                out.raise_(C1222_PROCEDURE_RULES[procedure], pair, frame, ts)
            if procedure == 10 and _pair(m) not in known:  # SP10 set date/time
                out.raise_("c1222_set_time", pair, frame, ts)
        # a manufacturer procedure means what the capture's vendor table names it (the golden replay
        # configures the sensor with that table)
        action = m.get("vendor_action") or m.get("action")
        if request and action in ("remote_disconnect", "remote_connect"):
            out.raise_("c1222_remote_connect_disconnect", (*pair, action), frame, ts)
        # downgrade: a secured EPSEM, then a cleartext one from the same calling to the same called AP
        # title within an hour
        titles = (m["calling_ap_title"], m["called_ap_title"])
        if mode in (1, 2):
            secured[titles] = ts
        elif mode == 0 and titles in secured and ts - secured[titles] <= 3600:
            out.raise_("c1222_security_downgrade", titles, frame, ts, 2)
            del secured[titles]


DERIVATIONS: dict[str, Callable[[Messages, set[tuple[Any, ...]], _Alerts], None]] = {
    "modbus": _modbus,
    "dnp3": _dnp3,
    "iec104": _iec104,
    "dlms": _dlms,
    "c1222": _c1222,
}


def derive(capture: str, learned_on: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The alerts the truth of ``capture`` calls for, with a baseline of ``learned_on`` (None: none)."""
    known = known_pairs(learned_on)
    msgs = messages(capture)
    out = _Alerts()
    _decoder(msgs, known, out)
    for protocol in sorted({m["protocol"] for _f, _t, m in msgs}):
        DERIVATIONS[protocol]([x for x in msgs if x[2]["protocol"] == protocol], known, out)
    ids = rule_ids()
    return sorted(
        (
            {"rule": a["rule"], "rule_id": ids[a["rule"]], "frame": a["frame"], "count": a["count"]}
            for a in out.alerts
        ),
        key=lambda a: (a["frame"], a["rule"]),
    )


def derive_dnp3(msgs: Messages, known: set[tuple[Any, ...]] | None) -> list[dict[str, Any]]:
    """The DNP3 derivation alone, on given messages."""
    out = _Alerts()
    _dnp3(msgs, known or set(), out)
    return out.alerts


def expected(capture: str) -> dict[str, Any]:
    golden = GOLDEN[capture]
    data: dict[str, Any] = {
        "capture": capture_file(capture),
        "baseline_learned_on": list(golden.learned_on) if golden.learned_on is not None else None,
        "baseline_why": golden.why,
        "alerts": derive(capture, golden.learned_on),
    }
    if golden.learned_on is not None:
        data["alerts_without_baseline"] = derive(capture, None)
    vendor_procedures = truth(capture).get("c1222_vendor_procedures")
    if vendor_procedures:  # the sensor configuration the replay needs, as the config file's [c1222]
        data["sensor_config"] = {"c1222": {"vendor_procedures": vendor_procedures}}
    return data


def main() -> int:
    for capture in GOLDEN:
        data = expected(capture)
        path = OUT / f"{capture}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(
            f"{capture}: {len(data['alerts'])} alerts, {len(data.get('alerts_without_baseline', []))} "
            "without a baseline"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
