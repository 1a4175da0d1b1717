"""Sigma value modifiers, field lists, keywords and conditions, one by one, on the compiled matcher."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sigma.rule import SigmaRule

from otsentry.detect.sigma_compile import CompiledDetection, CompileError


def matcher(detection: dict[str, Any], placeholders: dict[str, list[str]] | None = None) -> CompiledDetection:
    doc = {"title": "t", "logsource": {"product": "otsentry", "service": "dnp3"}, "detection": detection}
    return CompiledDetection(SigmaRule.from_yaml(yaml.safe_dump(doc)), placeholders)


def sel(field: str, value: Any) -> CompiledDetection:
    return matcher({"sel": {field: value}, "condition": "sel"})


def test_plain_string_is_case_insensitive_and_exact() -> None:
    m = sel("event.action", "Direct_Operate")
    assert m({"event.action": "direct_operate"})
    assert not m({"event.action": "direct_operate_nr"})
    assert not m({})


def test_cased_modifier() -> None:
    m = sel("dnp3.control.tcc|cased", "TRIP")
    assert m({"dnp3.control.tcc": "TRIP"})
    assert not m({"dnp3.control.tcc": "trip"})


@pytest.mark.parametrize(
    ("modifier", "value", "yes", "no"),
    [
        ("contains", "operate", "direct_operate_nr", "select"),
        ("startswith", "direct", "direct_operate", "operate_direct"),
        ("endswith", "_nr", "direct_operate_nr", "direct_operate"),
    ],
)
def test_contains_startswith_endswith(modifier: str, value: str, yes: str, no: str) -> None:
    m = sel(f"event.action|{modifier}", value)
    assert m({"event.action": yes})
    assert m({"event.action": yes.upper()})
    assert not m({"event.action": no})


def test_wildcards_inside_a_value() -> None:
    m = sel("dnp3.file.name", "/cfg/*.c?g")
    assert m({"dnp3.file.name": "/cfg/protection.cfg"})
    assert not m({"dnp3.file.name": "/cfg/protection.conf"})
    assert not m({"dnp3.file.name": "/log/protection.cfg"})


def test_value_list_is_or_and_all_is_and() -> None:
    any_of = sel("dnp3.iin_flags", ["config_corrupt", "event_buffer_overflow"])
    every = sel("dnp3.iin_flags|all", ["need_time", "device_restart"])
    assert any_of({"dnp3.iin_flags": ["need_time", "config_corrupt"]})
    assert not any_of({"dnp3.iin_flags": ["need_time"]})
    assert every({"dnp3.iin_flags": ["device_restart", "need_time"]})
    assert not every({"dnp3.iin_flags": ["device_restart"]})


def test_list_field_matches_when_any_element_matches() -> None:
    m = sel("dnp3.control.index", 3)
    assert m({"dnp3.control.index": [1, 2, 3]})
    assert not m({"dnp3.control.index": [1, 2]})


def test_numbers_and_numeric_text() -> None:
    m = sel("modbus.function_code", 90)
    assert m({"modbus.function_code": 90})
    assert m({"modbus.function_code": "90"})
    assert not m({"modbus.function_code": 91})
    assert not m({"modbus.function_code": True})  # a bool is not the number 1/0
    text = sel("destination.port", "502")
    assert text({"destination.port": 502})


def test_booleans_and_null() -> None:
    known = sel("otsentry.baseline.known_pair", True)
    assert known({"otsentry.baseline.known_pair": True})
    assert not known({"otsentry.baseline.known_pair": False})
    assert not known({"otsentry.baseline.known_pair": 1})
    missing = sel("modbus.exception_code", None)
    assert missing({})
    assert missing({"modbus.exception_code": None})
    assert not missing({"modbus.exception_code": 2})


def test_re_with_flags() -> None:
    plain = sel("error.message|re", "^link .*crc")
    assert not plain({"error.message": "link user-data block CRC error"})  # case-sensitive by default
    ignorecase = sel("error.message|re|i", "^link .*crc")
    assert ignorecase({"error.message": "link user-data block CRC error"})
    multiline = sel("error.message|re|m", "^second$")
    assert multiline({"error.message": "first\nsecond\nthird"})
    assert not sel("error.message|re", "^second$")({"error.message": "first\nsecond\nthird"})
    dotall = sel("error.message|re|s", "first.second")
    assert dotall({"error.message": "first\nsecond"})
    assert not sel("error.message|re", "first.second")({"error.message": "first\nsecond"})
    searched = sel("error.message|re", "CRC")
    assert searched({"error.message": "bad CRC here"})  # unanchored search


def test_cidr_ipv4_and_ipv6() -> None:
    m = sel("source.ip|cidr", ["10.20.1.0/24", "fd00::/8"])
    assert m({"source.ip": "10.20.1.66"})
    assert m({"source.ip": "fd00::5"})
    assert not m({"source.ip": "10.20.2.31"})
    assert not m({"source.ip": "not an ip"})
    assert not m({"source.ip": 167772161})


@pytest.mark.parametrize(
    ("modifier", "limit", "yes", "no"),
    [("gt", 5, 6, 5), ("gte", 5, 5, 4), ("lt", 5, 4, 5), ("lte", 5, 5, 6), ("neq", 5, 4, 5)],
)
def test_numeric_comparisons(modifier: str, limit: int, yes: int, no: int) -> None:
    m = sel(f"modbus.quantity|{modifier}", limit)
    assert m({"modbus.quantity": yes})
    assert m({"modbus.quantity": str(yes)})
    assert not m({"modbus.quantity": no})
    # ordering needs a number; "not equal" holds for any other value (pySigma negates an equality)
    assert m({"modbus.quantity": "many"}) is (modifier == "neq")


def test_exists() -> None:
    present = sel("dnp3.crc_errors|exists", True)
    absent = sel("dnp3.crc_errors|exists", False)
    assert present({"dnp3.crc_errors": 0})
    assert not present({})
    assert absent({})
    assert not absent({"dnp3.crc_errors": 1})


def test_base64_and_base64offset() -> None:
    import base64

    payload = "stop_plc"
    m = sel("data|base64", payload)
    assert m({"data": base64.b64encode(payload.encode()).decode()})
    offset = sel("data|base64offset|contains", payload)
    for prefix in ("", "x", "xy"):
        assert offset({"data": base64.b64encode((prefix + payload + "tail").encode()).decode()})
    assert not offset({"data": base64.b64encode(b"start_plc").decode()})


def test_windash_expands_dash_variants() -> None:
    m = sel("process.command_line|windash|contains", "-force")
    assert m({"process.command_line": "tool /force"})
    assert m({"process.command_line": "tool -force"})
    assert not m({"process.command_line": "tool force"})


def test_fieldref_equal_prefix_suffix() -> None:
    same = sel("client.ip|fieldref", "destination.ip")
    assert same({"client.ip": "10.0.0.1", "destination.ip": "10.0.0.1"})
    assert not same({"client.ip": "10.0.0.1", "destination.ip": "10.0.0.2"})
    assert not same({"client.ip": "10.0.0.1"})
    prefix = sel("c1222.called_ap_title|fieldref|startswith", "c1222.calling_ap_title")
    assert prefix({"c1222.called_ap_title": "1.3.6.1.4.1.33507.1919", "c1222.calling_ap_title": "1.3.6.1"})
    suffix = sel("c1222.called_ap_title|fieldref|endswith", "c1222.calling_ap_title")
    assert suffix({"c1222.called_ap_title": "1.3.6.1.4.1.33507.1919", "c1222.calling_ap_title": "1919"})


def test_expand_placeholders() -> None:
    m = matcher(
        {"sel": {"source.ip|expand": "%approved_masters%"}, "condition": "not sel"},
        {"approved_masters": ["10.20.1.11", "10.20.1.12"]},
    )
    assert not m({"source.ip": "10.20.1.11"})
    assert m({"source.ip": "10.20.1.66"})
    with pytest.raises(CompileError):
        matcher({"sel": {"source.ip|expand": "%nobody_configured_this%"}, "condition": "sel"})


def test_timestamp_parts() -> None:
    night = sel("@timestamp|hour", 2)
    assert night({"@timestamp": "2024-05-14T02:15:00.000000Z"})
    assert not night({"@timestamp": "2024-05-14T14:15:00.000000Z"})
    assert sel("@timestamp|month", 5)({"@timestamp": "2024-05-14T02:15:00.000000Z"})


def test_nested_path_into_object_lists() -> None:
    m = sel("dnp3.objects.points.tcc", "TRIP")
    event = {
        "dnp3.objects": [{"group": 12, "points": [{"index": 0, "tcc": "CLOSE"}, {"index": 3, "tcc": "TRIP"}]}]
    }
    assert m(event)
    assert not m({"dnp3.objects": [{"group": 12, "points": [{"tcc": "CLOSE"}]}]})
    flat_wins = sel("dnp3.objects.group", 12)
    assert flat_wins({"dnp3.objects": [{"group": 1}, {"group": 12}]})


def test_keywords_search_every_text_value() -> None:
    m = matcher({"keywords": ["protection.cfg"], "condition": "keywords"})
    assert m({"dnp3.objects": [{"points": [{"file_name": "/cfg/protection.cfg"}]}]})
    assert not m({"dnp3.objects": [{"points": [{"file_name": "/cfg/other.cfg"}]}]})


def test_one_of_all_of_and_not() -> None:
    detection = {
        "sel_write": {"modbus.function_code": [5, 6]},
        "sel_diag": {"modbus.function_code": 8},
        "filter_known": {"otsentry.baseline.known_pair": True},
    }
    one = matcher({**detection, "condition": "1 of sel_* and not filter_known"})
    assert one({"modbus.function_code": 8})
    assert one({"modbus.function_code": 6, "otsentry.baseline.known_pair": False})
    assert not one({"modbus.function_code": 6, "otsentry.baseline.known_pair": True})
    assert not one({"modbus.function_code": 3})
    both = matcher({"a": {"modbus.unit_id": 1}, "b": {"modbus.function_code": 8}, "condition": "all of them"})
    assert both({"modbus.unit_id": 1, "modbus.function_code": 8})
    assert not both({"modbus.unit_id": 2, "modbus.function_code": 8})


def test_list_of_maps_is_or() -> None:
    m = matcher(
        {
            "sel": [{"modbus.function_code": 8, "modbus.sub_function": 4}, {"modbus.function_code": 90}],
            "condition": "sel",
        }
    )
    assert m({"modbus.function_code": 8, "modbus.sub_function": 4})
    assert m({"modbus.function_code": 90})
    assert not m({"modbus.function_code": 8, "modbus.sub_function": 1})


def test_action_pinning_for_the_index() -> None:
    pinned = matcher({"sel": {"event.action": ["cold_restart", "warm_restart"]}, "condition": "sel"})
    assert pinned.actions == frozenset({"cold_restart", "warm_restart"})
    unpinned = matcher(
        {"a": {"event.action": "cold_restart"}, "b": {"modbus.function_code": 8}, "condition": "a or b"}
    )
    assert unpinned.actions is None
    wildcard = matcher({"sel": {"event.action|startswith": "cold"}, "condition": "sel"})
    assert wildcard.actions is None
