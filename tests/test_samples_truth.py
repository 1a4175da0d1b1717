"""Every sample capture in pcaps/ decodes to exactly what its generator says it holds.

The generator writes ``<capture>.truth.json`` from the messages it built (never from otsentry's
output): per frame, the protocol messages that frame completes. Replaying the capture through
the whole pipeline must give the same messages in the same frames — across link types, capture
formats, VLANs, IP fragments, mid-stream pickup, DNP3 transport wrap and short final segments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otsentry.sensor import Sensor
from shared import SAMPLE_PCAPS

TRUTHS = sorted(SAMPLE_PCAPS.rglob("*.truth.json"))

# truth key -> event field, compared when the truth message has the key
COMMON = {
    "protocol": "network.protocol",
    "action": "event.action",
    "src": "source.ip",
    "dst": "destination.ip",
}
BY_PROTOCOL = {
    "modbus": {
        "function_code": "modbus.function_code",
        "transaction_id": "modbus.transaction_id",
        "unit_id": "modbus.unit_id",
        "pdu_type": "modbus.pdu_type",
        "exception_code": "modbus.exception_code",
    },
    "dnp3": {
        "function_code": "dnp3.application.function_code",
        "link_source": "dnp3.link.source",
        "link_destination": "dnp3.link.destination",
        "app_sequence": "dnp3.application.sequence",
        "object_gv": "dnp3.object_gv",
        "iin": "dnp3.iin",
    },
    "dlms": {
        "class_id": "dlms.class_id",
        "obis": "dlms.obis",
        "attribute_id": "dlms.attribute_id",
        "method_id": "dlms.method_id",
        "result": "dlms.result",
        "meaning": "dlms.meaning",
    },
    "c1222": {
        "pdu_type": "c1222.pdu_type",
        "service": "c1222.service",
        "response_code": "c1222.response_code",
        "procedure_id": "c1222.procedure.id",
        "procedure_result": "c1222.procedure.result",
    },
    "iec104": {
        "type_id": "iec104.type_id",
        "cot": "iec104.cot",
        "u_function": "iec104.u_function",
        "send_seq": "iec104.send_seq",
        "recv_seq": "iec104.recv_seq",
        "common_address": "iec104.common_address",
        "ioa": "iec104.ioa",
        "select": "iec104.select",
    },
}


def load_truth(path: Path) -> dict[str, Any]:
    truth = json.loads(path.read_text())
    if "frames_from" in truth:
        truth["frames"] = json.loads((path.parent / truth["frames_from"]).read_text())["frames"]
    return truth


def project(message: dict[str, Any], event: dict[str, Any]) -> tuple[dict, dict]:
    """The truth message and the event, reduced to the fields the truth states."""
    mapping = COMMON | BY_PROTOCOL.get(message.get("protocol", ""), {})
    keys = [k for k in mapping if k in message]
    want = {k: message[k] for k in keys}
    got = {k: event.get(mapping[k]) for k in keys}
    if "object_gv" in want:  # a fragment with no objects has no list at all
        got["object_gv"] = got["object_gv"] or []
    return want, got


@pytest.mark.parametrize("truth_path", TRUTHS, ids=[str(p.relative_to(SAMPLE_PCAPS)) for p in TRUTHS])
def test_sample_capture_matches_its_ground_truth(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    capture = SAMPLE_PCAPS / truth["capture"]
    events: list[dict] = []
    sensor = Sensor(sinks=[events.extend])
    sensor.replay(capture)
    summary = sensor.close()
    assert summary.packets == truth["packets"]
    assert not summary.capture_errors

    ours: dict[int, list[dict]] = {}
    for event in events:
        ours.setdefault(event["otsentry.pcap.frame"], []).append(event)
    expected = {f["frame"]: f["messages"] for f in truth["frames"] if f["messages"]}
    assert sorted(ours) == sorted(expected), "frames with messages differ"
    for frame, messages in expected.items():
        assert len(ours[frame]) == len(messages), f"frame {frame}"
        for message, event in zip(messages, ours[frame], strict=True):
            want, got = project(message, event)
            assert got == want, f"frame {frame}"
