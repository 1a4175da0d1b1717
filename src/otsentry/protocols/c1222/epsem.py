"""EPSEM: the C12.22 envelope of C12.18/C12.19 services (IEEE 1703-2012 clauses 5.3.2-5.3.3).

``<epsem> ::= <epsem-control> [<ed-class>] {<service-length> <res-req>}+ [0x00] [<mac>]``

* ``epsem-control``: bit 7 reserved (1), bit 6 recovery session, bit 5 proxy service used, bit 4
  ed-class included, bits 2-3 security mode (0 cleartext, 1 cleartext with authentication,
  2 ciphertext with authentication), bits 0-1 response control (0 always, 1 on exception, 2 never)
  — Wireshark ``packet-c1222.c`` masks 0x80/0x40/0x20/0x10/0x0C/0x03, ICSNPP ``Epsem`` bitfield.
* ``ed-class``: 4 octets; ``service-length``: a BER length; security modes 1 and 2 end with a
  4-octet MAC, and in mode 2 everything between the header and the MAC is ciphertext.

Service codes (requests ≥ 0x20, responses < 0x20): ICSNPP ``RequestResponseCodes`` (c1222.spicy,
IEEE 1703-2012 5.3.2.4) for 0x20-0x27, 0x30-0x3F, 0x40-0x4F, 0x50-0x52, 0x70; Wireshark
``commandnames`` for the C12.18/C12.21 services 0x4E default write, 0x53 authenticate, 0x60-0x6B
negotiate, 0x71 timing setup. Response codes 0x00-0x12: ICSNPP, Wireshark and the Itron reference
stack (timyardley/c1222 ``c1222response.h``) agree. Service layouts cite the ICSNPP unit names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from otsentry.protocols.base import DecodeError
from otsentry.protocols.c1222.ber import read_identifier, read_length, relative_oid_text
from otsentry.protocols.c1222.c1219 import text_field as _text

MAX_SERVICES = 64  # services kept per message; more sets c1222.services_truncated
MAX_INDICES = 9  # 0x31-0x39 / 0x41-0x49 carry 1..9 indices

SECURITY_MODES = {0: "cleartext", 1: "cleartext_authenticated", 2: "ciphertext_authenticated"}
RESPONSE_CONTROLS = {0: "always", 1: "on_exception", 2: "never"}
MAC_SIZE = 4

# code -> (service name, event.action of a request)
REQUESTS: dict[int, tuple[str, str]] = {
    0x20: ("identify", "identification"),
    0x21: ("terminate", "terminate"),
    0x22: ("disconnect", "disconnect"),
    0x24: ("deregistration", "deregistration"),
    0x25: ("resolve", "resolve"),
    0x26: ("trace", "trace"),
    0x27: ("registration", "registration"),
    0x30: ("read", "table_read"),
    **{code: ("read_partial_index", "table_read") for code in range(0x31, 0x3A)},
    0x3E: ("read_default", "table_read"),
    0x3F: ("read_partial_offset", "table_read"),
    0x40: ("write", "table_write"),
    **{code: ("write_partial_index", "table_write") for code in range(0x41, 0x4A)},
    0x4E: ("write_default", "table_write"),
    0x4F: ("write_partial_offset", "table_write"),
    0x50: ("logon", "logon"),
    0x51: ("security", "security"),
    0x52: ("logoff", "logoff"),
    0x53: ("authenticate", "authenticate"),
    **{code: ("negotiate", "negotiate") for code in range(0x60, 0x6C)},
    0x70: ("wait", "wait"),
    0x71: ("timing_setup", "timing_setup"),
}

# code -> (abbreviation as the standard writes it, meaning)
RESPONSES: dict[int, tuple[str, str]] = {
    0x00: ("ok", "acknowledge, no problems"),
    0x01: ("err", "error"),
    0x02: ("sns", "service not supported"),
    0x03: ("isc", "insufficient security clearance"),
    0x04: ("onp", "operation not possible"),
    0x05: ("iar", "inappropriate action requested"),
    0x06: ("bsy", "device busy"),
    0x07: ("dnr", "data not ready"),
    0x08: ("dlk", "data locked"),
    0x09: ("rno", "renegotiate request"),
    0x0A: ("isss", "invalid service sequence state"),
    0x0B: ("sme", "security mechanism error"),
    0x0C: ("uat", "unknown application title"),
    0x0D: ("nett", "network time-out"),
    0x0E: ("netr", "network not reachable"),
    0x0F: ("rqtl", "request too large"),
    0x10: ("rstl", "response too large"),
    0x11: ("sgnp", "segmentation not possible"),
    0x12: ("sgerr", "segmentation error"),
}
RESPONSE_LIMIT = 0x20  # codes below are responses, codes from here on requests

# Identification response <std> (ICSNPP c1222_processing.zeek; C12.18 identification service)
IDENTIFY_STANDARDS = {0: "ANSI C12.18", 1: "reserved", 2: "ANSI C12.21", 3: "ANSI C12.22"}
_FEATURE_SECURITY_MECHANISM = 0x04
_FEATURE_SESSION_CTRL = 0x05
_FEATURE_DEVICE_CLASS = 0x06
_FEATURE_DEVICE_IDENTITY = 0x07

# Registration bit fields, bit 0 first (ICSNPP RegisterReq / RegisterRespOk, README).
NODE_TYPE_FLAGS = (
    "relay", "master_relay", "host", "notification_host",
    "authentication_host", "end_device", "reserved", "my_domain_pattern",
)  # fmt: skip
CONNECTION_TYPE_FLAGS = (
    "broadcast_and_multicast", "message_acceptance_window", "playback_rejection", "reserved",
    "connectionless_mode", "accept_connectionless", "connection_mode", "accept_connections",
)  # fmt: skip
REGISTRATION_INFO_FLAGS = (
    "direct_messaging_available", "message_acceptance_window_mode", "playback_rejection_mode",
    "reserved", "connectionless_mode", "accept_connectionless", "connection_mode", "accept_connections",
)  # fmt: skip

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_TABLE_U16 = struct.Struct(">HH")  # table id, count or element count


@dataclass(slots=True)
class Envelope:
    """The EPSEM header and where each service lies in the PDU bytes."""

    control: int
    security_mode: int
    response_control: int
    recovery_session: bool
    proxy_service: bool
    ed_class: bytes | None
    mac: bytes | None
    ciphered: bool
    length: int
    ciphertext_length: int = 0
    services: list[tuple[int, int, int]] = field(default_factory=list)  # (code, body start, body stop)
    truncated: bool = False


@dataclass(slots=True)
class Service:
    """One decoded request or response; table data is referenced by bounds, never copied."""

    code: int
    name: str
    is_response: bool
    table_id: int | None = None
    offset: int | None = None
    index: list[int] | None = None
    count: int | None = None
    data_start: int = -1
    data_stop: int = -1
    checksum: int | None = None
    checksum_valid: bool | None = None
    error: str | None = None  # a response body that does not fit its request's layout
    details: dict[str, object] = field(default_factory=dict)


def flag_names(value: int, names: tuple[str, ...]) -> list[str]:
    return [name for bit, name in enumerate(names) if value >> bit & 1]


def parse_envelope(data: bytes, start: int, stop: int) -> Envelope:
    if start >= stop:
        raise DecodeError("empty EPSEM")
    control = data[start]
    mode = (control >> 2) & 3
    if mode == 3:
        raise DecodeError("EPSEM security mode 3 is reserved")
    pos = start + 1
    ed_class = None
    if control & 0x10:
        if pos + 4 > stop:
            raise DecodeError("EPSEM ed-class truncated")
        ed_class = data[pos : pos + 4]
        pos += 4
    end = stop
    if mode:
        end -= MAC_SIZE
        if end < pos:
            raise DecodeError("EPSEM MAC missing")
    env = Envelope(
        control=control,
        security_mode=mode,
        response_control=control & 3,
        recovery_session=bool(control & 0x40),
        proxy_service=bool(control & 0x20),
        ed_class=ed_class,
        mac=data[end:stop] if mode else None,
        ciphered=mode == 2,
        length=stop - start,
    )
    if env.ciphered:
        env.ciphertext_length = end - pos
        return env
    services = env.services
    while pos < end:
        length, pos = read_length(data, pos, end)
        if length == 0:
            break  # <end-of-list>
        if pos + length > end:
            raise DecodeError(f"EPSEM service of {length} octets overruns the EPSEM")
        if len(services) < MAX_SERVICES:
            services.append((data[pos], pos + 1, pos + length))
        else:
            env.truncated = True
        pos += length
    if not services:
        raise DecodeError("EPSEM without a service")
    return env


# -- helpers -------------------------------------------------------------------------------------


def _need(s: int, e: int, size: int, what: str) -> None:
    if e - s < size:
        raise DecodeError(f"{what} truncated ({e - s} of {size} octets)")


def _checksum_ok(data: bytes, start: int, stop: int, checksum: int) -> bool:
    # C12.18 <cksum>: two's complement of the sum of the data octets (Wireshark c1222_cksum).
    return (sum(data[start:stop]) + checksum) & 0xFF == 0


def _table_data(data: bytes, s: int, e: int, svc: Service, what: str) -> int:
    """``<count> <data> <cksum>`` at ``s``; fills count/data bounds/checksum; returns the end."""
    _need(s, e, 2, what)
    count = _U16.unpack_from(data, s)[0]
    stop = s + 2 + count
    if stop + 1 > e:
        raise DecodeError(f"{what}: {count} data octets and checksum exceed the service")
    svc.count = count
    svc.data_start, svc.data_stop = s + 2, stop
    svc.checksum = data[stop]
    svc.checksum_valid = _checksum_ok(data, s + 2, stop, svc.checksum)
    return stop + 1


# -- requests --------------------------------------------------------------------------------------


def decode_request(data: bytes, code: int, s: int, e: int) -> Service:
    """Decode the request ``code`` with its parameters in ``[s, e)``."""
    name = REQUESTS.get(code, (f"unknown_0x{code:02x}", "unknown_service"))[0]
    svc = Service(code=code, name=name, is_response=False)
    d = svc.details
    if code == 0x30:  # <full-read> ::= 0x30 <tableid>
        _need(s, e, 2, "full read")
        svc.table_id = _U16.unpack_from(data, s)[0]
    elif 0x31 <= code <= 0x39:  # <pread-index> ::= 0x31-0x39 <tableid> <index>+ <element-count>
        n = code - 0x30
        _need(s, e, 4 + 2 * n, "partial read index")
        svc.table_id = _U16.unpack_from(data, s)[0]
        svc.index = list(struct.unpack_from(f">{n}H", data, s + 2))
        svc.count = _U16.unpack_from(data, s + 2 + 2 * n)[0]
    elif code == 0x3F:  # <pread-offset> ::= 0x3F <tableid> <offset> <octet-count>
        _need(s, e, 7, "partial read offset")
        svc.table_id = _U16.unpack_from(data, s)[0]
        svc.offset = int.from_bytes(data[s + 2 : s + 5], "big")
        svc.count = _U16.unpack_from(data, s + 5)[0]
    elif code == 0x40:  # <full-write> ::= 0x40 <tableid> <table-data>
        _need(s, e, 2, "full write")
        svc.table_id = _U16.unpack_from(data, s)[0]
        _table_data(data, s + 2, e, svc, "full write")
    elif 0x41 <= code <= 0x49:  # <pwrite-index> ::= 0x41-0x49 <tableid> <index>+ <table-data>
        n = code - 0x40
        _need(s, e, 2 + 2 * n, "partial write index")
        svc.table_id = _U16.unpack_from(data, s)[0]
        svc.index = list(struct.unpack_from(f">{n}H", data, s + 2))
        _table_data(data, s + 2 + 2 * n, e, svc, "partial write index")
    elif code == 0x4E:  # C12.18 default write: <table-data>
        _table_data(data, s, e, svc, "default write")
    elif code == 0x4F:  # <pwrite-offset> ::= 0x4F <tableid> <offset> <table-data>
        _need(s, e, 5, "partial write offset")
        svc.table_id = _U16.unpack_from(data, s)[0]
        svc.offset = int.from_bytes(data[s + 2 : s + 5], "big")
        _table_data(data, s + 5, e, svc, "partial write offset")
    elif code == 0x50:  # <logon> ::= 0x50 <user-id> <user> <req-session-idle-timeout>
        _need(s, e, 12, "logon")
        d["user_id"] = _U16.unpack_from(data, s)[0]
        d["user"] = _text(data[s + 2 : s + 12])
        if e - s >= 14:
            d["session_idle_timeout"] = _U16.unpack_from(data, s + 12)[0]
    elif code == 0x51:  # <security> ::= 0x51 <password> [<user-id>] — the password never leaves
        _need(s, e, 20, "security")
        d["password_length"] = 20
        if e - s >= 22:
            d["user_id"] = _U16.unpack_from(data, s + 20)[0]
    elif code == 0x53:  # C12.18 <authenticate> ::= 0x53 <auth-len> <auth-data>: length only
        _need(s, e, 1, "authenticate")
        d["auth_length"] = data[s]
    elif code == 0x70:  # <wait> ::= 0x70 <time-s>
        _need(s, e, 1, "wait")
        d["seconds"] = data[s]
    elif 0x60 <= code <= 0x6B:  # C12.18 <negotiate> ::= 0x6N <packet-size> <nbr-packets> [<baud-rate>*]
        _need(s, e, 3, "negotiate")
        d["packet_size"] = _U16.unpack_from(data, s)[0]
        d["packets"] = data[s + 2]
    elif code == 0x71:  # C12.21 <timing-setup>
        _need(s, e, 4, "timing setup")
        d["traffic_timeout"], d["inter_char_timeout"], d["response_timeout"], d["retries"] = data[s : s + 4]
    elif code == 0x27:
        _registration_request(data, s, e, d)
    elif code in (0x24, 0x25):  # <deregister>/<resolve> ::= 0x24/0x25 <ap-title>
        d["ap_title"], _ = read_identifier(data, s, e)
    elif code == 0x26:  # <trace> ::= 0x26 <ap-title>
        d["ap_titles"] = _identifiers(data, s, e)
    return svc


def _identifiers(data: bytes, s: int, e: int) -> list[str]:
    titles: list[str] = []
    while s < e and len(titles) < MAX_SERVICES:
        title, s = read_identifier(data, s, e)
        titles.append(title)
    return titles


def _registration_request(data: bytes, s: int, e: int, d: dict[str, object]) -> None:
    # <register> ::= 0x27 <node-type> <connection-type> <device-class> <ap-title>
    #   <electronic-serial-number> <native-address-length> <native-address> <registration-period>
    #   [<my-domain-pattern>]
    _need(s, e, 6, "registration")
    node_type, connection_type = data[s], data[s + 1]
    d["node_type"] = node_type
    d["node_type_flags"] = flag_names(node_type, NODE_TYPE_FLAGS)
    d["connection_type"] = connection_type
    d["connection_type_flags"] = flag_names(connection_type, CONNECTION_TYPE_FLAGS)
    try:  # a relative identifier (ICSNPP/Zeek write ".1.33507"); otherwise the raw octets
        d["device_class"] = relative_oid_text(data, s + 2, s + 6)
    except DecodeError:
        d["device_class"] = data[s + 2 : s + 6].hex()
    pos = s + 6
    d["ap_title"], pos = read_identifier(data, pos, e)
    d["electronic_serial_number"], pos = read_identifier(data, pos, e)
    _need(pos, e, 1, "registration native address")
    size = data[pos]
    _need(pos + 1, e, size + 3, "registration native address and period")
    d["native_address"] = data[pos + 1 : pos + 1 + size].hex()
    pos += 1 + size
    d["period"] = int.from_bytes(data[pos : pos + 3], "big")
    pos += 3
    if node_type & 0x80 and pos < e:
        size = data[pos]
        _need(pos + 1, e, size, "registration domain pattern")
        d["domain_pattern"] = _text(data[pos + 1 : pos + 1 + size])


# -- responses -------------------------------------------------------------------------------------


def decode_response(data: bytes, code: int, s: int, e: int, request: Service | None) -> Service:
    """Decode response ``code`` with body ``[s, e)``; ``request`` is the paired request, if known."""
    svc = Service(code=code, name=request.name if request else "unknown", is_response=True)
    d = svc.details
    if request is not None:
        svc.table_id = request.table_id
        svc.offset = request.offset
        svc.index = request.index
    if code == 0x0F and e - s >= 4:  # <rqtl> ::= 0x0F <max-request-size>
        d["max_request_size"] = _U32.unpack_from(data, s)[0]
    elif code == 0x10 and e - s >= 4:  # <rstl> ::= 0x10 <max-response-size>
        d["max_response_size"] = _U32.unpack_from(data, s)[0]
    if code != 0x00 or request is None:
        return svc
    try:
        _ok_body(data, s, e, svc, request.code)
    except DecodeError as exc:
        # The envelope is sound; the pairing (or the peer) is not what we assumed: keep the event.
        svc.error = str(exc)
    return svc


def _ok_body(data: bytes, s: int, e: int, svc: Service, rcode: int) -> None:
    """The body of an ``ok`` response to request ``rcode``."""
    d = svc.details
    if rcode == 0x20:
        _identify_response(data, s, e, d)
    elif 0x30 <= rcode <= 0x3F:  # <read-r> ::= <ok> <table-data>
        _table_data(data, s, e, svc, "read response")
    elif rcode == 0x50:  # <logon-r> ::= <ok> <resp-session-idle-timeout>
        if e - s >= 2:
            d["session_idle_timeout"] = _U16.unpack_from(data, s)[0]
    elif rcode == 0x27:  # <register-r> ::= <ok> <ap-title> <reg-delay> <reg-period> <reg-info>
        d["ap_title"], pos = read_identifier(data, s, e)
        _need(pos, e, 6, "registration response")
        d["delay"] = _U16.unpack_from(data, pos)[0]
        d["period"] = int.from_bytes(data[pos + 2 : pos + 5], "big")
        d["info"] = data[pos + 5]
        d["info_flags"] = flag_names(data[pos + 5], REGISTRATION_INFO_FLAGS)
    elif rcode == 0x25:  # <resolve-r> ::= <ok> <local-address-length> <local-address>
        _need(s, e, 1, "resolve response")
        size = data[s]
        _need(s + 1, e, size, "resolve response address")
        d["local_address"] = data[s + 1 : s + 1 + size].hex()
    elif rcode == 0x26:  # <trace-r> ::= <ok> <ap-title>+
        d["ap_titles"] = _identifiers(data, s, e)


def _identify_response(data: bytes, s: int, e: int, d: dict[str, object]) -> None:
    # <ident-r> ::= <ok> <std> <ver> <rev> <feature>* <end-of-list>
    _need(s, e, 3, "identify response")
    std = data[s]
    d["standard"] = std
    d["standard_name"] = IDENTIFY_STANDARDS.get(std, "reserved")
    d["version"] = data[s + 1]
    d["revision"] = data[s + 2]
    pos = s + 3
    while pos < e:
        tag = data[pos]
        pos += 1
        if tag == 0x00:
            break
        if tag in (_FEATURE_SECURITY_MECHANISM, _FEATURE_DEVICE_CLASS):
            key = "security_mechanism" if tag == _FEATURE_SECURITY_MECHANISM else "device_class"
            d[key], pos = read_identifier(data, pos, e)
        elif tag == _FEATURE_SESSION_CTRL:
            _need(pos, e, 1, "identify session control")
            ctrl = data[pos]
            d["sessions_supported"] = ctrl & 0x7F
            d["sessionless_supported"] = bool(ctrl & 0x80)
            pos += 1
        elif tag == _FEATURE_DEVICE_IDENTITY:
            _need(pos, e, 1, "identify device identity")
            size = data[pos]
            _need(pos + 1, e, size, "identify device identity")
            if size:
                d["device_identity_format"] = data[pos + 1]
                d["device_identity"] = data[pos + 2 : pos + 1 + size].hex()
            pos += 1 + size
        else:
            d["unknown_feature"] = tag  # unknown layout: stop rather than guess
            break
