"""Logical-name xDLMS services: GET, SET, ACTION (every variant), event-notification,
data-notification, ACCESS and general-block-transfer.

Green Book ed. 9, 9.5 (xDLMS ASN.1: "Get-Request ::= CHOICE { get-request-normal [1], ... }"
and friends). Each ``read_*`` function starts after the APDU tag and fills a :class:`Decoded`.
Responses carry no attribute/method reference on the wire: the analyzer passes the matched
request (:class:`Decoded` of that request) as ``request`` so values are rendered, redacted and
labelled with what was asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otsentry.protocols.base import DecodeError, Fields
from otsentry.protocols.dlms import cosem
from otsentry.protocols.dlms.axdr import (
    DATA_TYPES,
    OCTET_STRING,
    Budget,
    Limits,
    Reader,
    read_data,
    render_date,
    render_date_time,
    render_time,
)

# Data-Access-Result and Action-Result ENUMERATED (Green Book 9.5).
DATA_ACCESS_RESULTS: dict[int, str] = {
    0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied",
    4: "object-undefined", 9: "object-class-inconsistent", 11: "object-unavailable",
    12: "type-unmatched", 13: "scope-of-access-violated", 14: "data-block-unavailable",
    15: "long-get-aborted", 16: "no-long-get-in-progress", 17: "long-set-aborted",
    18: "no-long-set-in-progress", 19: "data-block-number-invalid", 250: "other-reason",
}
ACTION_RESULTS: dict[int, str] = {
    0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied",
    4: "object-undefined", 9: "object-class-inconsistent", 11: "object-unavailable",
    12: "type-unmatched", 13: "scope-of-access-violated", 14: "data-block-unavailable",
    15: "long-action-aborted", 16: "no-long-action-in-progress", 250: "other-reason",
}

GET_REQUEST_VARIANTS = {1: "normal", 2: "next", 3: "with-list"}
GET_RESPONSE_VARIANTS = {1: "normal", 2: "with-datablock", 3: "with-list"}
SET_REQUEST_VARIANTS = {
    1: "normal", 2: "with-first-datablock", 3: "with-datablock", 4: "with-list",
    5: "with-list-and-first-datablock",
}
SET_RESPONSE_VARIANTS = {
    1: "normal", 2: "datablock", 3: "last-datablock", 4: "last-datablock-with-list", 5: "with-list",
}
ACTION_REQUEST_VARIANTS = {
    1: "normal", 2: "next-pblock", 3: "with-list", 4: "with-first-pblock",
    5: "with-list-and-first-pblock", 6: "with-pblock",
}
ACTION_RESPONSE_VARIANTS = {1: "normal", 2: "with-pblock", 3: "with-list", 4: "next-pblock"}
# Access-Request-Specification / Access-Response-Specification CHOICE (Green Book 9.5).
ACCESS_REQUEST_KINDS = {1: ("get", False), 2: ("set", False), 3: ("action", False),
                        4: ("get", True), 5: ("set", True)}
ACCESS_RESPONSE_KINDS = {1: "get", 2: "set", 3: "action"}

DESCRIPTOR_SIZE = 9  # class-id (2) + instance-id (6) + attribute/method id (1)
MAX_ITEMS = 64  # with-list entries rendered into one event


@dataclass(slots=True)
class Item:
    """One attribute or method reference of a request (a with-list holds several)."""

    kind: str  # "attribute" | "method"
    class_id: int
    obis: bytes
    member_id: int
    service: str  # "get" | "set" | "action"
    selector: int | None = None

    @property
    def meaning(self) -> str | None:
        return cosem.meaning(self.service, self.kind, self.class_id, self.member_id)

    def fields(self) -> dict[str, Any]:
        """Short names, for a with-list entry (``dlms.items[i]``)."""
        id_key = "attribute_id" if self.kind == "attribute" else "method_id"
        out: dict[str, Any] = {"class_id": self.class_id, "obis": cosem.render_obis(self.obis),
                               id_key: self.member_id}
        name = cosem.class_name(self.class_id)
        if name:
            out["class"] = name
        member = cosem.member_name(self.kind, self.class_id, self.member_id)
        if member:
            out[self.kind] = member
        if self.selector is not None:
            out["access_selector"] = self.selector
        if self.meaning:
            out["meaning"] = self.meaning
        return out


@dataclass(slots=True)
class Block:
    """One block of a block transfer (DataBlock-G / DataBlock-SA)."""

    last: bool
    number: int
    raw: bytes | None  # None when the block carries a data-access-result instead of data


@dataclass(slots=True)
class Decoded:
    """What a codec found in one APDU; ``fields`` are already event fields."""

    action: str  # event.action without meaning
    fields: Fields = field(default_factory=dict)
    service: str | None = None  # pairing key part: get/set/action/access
    role: str | None = None  # "request" | "response" | None (unpaired messages)
    invoke_id: int | None = None
    items: list[Item] = field(default_factory=list)
    with_list: bool = False
    continuation: bool = False  # a request that carries no reference (next / next block)
    more: bool = False  # a response that promises more blocks
    block: Block | None = None


# -- shared pieces --------------------------------------------------------------------------


def invoke_id_fields(iip: int) -> Fields:
    """Invoke-Id-And-Priority (Green Book 9.5): bits 0-3 id, 6 service class, 7 priority."""
    return {
        "dlms.invoke_id": iip & 0x0F,
        "dlms.service_class": "confirmed" if iip & 0x40 else "unconfirmed",
        "dlms.priority": "high" if iip & 0x80 else "normal",
    }


def long_invoke_id_fields(value: int) -> Fields:
    """Long-Invoke-Id-And-Priority: bits 0-23 id, 28 self-descriptive, 29 processing option,
    30 service class, 31 priority."""
    return {
        "dlms.invoke_id": value & 0xFFFFFF,
        "dlms.self_descriptive": bool(value & 0x10000000),
        "dlms.processing_option": "break-on-error" if value & 0x20000000 else "continue-on-error",
        "dlms.service_class": "confirmed" if value & 0x40000000 else "unconfirmed",
        "dlms.priority": "high" if value & 0x80000000 else "normal",
    }


def _name(table: dict[int, str], code: int) -> str:
    return table.get(code, f"unknown-{code}")


def _variant(r: Reader, table: dict[int, str], apdu: str) -> tuple[int, str]:
    choice = r.u8(f"{apdu} choice")
    if choice not in table:
        raise DecodeError(f"unknown {apdu} choice {choice}")
    return choice, table[choice]


def read_descriptor(r: Reader, kind: str, service: str) -> Item:
    """Cosem-Attribute-Descriptor / Cosem-Method-Descriptor: class-id, instance-id, id."""
    r.need(DESCRIPTOR_SIZE, f"cosem {kind} descriptor")
    class_id = r.u16()
    obis = r.take(6, "instance-id")
    member_id = r.u8()
    return Item(kind, class_id, obis, member_id, service)


def _read_selection(r: Reader, item: Item, budget: Budget) -> Any:
    """Selective-Access-Descriptor OPTIONAL: selector and its parameters (rendered)."""
    if not r.u8("access-selection presence"):
        return None
    item.selector = r.u8("access-selector")
    return read_data(r, budget)


def value_fields(r: Reader, item: Item | None, prefix: str = "dlms.") -> Fields:
    """One Data value, rendered — or only measured when the member holds a secret."""
    start = r.pos
    tag = r.peek()
    if item is not None and cosem.is_secret(item.kind, item.class_id, item.member_id):
        read_data(r, Budget(Limits(max_values=0)))
        return {f"{prefix}value_redacted": True, f"{prefix}value_length": r.pos - start}
    budget = Budget()
    value = read_data(r, budget)
    fields: Fields = {f"{prefix}value": value, f"{prefix}value_type": DATA_TYPES.get(tag or 0)}
    if budget.truncated:
        fields[f"{prefix}value_truncated"] = True
    if (item is not None and tag == OCTET_STRING and r.pos - start == 14
            and (item.class_id, item.member_id) in cosem.DATE_TIME_ATTRIBUTES and item.kind == "attribute"):
        fields[f"{prefix}date_time"] = render_date_time(bytes(r.buf[start + 2 : r.pos]))
    return fields


def _short(fields: Fields) -> dict[str, Any]:
    """``dlms.value`` -> ``value`` for a with-list entry."""
    return {key[5:]: value for key, value in fields.items()}


def single_fields(item: Item) -> Fields:
    """The flat fields of a request that names one attribute or method."""
    out: Fields = {f"dlms.{key}": value for key, value in item.fields().items()}
    out["dlms.selective_access"] = item.selector is not None
    return out


def list_fields(items: list[Item], entries: list[dict[str, Any]] | None = None) -> Fields:
    """``dlms.items`` plus the flat arrays Sigma matches element-wise."""
    shown = items[:MAX_ITEMS]
    rows = [item.fields() for item in shown]
    if entries:
        for row, extra in zip(rows, entries, strict=False):
            row.update(extra)
    out: Fields = {
        "dlms.items": rows,
        "dlms.class_id": [i.class_id for i in shown],
        "dlms.obis": [cosem.render_obis(i.obis) for i in shown],
        "dlms.item_count": len(items),
    }
    attributes = [i.member_id for i in shown if i.kind == "attribute"]
    methods = [i.member_id for i in shown if i.kind == "method"]
    if attributes:
        out["dlms.attribute_id"] = attributes
    if methods:
        out["dlms.method_id"] = methods
    meanings = [m for m in dict.fromkeys(i.meaning for i in shown) if m]
    if meanings:
        out["dlms.meanings"] = meanings
    if len(items) > MAX_ITEMS:
        out["dlms.items_truncated"] = True
    return out


def _read_block_g(r: Reader) -> tuple[Block, Fields]:
    """DataBlock-G: last-block, block-number, raw-data [0] | data-access-result [1]."""
    last = bool(r.u8("last-block"))
    number = r.u32("block-number")
    fields: Fields = {"dlms.block.last": last, "dlms.block.number": number}
    choice = r.u8("datablock result choice")
    if choice == 0:
        raw = r.octet_string("raw-data")
        fields["dlms.block.length"] = len(raw)
        return Block(last, number, raw), fields
    if choice == 1:
        code = r.u8("data-access-result")
        fields["dlms.result"] = _name(DATA_ACCESS_RESULTS, code)
        fields["dlms.result_code"] = code
        return Block(last, number, None), fields
    raise DecodeError(f"unknown datablock result choice {choice}")


def _read_block_sa(r: Reader) -> tuple[Block, Fields]:
    """DataBlock-SA: last-block, block-number, raw-data."""
    last = bool(r.u8("last-block"))
    number = r.u32("block-number")
    raw = r.octet_string("raw-data")
    return Block(last, number, raw), {"dlms.block.last": last, "dlms.block.number": number,
                                      "dlms.block.length": len(raw)}


def _read_descriptor_list(r: Reader, kind: str, service: str, selection: bool) -> list[Item]:
    n = r.count(f"{kind} descriptor list", DESCRIPTOR_SIZE + (1 if selection else 0))
    items = []
    for _ in range(n):
        item = read_descriptor(r, kind, service)
        if selection:
            _read_selection(r, item, Budget(Limits(max_values=0)))
        items.append(item)
    return items


Lookup = Callable[[str, int], "Decoded | None"]


def _find(lookup: Lookup | None, service: str, invoke_id: int) -> Decoded | None:
    return lookup(service, invoke_id) if lookup is not None else None


def _matched(decoded: Decoded, request: Decoded | None) -> None:
    """Copy the request's references onto a response or a continuation request."""
    decoded.fields["dlms.matched"] = request is not None
    if request is None or not request.items:
        return
    decoded.items = request.items
    decoded.with_list = request.with_list
    if request.with_list:
        decoded.fields.update(list_fields(request.items))
    else:
        decoded.fields.update(single_fields(request.items[0]))
        decoded.fields.pop("dlms.selective_access", None)


