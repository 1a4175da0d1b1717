"""The sample-capture generator: deterministic, committed output unedited, and what its ground truth
claims is what Wireshark's dissectors (tshark 4.0) decode, frame by frame."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import REPO, needs_tshark, tshark_fields

PCAPS = REPO / "pcaps"
GENERATOR = PCAPS / "generate.py"
MAX_SAMPLE_BYTES = 200_000


def _generate(out: Path, hash_seed: str) -> Path:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out)], check=True, capture_output=True, env=env
    )
    return out


def _outputs(root: Path) -> dict[str, bytes]:
    """Every capture and truth file under ``root`` by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and (p.suffix in {".pcap", ".pcapng"} or p.name.endswith(".truth.json"))
    }


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("fresh"), "1")


def _committed_captures() -> list[Path]:
    return sorted(p for p in PCAPS.rglob("*") if p.suffix in {".pcap", ".pcapng"})


def load_truth(capture: Path) -> dict[str, Any]:
    """A capture's truth; a link-layer variant's ``frames_from`` points at the frames it shares."""
    path = capture.with_name(capture.name.rsplit(".", 1)[0] + ".truth.json")
    doc = json.loads(path.read_text())
    if doc.get("frames_from"):
        doc["frames"] = json.loads((path.parent / doc["frames_from"]).read_text())["frames"]
    return doc


def test_generator_is_deterministic(fresh: Path, tmp_path: Path) -> None:
    again = _outputs(_generate(tmp_path / "again", "2"))  # another hash seed: no set/dict-order dependence
    first = _outputs(fresh)
    assert len(first) >= 2 * 19
    assert first.keys() == again.keys()
    assert [name for name in first if first[name] != again[name]] == []


def test_committed_captures_equal_a_fresh_run(fresh: Path) -> None:
    committed, generated = _outputs(PCAPS), _outputs(fresh)
    assert committed.keys() == generated.keys(), "run python pcaps/generate.py and commit its output"
    edited = [name for name in generated if committed[name] != generated[name]]
    assert edited == [], f"{edited} differ from the generator's output: edit pcaps/*.py, then regenerate"


def test_sample_captures_are_small() -> None:
    captures = _committed_captures()
    assert len(captures) == 25
    assert {p.name for p in captures if p.stat().st_size >= MAX_SAMPLE_BYTES} == set()


# ---- ground truth against tshark -----------------------------------------------------------------

# One tshark run per capture gives every field the tests below look at.
FIELDS = (
    "ip.src",
    "modbus.func_code",
    "mbtcp.trans_id",
    "mbtcp.unit_id",
    "modbus.exception_code",
    "modbus.diagnostic_code",
    "modbus.mei",
    "dnp3.al.func",
    "dnp3.al.obj",
    "dnp3.src",
    "dnp3.dst",
    "dnp3.al.uns",
    "dnp3.tr.fir",
    "dnp3.tr.fin",
    "dnp3.tr.seq",
    "dnp3.len",
)


FIELD_BY_ARG = {name.replace(".", "_"): name for name in FIELDS}


def _ints(text: str) -> list[int]:
    if not text:
        return []
    return [int(ipaddress.ip_address(v)) if "." in v or ":" in v else int(v, 0) for v in text.split(",")]


def _tshark_rows(capture: Path) -> dict[int, dict[str, list[int]]]:
    rows = tshark_fields(capture, FIELDS)
    return {
        int(row[0]): {name: _ints(value) for name, value in zip(FIELDS, row[1:], strict=True)} for row in rows
    }


def _differences(truth: dict[str, Any], tool: str, field: str) -> set[int]:
    return {d["frame"] for d in truth["expected_differences"] if d["tool"] == tool and d["field"] == field}


def _capture_id(path: Path) -> str:
    return str(path.relative_to(PCAPS))


# The AMI/grid captures carry no Modbus/DNP3 function codes; iec104 has its own tshark check below.
AMI_PREFIXES = ("dlms_", "c1222_", "iec104_")


