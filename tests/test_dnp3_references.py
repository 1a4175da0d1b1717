"""otsentry's DNP3 decoding against independent references on the shared captures.

* Wireshark 4.0.17: per frame, application function codes, link function codes of link-only
  frames, object group/variation, qualifier prefix/range codes, start/stop, quantities and CROB
  fields. tshark's output is stored in tests/data/dnp3_tshark.json (see dnp3_tshark.py); every
  remaining difference is listed with its reason in tests/data/dnp3_tshark_differences.json and
  any unlisted one fails.
* Zeek 6 baselines (zeek/baselines/scripts.base.protocols.dnp3.*): dnp3.log rows and the printed
  application/object header and point events, rendered from otsentry's events and diffed.
* CISA ICSNPP-DNP3 baselines: dnp3.log, dnp3_control.log (every CROB) and dnp3_objects.log.

Run as a script to print the agreement figures and the current differences.
"""

from __future__ import annotations

import collections
import json
import shutil
import struct
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from dnp3_replay import SHARED, Replay, replay
from dnp3_tshark import REFERENCE, dnp3_captures, tshark_frames, tshark_version
from otsentry.protocols.dnp3.codes import APP_FUNCTIONS

DIFFERENCES = Path(__file__).resolve().parent / "data" / "dnp3_tshark_differences.json"
ZEEK = SHARED / "zeek" / "baselines"
ICSNPP = SHARED / "icsnpp-dnp3" / "baselines" / "analyzer.basic"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared captures not found at {SHARED}"),
]


@cache
def replayed(capture: str) -> Replay:
    return replay(SHARED / capture, max_points=100_000)


def _app_messages(rep: Replay) -> list[tuple[int, int, dict[str, Any], Any]]:
    return [
        (frame, d, f, flow)
        for (frame, d, f), flow in zip(rep.messages, rep.flows, strict=True)
        if f["event.dataset"] == "otsentry.dnp3" and "dnp3.application.function_code" in f
    ]


# -- Wireshark --------------------------------------------------------------------------------------


def _ints(values: dict[str, list[str]], name: str) -> list[int]:
    return [int(v, 0) for v in values.get(name, [])]


def compare_with_tshark(
    capture: str, tframes: dict[str, dict[str, list[str]]]
) -> tuple[collections.Counter, list]:
    """(agreement counters, differences as (capture, frame, aspect, tshark, otsentry))."""
    rep = replayed(capture)
    ours: dict[str, dict[str, list]] = collections.defaultdict(lambda: {"func": [], "obj": [], "link": []})
    for frame, _d, f in rep.messages:
        if f["event.dataset"] != "otsentry.dnp3":
            continue
        mine = ours[str(frame)]
        if "dnp3.application.function_code" in f:
            mine["func"].append(f["dnp3.application.function_code"])
            mine["obj"].extend(f.get("dnp3.objects", []))
        else:
            mine["link"].append(("prm" if f["dnp3.link.prm"] else "sec", f["dnp3.link.function_code"]))
    counts: collections.Counter = collections.Counter()
    diffs = []

    def check(frame: str, aspect: str, theirs: list, mine: list) -> None:
        if theirs or mine:
            counts[aspect] += 1
            if theirs == mine:
                counts[aspect + "_agree"] += 1
            else:
                diffs.append((capture, int(frame), aspect, theirs, mine))

    for frame in sorted(set(ours) | set(tframes), key=int):
        t = tframes.get(frame, {})
        mine = ours.get(frame, {"func": [], "obj": [], "link": []})
        check(frame, "function", sorted(_ints(t, "dnp3.al.func")), sorted(mine["func"]))
        link = [("prm", v) for v in _ints(t, "dnp3.ctl.prifunc") if v not in (3, 4)]
        link += [("sec", v) for v in _ints(t, "dnp3.ctl.secfunc")]
        check(frame, "link_function", sorted(link), sorted(mine["link"]))
        objs = mine["obj"]
        tobj = _ints(t, "dnp3.al.obj")
        check(frame, "object", tobj, [o["group"] << 8 | o["variation"] for o in objs])
        if tobj != [o["group"] << 8 | o["variation"] for o in objs]:
            continue  # the finer aspects only where both walked the same headers
        tq = list(zip(_ints(t, "dnp3.al.objq.prefix"), _ints(t, "dnp3.al.objq.range"), strict=False))
        check(frame, "qualifier", tq, [(o["qualifier"] >> 4 & 7, o["qualifier"] & 15) for o in objs])
        tr = list(zip(_ints(t, "dnp3.al.range.start"), _ints(t, "dnp3.al.range.stop"), strict=False))
        check(
            frame,
            "range",
            tr,
            [(o["start"], o["stop"]) for o in objs if o["qualifier"] & 15 < 3 and "start" in o],
        )
        check(
            frame,
            "quantity",
            _ints(t, "dnp3.al.range.quantity"),
            [o["count"] for o in objs if o["qualifier"] & 15 in (7, 8, 9, 11) and "count" in o],
        )
        tcrob = list(
            zip(
                *(_ints(t, k) for k in ("dnp3.ctl.op", "dnp3.ctl.trip", "dnp3.ctl.clr", "dnp3.al.count")),
                *(_ints(t, k) for k in ("dnp3.al.on_time", "dnp3.al.off_time")),
                strict=False,
            )
        )
        crobs = [p for o in objs if (o["group"], o["variation"]) == (12, 1) for p in o.get("points", [])]
        check(
            frame,
            "crob",
            tcrob,
            [
                (p["code"] & 15, p["code"] >> 6, p["code"] >> 4 & 3, p["count"], p["on_time"], p["off_time"])
                for p in crobs
            ],
        )
    return counts, diffs