def _request_item(request: Decoded | None, index: int = 0) -> Item | None:
    if request is None or index >= len(request.items):
        return None
    return request.items[index]


# -- GET ------------------------------------------------------------------------------------


def read_get_request(r: Reader, lookup: Lookup | None = None) -> Decoded:
    choice, variant = _variant(r, GET_REQUEST_VARIANTS, "get-request")
    iip = r.u8("invoke-id-and-priority")
    request = _find(lookup, "get", iip & 0x0F)
    d = Decoded("get_request", {"dlms.apdu_variant": variant, **invoke_id_fields(iip)},
                service="get", role="request", invoke_id=iip & 0x0F)
    if choice == 1:
        item = read_descriptor(r, "attribute", "get")
        params = _read_selection(r, item, Budget())
        d.items = [item]
        d.fields.update(single_fields(item))
        if params is not None:
            d.fields["dlms.access_parameters"] = params
    elif choice == 2:
        d.fields["dlms.block.number"] = r.u32("block-number")
        d.continuation = True
        _matched(d, request)
    else:
        d.items = _read_descriptor_list(r, "attribute", "get", selection=True)
        d.with_list = True
        d.fields.update(list_fields(d.items))
    return d


def _get_data_result(r: Reader, item: Item | None, prefix: str = "dlms.") -> Fields:
    """Get-Data-Result ::= CHOICE { data [0] Data, data-access-result [1] Data-Access-Result }."""
    choice = r.u8("get-data-result choice")
    if choice == 0:
        return {f"{prefix}result": "success", f"{prefix}result_code": 0, **value_fields(r, item, prefix)}
    if choice == 1:
        code = r.u8("data-access-result")
        return {f"{prefix}result": _name(DATA_ACCESS_RESULTS, code), f"{prefix}result_code": code}
    raise DecodeError(f"unknown get-data-result choice {choice}")


