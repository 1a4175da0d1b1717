"""C12.22 on the public captures, against two independent references: the ICSNPP-C12.22 Zeek
baselines (parsitects/icsnpp-c1222, zeek-cut columns as in its README) and Wireshark's ``c1222``
dissector."""

from __future__ import annotations

import orjson
import pytest

from c1222_helpers import (
    C1222_CAPTURES,
    SHARED_PCAPS,
    analyze_capture,
    flow_table_capture,
    read_segments,
    zeek_bytes,
    zeek_rows,
    zeek_value,
)
from otsentry.protocols.base import Fields
from otsentry.protocols.c1222 import probe
from shared import needs_shared, needs_tshark, tshark_fields

pytestmark = [needs_shared, pytest.mark.shared]

# ICSNPP names (scripts/c1222_enums.zeek REQUEST_RESPONSE_CODES), transcribed to check our codes.
ICSNPP_REQUESTS = {
    0x20: "Ident", 0x21: "Terminate", 0x22: "Disconnect", 0x24: "Deregister", 0x25: "Resolve",
    0x26: "Trace", 0x27: "Register", 0x30: "Full Read", 0x3E: "Partial Read Default",
    0x3F: "Partial Read Offset", 0x40: "Full Write", 0x4F: "Partial Write Offset", 0x50: "Logon",
    0x51: "Security", 0x52: "Logoff", 0x70: "Wait",
    **{0x30 + n: f"Partial Read {n}" for n in range(1, 10)},
    **{0x40 + n: f"Partial Write {n}" for n in range(1, 10)},
}  # fmt: skip
ICSNPP_ELEMENTS = {
    "application_context": "Application Context",
    "called_ap_title": "Called AP Title",
    "called_ap_invocation_id": "Called AP Invocation ID",
    "calling_ap_title": "Calling AP Title",
    "calling_ae_qualifier": "Calling Application Entity Qualifier",
    "calling_ap_invocation_id": "Calling AP Invocation ID",
    "calling_authentication_value": "Calling Authentication Value",
    "mechanism_name": "Mechanism Name",
    "user_information": "User Information",
}
ICSNPP_SECURITY = {0: "CLEARTEXT", 1: "CLEARTEXT_WITH_AUTHENTICATION", 2: "CIPHERTEXT_WITH_AUTHENTICATION"}
ICSNPP_RESPONSE_CONTROL = {0: "ALWAYS_RESPOND", 1: "RESPOND_ON_EXCEPTION", 2: "NEVER_RESPOND"}
# ICSNPP README bit names -> ours (c1222.registration.*_flags)
ICSNPP_NODE_TYPE = {
    "RELAY": "relay", "MASTER_RELAY": "master_relay", "HOST": "host",
    "NOTIFICATION_HOST": "notification_host", "AUTHENTICATION_HOST": "authentication_host",
    "END_DEVICE": "end_device", "RESERVED": "reserved", "MY_DOMAIN_PATTERN_FLAG": "my_domain_pattern",
}  # fmt: skip
ICSNPP_CONNECTION_TYPE = {
    "BROADCAST_AND_MULTICAST": "broadcast_and_multicast",
    "MESSAGE_ACCEPT_WINDOW": "message_acceptance_window",
    "PLAYBACK_REJECTION": "playback_rejection", "RESERVED": "reserved",
    "CONNECTIONLESS_MODE": "connectionless_mode", "ACCEPT_CONNECTIONLESS": "accept_connectionless",
    "CONNECTION_MODE": "connection_mode", "ACCEPT_CONNECTIONS": "accept_connections",
}  # fmt: skip

CAPTURE_IDS = [p.name for p in C1222_CAPTURES]


@pytest.fixture(scope="module", params=C1222_CAPTURES, ids=CAPTURE_IDS)
def capture(request):
    path = request.param
    return path, [m[3] for m in analyze_capture(path)]


def icsnpp_services(f: Fields) -> str:
    """Our services in ICSNPP's c1222.log notation (``REQ:Ident``, ``RESP:OK``), ``-`` when none."""
    names = []
    for entry in f.get("c1222.services", []):
        if "response_code" in entry:
            names.append("RESP:" + entry["response"].upper())
        else:
            names.append("REQ:" + ICSNPP_REQUESTS[entry["code"]])
    return ",".join(names) or "-"