@needs_tshark
@pytest.mark.parametrize(
    "capture", [p for p in _committed_captures() if not p.name.startswith(AMI_PREFIXES)], ids=_capture_id
)
def test_function_codes_agree_with_tshark_frame_by_frame(capture: Path) -> None:
    truth = load_truth(capture)
    rows = _tshark_rows(capture)
    assert len(rows) == truth["packets"]
    expected = {
        f["frame"]: [m["function_code"] for m in f["messages"] if m.get("function_code") is not None]
        for f in truth["frames"]
    }
    seen = {n: row["modbus.func_code"] + row["dnp3.al.func"] for n, row in rows.items()}
    differing = {n for n in rows if expected.get(n, []) != seen[n]}
    assert differing == _differences(truth, "tshark", "function_code")
    assert sum(len(codes) for codes in expected.values()) >= 15


@needs_tshark
@pytest.mark.parametrize(
    "capture", [p for p in _committed_captures() if "modbus" in p.name or "tcp_" in p.name], ids=_capture_id
)
def test_modbus_transaction_and_unit_ids_agree_with_tshark(capture: Path) -> None:
    truth = load_truth(capture)
    rows = _tshark_rows(capture)
    skip = _differences(truth, "tshark", "function_code")
    checked = 0
    for frame in truth["frames"]:
        messages = [
            m for m in frame["messages"] if m["protocol"] == "modbus" and m["function_code"] is not None
        ]
        if not messages or frame["frame"] in skip:
            continue
        row = rows[frame["frame"]]
        assert row["mbtcp.trans_id"] == [m["transaction_id"] for m in messages], frame["frame"]
        assert row["mbtcp.unit_id"] == [m["unit_id"] for m in messages], frame["frame"]
        checked += 1
    assert checked >= 10


@needs_tshark
@pytest.mark.parametrize(
    "capture", [p for p in _committed_captures() if "dnp3" in p.name or "tcp_" in p.name], ids=_capture_id
)
def test_dnp3_objects_and_link_addresses_agree_with_tshark(capture: Path) -> None:
    truth = load_truth(capture)
    rows = _tshark_rows(capture)
    skip = _differences(truth, "tshark", "function_code") | _differences(truth, "tshark", "objects")
    checked = 0
    for frame in truth["frames"]:
        messages = [m for m in frame["messages"] if m["protocol"] == "dnp3"]
        if not messages:
            continue
        if frame["frame"] in skip:
            continue
        row = rows[frame["frame"]]
        for message in messages:  # link headers (CRC good) are decoded even where the data CRC is bad
            assert message["link_source"] in row["dnp3.src"], frame["frame"]
            assert message["link_destination"] in row["dnp3.dst"], frame["frame"]
        objects = [
            o["group"] << 8 | o["variation"]
            for m in messages
            if m["function_code"] is not None
            for o in m["objects"]
        ]
        assert row["dnp3.al.obj"] == objects, frame["frame"]
        checked += 1
    assert checked >= 10


# ---- the scenarios contain what they promise (checked with tshark, not with our own code) --------


def _where(capture: str, **equal: int) -> list[dict[str, list[int]]]:
    """tshark rows of ``capture`` whose fields hold the given values (``dnp3_al_func`` = ``dnp3.al.func``)."""
    rows = _tshark_rows(PCAPS / capture).values()
    return [row for row in rows if all(value in row[FIELD_BY_ARG[name]] for name, value in equal.items())]


def _codes(capture: str, **equal: int) -> set[int]:
    return {c for row in _where(capture, **equal) for c in row["modbus.func_code"] + row["dnp3.al.func"]}


ROGUE = 0x0A140142  # 10.20.1.66


