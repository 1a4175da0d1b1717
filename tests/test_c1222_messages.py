"""C12.22 on hand-built messages: C12.19 procedures and their event.action, vendor tables, ST8
results, passwords, ciphered EPSEM, pairing, framing and resynchronisation, the probe."""

from __future__ import annotations

import struct
import time

import orjson
import pytest

from c1222_helpers import (
    acse,
    epsem,
    full_read,
    full_write,
    integer,
    logon,
    offset_read,
    offset_write,
    oid,
    procedure_write,
    read_ok,
    security,
    tlv,
)
from otsentry.protocols.base import Fields, Message
from otsentry.protocols.c1222 import (
    MAX_PDU_SIZE,
    SPEC,
    C1222DatagramAnalyzer,
    C1222StreamAnalyzer,
    probe,
    spec_with,
)
from otsentry.protocols.c1222.c1219 import normalize_vendor_procedures, table_name

METER = "1.3.6.1.4.1.33507.1919.12345678.0"
HEAD_END = "1.3.6.1.4.1.33507"


def run(*pdus: bytes, analyzer: C1222StreamAnalyzer | None = None, direction: int = 0) -> list[Fields]:
    analyzer = analyzer or C1222StreamAnalyzer()
    out: list[Message] = []
    for frame, pdu in enumerate(pdus, 1):
        analyzer.on_data(direction, pdu, float(frame), frame, out)
    return [m[3] for m in out]


def request(*services: bytes, invocation: int = 7, control: int = 0x80, called: str = METER) -> bytes:
    return acse(called, HEAD_END, epsem(*services, control=control), calling_invocation=invocation)


def response(*services: bytes, invocation: int = 7, calling: str = METER) -> bytes:
    return acse(HEAD_END, calling, epsem(*services), calling_invocation=99, called_invocation=invocation)


# -- C12.19 procedures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "action", "name"),
    [
        (3, "procedure_clear_data", "SP3 Clear Data"),
        (9, "procedure_remote_reset", "SP9 Remote Reset"),
        (10, "procedure_set_date_time", "SP10 Set Date and/or Time"),
        (0, "procedure_cold_start", "SP0 Cold Start"),
        (200, "procedure_initiate", "SP200"),
    ],
)
def test_standard_procedure_writes(number: int, action: str, name: str) -> None:
    params = bytes.fromhex("1a0b0f0c1e00") if number == 10 else b""  # SP10: a date and time
    (f,) = run(request(procedure_write(number, sequence=5, params=params, selector=1)))
    assert f["event.action"] == action
    assert f["c1222.procedure.number"] == number
    assert f["c1222.procedure.manufacturer"] is False
    assert f["c1222.procedure.id"] == number
    assert f["c1222.procedure.name"] == name
    assert f["c1222.procedure.sequence"] == 5
    assert f["c1222.procedure.selector"] == 1
    assert f["c1222.procedure.selector_name"] == "post_response_on_exception"
    assert f["c1222.procedure.parameters_length"] == len(params)
    (entry,) = f["c1222.services"]
    assert entry == {
        "service": "write",
        "code": 0x40,
        "table_id": 7,
        "table_name": "ST7 Procedure Initiate",
        "count": 3 + len(params),
        "checksum": entry["checksum"],
        "checksum_valid": True,
        "procedure": number,
        "procedure_name": name,
    }
    assert (
        f["c1222.service"] == ["write"] and f["c1222.table_id"] == [7] and f["c1222.service_code"] == [0x40]
    )


def test_procedure_number_is_little_endian_by_default_and_big_endian_when_st0_says_so() -> None:
    analyzer = C1222StreamAnalyzer()
    (f,) = run(request(procedure_write(9)), analyzer=analyzer)
    assert f["c1222.procedure.number"] == 9
    # ST0 FORMAT_CONTROL_1 = 0x01: DATA_ORDER big endian for this meter
    st0 = bytes([0x01, 0x00, 0x00]) + b"GE  " + bytes(12)
    events = run(request(full_read(0), invocation=8), response(read_ok(st0), invocation=8), analyzer=analyzer)
    assert events[1]["c1222.device.data_order"] == "big"
    (f,) = run(request(procedure_write(3, big_endian=True), invocation=9), analyzer=analyzer)
    assert (f["c1222.procedure.number"], f["event.action"]) == (3, "procedure_clear_data")
    # another meter on the same flow still uses the default
    (f,) = run(request(procedure_write(3), called="1.3.6.1.4.1.33507.1919.999.0"), analyzer=analyzer)
    assert f["c1222.procedure.number"] == 3


