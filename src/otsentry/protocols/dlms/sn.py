"""Short-name (SN) referencing services: Read, Write, UnconfirmedWrite, InformationReport.

Green Book ed. 9, 9.5 ("ReadRequest ::= SEQUENCE OF Variable-Access-Specification", ...).
SN services name objects by a 16-bit short name (base name + attribute/method offset), so no
class id or OBIS appears on the wire; SN has no invoke id either, so responses are not paired.
"""

from __future__ import annotations

from typing import Any

from otsentry.protocols.base import DecodeError
from otsentry.protocols.dlms.axdr import DATA_TYPES, Budget, Limits, Reader, read_data
from otsentry.protocols.dlms.xdlms import DATA_ACCESS_RESULTS, MAX_ITEMS, Decoded, Lookup

# Variable-Access-Specification CHOICE tags.
VARIABLE_ACCESS = {
    2: "variable-name", 3: "detailed-access", 4: "parameterized-access", 5: "block-number-access",
    6: "read-data-block-access", 7: "write-data-block-access",
}


def _name(table: dict[int, str], code: int) -> str:
    return table.get(code, f"unknown-{code}")


def _variable_access(r: Reader) -> dict[str, Any]:
    choice = r.u8("variable-access-specification choice")
    entry: dict[str, Any] = {"access": _name(VARIABLE_ACCESS, choice)}
    if choice == 2:
        entry["short_name"] = r.u16("variable-name")
    elif choice == 4:
        entry["short_name"] = r.u16("variable-name")
        entry["access_selector"] = r.u8("selector")
        read_data(r, Budget(Limits(max_values=0)))
    elif choice == 5:
        entry["block_number"] = r.u16("block-number")
    elif choice == 6:
        entry["last_block"] = bool(r.u8("last-block"))
        entry["block_number"] = r.u16("block-number")
        entry["block_length"] = len(r.octet_string("raw-data"))
    elif choice == 7:
        entry["last_block"] = bool(r.u8("last-block"))
        entry["block_number"] = r.u16("block-number")
    else:
        raise DecodeError(f"unsupported variable-access-specification choice {choice}")
    return entry


def _value(r: Reader) -> dict[str, Any]:
    tag = r.peek()
    budget = Budget()
    entry: dict[str, Any] = {"value": read_data(r, budget), "value_type": DATA_TYPES.get(tag or 0)}
    if budget.truncated:
        entry["value_truncated"] = True
    return entry


def _finish(d: Decoded, entries: list[dict[str, Any]]) -> Decoded:
    shown = entries[:MAX_ITEMS]
    d.fields["dlms.items"] = shown
    d.fields["dlms.item_count"] = len(entries)
    names = [e["short_name"] for e in shown if "short_name" in e]
    if names:
        d.fields["dlms.short_name"] = names
    results = [e["result"] for e in shown if "result" in e]
    if results:
        d.fields["dlms.result"] = results
    if len(entries) > MAX_ITEMS:
        d.fields["dlms.items_truncated"] = True
    return d


def read_read_request(r: Reader, lookup: Lookup | None = None) -> Decoded:
    n = r.count("read-request", 3)
    return _finish(Decoded("read_request"), [_variable_access(r) for _ in range(n)])


def _write(r: Reader, action: str) -> Decoded:
    n = r.count("variable-access-specification", 3)
    entries = [_variable_access(r) for _ in range(n)]
    m = r.count("list-of-data")
    for i in range(m):
        value = _value(r)
        if i < len(entries):
            entries[i].update(value)
    return _finish(Decoded(action), entries)


def read_write_request(r: Reader, lookup: Lookup | None = None) -> Decoded:
    return _write(r, "write_request")


def read_unconfirmed_write_request(r: Reader, lookup: Lookup | None = None) -> Decoded:
    return _write(r, "unconfirmed_write_request")


def read_information_report(r: Reader, lookup: Lookup | None = None) -> Decoded:
    if r.u8("current-time presence"):
        r.octet_string("current-time")
    d = _write(r, "information_report")
    return d


def read_read_response(r: Reader, lookup: Lookup | None = None) -> Decoded:
    n = r.count("read-response", 2)
    entries: list[dict[str, Any]] = []
    for _ in range(n):
        choice = r.u8("read-response choice")
        if choice == 0:
            entry = {"result": "success", "result_code": 0, **_value(r)}
        elif choice == 1:
            code = r.u8("data-access-error")
            entry = {"result": _name(DATA_ACCESS_RESULTS, code), "result_code": code}
        elif choice == 2:
            entry = {"last_block": bool(r.u8("last-block")), "block_number": r.u16("block-number"),
                     "block_length": len(r.octet_string("raw-data"))}
        elif choice == 3:
            entry = {"block_number": r.u16("block-number")}
        else:
            raise DecodeError(f"unknown read-response choice {choice}")
        entries.append(entry)
    return _finish(Decoded("read_response"), entries)


def read_write_response(r: Reader, lookup: Lookup | None = None) -> Decoded:
    n = r.count("write-response")
    entries: list[dict[str, Any]] = []
    for _ in range(n):
        choice = r.u8("write-response choice")
        if choice == 0:
            entry: dict[str, Any] = {"result": "success", "result_code": 0}
        elif choice == 1:
            code = r.u8("data-access-error")
            entry = {"result": _name(DATA_ACCESS_RESULTS, code), "result_code": code}
        elif choice == 2:
            entry = {"block_number": r.u16("block-number")}
        else:
            raise DecodeError(f"unknown write-response choice {choice}")
        entries.append(entry)
    return _finish(Decoded("write_response"), entries)