@cache
def tshark_comparison() -> tuple[collections.Counter, list]:
    reference = json.loads(REFERENCE.read_text())["captures"]
    total: collections.Counter = collections.Counter()
    diffs: list = []
    for capture, tframes in sorted(reference.items()):
        counts, found = compare_with_tshark(capture, tframes)
        total.update(counts)
        diffs.extend(found)
    return total, diffs


def agreement(total: collections.Counter, aspect: str) -> float:
    return 100.0 * total[aspect + "_agree"] / total[aspect]


def test_reference_covers_every_shared_dnp3_capture() -> None:
    reference = json.loads(REFERENCE.read_text())
    assert reference["tshark"].startswith("TShark (Wireshark) 4.0.")
    assert sorted(reference["captures"]) == [str(p.relative_to(SHARED)) for p in dnp3_captures()]
    assert len(reference["captures"]) >= 150


def test_function_codes_agree_with_wireshark() -> None:
    total, _ = tshark_comparison()
    # Frames where either tool sees an application function code; the rest are listed differences.
    assert total["function"] >= 1900
    assert agreement(total, "function") >= 99.0
    assert total["link_function"] >= 40 and agreement(total, "link_function") == 100.0
    for aspect in ("qualifier", "range", "quantity"):
        assert agreement(total, aspect) == 100.0, aspect
    assert agreement(total, "object") >= 92.0
    assert agreement(total, "crob") >= 96.0


def test_every_difference_from_wireshark_is_explained() -> None:
    _, diffs = tshark_comparison()
    listed = json.loads(DIFFERENCES.read_text())
    explained = {(d["capture"], d["frame"], d["aspect"]) for d in listed}
    found = {(capture, frame, aspect) for capture, frame, aspect, _t, _o in diffs}
    assert not found - explained, f"unexplained differences: {sorted(found - explained)[:10]}"
    assert not explained - found, f"listed differences that no longer occur: {sorted(explained - found)[:10]}"
    assert all(d["reason"] for d in listed)


def test_malformed_capture_differences_are_truncated_walks() -> None:
    listed = json.loads(DIFFERENCES.read_text())
    capture = "iti-ics/openics/DNP3-Malformed.pcap"
    frames = {d["frame"] for d in listed if d["capture"] == capture}
    assert len(frames) > 50
    messages = {frame: f for frame, _d, f, _fl in _app_messages(replayed(capture))}
    assert all(messages[frame].get("dnp3.objects_truncated") for frame in frames)