def test_big_endian_default_from_configuration() -> None:
    spec = spec_with(big_endian_tables=True)
    (f,) = run(request(procedure_write(10, big_endian=True)), analyzer=spec.stream_analyzer())
    assert f["event.action"] == "procedure_set_date_time"


def _st1(manufacturer: bytes) -> bytes:
    return manufacturer.ljust(4) + b"KV2c    " + bytes([1, 2, 3, 4]) + b"SN0001".ljust(16)


def test_manufacturer_procedure_from_vendor_table() -> None:
    spec = spec_with(vendor_procedures={"GE": {"MP12": "remote_disconnect", 13: "remote_connect"}})
    analyzer = spec.stream_analyzer()
    # before the flow shows the manufacturer, MP12 is just a manufacturer procedure
    (f,) = run(request(procedure_write(12, mfg=True)), analyzer=analyzer)
    assert f["event.action"] == "procedure_manufacturer"
    assert (f["c1222.procedure.name"], f["c1222.procedure.id"]) == ("MP12", 0x800 | 12)
    # the head-end reads ST1: manufacturer "GE"
    events = run(
        request(full_read(1), invocation=8), response(read_ok(_st1(b"GE")), invocation=8), analyzer=analyzer
    )
    st1 = events[1]
    assert (st1["c1222.device.manufacturer"], st1["c1222.device.model"]) == ("GE", "KV2c")
    assert (st1["c1222.device.hw_version"], st1["c1222.device.fw_version"]) == ("1.2", "3.4")
    assert st1["c1222.device.serial_number"] == "SN0001"
    assert st1["c1222.services"][0]["table_name"] == "ST1 General Manufacturer Identification"
    (f,) = run(request(procedure_write(12, mfg=True), invocation=9), analyzer=analyzer)
    assert f["event.action"] == "remote_disconnect"
    assert f["c1222.procedure.vendor"] == "GE" and f["c1222.procedure.manufacturer"] is True
    (f,) = run(request(procedure_write(13, mfg=True), invocation=10), analyzer=analyzer)
    assert f["event.action"] == "remote_connect"
    (f,) = run(request(procedure_write(14, mfg=True), invocation=11), analyzer=analyzer)
    assert f["event.action"] == "procedure_manufacturer"
    # the same number as a *standard* procedure is not the vendor's
    (f,) = run(request(procedure_write(12), invocation=12), analyzer=analyzer)
    assert f["event.action"] == "procedure_activate_all_pending_tables"


def test_vendor_table_applies_only_to_its_manufacturer_and_star_to_any() -> None:
    spec = spec_with(vendor_procedures={"ITRN": {12: "remote_disconnect"}, "*": {20: "remote_connect"}})
    analyzer = spec.stream_analyzer()
    run(request(full_read(1), invocation=1), response(read_ok(_st1(b"GE")), invocation=1), analyzer=analyzer)
    (f,) = run(request(procedure_write(12, mfg=True), invocation=2), analyzer=analyzer)
    assert f["event.action"] == "procedure_manufacturer"
    (f,) = run(request(procedure_write(20, mfg=True), invocation=3), analyzer=analyzer)
    assert (f["event.action"], f["c1222.procedure.vendor"]) == ("remote_connect", "*")


@pytest.mark.parametrize(
    "bad", [{"GE": {"MP4096": "x"}}, {"GE": {"12": "not an action!"}}, {"GE": {"zz": "a"}}]
)
def test_vendor_table_is_validated(bad) -> None:
    with pytest.raises(ValueError):
        normalize_vendor_procedures(bad)


def test_offset_write_to_st7_and_other_tables() -> None:
    (f,) = run(request(offset_write(7, 0, bytes([3, 0, 1]))))
    assert f["event.action"] == "procedure_clear_data"
    (f,) = run(request(offset_write(7, 5, bytes([3, 0, 1]))))  # not the start of ST7: no procedure
    assert f["event.action"] == "table_write" and "c1222.procedure.number" not in f
    (f,) = run(request(full_write(2048 + 12, b"\x01\x02")))
    assert f["event.action"] == "table_write"
    assert f["c1222.services"][0]["table_name"] == "MT12"