def read_get_response(r: Reader, lookup: Lookup | None = None) -> Decoded:
    choice, variant = _variant(r, GET_RESPONSE_VARIANTS, "get-response")
    iip = r.u8("invoke-id-and-priority")
    request = _find(lookup, "get", iip & 0x0F)
    d = Decoded("get_response", {"dlms.apdu_variant": variant, **invoke_id_fields(iip)},
                service="get", role="response", invoke_id=iip & 0x0F)
    _matched(d, request)
    if choice == 1:
        d.fields.update(_get_data_result(r, _request_item(request)))
    elif choice == 2:
        d.block, block_fields = _read_block_g(r)
        d.fields.update(block_fields)
        d.more = not d.block.last and d.block.raw is not None
    else:
        n = r.count("get-response list", 2)
        entries = [_short(_get_data_result(r, _request_item(request, i))) for i in range(n)]
        d.fields["dlms.result"] = [e["result"] for e in entries[:MAX_ITEMS]]
        _merge_entries(d, entries)
    return d


def _merge_entries(d: Decoded, entries: list[dict[str, Any]]) -> None:
    """Put per-entry results/values of a with-list response beside the request's items."""
    if d.items and d.with_list:
        d.fields.update(list_fields(d.items, entries[:MAX_ITEMS]))
    else:
        d.fields["dlms.items"] = entries[:MAX_ITEMS]
        d.fields["dlms.item_count"] = len(entries)
        if len(entries) > MAX_ITEMS:
            d.fields["dlms.items_truncated"] = True