def test_wrapping_messages_are_decoded_where_wireshark_drops_them() -> None:
    messages = {frame: f for frame, _d, f, _fl in _app_messages(replayed("icsnpp-dnp3/dnp3_example.pcap"))}
    for frame in (18, 114, 210, 810):  # transport sequence 63 → 0 inside the message
        assert messages[frame]["dnp3.transport.segments"] >= 2
        assert not messages[frame].get("dnp3.objects_truncated")
    assert messages[18]["dnp3.object_gv"] == ["g1v2", "g10v2", "g30v2", "g40v2"]
    assert messages[810]["event.action"] == "unsolicited_response"
    # Wireshark joins frame 311 (FIR+FIN, seq 0) to frame 210's fragment and calls it a CONFIRM.
    assert messages[311]["event.action"] == "response"
    assert messages[311]["dnp3.control.index"] == [2]
    assert messages[311]["dnp3.control.op_type"] == ["PULSE_OFF"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark missing")
def test_tshark_reference_is_current() -> None:
    reference = json.loads(REFERENCE.read_text())
    assert reference["tshark"] == tshark_version()
    for capture in sorted(reference["captures"])[::25]:  # a sample: all of them take a minute
        assert reference["captures"][capture] == tshark_frames(SHARED / capture), capture


# -- Zeek -------------------------------------------------------------------------------------------


def read_zeek_log(path: Path) -> list[dict[str, str]]:
    names: list[str] = []
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            names = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            rows.append(dict(zip(names, line.split("\t"), strict=True)))
    return rows


def _flow_key(row: dict[str, str]) -> tuple:
    return ((row["id.orig_h"], int(row["id.orig_p"])), (row["id.resp_h"], int(row["id.resp_p"])))


def zeek_dnp3_log(rep: Replay) -> dict[tuple, list[tuple[str, str, str]]]:
    """otsentry's messages as Zeek's dnp3.log rows per flow: a request waits for the next response."""
    rows: dict[tuple, list] = collections.defaultdict(list)
    pending: dict[tuple, str] = {}
    for _frame, _d, f, flow in _app_messages(rep):
        fc = f["dnp3.application.function_code"]
        name = APP_FUNCTIONS.get(fc, "?").upper()
        if fc >= 128:
            rows[flow].append((pending.pop(flow, "-"), name, str(f["dnp3.iin"])))
        else:
            pending[flow] = name
    for flow, name in pending.items():
        rows[flow].append((name, "-", "-"))
    return rows


def _zeek_cases() -> list[tuple[str, str]]:
    cases = []
    for directory in sorted(ZEEK.glob("scripts.base.protocols.dnp3.*")):
        name = directory.name.rsplit(".", 1)[1]
        cases.append((directory.name, f"zeek/dnp3/{'dnp3' if name == 'events' else name}.pcap"))
    return cases


@pytest.mark.parametrize(("baseline", "capture"), _zeek_cases())
def test_zeek_dnp3_log(baseline: str, capture: str) -> None:
    log = ZEEK / baseline / "dnp3.log"
    if not log.exists():
        pytest.skip("baseline has no dnp3.log")
    expected: dict[tuple, list] = collections.defaultdict(list)
    for row in read_zeek_log(log):
        expected[_flow_key(row)].append((row["fc_request"], row["fc_reply"], row["iin"]))
    assert zeek_dnp3_log(replayed(capture)) == expected


def zeek_event_lines(rep: Replay) -> list[str]:
    """Zeek's dnp3_application_*_header and dnp3_object_header events rendered from otsentry."""
    lines = []
    for _frame, d, f, _flow in _app_messages(rep):
        fc = f["dnp3.application.function_code"]
        ctrl = sum(
            bit
            for bit, key in ((0x80, "fir"), (0x40, "fin"), (0x20, "con"), (0x10, "uns"))
            if f[f"dnp3.application.{key}"]
        )
        ctrl |= f["dnp3.application.sequence"]
        orig = "T" if d == 0 else "F"
        if fc >= 128:
            lines.append(f"dnp3_application_response_header, {orig}, {ctrl}, {fc}, {f['dnp3.iin']}")
        else:
            lines.append(f"dnp3_application_request_header, {orig}, {ctrl}, {fc}")
        for o in f.get("dnp3.objects", []):
            qualifier, rng, count = o["qualifier"], o["qualifier"] & 15, o.get("count", 0)
            if qualifier & 0x80 or rng in (6, 10, 12, 13, 14, 15):
                count, low, high = 0, (0 if qualifier & 0x80 else 65535), (0 if qualifier & 0x80 else 65535)
            elif rng < 3:
                low, high = o["start"], o["stop"]
            elif rng == 8:  # Zeek reads the 16-bit count big-endian (a Zeek quirk the baseline records)
                low, high = struct.unpack(">H", struct.pack("<H", count))[0], 0
            else:
                low, high = count, 0
            obj_type = o["group"] << 8 | o["variation"]
            lines.append(f"dnp3_object_header, {orig}, {obj_type}, {qualifier}, {count}, {low}, {high}")
    return lines


_ZEEK_POINTS = {  # (group, variation) → Zeek event and its arguments from a point
    (12, 1): ("dnp3_crob", lambda p: (p["code"], p["count"], p["on_time"], p["off_time"], p["status"])),
    (30, 1): ("dnp3_analog_input_32wFlag", lambda p: (p["flags"], p["value"])),
    (30, 3): ("dnp3_analog_input_32woFlag", lambda p: (p["value"],)),
    (30, 5): (
        "dnp3_analog_input_SPwFlag",
        lambda p: (p["flags"], struct.unpack("<I", struct.pack("<f", p["value"]))[0]),
    ),
    (32, 1): ("dnp3_analog_input_event_32woTime", lambda p: (p["flags"], p["value"])),
    (20, 5): ("dnp3_counter_32woFlag", lambda p: (p["value"],)),
    (21, 9): ("dnp3_frozen_counter_32woFlag", lambda p: (p["value"],)),
}


def zeek_point_lines(rep: Replay) -> list[str]:
    lines = []
    for _frame, d, f, _flow in _app_messages(rep):
        for o in f.get("dnp3.objects", []):
            render = _ZEEK_POINTS.get((o["group"], o["variation"]))
            for p in o.get("points", []) if render else ():
                # Zeek prints signed analog values as unsigned 64-bit counts.
                args = ", ".join(str(v % 2**64) for v in render[1](p))
                lines.append(f"{render[0]}, {'T' if d == 0 else 'F'}, {args}")
    return lines


@pytest.mark.parametrize(("baseline", "capture"), _zeek_cases())
def test_zeek_printed_events(baseline: str, capture: str) -> None:
    output = (ZEEK / baseline / "output").read_text().splitlines()
    headers = [line for line in output if line.startswith(("dnp3_application_re", "dnp3_object_header"))]
    assert zeek_event_lines(replayed(capture)) == headers
    names = tuple(name for name, _ in _ZEEK_POINTS.values())
    points = [line for line in output if line.startswith(names)]
    assert zeek_point_lines(replayed(capture)) == points


# -- ICSNPP -----------------------------------------------------------------------------------------

_TCC = {"NUL": "Nul", "CLOSE": "Close", "TRIP": "Trip"}
_OPS = {
    "NUL": "Nul",
    "PULSE_ON": "Pulse On",
    "PULSE_OFF": "Pulse Off",
    "LATCH_ON": "Latch On",
    "LATCH_OFF": "Latch Off",
}
ICSNPP_CAPTURE = "icsnpp-dnp3/dnp3_example.pcap"


def test_icsnpp_dnp3_log() -> None:
    expected: dict[tuple, list] = collections.defaultdict(list)
    for row in read_zeek_log(ICSNPP / "dnp3.log"):
        expected[_flow_key(row)].append((row["fc_request"], row["fc_reply"], row["iin"]))
    assert sum(map(len, expected.values())) == 368
    assert zeek_dnp3_log(replayed(ICSNPP_CAPTURE)) == expected


def test_icsnpp_control_log() -> None:
    expected: dict[tuple, list] = collections.defaultdict(list)
    for row in read_zeek_log(ICSNPP / "dnp3_control.log"):
        expected[_flow_key(row)].append(
            tuple(
                row[k]
                for k in ("is_orig", "function_code", "index_number", "trip_control_code", "operation_type")
            )
            + tuple(row[k] for k in ("clear_bit", "execute_count", "on_time", "off_time", "status_code"))
        )
    ours: dict[tuple, list] = collections.defaultdict(list)
    for _frame, d, f, flow in _app_messages(replayed(ICSNPP_CAPTURE)):
        fc = f["dnp3.application.function_code"]
        for o in f["dnp3.objects"]:
            for p in o.get("points", []) if (o["group"], o["variation"]) == (12, 1) else ():
                status = "-" if fc < 128 else "Success" if p["status"] == 0 else p["status_name"]
                row = ["T" if d == 0 else "F", APP_FUNCTIONS[fc].upper(), str(p["index"]), _TCC[p["tcc"]]]
                row += [_OPS[p["op_type"]], "T" if p["clear"] else "F", str(p["count"]), str(p["on_time"])]
                ours[flow].append((*row, str(p["off_time"]), status))
    assert sum(map(len, expected.values())) == 534
    assert ours == expected


_OBJECT_NAMES = {
    (60, 1): "Class 0 Data",
    (60, 2): "Class 1 Data",
    (60, 3): "Class 2 Data",
    (60, 4): "Class 3 Data",
    (1, 2): "Binary Input With Status",
    (10, 2): "Binary Output Status",
    (30, 2): "16-Bit Analog Input",
    (40, 2): "16-Bit Analog Output Status",
}


def test_icsnpp_objects_log() -> None:
    # ICSNPP logs READ and RESPONSE object headers other than CROBs (those go to dnp3_control.log).
    expected = collections.Counter(
        (r["function_code"], r["object_type"], r["object_count"], r["range_low"], r["range_high"])
        for r in read_zeek_log(ICSNPP / "dnp3_objects.log")
    )
    ours: collections.Counter = collections.Counter()
    for _frame, _d, f, _flow in _app_messages(replayed(ICSNPP_CAPTURE)):
        fc = f["dnp3.application.function_code"]
        for o in f["dnp3.objects"]:
            if fc in (1, 129) and o["group"] != 12:
                rng = [str(o[k]) if k in o else "-" for k in ("count", "start", "stop")]
                ours[(APP_FUNCTIONS[fc].upper(), _OBJECT_NAMES[o["group"], o["variation"]], *rng)] += 1
    assert ours == expected


if __name__ == "__main__":
    total, diffs = tshark_comparison()
    for aspect in ("function", "link_function", "object", "qualifier", "range", "quantity", "crob"):
        print(
            f"{aspect:14} {total[aspect + '_agree']:5}/{total[aspect]:5} = {agreement(total, aspect):6.2f} %"
        )
    for d in diffs:
        print(str(d)[:200])
