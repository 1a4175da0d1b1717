"""Per-flow C12.22 state: request/response pairing, what the flow taught us about each end device,
and the event fields of one message.

Pairing: a response EPSEM carries only response codes, so its bodies (read data, identification,
logon timeout, registration parameters) can only be read with the request in hand. A request is
kept until answered (unless its response control says *never*); a response finds it by the
C12.22 invocation-id rule (its called-AP-invocation-id equals the request's
calling-AP-invocation-id, as in the standard's example 8), otherwise as the oldest request from the
AP title it is addressed to, otherwise as the oldest request of the flow (ICSNPP keeps one FIFO
for everything). The i-th response service answers the i-th request service.

End devices are told apart by AP title: reads of ST0 teach the device's DATA_ORDER (so ST7/ST8
words are read right), reads of ST1 its manufacturer code (which selects the vendor procedure
table for manufacturer procedures).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from otsentry.protocols.base import DecodeError, Fields, decode_error_fields
from otsentry.protocols.c1222 import c1219
from otsentry.protocols.c1222.acse import AE_QUALIFIER_FLAGS, Acse, parse_acse
from otsentry.protocols.c1222.epsem import (
    REQUESTS,
    RESPONSE_CONTROLS,
    RESPONSE_LIMIT,
    RESPONSES,
    SECURITY_MODES,
    Envelope,
    Service,
    decode_request,
    decode_response,
    parse_envelope,
)

PROTOCOL = "c1222"
DATASET = "otsentry.c1222"
MAX_PENDING = 64  # unanswered requests kept per flow; the oldest goes first
MAX_DEVICES = 256  # end devices remembered per flow (a relay multiplexes many)

# Where a service's details go at the top level (first service of each kind wins).
_SECTIONS = {
    "logon": "c1222.logon.",
    "security": "c1222.security.",
    "authenticate": "c1222.authenticate.",
    "wait": "c1222.wait.",
    "negotiate": "c1222.negotiate.",
    "timing_setup": "c1222.timing_setup.",
    "registration": "c1222.registration.",
    "deregistration": "c1222.deregistration.",
    "resolve": "c1222.resolve.",
    "trace": "c1222.trace.",
    "identify": "c1222.identify.",
}
_RENAMED = {
    "c1222.security.password_length": "c1222.password.length",
    "c1222.authenticate.auth_length": "c1222.authenticate.length",
}

# One event.action per message: the most consequential request decides (procedures first).
_ACTION_RANK = {
    action: rank
    for rank, action in enumerate(
        (
            "table_write", "security", "logon", "logoff", "terminate", "disconnect", "registration",
            "deregistration", "resolve", "trace", "authenticate", "negotiate", "timing_setup",
            "table_read", "identification", "wait", "unknown_service",
        ),
        start=1,
    )
}  # fmt: skip


@dataclass(slots=True)
class Device:
    big_endian: bool
    manufacturer: str | None = None


@dataclass(slots=True)
class Pending:
    calling_title: str | None
    called_title: str | None
    invocation_id: int | None
    services: list[Service]
    action: str
    frame: int


@dataclass(slots=True)
class Session:
    """The C12.22 state of one flow (both directions)."""

    vendor_procedures: c1219.VendorProcedures = field(default_factory=dict)
    big_endian_tables: bool = False
    pending: OrderedDict[int, Pending] = field(default_factory=OrderedDict)
    devices: OrderedDict[str, Device] = field(default_factory=OrderedDict)
    next_id: int = 0

    # -- one message ------------------------------------------------------------------------------

    def message(self, data: bytes, start: int, stop: int, frame: int) -> Fields:
        """Event fields of the ACSE PDU whose content is ``data[start:stop]``."""
        f: Fields = {"network.protocol": PROTOCOL, "event.dataset": DATASET, "event.action": "association"}
        try:
            acse = parse_acse(data, start, stop)
            _acse_fields(acse, f)
            if acse.epsem_start < 0:
                return f
            env = parse_envelope(data, acse.epsem_start, acse.epsem_stop)
            _envelope_fields(env, f)
            if env.ciphered:
                f["event.action"] = "ciphered_epsem"
                return f
            self._services(acse, env, data, frame, f)
            return f
        except DecodeError as exc:
            known = {k: v for k, v in f.items() if k.startswith("c1222.")}
            return decode_error_fields(PROTOCOL, str(exc), **known)

    def _services(self, acse: Acse, env: Envelope, data: bytes, frame: int, f: Fields) -> None:
        is_response = env.services[0][0] < RESPONSE_LIMIT
        if any((code < RESPONSE_LIMIT) != is_response for code, _, _ in env.services):
            raise DecodeError("EPSEM mixes requests and responses")
        if is_response:
            self._response(acse, env, data, f)
        else:
            self._request(acse, env, data, frame, f)

    def _request(self, acse: Acse, env: Envelope, data: bytes, frame: int, f: Fields) -> None:
        called = acse.titles.get("called_ap_title")
        device = self._device(called)
        services = [decode_request(data, code, s, e) for code, s, e in env.services]
        entries = []
        best, best_rank = "unknown_service", 1 << 30
        for svc in services:
            entry = _entry(svc)
            action = REQUESTS.get(svc.code, ("", "unknown_service"))[1]
            if _is_procedure_write(svc):
                action = self._procedure(data, svc, device, entry, f)
            rank = _ACTION_RANK.get(action, 0)  # procedures and vendor actions outrank everything
            if rank < best_rank:
                best, best_rank = action, rank
            _details(svc, f)
            entries.append(entry)
        if any(svc.code == 0x51 for svc in services):
            f["c1222.password.present"] = True
        _service_lists(entries, f, env.truncated)
        f["c1222.pdu_type"] = "request"
        f["event.action"] = best
        if env.response_control != 2:  # "never respond": nothing will answer
            self._remember(acse, services, best, frame)

    def _response(self, acse: Acse, env: Envelope, data: bytes, f: Fields) -> None:
        request = self._match(acse)
        responder = self._device(acse.titles.get("calling_ap_title"))
        entries = []
        for i, (code, s, e) in enumerate(env.services):
            req = request.services[i] if request is not None and i < len(request.services) else None
            svc = decode_response(data, code, s, e, req)
            entry = _entry(svc)
            del entry["code"]  # a response has no service code of its own: name its request's
            if req is not None:
                entry["code"] = req.code
            entry["response_code"] = code
            entry["response"] = RESPONSES.get(code, (f"unknown_0x{code:02x}", ""))[0]
            if code == 0x00 and _from_table_start(svc):
                self._table_meaning(data, svc, responder, entry, f)
            _details(svc, f)
            entries.append(entry)
        _service_lists(entries, f, env.truncated)
        f["c1222.pdu_type"] = "response"
        f["c1222.response_code"] = [entry["response_code"] for entry in entries]
        if request is None:
            f["c1222.matched"] = False
            f["event.action"] = "response"
        else:
            f["c1222.matched"] = True
            f["c1222.request_frame"] = request.frame
            f["event.action"] = request.action

    # -- C12.19 meaning ----------------------------------------------------------------------------

    def _procedure(self, data: bytes, svc: Service, device: Device, entry: Fields, f: Fields) -> str:
        """An ST7 write: the procedure it starts, and the event.action that names it."""
        ds = svc.data_start
        order = "big" if device.big_endian else "little"
        word = int.from_bytes(data[ds : ds + 2], order)
        proc = c1219.procedure_fields(word, data[ds + 2])
        proc["parameters_length"] = svc.data_stop - ds - 3
        number, manufacturer = word & c1219.TABLE_NUMBER_MASK, bool(word & c1219.MANUFACTURER_FLAG)
        vendors = self.vendor_procedures
        action, vendor = c1219.procedure_action(number, manufacturer, device.manufacturer, vendors)
        if vendor is not None:
            proc["vendor"] = vendor
        entry["procedure"] = proc["id"]
        entry["procedure_name"] = proc["name"]
        if "c1222.procedure.id" not in f:
            for key, value in proc.items():
                f[f"c1222.procedure.{key}"] = value
        return action

    def _table_meaning(self, data: bytes, svc: Service, device: Device, entry: Fields, f: Fields) -> None:
        table, ds, de = svc.table_id, svc.data_start, svc.data_stop
        if table == c1219.ST_PROCEDURE_RESPONSE and de - ds >= 4:
            order = "big" if device.big_endian else "little"
            proc = c1219.procedure_fields(int.from_bytes(data[ds : ds + 2], order), data[ds + 2])
            result = data[ds + 3]
            proc["result"] = result
            proc["result_name"] = c1219.PROCEDURE_RESULTS.get(result, f"unknown_{result}")
            entry["procedure"] = proc["id"]
            entry["procedure_name"] = proc["name"]
            entry["procedure_result"] = result
            if "c1222.procedure.id" not in f:
                for key, value in proc.items():
                    f[f"c1222.procedure.{key}"] = value
        elif table == c1219.ST_MFG_IDENTIFICATION:
            ident = c1219.manufacturer_identification(data[ds:de])
            if "manufacturer" in ident:
                device.manufacturer = str(ident["manufacturer"]).upper()
            for key, value in ident.items():
                f.setdefault(f"c1222.device.{key}", value)
        elif table == c1219.ST_GENERAL_CONFIG and de > ds:
            device.big_endian = bool(data[ds] & 1)  # FORMAT_CONTROL_1 bit 0: DATA_ORDER
            f.setdefault("c1222.device.data_order", "big" if device.big_endian else "little")

    # -- state -------------------------------------------------------------------------------------

    def _device(self, title: str | None) -> Device:
        key = title or ""
        device = self.devices.get(key)
        if device is None:
            if len(self.devices) >= MAX_DEVICES:
                self.devices.popitem(last=False)
            device = self.devices[key] = Device(self.big_endian_tables)
        return device

    def _remember(self, acse: Acse, services: list[Service], action: str, frame: int) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.pending.popitem(last=False)
        self.pending[self.next_id] = Pending(
            calling_title=acse.titles.get("calling_ap_title"),
            called_title=acse.titles.get("called_ap_title"),
            invocation_id=acse.integers.get("calling_ap_invocation_id"),
            services=services,
            action=action,
            frame=frame,
        )
        self.next_id += 1

    def _match(self, acse: Acse) -> Pending | None:
        called = acse.titles.get("called_ap_title")
        calling = acse.titles.get("calling_ap_title")
        invocation = acse.integers.get("called_ap_invocation_id")
        chosen = None
        for key, req in self.pending.items():  # oldest first
            if called is not None and req.calling_title is not None and req.calling_title != called:
                continue
            if calling is not None and req.called_title is not None and req.called_title != calling:
                continue
            if invocation is not None and req.invocation_id is not None and req.invocation_id != invocation:
                continue
            chosen = key
            break
        if chosen is None:
            return None
        return self.pending.pop(chosen)


# -- field builders --------------------------------------------------------------------------------


def _acse_fields(acse: Acse, f: Fields) -> None:
    f["c1222.elements"] = acse.elements
    for name, title in acse.titles.items():
        f[f"c1222.{name}"] = title
    for name, value in acse.integers.items():
        f[f"c1222.{name}"] = value
    qualifier = acse.integers.get("calling_ae_qualifier")
    if qualifier is not None:
        f["c1222.calling_ae_qualifier_flags"] = [name for bit, name in AE_QUALIFIER_FLAGS if qualifier & bit]
    if acse.application_context is not None:
        f["c1222.application_context"] = acse.application_context
    if acse.mechanism_name is not None:
        f["c1222.mechanism_name"] = acse.mechanism_name
    if acse.auth is not None:
        for key, value in acse.auth.items():
            f[f"c1222.auth.{key}"] = value
    if acse.indirect_reference is not None:
        f["c1222.user_information.indirect_reference"] = acse.indirect_reference


def _envelope_fields(env: Envelope, f: Fields) -> None:
    f["c1222.epsem.control"] = env.control
    f["c1222.epsem.security_mode"] = env.security_mode
    f["c1222.epsem.security_mode_name"] = SECURITY_MODES[env.security_mode]
    f["c1222.epsem.response_control"] = env.response_control
    f["c1222.epsem.response_control_name"] = RESPONSE_CONTROLS.get(env.response_control, "reserved")
    f["c1222.epsem.recovery_session"] = env.recovery_session
    f["c1222.epsem.proxy_service"] = env.proxy_service
    f["c1222.epsem.length"] = env.length
    if env.ed_class is not None:
        f["c1222.epsem.ed_class"] = env.ed_class.hex()
    if env.mac is not None:
        f["c1222.epsem.mac"] = env.mac.hex()
    f["c1222.ciphered"] = env.ciphered
    if env.ciphered:
        f["c1222.epsem.ciphertext_length"] = env.ciphertext_length


def _from_table_start(svc: Service) -> bool:
    """Table data present and starting at the table's first octet (full, or offset 0; not indexed)."""
    return svc.table_id is not None and svc.data_start >= 0 and svc.offset in (None, 0) and svc.index is None