def test_every_capture_has_a_baseline() -> None:
    assert len(C1222_CAPTURES) == 9
    for path in C1222_CAPTURES:
        assert zeek_rows(path, "c1222.log"), path


def test_summary_log_matches_icsnpp(capture) -> None:
    """c1222.log: one row per message — elements, encryption, services, AP titles, ids, auth kind."""
    path, events = capture
    rows = zeek_rows(path, "c1222.log")
    assert [f["event.dataset"] for f in events] == ["otsentry.c1222"] * len(rows)
    assert len(events) == len(rows)
    for f, row in zip(events, rows, strict=True):
        elements, encrypted, services, aso, called, calling = row[5:11]
        qualifier, mechanism, auth, called_id, calling_id = row[11:16]
        assert ",".join(ICSNPP_ELEMENTS[e] for e in f["c1222.elements"]) == elements
        assert f["c1222.ciphered"] is (encrypted == "T")
        assert icsnpp_services(f) == services
        assert f.get("c1222.application_context") == zeek_value(aso)
        assert f["c1222.called_ap_title"] == called
        assert f["c1222.calling_ap_title"] == calling
        assert zeek_value(qualifier) is None and "c1222.calling_ae_qualifier" not in f
        assert f.get("c1222.mechanism_name") == zeek_value(mechanism)
        assert (f.get("c1222.auth.kind") or "-") == ("c1222" if auth == "C1222" else auth)
        for ours, theirs in (
            ("c1222.called_ap_invocation_id", called_id),
            ("c1222.calling_ap_invocation_id", calling_id),
        ):
            expected = None if zeek_value(theirs) is None else int.from_bytes(zeek_bytes(theirs), "big")
            assert f.get(ours) == expected


def test_user_information_log_matches_icsnpp(capture) -> None:
    """c1222_user_information.log: EPSEM control flags, MAC, ciphertext size, services."""
    path, events = capture
    rows = zeek_rows(path, "c1222_user_information.log")
    assert len(rows) == len(events)
    for f, row in zip(events, rows, strict=True):
        indirect, _padding, mac, control, ed_class, ciphertext, services = row[5:12]
        assert f.get("c1222.user_information.indirect_reference") == (
            None if indirect == "-" else int(indirect)
        )
        flags = {
            "SECURITY_MODE_" + ICSNPP_SECURITY[f["c1222.epsem.security_mode"]],
            "RESPONSE_CONTROL_" + ICSNPP_RESPONSE_CONTROL[f["c1222.epsem.response_control"]],
        }
        for ours, theirs in (
            ("c1222.epsem.recovery_session", "RECOVERY_SESSION"),
            ("c1222.epsem.proxy_service", "PROXY_SERVICE_USED"),
        ):
            if f[ours]:
                flags.add(theirs)
        assert flags == set(control.split(","))
        assert f.get("c1222.epsem.ed_class") == zeek_value(ed_class)
        assert f.get("c1222.epsem.mac") == (None if mac == "-" else mac.removeprefix("0x"))
        if f["c1222.ciphered"]:
            assert f["c1222.epsem.ciphertext_length"] == len(zeek_bytes(ciphertext))
        else:
            assert ciphertext == "-"
        assert icsnpp_services(f) == services


def test_authentication_value_log_matches_icsnpp(capture) -> None:
    path, events = capture
    rows = zeek_rows(path, "c1222_authentication_value.log")
    with_auth = [f for f in events if f.get("c1222.auth.present")]
    assert len(with_auth) == len(rows)
    for f, row in zip(with_auth, rows, strict=True):
        mechanism, indirect, octet_aligned, key_id, iv = row[5:10]
        assert (mechanism, indirect, octet_aligned) == ("C12.22", "F", "-")
        assert f["c1222.auth.kind"] == "c1222"
        assert "c1222.auth.indirect_reference" not in f
        assert f["c1222.auth.key_id"] == int(key_id)
        assert int(f["c1222.auth.iv"], 16) == int(iv)


def _by_log(events: list[Fields], path, log: str) -> list[tuple[Fields, list[str]]]:
    rows = zeek_rows(path, log)
    assert len(rows) == len(events)
    for f, row in zip(events, rows, strict=True):
        assert row[5] == ("Resp" if f["c1222.pdu_type"] == "response" else "Req")
    return list(zip(events, rows, strict=True))