# -- SET ------------------------------------------------------------------------------------


def read_set_request(r: Reader, lookup: Lookup | None = None) -> Decoded:
    choice, variant = _variant(r, SET_REQUEST_VARIANTS, "set-request")
    iip = r.u8("invoke-id-and-priority")
    request = _find(lookup, "set", iip & 0x0F)
    d = Decoded("set_request", {"dlms.apdu_variant": variant, **invoke_id_fields(iip)},
                service="set", role="request", invoke_id=iip & 0x0F)
    if choice in (1, 2):
        item = read_descriptor(r, "attribute", "set")
        params = _read_selection(r, item, Budget())
        d.items = [item]
        d.fields.update(single_fields(item))
        if params is not None:
            d.fields["dlms.access_parameters"] = params
        if choice == 1:
            d.fields.update(value_fields(r, item))
        else:
            d.block, block_fields = _read_block_sa(r)
            d.fields.update(block_fields)
    elif choice == 3:
        d.block, block_fields = _read_block_sa(r)
        d.fields.update(block_fields)
        d.continuation = True
        _matched(d, request)
    else:
        d.items = _read_descriptor_list(r, "attribute", "set", selection=True)
        d.with_list = True
        if choice == 4:
            n = r.count("set-request values")
            entries = [_short(value_fields(r, d.items[i] if i < len(d.items) else None)) for i in range(n)]
            d.fields.update(list_fields(d.items, entries[:MAX_ITEMS]))
        else:
            d.fields.update(list_fields(d.items))
            d.block, block_fields = _read_block_sa(r)
            d.fields.update(block_fields)
    return d


