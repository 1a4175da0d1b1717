"""The shared Gurux DLMS captures: every APDU decodes, and gurux-dlms's own translator
(an independent implementation) agrees on APDU type, class id, OBIS and attribute/method."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from dlms_helpers import (
    SHARED_DLMS,
    analyze_capture,
    capture_streams,
    first_payloads,
    gurux_view,
    split_wrapper,
)
from otsentry.protocols.dlms import probe
from otsentry.protocols.dlms.apdu import decode_apdu
from otsentry.protocols.dlms.cosem import render_obis

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SHARED_DLMS.is_dir(), reason=f"shared DLMS captures not found at {SHARED_DLMS}"),
]
CAPTURES = sorted(SHARED_DLMS.glob("*.pcap")) if SHARED_DLMS.is_dir() else []

# Gurux 1.0.203 has no glo- tag for the ACCESS service (the Green Book protects ACCESS only with
# general-glo/ded-ciphering) and writes 0x00 instead; its own translator cannot read these
# either (it prints them as raw <Data>). They are invalid APDUs and stay decode errors.
EXPECTED_DECODE_ERRORS: dict[str, dict[int, str]] = {
    "Output-Ciphered-HLS-AuthEnc.pcap": {9: "unknown APDU tag 0x00", 10: "unknown APDU tag 0x00"},
    "Output-Ciphered-HLS.pcap": {9: "unknown APDU tag 0x00", 10: "unknown APDU tag 0x00"},
    "Output-Ciphered.pcap": {34: "unknown APDU tag 0x00", 35: "unknown APDU tag 0x00"},
}

# GXDLMSTranslator root/variant element -> otsentry dlms.apdu / dlms.apdu_variant.
GURUX_ROOTS = {
    "AssociationRequest": "AARQ",
    "AssociationResponse": "AARE",
    "ReleaseRequest": "RLRQ",
    "ReleaseResponse": "RLRE",
    "GetRequest": "get-request",
    "GetResponse": "get-response",
    "SetRequest": "set-request",
    "SetResponse": "set-response",
    "ActionRequest": "action-request",
    "ActionResponse": "action-response",
    "AccessRequest": "access-request",
    "AccessResponse": "access-response",
    "GeneralGloCiphering": "general-glo-ciphering",
    "glo_GetRequest": "glo-get-request",
    "glo_GetResponse": "glo-get-response",
    "glo_SetRequest": "glo-set-request",
    "glo_SetResponse": "glo-set-response",
    "glo_ActionRequest": "glo-action-request",
    "glo_ActionResponse": "glo-action-response",
    "EventNotificationRequest": "event-notification-request",
    "DataNotification": "data-notification",
    "ExceptionResponse": "exception-response",
}
GURUX_VARIANTS = {
    "Normal": "normal",
    "ForNextDataBlock": "next",
    "WithList": "with-list",
    "withDataBlock": "with-datablock",
    "WithFirstDataBlock": "with-first-datablock",
    "WithDataBlock": "with-datablock",
    "NextPBlock": "next-pblock",
    "WithFirstPBlock": "with-first-pblock",
    "WithPBlock": "with-pblock",
}


def references(fields: dict) -> tuple[list[int], list[bytes], list[int], list[int]]:
    """(class ids, OBIS, attribute ids, method ids) an event names, as lists."""

    def as_list(value: object) -> list:
        return [] if value is None else value if isinstance(value, list) else [value]

    classes = as_list(fields.get("dlms.class_id"))
    obis = as_list(fields.get("dlms.obis"))
    return classes, obis, as_list(fields.get("dlms.attribute_id")), as_list(fields.get("dlms.method_id"))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_capture_decodes_without_unexplained_errors(path: Path) -> None:
    messages = analyze_capture(path)
    frames = sum(
        len(split_wrapper(b"".join(p for p, _ in segs)))
        for streams in capture_streams(path)
        for segs in streams.values()
    )
    assert len(messages) == frames  # one message per wrapper frame, none lost or invented
    errors = {
        frame: fields["error.message"]
        for frame, _, fields in messages
        if fields["event.action"] == "decode_error"
    }
    assert errors == EXPECTED_DECODE_ERRORS.get(path.name, {})
    for _, _, fields in messages:
        orjson.dumps(fields)  # every event serialises as JSON


def test_all_captures_message_counts() -> None:
    """The totals this suite is built on (7 captures, 1397 wrapper frames, 6 invalid APDUs)."""
    actions: Counter[str] = Counter()
    for path in CAPTURES:
        actions.update(fields["event.action"] for _, _, fields in analyze_capture(path))
    assert len(CAPTURES) == 7
    assert sum(actions.values()) == 1397
    assert actions["decode_error"] == 6
    assert actions["get_request"] == 540 and actions["get_response"] == 540
    assert actions["general_glo_ciphering"] == 271


def test_gurux_translator_agrees_on_every_apdu() -> None:
    compared = Counter()
    for path in CAPTURES:
        for streams in capture_streams(path):
            for segments in streams.values():
                for apdu in split_wrapper(b"".join(p for p, _ in segments)):
                    gurux = gurux_view(apdu)
                    if gurux["root"] == "Data":  # gurux could not decode it either (tag 0x00)
                        compared["both_undecodable"] += 1
                        assert apdu[0] == 0x00
                        continue
                    fields = decode_apdu(apdu).fields
                    assert fields["dlms.apdu"] == GURUX_ROOTS[gurux["root"]], gurux["xml"]
                    second = gurux["second"] or ""
                    if second.startswith(gurux["root"]):
                        variant = GURUX_VARIANTS[second[len(gurux["root"]) :]]
                        assert fields["dlms.apdu_variant"] == variant
                        compared["variant"] += 1
                    classes, obis, attributes, methods = references(fields)
                    assert classes == gurux["ClassId"]
                    assert obis == [render_obis(raw) for raw in gurux["InstanceId"]]
                    assert attributes == gurux["AttributeId"]
                    assert methods == gurux["MethodId"]
                    compared["apdu"] += 1
                    compared["references"] += len(gurux["ClassId"])
    assert compared == {"apdu": 1391, "both_undecodable": 6, "variant": 306, "references": 154}


def test_probe_claims_every_dlms_flow_and_nothing_else() -> None:
    """Strict probe over every shared capture (DNP3, Modbus, C12.22, IEC-104, S7, ENIP, DNS…)."""
    pcaps = Path(SHARED_DLMS).parent
    hits: Counter[str] = Counter()
    misses = []
    for path in sorted(pcaps.rglob("*")):
        if path.suffix not in (".pcap", ".cap") or not path.is_file():
            continue
        for kind, payload in first_payloads(path):
            is_dlms = path.parent == SHARED_DLMS
            if probe(payload):
                assert is_dlms, f"probe claimed a {kind} flow in {path.name}: {payload[:16].hex()}"
                hits[path.name] += 1
            elif is_dlms and kind == "tcp":  # Output-Ciphered.pcap also holds some DNS
                misses.append((path.name, payload[:16].hex()))
    assert not misses
    assert sorted(hits) == sorted(p.name for p in CAPTURES)


def replay(path: Path) -> list[dict]:
    from otsentry.protocols import dlms
    from otsentry.sensor import Sensor

    events: list[dict] = []
    sensor = Sensor(sinks=[events.extend], specs=[dlms.SPEC])
    sensor.replay(path)
    sensor.close()
    return [e for e in events if e.get("network.protocol") == "dlms"]


def test_sensor_replay_finds_the_wrapper_on_4059_4063_4064() -> None:
    """End to end through capture, decode, flow table and probe (4063/4064 are not claimed ports)."""
    for path in CAPTURES:
        events = replay(path)
        assert len(events) == len(analyze_capture(path)), path.name
        ports = {e["server.port"] for e in events}
        assert ports <= {4059, 4063, 4064}
        requests = [e for e in events if e["event.action"] in ("get_request", "association_request")]
        assert all(e["source.port"] == e["client.port"] for e in requests)


def test_no_dlms_events_from_other_traffic() -> None:
    others = [p for p in sorted(SHARED_DLMS.parent.rglob("*.pcap")) if p.parent != SHARED_DLMS]
    assert len(others) > 100
    for path in others:
        assert replay(path) == [], path.name
