"""CEF, LEEF 2.0, RFC 5424/3164 and ECS: every line parses back with a strict parser written from the spec."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forward_helpers import EDGE_MESSAGE, make_alert
from otsentry.detect.severity import SEVERITIES
from otsentry.outputs.config import parse_destination
from otsentry.outputs.encode import build_encoder, hec_event
from otsentry.outputs.formats import syslog
from otsentry.outputs.formats.cef import format_cef
from otsentry.outputs.formats.ecs import format_ecs, nest
from otsentry.outputs.formats.leef import delimiter_field, format_leef
from outputs_parsers import parse_3164, parse_5424, parse_cef, parse_leef


def controls_to_space(text: str) -> str:
    return "".join(" " if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F else c for c in text)


def cef_extension_expectation(text: str) -> str:
    """CR and LF survive (escaped), other control characters become a space."""
    return "".join(c if c in "\r\n" else controls_to_space(c) for c in text)


EDGES = {
    "equals": "a=b c==d",
    "backslash": "C:\\new\\table\\",
    "pipe": "a|b||c",
    "newlines": "line1\nline2\r\nline3\r",
    "non_ascii": "Überwachung → 東京 ⚡ 😀",
    "brackets_quotes": 'sd ] "quoted" [x] \\]',
    "trailing_space": "ends with spaces  ",
    "key_like": "looks like key=value and cs1=x",
    "all": EDGE_MESSAGE,
}


@pytest.mark.parametrize("case", sorted(EDGES))
def test_cef_round_trip_edge_cases(case: str) -> None:
    value = EDGES[case]
    alert = make_alert(42, message=value, **{"rule.name": value, "event.action": value})
    line = format_cef(alert)
    parsed = parse_cef(line)
    assert (parsed.version, parsed.vendor, parsed.product) == ("0", "otsentry", "otsentry")
    assert parsed.signature_id == alert["rule.id"]
    assert parsed.name == controls_to_space(value)  # header: no line breaks, | and \ escaped
    assert parsed.severity == "7"
    ext = parsed.extension
    assert ext["msg"] == cef_extension_expectation(value)
    assert ext["act"] == cef_extension_expectation(value)


def test_cef_mapping_of_alert_fields() -> None:
    alert = make_alert(7)
    ext = parse_cef(format_cef(alert)).extension
    assert ext["src"] == "10.0.0.5" and ext["dst"] == "10.0.0.10"
    assert ext["spt"] == "40123" and ext["dpt"] == "20000"
    assert ext["smac"] == "00:1A:2B:3C:4D:5E" and ext["dmac"] == "00:1A:2B:3C:4D:5F"
    assert ext["proto"] == "TCP" and ext["app"] == "dnp3"
    assert ext["act"] == "direct_operate" and ext["cat"] == "otsentry.dnp3"
    stamp = dt.datetime.fromisoformat(alert["@timestamp"].replace("Z", "+00:00"))
    assert int(ext["rt"]) == int(stamp.timestamp() * 1000)
    labels = {ext[f"cs{i}Label"]: ext[f"cs{i}"] for i in range(1, 7)}
    assert labels == {
        "Rule ID": alert["rule.id"],
        "ATT&CK Technique": "T0855,T0831",
        "Protocol": "dnp3",
        "Community ID": alert["network.community_id"],
        "Alert ID": alert["otsentry.alert.id"],
        "Alert Seq": "7",
    }


def test_cef_ipv6_goes_to_labelled_custom_fields() -> None:
    alert = make_alert(8, **{"source.ip": "2001:db8::5", "destination.ip": "fe80::1"})
    ext = parse_cef(format_cef(alert)).extension
    assert "src" not in ext and "dst" not in ext
    assert ext["c6a2"] == "2001:db8::5" and ext["c6a2Label"] == "Source IPv6 Address"
    assert ext["c6a3"] == "fe80::1" and ext["c6a3Label"] == "Destination IPv6 Address"


def test_cef_escapes_header_pipe_and_backslash_exactly() -> None:
    line = format_cef(make_alert(1, **{"rule.id": "a|b\\c", "rule.name": "x\\|y"}))
    assert line.split("|", 4)[4].startswith("a\\|b\\\\c|x\\\\\\|y|")
    parsed = parse_cef(line)
    assert parsed.signature_id == "a|b\\c" and parsed.name == "x\\|y"


@pytest.mark.parametrize("case", sorted(EDGES))
def test_leef_round_trip_edge_cases(case: str) -> None:
    value = EDGES[case]
    alert = make_alert(43, message=value, **{"rule.name": value})
    parsed = parse_leef(format_leef(alert))
    assert parsed.delimiter == "^"
    assert (parsed.vendor, parsed.product, parsed.event_id) == ("otsentry", "otsentry", alert["rule.id"])
    expected = controls_to_space(value).replace("^", " ")
    assert parsed.attributes["msg"] == expected
    assert parsed.attributes["ruleName"] == expected


def test_leef_attributes_and_sanitised_delimiter() -> None:
    alert = make_alert(9, message="a^b\tc")
    attrs = parse_leef(format_leef(alert)).attributes
    assert attrs["msg"] == "a b c"
    assert attrs["sev"] == "7" and attrs["proto"] == "6" and attrs["cat"] == "otsentry.dnp3"
    assert attrs["src"] == "10.0.0.5" and attrs["dstPort"] == "20000"
    assert attrs["srcMAC"] == "00:1A:2B:3C:4D:5E"
    assert attrs["devTimeFormat"] == "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
    when = dt.datetime.strptime(attrs["devTime"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert when == dt.datetime.fromisoformat(alert["@timestamp"].replace("Z", "+00:00")).replace(
        microsecond=(int(alert["@timestamp"][20:26]) // 1000) * 1000)
    assert attrs["alertSeq"] == "9" and attrs["technique"] == "T0855,T0831"


def test_leef_other_delimiters_are_declared_in_hex_when_not_printable() -> None:
    assert delimiter_field("^") == "^"
    assert delimiter_field("\t") == "x09"
    parsed = parse_leef(format_leef(make_alert(1, message="tab\there"), delimiter="\t"))
    assert parsed.delimiter == "\t" and parsed.attributes["msg"] == "tab here"


@pytest.mark.parametrize("case", sorted(EDGES))
def test_rfc5424_structured_data_round_trip(case: str) -> None:
    value = EDGES[case]
    alert = make_alert(44, **{"event.action": value, "rule.id": value})
    data = syslog.rfc5424(alert, "payload", facility="local4", procid="123")
    parsed = parse_5424(data)
    params = parsed.sd["otsentry@32473"]
    assert params["action"] == controls_to_space(value)
    assert params["rule"] == controls_to_space(value)
    assert params["seq"] == "44" and params["technique"] == "T0855,T0831"
    assert parsed.msg == "payload" and not parsed.bom


def test_rfc5424_header_pri_and_bom() -> None:
    alert = make_alert(1, message="Überwachung")
    enc = build_encoder(parse_destination({"name": "d", "transport": "tcp", "format": "message"}))
    parsed = parse_5424(enc(alert))
    assert parsed.bom and parsed.msg == "Überwachung"
    assert parsed.pri == 20 * 8 + 3  # local4, high -> err (3)
    assert parsed.timestamp == alert["@timestamp"]
    assert parsed.hostname == "sensor-1" and parsed.app_name == "otsentry" and parsed.msgid == "alert"


@pytest.mark.parametrize("level", sorted(SEVERITIES))
def test_one_severity_table_in_every_format(level: str) -> None:
    row = SEVERITIES[level]
    alert = make_alert(3, **{"event.severity": row.number, "log.level": level})
    assert parse_cef(format_cef(alert)).severity == str(row.number)
    assert parse_leef(format_leef(alert)).attributes["sev"] == str(row.number)
    assert parse_5424(syslog.rfc5424(alert, "x", facility="user")).pri == 8 + row.syslog_code
    assert parse_3164(syslog.rfc3164(alert, "x", facility="user")).pri == 8 + row.syslog_code
    assert {"informational": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}[level] == row.syslog_code


def test_rfc3164_line() -> None:
    alert = make_alert(5, **{"@timestamp": "2024-03-05T07:08:09.000001Z"})
    parsed = parse_3164(syslog.rfc3164(alert, "CEF:0|a|b\nc", facility="local0"))
    assert parsed.timestamp == "Mar  5 07:08:09"
    assert parsed.hostname == "sensor-1" and parsed.tag == "otsentry"
    assert parsed.msg == "CEF:0|a|b c"
    assert parsed.pri == 16 * 8 + 3


def test_syslog_wrapping_cef_and_leef_parse_twice() -> None:
    alert = make_alert(11, message=EDGE_MESSAGE)
    for fmt, parse in (("cef", parse_cef), ("leef", parse_leef)):
        enc = build_encoder(parse_destination({"name": "d", "transport": "udp", "format": fmt}))
        outer = parse_5424(enc(alert))
        inner = parse(outer.msg)
        msg = inner.extension["msg"] if fmt == "cef" else inner.attributes["msg"]
        assert msg.startswith('Write = "x\\y" | a|b ]')
        assert "Überwachung → 東京" in msg


def test_ecs_nested_document() -> None:
    alert = make_alert(12)
    doc = orjson.loads(format_ecs(alert))
    assert doc["source"]["ip"] == "10.0.0.5" and doc["destination"]["port"] == 20000
    assert doc["otsentry"]["alert"]["seq"] == 12 and doc["rule"]["id"] == alert["rule.id"]
    assert doc["threat"]["technique"]["id"] == ["T0855", "T0831"]
    assert doc["@timestamp"] == alert["@timestamp"] and doc["ecs"]["version"]


def test_ecs_conflicting_names_keep_both_values() -> None:
    doc = nest({"a.b": 1, "a.b.c": 2, "x": {"y": 1}, "x.z": 3})
    assert doc == {"a": {"b": 1, "b.c": 2}, "x": {"y": 1}, "x.z": 3}


def test_hec_envelope() -> None:
    dest = parse_destination({"name": "s", "transport": "hec", "url": "https://x:8088", "token": "t",
                              "index": "ot", "sourcetype": "otsentry:alert"})
    event = orjson.loads(hec_event(make_alert(13), dest))
    assert event["index"] == "ot" and event["sourcetype"] == "otsentry:alert" and event["host"] == "sensor-1"
    assert event["event"]["otsentry"]["alert"]["seq"] == 13
    expected = dt.datetime.fromisoformat("2024-05-01T12:00:13.000013+00:00").timestamp()
    assert abs(event["time"] - expected) < 0.001


# -- hypothesis: arbitrary text survives every format (modulo the documented sanitising) --------------------

free_text = st.text(min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(message=free_text, name=free_text, action=free_text, rule_id=free_text)
def test_cef_round_trip_arbitrary_text(message: str, name: str, action: str, rule_id: str) -> None:
    alert = make_alert(1, message=message, **{"rule.name": name, "event.action": action, "rule.id": rule_id})
    parsed = parse_cef(format_cef(alert))
    assert parsed.name == controls_to_space(name)
    assert parsed.signature_id == controls_to_space(rule_id)
    assert parsed.extension["msg"] == cef_extension_expectation(message)
    assert parsed.extension["act"] == cef_extension_expectation(action)
    assert parsed.extension["cs1"] == cef_extension_expectation(rule_id)


@settings(max_examples=300, deadline=None)
@given(message=free_text, rule_id=free_text, delimiter=st.sampled_from(["^", "\t", "|", "~", "#"]))
def test_leef_round_trip_arbitrary_text(message: str, rule_id: str, delimiter: str) -> None:
    alert = make_alert(1, message=message, **{"rule.id": rule_id})
    parsed = parse_leef(format_leef(alert, delimiter=delimiter))
    assert parsed.attributes["msg"] == controls_to_space(message).replace(delimiter, " ")
    assert parsed.event_id == controls_to_space(rule_id).replace("|", " ")


@settings(max_examples=300, deadline=None)
@given(action=free_text, message=free_text, hostname=st.text(max_size=20))
def test_rfc5424_round_trip_arbitrary_text(action: str, message: str, hostname: str) -> None:
    alert = make_alert(1, message=message, **{"event.action": action, "observer.name": hostname})
    enc = build_encoder(parse_destination({"name": "d", "transport": "tcp", "format": "message"}))
    parsed = parse_5424(enc(alert))
    assert parsed.sd["otsentry@32473"]["action"] == controls_to_space(action)
    assert parsed.msg == controls_to_space(message)


@settings(max_examples=200, deadline=None)
@given(message=free_text)
def test_rfc3164_round_trip_arbitrary_text(message: str) -> None:
    parsed = parse_3164(syslog.rfc3164(make_alert(1), message))
    assert parsed.msg == controls_to_space(message)