def test_st8_read_gives_the_procedure_result() -> None:
    analyzer = C1222StreamAnalyzer()
    events = run(
        request(procedure_write(9, sequence=4)),
        response(b"\x00"),
        request(offset_read(8, 0, 4), invocation=8),
        response(read_ok(bytes([9, 0, 4, 5])), invocation=8),
        analyzer=analyzer,
    )
    ack, read = events[1], events[3]
    assert ack["c1222.response_code"] == [0] and ack["event.action"] == "procedure_remote_reset"
    assert "c1222.procedure.result" not in ack  # the EPSEM ack is not the procedure outcome
    assert read["event.action"] == "table_read" and read["c1222.request_frame"] == 3
    assert read["c1222.procedure.result"] == 5
    assert read["c1222.procedure.result_name"] == "no_authorization"
    assert (read["c1222.procedure.number"], read["c1222.procedure.sequence"]) == (9, 4)
    assert read["c1222.services"][0]["procedure_result"] == 5
    assert read["c1222.services"][0]["table_name"] == "ST8 Procedure Response"


def test_write_then_read_in_one_epsem() -> None:
    (f,) = run(request(full_read(23), procedure_write(3), full_read(1)))
    assert f["event.action"] == "procedure_clear_data"
    assert f["c1222.service"] == ["read", "write", "read"]
    assert f["c1222.table_id"] == [23, 7, 1]
    assert [e["table_name"] for e in f["c1222.services"]] == [
        "ST23 Current Register Data",
        "ST7 Procedure Initiate",
        "ST1 General Manufacturer Identification",
    ]


# -- passwords, logon, authentication values ---------------------------------------------------------


def test_security_password_never_appears() -> None:
    password = b"S3cr3t-Pa55w0rd!xyz"
    pdus = (request(security(password, user_id=2)), response(b"\x00"))
    events = run(*pdus)
    events += [m[3] for m in _datagrams(*pdus)]
    for f in events:
        blob = orjson.dumps(f)
        for needle in (password, password.hex().encode(), password[:8], password[-8:]):
            assert needle not in blob
        assert password.decode() not in repr(f)
    req = events[0]
    assert req["event.action"] == "security"
    assert (req["c1222.password.present"], req["c1222.password.length"]) == (True, 20)
    assert req["c1222.security.user_id"] == 2


def test_security_in_the_same_epsem_as_logon() -> None:
    (f,) = run(request(logon(7, b"operator", 120), security(b"pw")))
    assert f["event.action"] == "security"
    assert (f["c1222.logon.user_id"], f["c1222.logon.user"], f["c1222.logon.session_idle_timeout"]) == (
        7,
        "operator",
        120,
    )
    assert f["c1222.password.present"] is True and "c1222.security.user_id" not in f
    assert b"pw" not in orjson.dumps(f).replace(b"password", b"")


def test_authentication_values_keep_only_kind_and_length() -> None:
    secret = b"challenge-response-secret"
    c1221 = tlv(0xA2, tlv(0xA0, tlv(0xA0, tlv(0x82, secret))))
    octets = tlv(0xA2, integer(0) + tlv(0x81, secret))
    for auth, kind in ((c1221, "c1221"), (octets, "octet_aligned")):
        pdu = acse(METER, HEAD_END, epsem(full_read(0)), auth=auth)
        (f,) = run(pdu)
        assert f["c1222.auth.kind"] == kind
        assert f["c1222.auth.value_length"] == len(secret)
        assert secret not in orjson.dumps(f)
    (f,) = run(acse(METER, HEAD_END, epsem(full_read(0)), auth=octets))
    assert f["c1222.auth.indirect_reference"] == 0


# -- ciphered and authenticated EPSEM ------------------------------------------------------------------


