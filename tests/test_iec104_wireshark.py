"""Agreement with Wireshark's ``iec60870_104``/``iec60870_asdu`` dissectors (tshark 4.0) on every
IEC 104 capture in ../shared/pcaps.

Each capture's TCP payloads are fed per connection and direction, in sequence order, to one
analyzer, as the sensor does. Per frame, otsentry's APDUs (APCI format, U function, type id, cause)
must equal tshark's; then header fields, IOAs and information element values are compared field by
field. Every frame that differs is listed in ``KNOWN_DIFFERENCES`` with the reason; the test fails on
an unlisted difference and on a listed one that no longer occurs.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from iec104_helpers import IEC104_CAPTURES, replay
from otsentry.protocols.iec104_codes import TYPE_ELEMENTS
from shared import SHARED_PCAPS, needs_shared, needs_tshark, tshark_fields

pytestmark = [needs_shared, needs_tshark, pytest.mark.shared]

_JUNK = (
    "TestDissectIec104.pcap is a robustness test: junk octets, then an APDU that breaks the format. "
    "Wireshark skips any junk up to the first 0x68 and dissects what follows (flagging it malformed); "
    "otsentry reports the junk once (decode error) and resynchronises only on a plausible APDU, so "
    "these bytes are skipped: "
)
_TEST = "TestDissectIec104.pcap"
KNOWN_DIFFERENCES: dict[tuple[str, int], str] = {
    (_TEST, 25): _JUNK + "68 04 16161616, an I-format APCI without ASDU",
    (_TEST, 36): _JUNK + "68 05 17171717 17, U-format with two function bits (WS: utype 0x05)",
    (_TEST, 41): _JUNK + "68 06 18181818 1818, I-format with a 2-octet ASDU (WS: type 24)",
    (_TEST, 58): _JUNK + "the same 68 06 18… split over frames 56/58",
    (_TEST, 71): _JUNK + "68 06 19191919 1919, S-format with reserved bits and 2 extra octets",
    (_TEST, 75): _JUNK + "the same 68 06 19… split over frames 73/75",
    (_TEST, 83): _JUNK + "68 08 1a1a1a1a 1a1a1a1a, I-format with a 4-octet ASDU (WS: type 26)",
    (_TEST, 96): _JUNK + "the same 68 08 1a… split over frames 94/96",
}

APCI_NAMES = {"0x00000000": "I", "0x00000001": "S", "0x00000003": "U"}
U_BITS = {
    "STARTDT_act": 0x01,
    "STARTDT_con": 0x02,
    "STOPDT_act": 0x04,
    "STOPDT_con": 0x08,
    "TESTFR_act": 0x10,
    "TESTFR_con": 0x20,
}
SUMMARY_FIELDS = ("iec60870_104.type", "iec60870_104.utype", "iec60870_asdu.typeid", "iec60870_asdu.causetx")

# APDU/ASDU header fields: tshark name → otsentry name
HEADER_FIELDS = {
    "iec60870_104.tx": "iec104.send_seq",
    "iec60870_104.rx": "iec104.recv_seq",
    "iec60870_asdu.addr": "iec104.common_address",
    "iec60870_asdu.oa": "iec104.originator",
    "iec60870_asdu.numix": "iec104.num_objects",
    "iec60870_asdu.sq": "iec104.sq",
    "iec60870_asdu.nega": "iec104.negative",
    "iec60870_asdu.test": "iec104.test",
}


def _time_parts(obj: dict, key: str = "time") -> dict[str, int]:
    stamp = datetime.fromisoformat(obj[key])
    return {
        "year": stamp.year,
        "month": stamp.month,
        "day": stamp.day,
        "hour": stamp.hour,
        "min": stamp.minute,
        "ms": stamp.second * 1000 + stamp.microsecond // 1000,
    }


def _bitstring(obj: dict) -> int:
    # Wireshark reads BSI most significant octet first; IEC 60870-5-4 sends the least significant
    # octet first (as lib60870 does), so compare with the octets swapped.
    return int.from_bytes(obj["value"].to_bytes(4, "little"), "big")


def _flag(name: str) -> Any:
    return lambda obj: name in obj["quality"]


_VALUE, _QUALIFIER, _SELECT = itemgetter("value"), itemgetter("qualifier"), itemgetter("select")
_WS = "iec60870_asdu."
# information element → [(tshark field, value of the otsentry object)]
ELEMENT_FIELDS: dict[str, list[tuple[str, Any]]] = {
    "SIQ": [(_WS + "siq.spi", _VALUE), (_WS + "siq.iv", _flag("IV"))],
    "DIQ": [(_WS + "diq.dpi", _VALUE), (_WS + "diq.iv", _flag("IV"))],
    "QDS": [(_WS + "qds.iv", _flag("IV")), (_WS + "qds.ov", _flag("OV"))],
    "VTI": [(_WS + "vti.v", _VALUE), (_WS + "vti.t", itemgetter("transient"))],
    "NVA": [(_WS + "normval", _VALUE)],
    "SVA": [(_WS + "scalval", _VALUE)],
    "R32": [(_WS + "float", _VALUE)],
    "BSI": [(_WS + "bitstring", _bitstring)],
    "BCR": [(_WS + "bcr.count", _VALUE), (_WS + "bcr.sq", itemgetter("sequence"))],
    "SCO": [(_WS + "sco.on", _VALUE), (_WS + "sco.qu", _QUALIFIER), (_WS + "sco.se", _SELECT)],
    "DCO": [(_WS + "dco.on", _VALUE), (_WS + "dco.qu", _QUALIFIER), (_WS + "dco.se", _SELECT)],
    "RCO": [(_WS + "rco.up", _VALUE), (_WS + "rco.qu", _QUALIFIER), (_WS + "rco.se", _SELECT)],
    "QOS": [(_WS + "qos.ql", _QUALIFIER), (_WS + "qos.se", _SELECT)],
    "COI": [(_WS + "coi_r", _QUALIFIER), (_WS + "coi_i", itemgetter("local_param_change"))],
    "QOI": [(_WS + "qoi", _QUALIFIER)],
    "QCC": [(_WS + "rqt", _QUALIFIER), (_WS + "frz", itemgetter("freeze"))],
    "QRP": [(_WS + "qrp", _QUALIFIER)],
    "CP56": [
        (f"{_WS}cp56time.{part}", lambda obj, part=part: _time_parts(obj)[part])
        for part in ("ms", "min", "hour", "day", "month", "year")
    ],
}
VALUE_FIELDS = tuple(sorted({name for pairs in ELEMENT_FIELDS.values() for name, _ in pairs}))
ALL_FIELDS = SUMMARY_FIELDS + tuple(HEADER_FIELDS) + ("iec60870_asdu.ioa",) + VALUE_FIELDS


def _wireshark(path: Path) -> dict[int, dict[str, list[str]]]:
    rows = tshark_fields(path, ALL_FIELDS)
    return {
        int(row[0]): {
            name: [v for v in value.split(",") if v] for name, value in zip(ALL_FIELDS, row[1:], strict=True)
        }
        for row in rows
    }


def _full_year(raw: float) -> float:
    # tshark prints the 7-bit year octet; its CP56 rendering (like otsentry's) reads 0–69 as
    # 2000–2069 and 70–127 as 1970–2027 (090813_diverse.pcap's master sends 109 for 2009).
    return 1900 + raw + (100 if raw < 70 else 0)


WIRESHARK_TRANSFORMS = {"iec60870_asdu.cp56time.year": _full_year}


def _number(text: str) -> float:
    if text in ("True", "False"):
        return float(text == "True")
    return float(int(text, 16)) if text.startswith("0x") else float(text)


def _summary_wireshark(frame: dict[str, list[str]]) -> tuple:
    return (
        [APCI_NAMES.get(v, v) for v in frame.get("iec60870_104.type", [])],
        [int(v, 16) for v in frame.get("iec60870_104.utype", [])],
        [int(v) for v in frame.get("iec60870_asdu.typeid", [])],
        [int(v) for v in frame.get("iec60870_asdu.causetx", [])],
    )


def _summary_ours(messages: list[dict]) -> tuple:
    """Decode errors count too when they carry APCI/ASDU fields (an APDU broken inside)."""
    return (
        [m["iec104.apci"] for m in messages if "iec104.apci" in m],
        [U_BITS[m["iec104.u_function"]] for m in messages if "iec104.u_function" in m],
        [m["iec104.type_id"] for m in messages if "iec104.type_id" in m],
        [m["iec104.cot"] for m in messages if "iec104.cot" in m],
    )


def _values_ours(messages: list[dict]) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {name: [] for name in ALL_FIELDS}
    for message in messages:
        if message["event.dataset"] != "otsentry.iec104":
            continue
        for wireshark_name, name in HEADER_FIELDS.items():
            if name in message:
                values[wireshark_name].append(float(message[name]))
        values["iec60870_asdu.ioa"] += [float(v) for v in message.get("iec104.ioa", [])]
        for obj in message.get("iec104.objects", []):
            for element in TYPE_ELEMENTS[message["iec104.type_id"]]:
                for wireshark_name, extract in ELEMENT_FIELDS.get(element, []):
                    values[wireshark_name].append(float(extract(obj)))
    return values


def _same(ours: list[float], theirs: list[float]) -> bool:
    return len(ours) == len(theirs) and all(
        math.isclose(a, b, rel_tol=1e-6) for a, b in zip(ours, theirs, strict=True)
    )


def compare(path: Path) -> tuple[int, dict[int, tuple], int, list[tuple]]:
    """(frames with an APDU in either tool, differing frames, field values compared, differing
    values outside the differing frames)."""
    ours = replay(path).by_frame
    theirs = _wireshark(path)
    frames = 0
    differing: dict[int, tuple] = {}
    values_compared = 0
    value_differences: list[tuple] = []
    for frame in sorted(set(ours) | set(theirs)):
        mine = _summary_ours(ours.get(frame, []))
        wireshark = _summary_wireshark(theirs.get(frame, {}))
        if not any(mine) and not any(wireshark):
            continue
        frames += 1
        if mine != wireshark:
            differing[frame] = (mine, wireshark)
            continue
        my_values = _values_ours(ours.get(frame, []))
        for name in ALL_FIELDS[len(SUMMARY_FIELDS) :]:
            transform = WIRESHARK_TRANSFORMS.get(name, float)
            their_values = [transform(_number(v)) for v in theirs.get(frame, {}).get(name, [])]
            if my_values[name] or their_values:
                values_compared += 1
                if not _same(my_values[name], their_values):
                    value_differences.append((frame, name, my_values[name], their_values))
    return frames, differing, values_compared, value_differences


@pytest.mark.parametrize("path", IEC104_CAPTURES, ids=lambda p: str(p.relative_to(SHARED_PCAPS)))
def test_agreement_with_wireshark(path: Path) -> None:
    frames, differing, values_compared, value_differences = compare(path)
    known = {frame for (name, frame) in KNOWN_DIFFERENCES if name == path.name}
    assert frames > 50
    assert set(differing) == known, {f: differing.get(f) for f in set(differing) ^ known}
    assert values_compared > frames
    assert value_differences == []


def test_every_capture_is_covered() -> None:
    assert len(IEC104_CAPTURES) == 4
    assert {name for name, _ in KNOWN_DIFFERENCES} <= {p.name for p in IEC104_CAPTURES}