def read_set_response(r: Reader, lookup: Lookup | None = None) -> Decoded:
    choice, variant = _variant(r, SET_RESPONSE_VARIANTS, "set-response")
    iip = r.u8("invoke-id-and-priority")
    request = _find(lookup, "set", iip & 0x0F)
    d = Decoded("set_response", {"dlms.apdu_variant": variant, **invoke_id_fields(iip)},
                service="set", role="response", invoke_id=iip & 0x0F)
    _matched(d, request)
    if choice in (1, 3):
        code = r.u8("data-access-result")
        d.fields["dlms.result"] = _name(DATA_ACCESS_RESULTS, code)
        d.fields["dlms.result_code"] = code
        if choice == 3:
            d.fields["dlms.block.number"] = r.u32("block-number")
    elif choice == 2:
        d.fields["dlms.block.number"] = r.u32("block-number")
        d.more = True
    else:
        n = r.count("set-response results")
        codes = [r.u8("data-access-result") for _ in range(n)]
        entries = [{"result": _name(DATA_ACCESS_RESULTS, c), "result_code": c} for c in codes]
        d.fields["dlms.result"] = [e["result"] for e in entries[:MAX_ITEMS]]
        _merge_entries(d, entries)
        if choice == 4:
            d.fields["dlms.block.number"] = r.u32("block-number")
    return d


# -- ACTION ---------------------------------------------------------------------------------


def _optional_parameters(r: Reader, item: Item | None) -> Fields:
    if not r.u8("method-invocation-parameters presence"):
        return {}
    return value_fields(r, item)


