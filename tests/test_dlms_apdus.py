"""DLMS APDUs with meaning, secrets and ciphering — most written by gurux-dlms's client, the
rest hand-built from the Green Book and cross-checked with gurux's translator."""

from __future__ import annotations

import base64
import datetime

import orjson
import pytest

from dlms_helpers import flatten, gurux_client, gurux_view, run, unwrap, wrap
from otsentry.protocols.base import DecodeError
from otsentry.protocols.dlms import DlmsAnalyzer
from otsentry.protocols.dlms.apdu import decode_apdu

gurux_dlms = pytest.importorskip("gurux_dlms")
from gurux_dlms import GXDateTime  # noqa: E402
from gurux_dlms.enums import Authentication, Security  # noqa: E402
from gurux_dlms.objects import (  # noqa: E402
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSDisconnectControl,
    GXDLMSImageTransfer,
    GXDLMSRegister,
    GXDLMSSecuritySetup,
)
from gurux_dlms.objects.enums import GlobalKeyType  # noqa: E402

DISCONNECTOR = "0.0.96.3.10.255"
READ_LIST = [(GXDLMSRegister("1.0.1.8.0.255"), 2), (GXDLMSClock("0.0.1.0.0.255"), 2)]
IMAGE_TRANSFER = "0.0.44.0.0.255"


def one(frames: list[bytes], direction: int = 0) -> dict:
    [fields] = run([(direction, frame) for frame in frames])
    return fields