@needs_tshark
def test_suspicious_modbus_capture_has_the_attacks() -> None:
    assert {5, 8, 15, 16, 90} <= _codes("modbus_suspicious.pcap", ip_src=ROGUE)
    assert len(_where("modbus_suspicious.pcap", modbus_exception_code=1)) >= 10
    listen_only = _where("modbus_suspicious.pcap", modbus_func_code=8)
    assert [(row["ip.src"], row["modbus.diagnostic_code"]) for row in listen_only] == [([ROGUE], [4])]
    assert len(_where("modbus_suspicious.pcap", modbus_mei=14)) == 2  # one FC 43/14 request + response
    truth = load_truth(PCAPS / "modbus_suspicious.pcap")
    malformed = [m for f in truth["frames"] for m in f["messages"] if m["action"] == "decode_error"]
    assert [m.get("protocol_id") for m in malformed if not m.get("truncated")] == [0x1234]
    assert sorted(m["function_code"] for m in malformed if m.get("truncated")) == [20, 21, 22, 24]


@needs_tshark
def test_suspicious_dnp3_capture_has_the_attacks() -> None:
    assert {5, 13, 18, 21, 27} <= _codes("dnp3_suspicious.pcap", dnp3_src=100)
    assert len(_where("dnp3_suspicious.pcap", dnp3_al_func=27, dnp3_al_obj=0x4603)) == 1
    # The bad-CRC frame: a link header from the rogue master and no application layer.
    undecoded = [
        row for row in _where("dnp3_suspicious.pcap", dnp3_src=100, dnp3_dst=10) if not row["dnp3.al.func"]
    ]
    assert len(undecoded) == 1


@needs_tshark
def test_polling_dnp3_capture_has_the_normal_procedures() -> None:
    assert {0, 1, 2, 3, 4, 20, 24, 129, 130} <= _codes("dnp3_polling.pcap")
    assert len(_where("dnp3_polling.pcap", dnp3_al_func=0, dnp3_al_uns=1)) == 1  # confirm of the unsolicited
    assert len(_where("dnp3_polling.pcap", dnp3_al_func=2, dnp3_al_obj=0x3203)) == 2  # g50v3 time writes


@needs_tshark
def test_transport_sequence_wraps_inside_one_fragment() -> None:
    rows = _where("dnp3_transport_wrap.pcap", dnp3_src=10)
    multi = [row["dnp3.tr.seq"][0] for row in rows if row["dnp3.tr.fir"] == [0] or row["dnp3.tr.fin"] == [0]]
    assert multi == [62, 63, 0, 1]


@needs_tshark
def test_short_final_segments_carry_one_to_three_fragment_bytes() -> None:
    rows = _where("dnp3_short_final_segment.pcap", dnp3_src=10, dnp3_tr_fir=0, dnp3_tr_fin=1)
    assert sorted(row["dnp3.len"][0] - 6 for row in rows) == [1, 2, 3]  # LEN = 5 + transport byte + data


@pytest.mark.skipif(shutil.which("suricata") is None, reason="suricata is not installed (bench/setup.sh)")
def test_suricata_stops_logging_after_a_short_final_segment(tmp_path: Path) -> None:
    """The peer failure the capture is for: Suricata 7 logs nothing of the flow after the short segment."""
    capture = PCAPS / "dnp3_short_final_segment.pcap"
    subprocess.run(
        [
            "suricata",
            "-c",
            str(REPO / "bench" / "suricata.yaml"),
            "--runmode",
            "single",
            "-k",
            "none",
            "--disable-detection",
            "-r",
            str(capture),
            "-l",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    logged = [json.loads(line)["pcap_cnt"] for line in (tmp_path / "eve.json").read_text().splitlines()]
    truth = load_truth(capture)
    lost = _differences(truth, "suricata", "function_code")
    assert len(lost) >= 10
    assert logged and max(logged) < min(lost)


@needs_tshark
def test_iec104_type_ids_and_causes_agree_with_tshark() -> None:
    capture = PCAPS / "iec104_control.pcap"
    truth = load_truth(capture)
    rows = tshark_fields(capture, ("iec60870_asdu.typeid", "iec60870_asdu.causetx"))
    seen = {int(row[0]): (_ints(row[1]), _ints(row[2])) for row in rows if row[1]}
    expected = {
        f["frame"]: ([m["type_id"]], [m["cot"]])
        for f in truth["frames"]
        for m in f["messages"]
        if "type_id" in m
    }
    assert len(expected) == 17
    assert seen == expected