def test_ciphered_epsem_is_reported_not_decoded() -> None:
    looks_like_a_write = b"\x08" + procedure_write(3)  # ciphertext that would parse as SP3
    pdu = acse(METER, HEAD_END, epsem(control=0x88) + looks_like_a_write + b"MAC!")
    (f,) = run(pdu)
    assert f["event.action"] == "ciphered_epsem"
    assert f["c1222.ciphered"] is True
    assert f["c1222.epsem.security_mode"] == 2
    assert f["c1222.epsem.security_mode_name"] == "ciphertext_authenticated"
    assert f["c1222.epsem.mac"] == b"MAC!".hex()
    assert f["c1222.epsem.ciphertext_length"] == len(looks_like_a_write)
    assert not any(k.startswith(("c1222.procedure", "c1222.service")) for k in f)


def test_cleartext_with_authentication_decodes_services_before_the_mac() -> None:
    pdu = acse(
        METER,
        HEAD_END,
        epsem(procedure_write(10), control=0x84, ed_class=b"EE\x00\x01", mac=b"\x01\x02\x03\x04"),
    )
    (f,) = run(pdu)
    assert f["c1222.epsem.security_mode"] == 1 and f["c1222.ciphered"] is False
    assert f["c1222.epsem.ed_class"] == "45450001"
    assert f["c1222.epsem.mac"] == "01020304"
    assert f["event.action"] == "procedure_set_date_time"


def test_epsem_control_flags() -> None:
    (f,) = run(request(full_read(0), control=0xE2))  # recovery session, proxy, response never
    assert f["c1222.epsem.recovery_session"] is True
    assert f["c1222.epsem.proxy_service"] is True
    assert (f["c1222.epsem.response_control"], f["c1222.epsem.response_control_name"]) == (2, "never")


# -- ACSE -------------------------------------------------------------------------------------------


def test_acse_elements_and_identifiers() -> None:
    extra = tlv(0xA7, integer(0x05)) + tlv(0x8B, oid("2.16.124.113620.1.22.0")[2:])
    context = tlv(0xA1, oid("2.16.124.113620.1.22"))
    pdu = acse(".123.8437", "1.3.6.1.4.1.4294967295.0", epsem(full_read(0)), extra=extra)
    pdu = tlv(0x60, context + pdu[2:])
    (f,) = run(pdu)
    assert f["c1222.application_context"] == "2.16.124.113620.1.22"
    assert f["c1222.called_ap_title"] == ".123.8437"
    assert f["c1222.calling_ap_title"] == "1.3.6.1.4.1.4294967295.0"
    assert f["c1222.mechanism_name"] == "2.16.124.113620.1.22.0"
    assert f["c1222.calling_ae_qualifier"] == 5
    assert f["c1222.calling_ae_qualifier_flags"] == ["test", "notification"]
    assert f["c1222.elements"][0] == "application_context"


def test_relative_oid_with_universal_tag() -> None:
    title = tlv(0xA2, tlv(0x0D, bytes([0x7B, 0xC1, 0x75])))
    pdu = tlv(0x60, title + tlv(0xBE, tlv(0x28, tlv(0x81, epsem(full_read(0))))))
    (f,) = run(pdu)
    assert f["c1222.called_ap_title"] == ".123.8437"


def test_no_user_information_is_an_association_event() -> None:
    (f,) = run(acse(METER, HEAD_END, None))
    assert f["event.action"] == "association" and "c1222.services" not in f


# -- pairing ----------------------------------------------------------------------------------------


def test_responses_pair_by_invocation_id_out_of_order() -> None:
    analyzer = C1222StreamAnalyzer()
    run(request(full_read(1), invocation=1), request(offset_read(8, 0, 4), invocation=2), analyzer=analyzer)
    st8, st1 = run(
        response(read_ok(bytes([3, 0, 1, 0])), invocation=2),
        response(read_ok(_st1(b"LGYR")), invocation=1),
        analyzer=analyzer,
        direction=1,
    )
    assert st8["c1222.procedure.result_name"] == "completed" and st8["c1222.request_frame"] == 2
    assert st1["c1222.device.manufacturer"] == "LGYR" and st1["c1222.request_frame"] == 1


def test_unmatched_and_never_respond() -> None:
    analyzer = C1222StreamAnalyzer()
    run(request(full_read(1), control=0x82), analyzer=analyzer)  # "never respond": not kept
    (f,) = run(response(read_ok(b"abc")), analyzer=analyzer)
    assert f["c1222.matched"] is False and f["event.action"] == "response"
    assert f["c1222.services"] == [{"service": "unknown", "response_code": 0, "response": "ok"}]
    assert "c1222.service_code" not in f or f["c1222.service_code"] == []