def norm(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


# -- meaning ------------------------------------------------------------------------------------


def test_remote_disconnect_from_gurux_client() -> None:
    frames = flatten(GXDLMSDisconnectControl(DISCONNECTOR).remoteDisconnect(gurux_client()))
    fields = one(frames)
    assert fields["event.action"] == "remote_disconnect"
    assert fields["dlms.apdu"] == "action-request" and fields["dlms.apdu_variant"] == "normal"
    assert fields["dlms.class_id"] == 70 and fields["dlms.method_id"] == 1
    assert fields["dlms.obis"] == "0-0:96.3.10.255"
    assert fields["dlms.class"] == "disconnect_control" and fields["dlms.method"] == "remote_disconnect"
    assert fields["dlms.value"] == 0 and fields["dlms.value_type"] == "integer"  # gurux passes integer 0
    gurux = gurux_view(unwrap(frames[0]))
    assert (gurux["root"], gurux["ClassId"], gurux["MethodId"]) == ("ActionRequest", [70], [1])


def test_remote_reconnect() -> None:
    fields = one(flatten(GXDLMSDisconnectControl(DISCONNECTOR).remoteReconnect(gurux_client())))
    assert fields["event.action"] == "remote_reconnect" and fields["dlms.method_id"] == 2


def test_image_transfer_initiate_verify_activate() -> None:
    image = GXDLMSImageTransfer(IMAGE_TRANSFER)
    client = gurux_client()
    frames = [
        *flatten(image.imageTransferInitiate(client, "FW-1.2.3", 1000)),
        *flatten(image.imageVerify(client)),
        *flatten(image.imageActivate(client)),
    ]
    events = run([(0, f) for f in frames])
    actions = [e["event.action"] for e in events]
    assert actions == ["image_transfer_initiate", "image_verify", "image_activate"]
    assert all(e["dlms.obis"] == "0-0:44.0.0.255" and e["dlms.class_id"] == 18 for e in events)
    assert [e["dlms.method_id"] for e in events] == [1, 3, 4]
    assert events[0]["dlms.value"] == [b"FW-1.2.3".hex(), 1000]


def test_image_block_transfer_first_pblock_keeps_meaning_on_continuations() -> None:
    # action-request-with-first-pblock (4) then -with-pblock (6), Green Book 9.3.8; hand-built.
    # The joined raw-data is one Data: structure {unsigned 4, octet-string 0203}.
    first = bytes.fromhex("c304c1 0012 00002c0000ff 02 00 00000001 03 020211")
    nxt = bytes.fromhex("c306c1 01 00000002 05 0409020203")
    events = run([(0, wrap(first)), (0, wrap(nxt))])
    assert [e["event.action"] for e in events] == ["image_block_transfer", "image_block_transfer"]
    assert events[1]["dlms.matched"] is True and events[1]["dlms.method"] == "image_block_transfer"
    assert events[1]["dlms.block.last"] is True and events[1]["dlms.block.number"] == 2
    assert events[1]["dlms.block.reassembled"] is True
    assert events[1]["dlms.value"] == [4, "0203"]


def test_clock_set_and_adjust() -> None:
    clock = GXDLMSClock("0.0.1.0.0.255")
    clock.time = GXDateTime(datetime.datetime(2024, 3, 5, 17, 59, 4))
    client = gurux_client()
    frames = [*flatten(client.write(clock, 2)), *flatten(clock.adjustToQuarter(client))]
    set_event, adjust = run([(0, f) for f in frames])
    assert set_event["event.action"] == "clock_set"
    assert (set_event["dlms.class_id"], set_event["dlms.attribute_id"]) == (8, 2)
    assert set_event["dlms.attribute"] == "time"
    assert set_event["dlms.value_type"] == "octet-string"
    assert set_event["dlms.date_time"].startswith("2024-03-05T17:59:04")
    assert adjust["event.action"] == "clock_adjust_to_quarter"
    assert adjust["dlms.method"] == "adjust_to_quarter"


def test_security_setup_methods() -> None:
    setup = GXDLMSSecuritySetup("0.0.43.0.0.255")
    client = gurux_client()
    key = bytes(range(16, 32))
    frames = [
        *flatten(setup.activate(client, Security.AUTHENTICATION_ENCRYPTION)),
        *flatten(setup.globalKeyTransfer(client, bytes(16), [(GlobalKeyType.UNICAST_ENCRYPTION, key)])),
    ]
    activate, transfer = run([(0, f) for f in frames])
    assert activate["event.action"] == "security_policy_change"
    assert activate["dlms.method"] == "security_activate"
    assert transfer["event.action"] == "security_key_change" and transfer["dlms.method"] == "key_transfer"
    # Wrapped keys are key material: only their size is reported.
    assert transfer["dlms.value_redacted"] is True and "dlms.value" not in transfer
    assert transfer["dlms.value_length"] == len(unwrap(frames[1])) - 13


# -- secrets ------------------------------------------------------------------------------------


def assert_nowhere(secret: bytes, fields: dict) -> None:
    blob = orjson.dumps(fields)
    for form in (secret, secret.hex().encode(), secret.hex().upper().encode(), base64.b64encode(secret)):
        assert form not in blob
    for value in fields.values():
        assert value != list(secret)


def test_aarq_lls_password_is_never_stored() -> None:
    password = b"s3cretPW"
    frames = flatten(gurux_client(Authentication.LOW, password.decode()).aarqRequest())
    fields = one(frames)
    assert password in frames[0]  # the password really is on the wire
    assert fields["event.action"] == "association_request"
    assert fields["dlms.authentication"] == "low"
    assert fields["dlms.calling_authentication.present"] is True
    assert fields["dlms.calling_authentication.length"] == len(password)
    assert fields["dlms.calling_authentication.form"] == "charstring"
    assert_nowhere(password, fields)


def test_lls_and_hls_secret_changes_are_redacted() -> None:
    client = gurux_client(Authentication.LOW, "old-pass")
    association = GXDLMSAssociationLogicalName()
    association.authenticationMechanismName.mechanismId = Authentication.LOW
    association.secret = b"new-LLS-secret"
    lls = flatten(association.updateSecret(client))
    association.authenticationMechanismName.mechanismId = Authentication.HIGH
    association.secret = b"new-HLS-secret-16"
    hls = flatten(association.updateSecret(client))
    lls_event, hls_event = run([(0, f) for f in lls + hls])
    assert lls_event["event.action"] == hls_event["event.action"] == "association_secret_change"
    assert lls_event["dlms.attribute"] == "secret" and hls_event["dlms.method"] == "change_HLS_secret"
    for event, secret in ((lls_event, b"new-LLS-secret"), (hls_event, b"new-HLS-secret-16")):
        assert event["dlms.value_redacted"] is True
        assert event["dlms.value_length"] == 2 + len(secret)
        assert_nowhere(secret, event)


def test_hls_association_reports_challenge_length_only() -> None:
    client = gurux_client(Authentication.HIGH_GMAC, None, Security.AUTHENTICATION_ENCRYPTION)
    frames = flatten(client.aarqRequest())
    fields = one(frames)
    challenge = client.getCtoSChallenge()
    assert fields["dlms.authentication"] == "high-gmac"
    assert fields["dlms.calling_authentication.length"] == len(challenge)
    assert_nowhere(bytes(challenge), fields)


def test_dedicated_key_in_initiate_request_is_not_stored() -> None:
    key = bytes(range(0xA0, 0xB0))
    initiate = b"\x01\x01\x10" + key + bytes.fromhex("0000065f1f0400001e5dffff")
    user_information = b"\xbe" + bytes([len(initiate) + 2, 0x04, len(initiate)])
    aarq_body = bytes.fromhex("a109060760857405080101") + user_information
    aarq = b"\x60" + bytes([len(aarq_body) + len(initiate)]) + aarq_body + initiate
    fields = one([wrap(aarq)])
    assert fields["dlms.initiate.dedicated_key_present"] is True
    assert fields["dlms.initiate.dedicated_key_length"] == 16
    assert_nowhere(key, fields)


# -- ciphering ----------------------------------------------------------------------------------


def test_glo_ciphered_request_takes_the_system_title_from_the_aarq() -> None:
    client = gurux_client(Authentication.HIGH_GMAC, None, Security.AUTHENTICATION_ENCRYPTION, b"GRX12345")
    aarq = flatten(client.aarqRequest())
    request = flatten(GXDLMSDisconnectControl(DISCONNECTOR).remoteDisconnect(client))
    association, ciphered = run([(0, f) for f in aarq + request])
    assert association["dlms.calling_ap_title"] == b"GRX12345".hex()
    assert association["dlms.initiate.ciphered"] is True
    apdu = unwrap(request[0])
    assert ciphered["dlms.apdu"] == "glo-action-request" and ciphered["event.action"] == "action_request"
    assert ciphered["dlms.ciphered"] is True
    assert ciphered["dlms.security_control"] == apdu[2] == 0x30
    assert ciphered["dlms.security.authentication"] and ciphered["dlms.security.encryption"]
    assert ciphered["dlms.invocation_counter"] == int.from_bytes(apdu[3:7], "big")
    assert ciphered["dlms.system_title"] == b"GRX12345".hex()
    assert ciphered["dlms.system_title_source"] == "association"
    assert ciphered["dlms.manufacturer"] == "GRX"
    assert "dlms.class_id" not in ciphered  # encrypted: nothing more is claimed
    assert gurux_view(apdu)["root"] == "glo_ActionRequest"


def test_authenticated_only_apdu_is_read_through() -> None:
    client = gurux_client(Authentication.HIGH_GMAC, None, Security.AUTHENTICATION, b"GRX12345")
    frames = flatten(GXDLMSDisconnectControl(DISCONNECTOR).remoteDisconnect(client))
    fields = one(frames)
    assert fields["dlms.apdu"] == "glo-action-request" and fields["dlms.inner_apdu"] == "action-request"
    assert fields["dlms.ciphered"] is True and fields["dlms.security.encryption"] is False
    assert fields["event.action"] == "remote_disconnect" and fields["dlms.obis"] == "0-0:96.3.10.255"


def test_general_glo_ciphering_carries_its_system_title() -> None:
    content = bytes.fromhex("30 00000007") + bytes(20)
    apdu = b"\xdb\x08" + b"KFM00001" + bytes([len(content)]) + content
    fields = one([wrap(apdu)])
    assert fields["dlms.apdu"] == "general-glo-ciphering"
    assert fields["dlms.system_title"] == b"KFM00001".hex() and fields["dlms.system_title_source"] == "apdu"
    assert fields["dlms.manufacturer"] == "KFM" and fields["dlms.invocation_counter"] == 7


def test_general_ciphering_with_wrapped_key() -> None:
    content = bytes.fromhex("20 00000009") + bytes(8)
    apdu = (
        b"\xdd"
        + b"\x01\x05"
        + b"\x08ABC00001"
        + b"\x08XYZ00002"
        + b"\x00"
        + b"\x00"
        + b"\x01\x01\x00\x10"
        + bytes(16)
        + bytes([len(content)])
        + content
    )
    fields = one([wrap(apdu)])
    assert fields["dlms.apdu"] == "general-ciphering" and fields["dlms.key_info"] == "wrapped-key"
    assert fields["dlms.system_title"] == b"ABC00001".hex()
    assert fields["dlms.recipient_system_title"] == b"XYZ00002".hex()
    assert fields["dlms.security.encryption"] and not fields["dlms.security.authentication"]
    assert fields["dlms.transaction_id"] == "05"


def test_glo_ciphered_response_takes_the_server_title_from_the_aare() -> None:
    aare = bytes.fromhex(
        "6148a109060760857405080103a203020100a305a103020100a40a04084142434445464748"
        "be230421281f3000000001fc5ff7bba5941d899ec2ee8a9c63b16d0abb10a88e7ff3fb7745"
    )
    response = bytes.fromhex("cc0a3000000002") + bytes(5)
    _, fields = run([(1, wrap(aare, 1, 0x20)), (1, wrap(response, 1, 0x20))])
    assert fields["dlms.apdu"] == "glo-get-response" and fields["event.action"] == "get_response"
    assert fields["dlms.system_title"] == b"ABCDEFGH".hex() and fields["dlms.manufacturer"] == "ABC"


# -- with-list and responses paired with their request ---------------------------------------


def test_get_with_list_from_gurux() -> None:
    client = gurux_client()
    frames = flatten(client.readList(READ_LIST))
    fields = one(frames)
    assert fields["dlms.apdu_variant"] == "with-list"
    assert fields["dlms.class_id"] == [3, 8]
    assert fields["dlms.obis"] == ["1-0:1.8.0.255", "0-0:1.0.0.255"]
    assert fields["dlms.attribute_id"] == [2, 2]
    assert [item["class"] for item in fields["dlms.items"]] == ["register", "clock"]
    gurux = gurux_view(unwrap(frames[0]))
    assert gurux["ClassId"] == fields["dlms.class_id"] and gurux["AttributeId"] == [2, 2]


def test_get_with_list_response_pairs_results_with_items() -> None:
    client = gurux_client()
    request = flatten(client.readList(READ_LIST))
    iip = unwrap(request[0])[2]
    response = bytes([0xC4, 0x03, iip, 0x02, 0x00, 0x06, 0, 0, 0x30, 0x39, 0x01, 0x04])
    _, fields = run([(0, request[0]), (1, wrap(response, 1, 0x10))])
    assert fields["dlms.matched"] is True
    assert fields["dlms.result"] == ["success", "object-undefined"]
    assert fields["dlms.items"][0]["value"] == 12345 and fields["dlms.items"][0]["obis"] == "1-0:1.8.0.255"
    assert fields["dlms.items"][1]["result"] == "object-undefined"
    assert fields["dlms.items"][1]["class"] == "clock"


def test_set_with_list_agrees_with_gurux_translator() -> None:
    # gurux 1.0.203's writeList() is broken in Python, so the request is hand-built (Green Book
    # Set-Request-With-List) and checked against gurux's translator instead.
    apdu = bytes.fromhex(
        "c104c1 02 0001 0000600100ff 02 00 0001 0000600101ff 02 00 02 0a08" + b"METER-42".hex() + "1107"
    )
    fields = one([wrap(apdu)])
    assert fields["dlms.apdu"] == "set-request" and fields["dlms.apdu_variant"] == "with-list"
    assert [item["value"] for item in fields["dlms.items"]] == ["METER-42", 7]
    assert fields["dlms.obis"] == ["0-0:96.1.0.255", "0-0:96.1.1.255"]
    gurux = gurux_view(apdu)
    assert gurux["second"] == "SetRequestWithList" and gurux["ClassId"] == [1, 1]
    assert gurux["AttributeId"] == fields["dlms.attribute_id"] == [2, 2]


@pytest.mark.parametrize(
    ("response", "result"),
    [
        ("c501c103", "read-write-denied"),
        ("c501c1fa", "other-reason"),
        ("c501c100", "success"),
    ],
)
def test_set_response_result_names_agree_with_gurux(response: str, result: str) -> None:
    clock = GXDLMSClock("0.0.1.0.0.255")
    clock.time = GXDateTime(datetime.datetime(2024, 1, 1))
    request = flatten(gurux_client().write(clock, 2))
    _, fields = run([(0, request[0]), (1, wrap(bytes.fromhex(response), 1, 0x10))])
    assert fields["dlms.result"] == result
    assert fields["dlms.matched"] is True and fields["dlms.meaning"] == "clock_set"
    assert fields["event.action"] == "set_response"
    gurux_result = gurux_view(bytes.fromhex(response))["xml"].split('<Result Value="')[1].split('"')[0]
    assert norm(gurux_result) == norm(result)


def test_action_response_carries_the_meaning_of_its_request() -> None:
    request = flatten(GXDLMSDisconnectControl(DISCONNECTOR).remoteDisconnect(gurux_client()))
    iip = unwrap(request[0])[2]
    _, fields = run([(0, request[0]), (1, wrap(bytes([0xC7, 0x01, iip, 0x00, 0x00]), 1, 0x10))])
    assert fields["event.action"] == "action_response" and fields["dlms.result"] == "success"
    assert fields["dlms.meaning"] == "remote_disconnect" and fields["dlms.obis"] == "0-0:96.3.10.255"


def test_get_response_unmatched_and_datablock_reassembly() -> None:
    analyzer = DlmsAnalyzer()
    lone = run([(1, wrap(bytes.fromhex("c401c3000f05"), 1, 0x10))], analyzer)[0]
    assert lone["dlms.matched"] is False and lone["dlms.value"] == 5
    request = bytes.fromhex("c001c30007010063 0100ff 0200")
    value = bytes.fromhex("0103") + bytes.fromhex("1200011200021200 03")
    block1 = bytes.fromhex("c402c3 00 00000001 00") + bytes([5]) + value[:5]
    next_request = bytes.fromhex("c002c300000001")
    block2 = bytes.fromhex("c402c3 01 00000002 00") + bytes([len(value) - 5]) + value[5:]
    events = run(
        [(0, wrap(request)), (1, wrap(block1, 1, 0x10)), (0, wrap(next_request)), (1, wrap(block2, 1, 0x10))],
        analyzer,
    )
    assert events[2]["dlms.apdu_variant"] == "next" and events[2]["dlms.obis"] == "1-0:99.1.0.255"
    assert events[3]["dlms.block.reassembled"] is True
    assert events[3]["dlms.value"] == [1, 2, 3] and events[3]["dlms.class"] == "profile_generic"


# -- notifications, errors, association outcomes --------------------------------------------------


def test_data_notification() -> None:
    apdu = bytes.fromhex("0f 40000005 0c 07e8030505113b0400ffc400 0202 0906 0100010800ff 06 00000064")
    fields = one([wrap(apdu, 1, 0x10)], direction=1)
    assert fields["event.action"] == "data_notification" and fields["dlms.invoke_id"] == 5
    assert fields["dlms.service_class"] == "confirmed"
    assert fields["dlms.date_time"] == "2024-03-05T17:59:04.00+01:00"
    assert fields["dlms.value"] == ["0100010800ff", 100]
    assert gurux_view(apdu)["root"] == "DataNotification"


def test_event_notification() -> None:
    apdu = bytes.fromhex("c2 01 0c 07e80305ff0a0000ff800000 0001 0000616200ff 02 06 00000004")
    fields = one([wrap(apdu, 1, 0x10)], direction=1)
    assert fields["event.action"] == "event_notification"
    assert (fields["dlms.class_id"], fields["dlms.attribute_id"]) == (1, 2)
    assert fields["dlms.obis"] == "0-0:97.98.0.255"
    assert fields["dlms.date_time"] == "2024-03-05T10:00:00.*"
    assert fields["dlms.value"] == 4
    gurux = gurux_view(apdu)
    assert gurux["ClassId"] == [1] and gurux["AttributeId"] == [2]


@pytest.mark.parametrize(
    ("hexdata", "state", "service", "counter"),
    [
        ("d80102", "service-not-allowed", "service-not-supported", None),
        ("d80205", "service-unknown", "deciphering-error", None),
        ("d801060000002a", "service-not-allowed", "invocation-counter-error", 42),
    ],
)
def test_exception_response(hexdata: str, state: str, service: str, counter: int | None) -> None:
    fields = decode_apdu(bytes.fromhex(hexdata)).fields
    assert fields["dlms.exception.state_error"] == state
    assert fields["dlms.exception.service_error"] == service
    assert fields.get("dlms.exception.invocation_counter") == counter


def test_confirmed_service_error_agrees_with_gurux() -> None:
    fields = decode_apdu(bytes.fromhex("0e010601")).fields
    assert fields["dlms.confirmed_service_error.service"] == "initiateError"
    assert fields["dlms.confirmed_service_error.error_class"] == "initiate"
    assert fields["dlms.confirmed_service_error.error"] == "dlms-version-too-low"
    assert '<Initiate Value="DlmsVersionTooLow"' in gurux_view(bytes.fromhex("0e010601"))["xml"]


def test_rejected_association() -> None:
    aare = bytes.fromhex(
        "6129 a109060760857405080101 a203020101 a305a10302010dbe10040e0800065f1f0400001e5dffff0007"
    )
    fields = decode_apdu(aare).fields
    assert fields["dlms.association.result"] == "rejected-permanent"
    assert fields["dlms.association.diagnostic"] == "authentication-failure"


def test_general_block_transfer() -> None:
    fields = decode_apdu(bytes.fromhex("e0c100030002" + "05" + "c001c1000f")).fields
    assert fields["dlms.gbt.last_block"] and fields["dlms.gbt.streaming"] and fields["dlms.gbt.window"] == 1
    assert (fields["dlms.gbt.block_number"], fields["dlms.gbt.block_number_ack"]) == (3, 2)


def test_short_name_read() -> None:
    apdu = bytes.fromhex("0502020a0002fa08")
    decoded = decode_apdu(apdu)
    assert decoded.action == "read_request" and decoded.fields["dlms.short_name"] == [0x0A00, 0xFA08]
    assert gurux_view(apdu)["root"] == "ReadRequest"


# -- every service variant (Green Book 9.5), cross-checked with gurux where its translator can ----

# (APDU, fields it must give, the element GXDLMSTranslator names it by — None where gurux 1.0.203
# cannot read that variant).
OK_DENIED = ["success", "read-write-denied"]
VARIANTS = [
    # get-request-normal with selective access (profile generic buffer by range)
    ("c001c1 0007 0100630100ff 02 01 01 0204 0204 120008 0906 0000010000ff 0f02 1200"
     "00 090c07e8010100000000ff800000 090c07e8010200000000ff800000 0100",
     {"dlms.apdu_variant": "normal", "dlms.selective_access": True, "dlms.access_selector": 1,
      "dlms.class": "profile_generic", "dlms.attribute": "buffer"}, "GetRequestNormal"),
    ("c102c1 0001 0000600100ff 02 00 00 00000001 03 0a0141",
     {"dlms.apdu_variant": "with-first-datablock", "dlms.block.number": 1, "dlms.block.length": 3},
     "SetRequestFirstDataBlock"),
    ("c103c1 01 00000002 02 4243", {"dlms.apdu_variant": "with-datablock", "dlms.block.last": True}, None),
    ("c105c1 02 0001 0000600100ff 02 00 0001 0000600101ff 02 00 01 00000001 02 0201",
     {"dlms.apdu_variant": "with-list-and-first-datablock", "dlms.obis": ["0-0:96.1.0.255", "0-0:96.1.1.255"],
      "dlms.block.last": True}, None),
    ("c502c1 00000001", {"dlms.apdu_variant": "datablock", "dlms.block.number": 1}, "SetResponseDataBlock"),
    ("c503c1 00 00000002", {"dlms.apdu_variant": "last-datablock", "dlms.result": "success"},
     "SetResponseWithLastDataBlock"),
    ("c504c1 02 00 03 00000002",
     {"dlms.apdu_variant": "last-datablock-with-list", "dlms.result": OK_DENIED}, None),
    ("c505c1 02 00 03", {"dlms.apdu_variant": "with-list", "dlms.result": OK_DENIED},
     "SetResponseWithList"),
    ("c303c1 02 0046 0000600300ff 01 0046 0000600301ff 02 02 0f00 0f00",
     {"dlms.apdu_variant": "with-list", "dlms.method_id": [1, 2],
      "dlms.meanings": ["remote_disconnect", "remote_reconnect"], "event.action": "remote_disconnect"}, None),
    ("c302c1 00000001", {"dlms.apdu_variant": "next-pblock", "dlms.matched": False}, None),
    ("c305c1 01 0012 00002c0000ff 02 00 00000001 02 0900",
     {"dlms.apdu_variant": "with-list-and-first-pblock", "dlms.meanings": ["image_block_transfer"]}, None),
    ("c701c1 00 01 00 0600000005",
     {"dlms.apdu_variant": "normal", "dlms.result": "success", "dlms.return_value": 5},
     "ActionResponseNormal"),
    ("c701c1 0b 01 01 04",
     {"dlms.result": "object-unavailable", "dlms.return_result": "object-undefined"}, "ActionResponseNormal"),
    ("c702c1 01 00000001 02 1101", {"dlms.apdu_variant": "with-pblock", "dlms.block.last": True}, None),
    ("c703c1 02 00 00 03 01 01 04", {"dlms.apdu_variant": "with-list",
                                     "dlms.result": OK_DENIED}, None),
    ("c704c1 00000001", {"dlms.apdu_variant": "next-pblock", "dlms.block.number": 1},
     "ActionResponseNextBlock"),
    ("c401c1 01 0e", {"dlms.result": "data-block-unavailable", "dlms.result_code": 14}, "GetResponseNormal"),
    ("c402c1 01 00000003 01 13", {"dlms.result": "data-block-number-invalid", "dlms.block.number": 3},
     "GetResponsewithDataBlock"),
    ("d9 40000002 00 01 04 0007 0100630100ff 02 01 0f00 01 00",
     {"dlms.invoke_id": 2, "dlms.items": [{"class_id": 7, "obis": "1-0:99.1.0.255", "attribute_id": 2,
                                           "class": "profile_generic", "attribute": "buffer",
                                           "access_selector": 1, "value": None, "value_type": "null-data",
                                           "access": "get"}]}, None),
    ("d9 40000003 00 01 03 0046 0000600300ff 01 01 0f00",
     {"event.action": "remote_disconnect", "dlms.meanings": ["remote_disconnect"]}, None),
    ("0601020001010301", {"event.action": "write_request", "dlms.short_name": [1]}, "WriteRequest"),
    ("0c03 00 0a03414243 01 03 03 0005",
     {"event.action": "read_response", "dlms.result": OK_DENIED}, None),
    ("0d03 00 01 03 02 0001", {"event.action": "write_response", "dlms.result": OK_DENIED},
     "WriteResponse"),
    ("1601020001010301", {"event.action": "unconfirmed_write_request", "dlms.short_name": [1]}, None),
    ("18 00 01 020001 01 1105", {"event.action": "information_report", "dlms.short_name": [1]},
     "InformationReportRequest"),
    ("05 02 04 0a00 01 1100 05 0003", {"event.action": "read_request", "dlms.short_name": [0x0A00]}, None),
    ("05 02 06 01 0002 02 0102 07 00 0003", {"event.action": "read_request", "dlms.item_count": 2}, None),
    ("df 0101 0841424330303030 31 00 00 00 0d c001c100080000010000ff0200 02 abcd",
     {"dlms.apdu": "general-signing", "dlms.inner_apdu": "get-request", "event.action": "get_request",
      "dlms.signature_length": 2, "dlms.system_title": b"ABC00001".hex()}, None),
]


@pytest.mark.parametrize(("hexdata", "expected", "gurux_variant"), VARIANTS, ids=lambda v: str(v)[:24])
def test_service_variants(hexdata: str, expected: dict, gurux_variant: str | None) -> None:
    apdu = bytes.fromhex(hexdata)
    fields = one([wrap(apdu)], direction=0 if apdu[0] in (0xC1, 0xC3, 0xD9, 0xDF, 0x05, 0x06, 0x16) else 1)
    for key, value in expected.items():
        assert fields.get(key) == value, key
    assert fields["event.action"] != "decode_error"
    if gurux_variant:
        gurux = gurux_view(apdu)
        assert gurux_variant in (gurux["root"], gurux["second"])


# -- ACSE corners ---------------------------------------------------------------------------------


def test_aarq_with_every_calling_field_and_authenticated_only_initiate() -> None:
    # Hand-built: called/calling AP titles, AE qualifier, AE invocation id (the client user id),
    # implementation-information, and a glo-initiateRequest with SC 0x10 (authentication only).
    aarq = bytes.fromhex(
        "6055a109060760857405080103a20a04084142434445464748a60a04084b464d3030303031a703040100"
        "a9030201059d0161be230421211f100000000901000000065f1f0400001e5dffff000000000000000000000000")
    fields = decode_apdu(aarq).fields
    assert fields["dlms.called_ap_title"] == b"ABCDEFGH".hex()
    assert fields["dlms.calling_ap_title"] == b"KFM00001".hex() and fields["dlms.manufacturer"] == "KFM"
    assert fields["dlms.calling_ae_invocation_id"] == 5 and fields["dlms.calling_ae_qualifier_length"] == 3
    assert fields["dlms.user_information"] == "glo-initiateRequest"
    assert fields["dlms.initiate.ciphered"] is True
    assert fields["dlms.security.encryption"] is False and fields["dlms.invocation_counter"] == 9
    assert fields["dlms.initiate.dlms_version"] == 6 and fields["dlms.initiate.max_pdu_size"] == 0xFFFF


def test_aare_with_confirmed_service_error_and_provider_diagnostic() -> None:
    aare = bytes.fromhex("611fa109060760857405080101a203020101a305a203020102be0604040e010601")
    fields = decode_apdu(aare).fields
    assert fields["dlms.association.result"] == "rejected-permanent"
    assert fields["dlms.association.diagnostic_source"] == "acse-service-provider"
    assert fields["dlms.association.diagnostic"] == "no-common-acse-version"
    assert fields["dlms.user_information"] == "confirmedServiceError"
    assert fields["dlms.confirmed_service_error.error"] == "dlms-version-too-low"


@pytest.mark.parametrize(("hexdata", "reason"), [
    ("6080", "length"),  # BER indefinite length
    ("6006a10406016000", "application-context-name"),  # a byte after the OID inside [1]
    ("6004be020401", "truncated"),
    ("6006be0404020f00", "user-information"),
    ("6008be06040401000000", "truncated"),
    ("610a a1090607608574050801", "truncated"),
    ("6103800100", "without result"),
    ("6208800100be03040101", "truncated"),
    ("6006a10404026085", "OBJECT IDENTIFIER"),
    ("600aa108060660857405088101", "object identifier"),
    ("c8023000", "security header"),
    ("cb1e1000000002c001c100080000010000ff0200" + "00" * 12, "protects"),
    ("cc0530000000", "length"),
])
def test_malformed_apdus_are_decode_errors(hexdata: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_apdu(bytes.fromhex(hexdata))
    assert reason.lower() in str(info.value).lower()