def _is_procedure_write(svc: Service) -> bool:
    return (
        svc.table_id == c1219.ST_PROCEDURE_INITIATE
        and _from_table_start(svc)
        and svc.data_stop - svc.data_start >= 3
    )


def _entry(svc: Service) -> Fields:
    entry: Fields = {"service": svc.name, "code": svc.code}
    if svc.table_id is not None:
        entry["table_id"] = svc.table_id
        entry["table_name"] = c1219.table_name(svc.table_id)
    if svc.offset is not None:
        entry["offset"] = svc.offset
    if svc.index is not None:
        entry["index"] = svc.index
    if svc.count is not None:
        entry["count"] = svc.count
    if svc.checksum is not None:
        entry["checksum"] = svc.checksum
        entry["checksum_valid"] = svc.checksum_valid
    if svc.error is not None:
        entry["error"] = svc.error
    return entry


def _details(svc: Service, f: Fields) -> None:
    prefix = _SECTIONS.get(svc.name)
    if svc.is_response and svc.code != 0x00:
        prefix = "c1222.error."
    if prefix is None:
        return
    for key, value in svc.details.items():
        name = prefix + key
        f.setdefault(_RENAMED.get(name, name), value)


def _service_lists(entries: list[Fields], f: Fields, truncated: bool) -> None:
    f["c1222.services"] = entries
    f["c1222.service"] = [entry["service"] for entry in entries]
    f["c1222.service_code"] = [entry["code"] for entry in entries if "code" in entry]
    tables = [entry["table_id"] for entry in entries if "table_id" in entry]
    if tables:
        f["c1222.table_id"] = tables
    if truncated:
        f["c1222.services_truncated"] = True