def test_error_responses() -> None:
    analyzer = C1222StreamAnalyzer()
    run(request(full_read(64)), analyzer=analyzer)
    (f,) = run(response(b"\x0f" + struct.pack(">I", 1024)), analyzer=analyzer)
    assert f["c1222.response_code"] == [0x0F]
    assert f["c1222.services"][0]["response"] == "rqtl"
    assert f["c1222.error.max_request_size"] == 1024
    assert f["c1222.services"][0]["table_name"] == "ST64 Load Profile Data Set 1"


def test_response_body_that_does_not_fit_its_request_keeps_the_event() -> None:
    analyzer = C1222StreamAnalyzer()
    _, f = run(request(full_read(3)), response(b"\x00\x00\x09\x01"), analyzer=analyzer)
    assert f["event.dataset"] == "otsentry.c1222" and f["c1222.response_code"] == [0]
    (entry,) = f["c1222.services"]
    assert entry["error"] == "read response: 9 data octets and checksum exceed the service"
    assert "count" not in entry


def test_pending_requests_are_bounded() -> None:
    analyzer = C1222StreamAnalyzer()
    run(*(request(full_read(1), invocation=i) for i in range(1000)), analyzer=analyzer)
    assert len(analyzer.session.pending) <= 64


# -- framing ----------------------------------------------------------------------------------------


def test_several_pdus_in_one_call_and_one_octet_at_a_time() -> None:
    pdus = [request(full_read(n), invocation=n) for n in range(5)]
    stream = b"".join(pdus)
    analyzer = C1222StreamAnalyzer()
    out: list[Message] = []
    analyzer.on_data(0, stream, 1.0, 1, out)
    assert [m[3]["c1222.table_id"] for m in out] == [[n] for n in range(5)]
    out2: list[Message] = []
    analyzer2 = C1222StreamAnalyzer()
    for i in range(len(stream)):
        analyzer2.on_data(0, stream[i : i + 1], 1.0, i + 1, out2)
    assert [m[3] for m in out2] == [m[3] for m in out]
    assert [m[2] for m in out2] == [sum(map(len, pdus[: n + 1])) for n in range(5)]  # frame completing each


def test_garbage_then_pdu_resynchronises_with_one_error() -> None:
    pdu = request(procedure_write(3))
    events = run(b"GET / HTTP/1.1\r\n\x60\x05junk" + pdu + pdu)
    assert [f["event.action"] for f in events] == [
        "decode_error",
        "procedure_clear_data",
        "procedure_clear_data",
    ]
    assert events[0]["error.message"] == "not a C12.22 ACSE PDU (tag 0x47); resynchronising"


def test_after_a_gap_resync_is_quiet() -> None:
    pdu = request(full_read(1))
    analyzer = C1222StreamAnalyzer()
    out: list[Message] = []
    analyzer.on_gap(0)
    analyzer.on_data(0, pdu[7:] + pdu, 1.0, 1, out)
    assert [m[3]["event.action"] for m in out] == ["table_read"]


def test_lying_length_is_bounded_and_resynchronises() -> None:
    analyzer = C1222StreamAnalyzer()
    out: list[Message] = []
    start = time.perf_counter()
    analyzer.on_data(0, b"\x60\x84\xff\xff\xff\xff\xa2\x03", 1.0, 1, out)  # 4 GiB announced, 8 octets sent
    for _ in range(20):
        analyzer.on_data(0, bytes(8192), 1.0, 2, out)
        assert analyzer.buffered[0] <= MAX_PDU_SIZE
    analyzer.on_data(0, request(full_read(1)), 1.0, 3, out)
    assert time.perf_counter() - start < 1.0
    assert out[0][3]["event.action"] == "decode_error"
    assert out[-1][3]["event.action"] == "table_read"


def test_malformed_service_inside_a_well_framed_pdu_keeps_sync() -> None:
    bad = acse(METER, HEAD_END, b"\x80\x05\x40\x00\x07")  # write announced 5 octets, has 3
    good = request(full_read(2))
    events = run(bad, good)
    assert events[0]["event.action"] == "decode_error"
    assert events[0]["c1222.called_ap_title"] == METER  # what was known is kept
    assert events[1]["event.action"] == "table_read"