def _capture(name: str) -> tuple:
    path = next(p for p in C1222_CAPTURES if p.name == name)
    return path, [m[3] for m in analyze_capture(path)]


def test_identification_service_log() -> None:
    path, events = _capture("c1222_ident_service_tcp.pcap")
    (req, req_row), (resp, row) = _by_log(events, path, "c1222_identification_service.log")
    assert set(req_row[6:]) == {"-"} and not any(k.startswith("c1222.identify.") for k in req)
    standard, version, revision, mechanism, sessions, sessionless, device_class, fmt, identity = row[6:15]
    assert resp["c1222.identify.standard_name"] == standard == "ANSI C12.22"
    assert resp["c1222.identify.version"] == int(version)
    assert resp["c1222.identify.revision"] == int(revision)
    assert resp["c1222.identify.security_mechanism"] == mechanism
    assert (resp["c1222.identify.sessions_supported"] > 0) is (sessions == "T")
    assert resp["c1222.identify.sessionless_supported"] is (sessionless == "T")
    assert resp["c1222.identify.device_class"] == device_class
    assert resp["c1222.identify.device_identity_format"] == int(fmt)
    assert bytes.fromhex(resp["c1222.identify.device_identity"]) == zeek_bytes(identity)


def test_logon_service_log_without_password() -> None:
    path, events = _capture("c1222_logon_service_tcp.pcap")
    (req, row), (resp, resp_row) = _by_log(events, path, "c1222_logon_security_service.log")
    service, user_id, password, user, timeout = row[6:11]
    assert service == "Logon" and password == "-"
    assert req["c1222.logon.user_id"] == int(user_id)
    assert req["c1222.logon.user"] == user
    assert req["c1222.logon.session_idle_timeout"] == int(timeout)
    assert "c1222.password.present" not in req  # a logon carries no password; security (0x51) does
    assert resp["c1222.logon.session_idle_timeout"] == int(resp_row[10])


def test_read_write_service_log() -> None:
    path, events = _capture("c1222_rw_service_tcp.pcap")
    (req, row), (resp, resp_row) = _by_log(events, path, "c1222_read_write_service.log")
    service, table, offset, index, elements = row[6:11]
    (entry,) = req["c1222.services"]
    assert service == "pread" and entry["service"] == "read_partial_index"
    assert entry["table_id"] == int(table) and req["c1222.table_id"] == [int(table)]
    assert "offset" not in entry and offset == "-"
    assert entry["index"] == [int(i) for i in index.split(",")]
    assert entry["count"] == int(elements)
    service, count, data, checksum = resp_row[6], resp_row[11], resp_row[12], resp_row[13]
    (entry,) = resp["c1222.services"]
    assert service == "readresp-ok" and entry["response"] == "ok"
    assert entry["count"] == int(count) == len(zeek_bytes(data))
    assert entry["checksum"] == int(checksum)
    assert entry["table_id"] == int(table)  # copied from the paired request


def test_wait_service_log() -> None:
    path, events = _capture("c1222_wait_service_tcp.pcap")
    (req, row), (resp, resp_row) = _by_log(events, path, "c1222_wait_service.log")
    assert req["c1222.wait.seconds"] == int(row[6])
    assert resp_row[6] == "-" and "c1222.wait.seconds" not in resp


def test_registration_service_log() -> None:
    path, events = _capture("c1222_reg_service_tcp.pcap")
    (req, row), (resp, resp_row) = _by_log(events, path, "c1222_dereg_reg_service.log")
    service, node, connection, device_class, ap_title, esn, address, pattern, period = row[6:15]
    assert service == "register_req"
    assert req["c1222.registration.node_type_flags"] == [ICSNPP_NODE_TYPE[n] for n in node.split(",")]
    assert req["c1222.registration.connection_type_flags"] == [
        ICSNPP_CONNECTION_TYPE[c] for c in connection.split(",")
    ]
    assert req["c1222.registration.device_class"] == device_class
    assert req["c1222.registration.ap_title"] == ap_title
    assert req["c1222.registration.electronic_serial_number"] == esn
    assert bytes.fromhex(req["c1222.registration.native_address"]) == zeek_bytes(address)
    assert req["c1222.registration.domain_pattern"] == pattern
    assert req["c1222.registration.period"] == int(period)
    service, ap_title, period, delay, info = (
        resp_row[6],
        resp_row[10],
        resp_row[14],
        resp_row[15],
        resp_row[16],
    )
    assert service == "register_resp_ok"
    assert resp["c1222.registration.ap_title"] == ap_title
    assert resp["c1222.registration.period"] == int(period)
    assert resp["c1222.registration.delay"] == int(delay)
    assert resp["c1222.registration.info_flags"] == [i.lower() for i in info.split(",")]


