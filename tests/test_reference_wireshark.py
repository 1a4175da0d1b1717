"""End-to-end agreement with Wireshark's dissectors on every public Modbus and DNP3 capture.

Both tools replay the same file; per frame we compare the function codes each one reports
(several PDUs in one frame give several codes). Every frame where the two differ must be listed,
with the reason, in ``reference/wireshark_differences.csv``; an unlisted difference fails, and so
does a listed one that no longer happens (the list stays true). Over all captures, agreement must
be at least 98 % of the frames where either tool sees a function code.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from otsentry.sensor import Sensor
from shared import capture_id, needs_shared, needs_tshark, shared_captures, tshark_fields

DIFFERENCES = Path(__file__).parent / "reference" / "wireshark_differences.csv"

MODBUS_CAPTURES = shared_captures("zeek/modbus", "icsnpp-modbus", "iti-ics/ModbusTCP")
DNP3_CAPTURES = shared_captures("zeek/dnp3", "icsnpp-dnp3", "iti-ics/dnp3", "iti-ics/openics")

# What each tool calls a function code, per protocol.
OURS = {"modbus": "modbus.function_code", "dnp3": "dnp3.application.function_code"}
THEIRS = {"modbus": "modbus.func_code", "dnp3": "dnp3.al.func"}

pytestmark = [needs_shared, needs_tshark]


def otsentry_codes(path: Path, protocol: str) -> dict[int, list[int]]:
    events: list[dict] = []
    sensor = Sensor(sinks=[events.extend])
    sensor.replay(path)
    sensor.close()
    per_frame: dict[int, list[int]] = defaultdict(list)
    field = OURS[protocol]
    for event in events:
        if event.get("network.protocol") == protocol and field in event:
            per_frame[event["otsentry.pcap.frame"]].append(int(event[field]))
    return per_frame


def tshark_codes(path: Path, protocol: str) -> dict[int, list[int]]:
    per_frame: dict[int, list[int]] = {}
    for frame, value in tshark_fields(path, (THEIRS[protocol],)):
        if value:
            per_frame[int(frame)] = [int(v, 0) for v in value.split(",")]
    return per_frame


def listed_differences() -> dict[tuple[str, int], str]:
    with DIFFERENCES.open() as fh:
        return {(row["capture"], int(row["frame"])): row["reason"] for row in csv.DictReader(fh)}


def compare(path: Path, protocol: str) -> tuple[int, int, dict[int, tuple[list[int], list[int]]]]:
    ours, theirs = otsentry_codes(path, protocol), tshark_codes(path, protocol)
    frames = sorted(set(ours) | set(theirs))
    diffs = {}
    for frame in frames:
        a, b = sorted(ours.get(frame, [])), sorted(theirs.get(frame, []))
        if a != b:
            diffs[frame] = (a, b)
    return len(frames), len(frames) - len(diffs), diffs


CASES = [(p, "modbus") for p in MODBUS_CAPTURES] + [(p, "dnp3") for p in DNP3_CAPTURES]


@pytest.mark.parametrize(("path", "protocol"), CASES, ids=[f"{capture_id(p)}" for p, _ in CASES])
def test_function_codes_agree_frame_by_frame(path: Path, protocol: str) -> None:
    _, _, diffs = compare(path, protocol)
    name = capture_id(path)
    listed = {frame for (capture, frame) in listed_differences() if capture == name}
    unlisted = {f: d for f, d in diffs.items() if f not in listed}
    stale = listed - set(diffs)
    assert not unlisted, f"{name}: frames where otsentry and tshark differ (otsentry, tshark): {unlisted}"
    assert not stale, f"{name}: listed differences that no longer occur: {sorted(stale)}"


def test_overall_agreement_is_at_least_98_percent() -> None:
    totals: Counter[str] = Counter()
    for path, protocol in CASES:
        frames, agreeing, _ = compare(path, protocol)
        totals[f"{protocol}.frames"] += frames
        totals[f"{protocol}.agree"] += agreeing
    for protocol in ("modbus", "dnp3"):
        frames = totals[f"{protocol}.frames"]
        assert frames > 0
        assert totals[f"{protocol}.agree"] / frames >= 0.98, dict(totals)