def test_huge_counts_with_few_octets_return_at_once() -> None:
    # full write announcing 65535 data octets with 2 present; partial read with 9 indices and no data
    events = run(
        request(b"\x40\x00\x07\xff\xff\x01\x02"),
        request(b"\x39\x00\x01"),
        acse(METER, HEAD_END, b"\x80\x84\x7f\xff\xff\xff\x20"),
    )
    assert [f["event.action"] for f in events] == ["decode_error"] * 3


def test_datagram_analyzer() -> None:
    pdus = (request(procedure_write(9)), response(b"\x00"))
    got = _datagrams(*pdus, b"\x60\x10\xa2", b"\x00garbage", pdus[0] + pdus[1])
    assert [m[3]["event.action"] for m in got] == [
        "procedure_remote_reset",
        "procedure_remote_reset",
        "decode_error",
        "decode_error",
        "procedure_remote_reset",
        "procedure_remote_reset",
    ]


def _datagrams(*datagrams: bytes) -> list[Message]:
    analyzer = C1222DatagramAnalyzer()
    out: list[Message] = []
    for frame, datagram in enumerate(datagrams, 1):
        analyzer.on_datagram(0, datagram, float(frame), frame, out)
    return out


# -- probe, spec, names -----------------------------------------------------------------------------


def test_probe_is_strict() -> None:
    pdu = request(full_read(1))
    assert probe(pdu) and probe(pdu + pdu)
    assert not probe(pdu[:-1]) and not probe(pdu + b"\x00")
    assert not probe(acse(METER, HEAD_END, None))  # no user-information
    assert not probe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not probe(b"\x16\x03\x01\x00\x2a" + bytes(42))  # TLS
    assert not probe(b"\x60\x06\x01\x02\x03\x04\x05\x06")  # right length, no element tags
    assert not probe(b"\x60\x80" + bytes(8))


def test_spec() -> None:
    assert SPEC.name == "c1222"
    assert SPEC.tcp_ports == frozenset({1153}) and SPEC.udp_ports == frozenset({1153})
    assert SPEC.probe is probe
    assert isinstance(SPEC.stream_analyzer(), C1222StreamAnalyzer)
    assert isinstance(SPEC.datagram_analyzer(), C1222DatagramAnalyzer)


@pytest.mark.parametrize(
    ("table_id", "name"),
    [
        (0, "ST0 General Configuration"),
        (7, "ST7 Procedure Initiate"),
        (8, "ST8 Procedure Response"),
        (52, "ST52 Clock"),
        (126, "ST126 Registration Status"),
        (9, "ST9"),
        (2048, "MT0"),
        (2048 + 70, "MT70"),
        (4096 + 54, "Pending ST54 Calendar"),
        (6144 + 3, "Pending MT3"),
        (0x2005, "UDT5"),
        (0xC000, "table 0xc000"),
    ],
)
def test_table_names(table_id: int, name: str) -> None:
    assert table_name(table_id) == name


# -- every service layout ----------------------------------------------------------------------------

TITLE_TEXT = "1.3.6.1.4.1.33507.5"
TITLE = oid(TITLE_TEXT)