def read_action_request(r: Reader, lookup: Lookup | None = None) -> Decoded:
    choice, variant = _variant(r, ACTION_REQUEST_VARIANTS, "action-request")
    iip = r.u8("invoke-id-and-priority")
    request = _find(lookup, "action", iip & 0x0F)
    d = Decoded("action_request", {"dlms.apdu_variant": variant, **invoke_id_fields(iip)},
                service="action", role="request", invoke_id=iip & 0x0F)
    if choice in (1, 4):
        item = read_descriptor(r, "method", "action")
        d.items = [item]
        d.fields.update(single_fields(item))
        d.fields.pop("dlms.selective_access")
        if choice == 1:
            d.fields.update(_optional_parameters(r, item))
        else:
            d.block, block_fields = _read_block_sa(r)
            d.fields.update(block_fields)
    elif choice == 2:
        d.fields["dlms.block.number"] = r.u32("block-number")
        d.continuation = True
        _matched(d, request)
    elif choice == 6:
        d.block, block_fields = _read_block_sa(r)
        d.fields.update(block_fields)
        d.continuation = True
        _matched(d, request)
    else:
        d.items = _read_descriptor_list(r, "method", "action", selection=False)
        d.with_list = True
        if choice == 3:
            # method-invocation-parameters SEQUENCE OF Data (no presence flag in the list form)
            n = r.count("method-invocation-parameters list")
            entries = [_short(value_fields(r, d.items[i] if i < len(d.items) else None))
                       for i in range(n)]
            d.fields.update(list_fields(d.items, entries[:MAX_ITEMS]))
        else:
            d.fields.update(list_fields(d.items))
            d.block, block_fields = _read_block_sa(r)
            d.fields.update(block_fields)
    return d


def _action_result(r: Reader, item: Item | None) -> Fields:
    """Action-Response-With-Optional-Data: result, return-parameters OPTIONAL."""
    code = r.u8("action-result")
    fields: Fields = {"dlms.result": _name(ACTION_RESULTS, code), "dlms.result_code": code}
    if r.u8("return-parameters presence"):
        returned = _get_data_result(r, item, "dlms.return_")
        fields.update(returned)
    return fields


def read_action_response(r: Reader, lookup: Lookup | None = None) -> Decoded:
    choice, variant = _variant(r, ACTION_RESPONSE_VARIANTS, "action-response")
    iip = r.u8("invoke-id-and-priority")
    request = _find(lookup, "action", iip & 0x0F)
    d = Decoded("action_response", {"dlms.apdu_variant": variant, **invoke_id_fields(iip)},
                service="action", role="response", invoke_id=iip & 0x0F)
    _matched(d, request)
    if choice == 1:
        d.fields.update(_action_result(r, _request_item(request)))
    elif choice == 2:
        d.block, block_fields = _read_block_sa(r)
        d.fields.update(block_fields)
        d.more = not d.block.last
    elif choice == 3:
        n = r.count("action-response list", 2)
        entries = [_short(_action_result(r, _request_item(request, i))) for i in range(n)]
        d.fields["dlms.result"] = [e["result"] for e in entries[:MAX_ITEMS]]
        _merge_entries(d, entries)
    else:
        d.fields["dlms.block.number"] = r.u32("block-number")
        d.more = True
    return d


# -- notifications --------------------------------------------------------------------------


def render_octet_time(raw: bytes) -> str:
    """A date-time, date or time octet string by its size (as Gurux and the Green Book do)."""
    if len(raw) == 12:
        return render_date_time(raw)
    if len(raw) == 5:
        return render_date(raw)
    if len(raw) == 4:
        return render_time(raw)
    return raw.hex()


def read_event_notification(r: Reader, lookup: Lookup | None = None) -> Decoded:
    """Event-Notification-Request: time OPTIONAL, cosem-attribute-descriptor, attribute-value."""
    d = Decoded("event_notification")
    if r.u8("time presence"):
        raw = r.octet_string("time")
        d.fields["dlms.date_time"] = render_octet_time(raw)
    item = read_descriptor(r, "attribute", "get")
    d.items = [item]
    d.fields.update(single_fields(item))
    d.fields.pop("dlms.selective_access")
    for key, value in value_fields(r, item).items():
        d.fields.setdefault(key, value)  # the notification time wins over a date-time value
    return d


def read_data_notification(r: Reader, lookup: Lookup | None = None) -> Decoded:
    """Data-Notification: long-invoke-id-and-priority, date-time OCTET STRING, notification-body."""
    d = Decoded("data_notification", long_invoke_id_fields(r.u32("long-invoke-id-and-priority")))
    raw = r.octet_string("date-time")
    if raw:
        d.fields["dlms.date_time"] = render_octet_time(raw)
    d.fields.update(value_fields(r, None))
    return d