def test_service_error_log() -> None:
    path, events = _capture("c1222_service_error_tcp.pcap")
    (row,) = zeek_rows(path, "c1222_service_error.log")
    req, resp = events
    assert row[5:7] == [icsnpp_services(req), icsnpp_services(resp)] == ["REQ:Ident", "RESP:ISSS"]
    assert resp["c1222.response_code"] == [0x0A]
    assert resp["c1222.matched"] is True and resp["event.action"] == "identification"
    assert set(row[7:10]) == {"-"} and not any(k.startswith("c1222.error.") for k in resp)


@needs_tshark
def test_wireshark_agrees_on_commands_and_titles(capture) -> None:
    """Every frame where Wireshark or otsentry sees a C12.22 message: same command/response
    octets (``c1222.cmd`` ≥ 0x20, ``c1222.err`` < 0x20), AP titles and security mode."""
    path, events = capture
    ours = {m[2]: m[3] for m in analyze_capture(path)}
    fields = (
        "c1222.cmd", "c1222.err", "c1222.called_ap_title_abs", "c1222.called_ap_title_rel",
        "c1222.calling_ap_title_abs", "c1222.calling_ap_title_rel", "c1222.epsem.flags.security",
    )  # fmt: skip
    compared = 0
    for row in tshark_fields(path, fields):
        frame, cmd, err, called_abs, called_rel, calling_abs, calling_rel, security = row
        if not (cmd or err or called_abs or called_rel or int(frame) in ours):
            continue
        f = ours[int(frame)]
        codes = [int(c, 16) for c in cmd.split(",") if c] if cmd else []
        errors = [int(c, 16) for c in err.split(",") if c] if err else []
        if f.get("c1222.pdu_type") == "response":
            assert f["c1222.response_code"] == errors and not codes
        else:
            assert f.get("c1222.service_code", []) == codes and not errors
        assert f["c1222.called_ap_title"] == (called_abs or called_rel)
        assert f["c1222.calling_ap_title"] == (calling_abs or calling_rel)
        assert f["c1222.epsem.security_mode"] == int(security, 16)
        compared += 1
    assert compared == len(events) == len(ours)


def test_flow_table_replay_gives_the_same_events(capture) -> None:
    """Through the sensor's flow table and TCP reassembly (IPv6/SLL included) nothing changes."""
    path, events = capture
    replayed = flow_table_capture(path)
    assert [m[3] for m in replayed] == events
    assert [m[2] for m in replayed] == [m[2] for m in analyze_capture(path)]


def test_events_serialise_and_keep_types(capture) -> None:
    _, events = capture
    for f in events:
        assert orjson.loads(orjson.dumps(f)) == f
        assert isinstance(f["c1222.called_ap_title"], str)
        assert all(isinstance(v, int) for v in f.get("c1222.service_code", []))


NON_C1222 = ["zeek/background", "iti-ics/other", "icsnpp-modbus", "wireshark-dlms", "zeek-iec104"]


def test_probe_rejects_every_payload_of_other_protocols() -> None:
    """The strict probe says no to every TCP/UDP payload of the non-C12.22 public captures
    (DNS, HTTP, BACnet, ENIP, S7, IEC 61850, Modbus, DLMS, IEC-104)."""
    checked = 0
    for folder in NON_C1222:
        for path in sorted((SHARED_PCAPS / folder).glob("*.pcap")):
            for seg in read_segments(path):
                if len(seg.payload) >= 8:
                    assert not probe(seg.payload), (path.name, seg.frame)
                    checked += 1
    assert checked > 500