@pytest.mark.parametrize(
    ("service", "entry", "details"),
    [
        (b"\x3e", {"service": "read_default"}, {}),
        (b"\x32\x00\x17\x00\x01\x00\x02\x00\x05", {"table_id": 23, "index": [1, 2], "count": 5}, {}),
        (b"\x42\x08\x0c\x00\x03\x00\x04" + read_ok(b"\x01\x02\x03\x04")[1:],
         {"service": "write_partial_index", "table_id": 2060, "index": [3, 4], "count": 4,
          "checksum_valid": True}, {}),
        (b"\x4e" + read_ok(b"\x09")[1:], {"service": "write_default", "count": 1}, {}),
        (b"\x52", {"service": "logoff"}, {}),
        (b"\x21", {"service": "terminate"}, {}),
        (b"\x22", {"service": "disconnect"}, {}),
        (b"\x53\x08" + bytes(8), {"service": "authenticate"}, {"c1222.authenticate.length": 8}),
        (b"\x61\x00\x80\x04\x06", {"service": "negotiate"}, {"c1222.negotiate.packet_size": 128}),
        (b"\x71\x01\x02\x03\x04", {"service": "timing_setup"}, {"c1222.timing_setup.retries": 4}),
        (b"\x24" + TITLE, {"service": "deregistration"}, {"c1222.deregistration.ap_title": TITLE_TEXT}),
        (b"\x25" + TITLE, {"service": "resolve"}, {"c1222.resolve.ap_title": TITLE_TEXT}),
        (b"\x26" + TITLE, {"service": "trace"}, {"c1222.trace.ap_titles": [TITLE_TEXT]}),
        (b"\x7f\x01", {"service": "unknown_0x7f"}, {}),
    ],
)  # fmt: skip
def test_request_layouts(service: bytes, entry: dict, details: dict) -> None:
    (f,) = run(request(service))
    assert {k: f["c1222.services"][0].get(k) for k in entry} == entry
    assert {k: f.get(k) for k in details} == details


def test_index_write_to_st7_is_not_a_procedure() -> None:
    (f,) = run(request(b"\x41\x00\x07\x00\x00" + read_ok(b"\x03\x00\x01")[1:]))
    assert f["event.action"] == "table_write" and "c1222.procedure.number" not in f


@pytest.mark.parametrize(
    ("req", "resp", "details"),
    [
        (b"\x25" + TITLE, b"\x00\x04\x0a\x00\x00\x01", {"c1222.resolve.local_address": "0a000001"}),
        (b"\x26" + TITLE, b"\x00" + TITLE + oid(".7.8"), {"c1222.trace.ap_titles": [TITLE_TEXT, ".7.8"]}),
        (b"\x24" + TITLE, b"\x00", {}),
        (b"\x20", b"\x00\x03\x01\x02\x09\x00", {"c1222.identify.unknown_feature": 9}),
        (b"\x20", b"\x00\x00\x02\x00\x07\x00\x00", {"c1222.identify.standard_name": "ANSI C12.18"}),
        (b"\x20", b"\x10\x00\x00\x10\x00", {"c1222.error.max_response_size": 0x1000}),
    ],
)  # fmt: skip
def test_response_layouts(req: bytes, resp: bytes, details: dict) -> None:
    analyzer = C1222StreamAnalyzer()
    _, f = run(request(req), response(resp), analyzer=analyzer)
    assert f["c1222.matched"] is True
    assert {k: f.get(k) for k in details} == details


@pytest.mark.parametrize(
    "service",
    [b"\x40\x00", b"\x3f\x00\x01\x00", b"\x50\x00\x01abc", b"\x51short", b"\x70", b"\x27\x01",
     b"\x24\x06\x05\x2b", b"\x31\x00\x01\x00", b"\x41\x00\x01", b"\x4f\x00\x07\x00", b"\x53", b"\x61\x00",
     b"\x71\x01"],
)  # fmt: skip
def test_truncated_requests_are_decode_errors(service: bytes) -> None:
    (f,) = run(request(service))
    assert f["event.dataset"] == "otsentry.decode_error"
    assert f["c1222.called_ap_title"] == METER


# -- Wireshark on the hand-built messages ---------------------------------------------------------------