# -- ACCESS (Green Book 9.3.9 "The ACCESS service") -----------------------------------------


def read_access_request(r: Reader, lookup: Lookup | None = None) -> Decoded:
    long_id = r.u32("long-invoke-id-and-priority")
    d = Decoded("access_request", long_invoke_id_fields(long_id), service="access", role="request",
                invoke_id=long_id & 0xFFFFFF)
    raw = r.octet_string("date-time")
    if raw:
        d.fields["dlms.date_time"] = render_octet_time(raw)
    n = r.count("access-request-specification", 1 + DESCRIPTOR_SIZE)
    for _ in range(n):
        choice = r.u8("access-request-specification choice")
        if choice not in ACCESS_REQUEST_KINDS:
            raise DecodeError(f"unknown access-request-specification choice {choice}")
        service, selection = ACCESS_REQUEST_KINDS[choice]
        item = read_descriptor(r, "method" if service == "action" else "attribute", service)
        if selection:
            item.selector = r.u8("access-selector")
            read_data(r, Budget(Limits(max_values=0)))
        d.items.append(item)
    m = r.count("access-request-list-of-data")
    entries = []
    for i in range(m):
        item = d.items[i] if i < len(d.items) else None
        entry = _short(value_fields(r, item))
        if item is not None:
            entry["access"] = item.service
        entries.append(entry)
    d.with_list = True
    d.fields.update(list_fields(d.items, entries[:MAX_ITEMS]))
    return d


def read_access_response(r: Reader, lookup: Lookup | None = None) -> Decoded:
    long_id = r.u32("long-invoke-id-and-priority")
    d = Decoded("access_response", long_invoke_id_fields(long_id), service="access", role="response",
                invoke_id=long_id & 0xFFFFFF)
    request = _find(lookup, "access", long_id & 0xFFFFFF)
    _matched(d, request)
    raw = r.octet_string("date-time")
    if raw:
        d.fields["dlms.date_time"] = render_octet_time(raw)
    if r.u8("access-request-specification presence"):
        raise DecodeError("access-response echoing its request specification is not supported")
    n = r.count("access-response-list-of-data")
    entries = [_short(value_fields(r, _request_item(request, i))) for i in range(n)]
    m = r.count("access-response-specification", 2)
    results = []
    for i in range(m):
        choice = r.u8("access-response-specification choice")
        if choice not in ACCESS_RESPONSE_KINDS:
            raise DecodeError(f"unknown access-response-specification choice {choice}")
        code = r.u8("access result")
        table = ACTION_RESULTS if choice == 3 else DATA_ACCESS_RESULTS
        results.append({"access": ACCESS_RESPONSE_KINDS[choice], "result": _name(table, code),
                        "result_code": code})
        if i < len(entries):
            entries[i].update(results[-1])
        else:
            entries.append(results[-1])
    d.fields["dlms.result"] = [e["result"] for e in results[:MAX_ITEMS]]
    _merge_entries(d, entries)
    return d


# -- general-block-transfer (Green Book 9.3.10) ---------------------------------------------


def read_general_block_transfer(r: Reader, lookup: Lookup | None = None) -> Decoded:
    control = r.u8("block-control")
    number = r.u16("block-number")
    ack = r.u16("block-number-ack")
    data = r.octet_string("block-data")
    return Decoded("general_block_transfer", {
        "dlms.gbt.last_block": bool(control & 0x80),
        "dlms.gbt.streaming": bool(control & 0x40),
        "dlms.gbt.window": control & 0x3F,
        "dlms.gbt.block_number": number,
        "dlms.gbt.block_number_ack": ack,
        "dlms.gbt.data_length": len(data),
    })