@pytest.mark.skipif(__import__("shutil").which("tshark") is None, reason="tshark is not installed")
def test_wireshark_reads_our_procedure_and_table_fields_the_same(tmp_path) -> None:
    from scapy.all import IP, TCP, Ether, wrpcap

    pdus = [
        request(procedure_write(3, sequence=7)),
        request(procedure_write(9, sequence=8)),
        request(procedure_write(10, sequence=9, params=bytes(6))),
        request(procedure_write(12, mfg=True, sequence=10)),
        request(offset_read(8, 0, 4)),
        request(logon(42, b"opr")),
        request(b"\x70\x1e"),
    ]
    seq, packets = 1, []
    for pdu in pdus:
        packets.append(
            Ether()
            / IP(src="10.0.0.1", dst="10.0.0.2")
            / TCP(sport=40000, dport=1153, seq=seq, flags="PA")
            / pdu
        )
        seq += len(pdu)
    path = tmp_path / "c1222_procedures.pcap"
    wrpcap(str(path), packets)
    fields = ("c1222.cmd", "c1222.procedure.num", "c1222.procedure.mfg", "c1222.procedure.sequence",
              "c1222.write.table", "c1222.read.table", "c1222.read.offset", "c1222.read.count",
              "c1222.logon.id", "c1222.logon.user", "c1222.wait.seconds")  # fmt: skip
    from shared import tshark_fields

    rows = tshark_fields(path, fields)
    events = run(*pdus)
    assert len(rows) == len(events) == len(pdus)
    for row, f in zip(rows, events, strict=True):
        cmd, num, mfg, sequence, wtable, rtable, offset, count, user_id, user, wait = row[1:]
        entry = f["c1222.services"][0]
        assert int(cmd, 16) == entry["code"]
        if num:
            assert int(num) == f["c1222.procedure.number"]
            assert bool(int(mfg)) is f["c1222.procedure.manufacturer"]
            assert int(sequence) == f["c1222.procedure.sequence"]
        if wtable or rtable:
            assert int(wtable or rtable, 16) == entry["table_id"]
        if offset:
            assert (int(offset, 16), int(count)) == (entry["offset"], entry["count"])
        if user_id:
            assert (int(user_id), user.strip()) == (f["c1222.logon.user_id"], f["c1222.logon.user"])
        if wait:
            assert int(wait) == f["c1222.wait.seconds"]


# -- BER primitives ------------------------------------------------------------------------------------


def test_ber_reader_limits() -> None:
    from otsentry.protocols.base import DecodeError
    from otsentry.protocols.c1222.ber import oid_text, read_integer, read_length, read_tlv, relative_oid_text

    assert read_length(b"\x82\x01\x00", 0, 3) == (256, 3)
    for bad in (b"", b"\x80", b"\x85\x00\x00\x00\x00\x01", b"\x82\x01"):
        with pytest.raises(DecodeError):
            read_length(bad, 0, len(bad))
    with pytest.raises(DecodeError):
        read_tlv(b"\x1f\x01\x00", 0, 3)  # multi-octet tag
    with pytest.raises(DecodeError):
        read_tlv(b"\x04\x05\x00", 0, 3)  # overruns its container
    assert read_integer(b"\x00" + bytes([0xFF] * 8), 0, 9) == 2**64 - 1
    with pytest.raises(DecodeError):
        read_integer(bytes(10), 0, 10)
    encoded = oid("2.999.3")[2:]
    assert oid_text(encoded, 0, len(encoded)) == "2.999.3"
    assert relative_oid_text(b"\x7b\x04", 0, 2) == ".123.4"
    for bad in (b"", b"\x81", bytes([0x81] * 64) + b"\x01"):
        with pytest.raises(DecodeError):
            oid_text(bad, 0, len(bad))


def test_large_pdu_one_octet_per_segment_is_linear() -> None:
    pdu = request(full_write(64, bytes(60000)))
    assert len(pdu) < MAX_PDU_SIZE
    analyzer = C1222StreamAnalyzer()
    out: list[Message] = []
    start = time.perf_counter()
    for i in range(len(pdu)):
        analyzer.on_data(0, pdu[i : i + 1], 1.0, i, out)
    assert time.perf_counter() - start < 3.0  # quadratic re-joining would copy ~1.8 GB here
    (message,) = out
    assert message[3]["event.action"] == "table_write"
    assert message[3]["c1222.services"][0]["count"] == 60000


def test_resynchronisation_over_many_plausible_candidates_is_bounded() -> None:
    size = 60000
    garbage = bytearray(b"\x8a\x00" * (size // 2))
    for i in range(0, size - 4, 64):  # a candidate header every 64 octets, each claiming the rest
        garbage[i : i + 4] = b"\x60\x82" + (size - i - 4).to_bytes(2, "big")
    analyzer = C1222StreamAnalyzer()
    analyzer.on_gap(0)
    out: list[Message] = []
    start = time.perf_counter()
    analyzer.on_data(0, bytes(garbage), 1.0, 1, out)
    analyzer.on_data(0, request(full_read(1)), 1.0, 2, out)
    assert time.perf_counter() - start < 3.0
    assert [m[3]["event.action"] for m in out] == ["table_read"]
