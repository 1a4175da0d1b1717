"""What one protocol event means to the inventory: who plays which role, which logical devices
talk, which functions touch which points, which process values and identity it reveals.

Roles come from the protocol (DNP3 DIR bit, Modbus request/response, IEC 104 cause of
transmission, DLMS/C12.22 request/response services), never from who opened the TCP connection;
a device behind a gateway is a logical device: (IP, Modbus unit id), (IP, DNP3 link address),
(IP, IEC 104 common address), (IP, C12.22 AP title), (IP, DLMS SAP).

Every protocol adapter here reads only event fields (EVENTS.md names) and tolerates missing ones:
a field it needs but does not find means less inventory, never an exception.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

from otsentry.inventory import codes
from otsentry.inventory.codes import ROLES

Event = dict[str, Any]
Address = int | str | None
# (space, first, last) for numbered points/registers, (space, item, None) for named objects (OBIS).
Touch = tuple[str, Any, Any]
# (function name, code or None, function class, touched points)
Call = tuple[str, int | None, str, list[Touch]]

MAX_TOUCHES = 256  # per message: an attacker-sized object list must not become a per-point loop
MAX_VALUES = 256

MAX_NAME_CHUNKS = 512  # 256 point names each: every 16-bit address of two spaces (~8 MB at most)

_DAYS: dict[str, int] = {}
_NAME_CHUNKS: dict[tuple[str, int], list[str]] = {}  # (space, index >> 8) -> its 256 point names
_INT_ONLY = frozenset({int})
_NUMBER_TYPES = frozenset({int, float})
_DICT_ONLY = frozenset({dict})
# Per space, for points named one by one (DNP3 indexes); the names are the ones the inventory keeps
# as value band keys, so the cache costs its dict entries only.
MAX_POINT_NAMES = 65536
_POINT_NAMES: dict[str, dict[int, str]] = {}  # space -> index -> "ai:7"
_SECONDS: dict[str, int] = {}  # "2024-05-14T06:00:00" -> epoch seconds
_POWERS_OF_TEN = tuple(10**n for n in range(10))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _isint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: Any) -> int | None:
    return value if _isint(value) else None


def _addr(value: Any) -> Address:
    """A logical address as the analyzers give it (int or text); anything else is no address."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN


def _action(e: Event, default: str) -> str:
    action = e.get("event.action")
    return action if isinstance(action, str) and action else default


def _whole_seconds(text: str) -> int:
    day = _DAYS.get(text[:10])
    if day is None:
        if len(_DAYS) > 4096:
            _DAYS.clear()
        day = _DAYS[text[:10]] = calendar.timegm(time.strptime(text[:10], "%Y-%m-%d"))
    return day + int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])


def point_names(space: str, first: int, count: int) -> list[str]:
    """``[f"{space}:{first}", …]`` for ``count`` consecutive points, from shared per-256 chunks: a
    register read reports dozens of values per response, and formatting each name cost more than
    the rest of the event."""
    out: list[str] = []
    index, end = first, first + count
    while index < end:
        chunk_no = index >> 8
        base = chunk_no << 8
        chunk = _NAME_CHUNKS.get((space, chunk_no))
        if chunk is None:
            chunk = [f"{space}:{base + j}" for j in range(256)]
            if len(_NAME_CHUNKS) < MAX_NAME_CHUNKS:
                _NAME_CHUNKS[(space, chunk_no)] = chunk
        stop = min(end, base + 256)
        if index == first and stop == end:
            return chunk[index - base : stop - base]
        out += chunk[index - base : stop - base]
        index = stop
    return out


def _point_names_of(space: str) -> dict[int, str]:
    names = _POINT_NAMES.get(space)
    if names is None:
        names = _POINT_NAMES[space] = {}
    return names


def _point_name(names: dict[int, str], space: str, index: int) -> str:
    """``f"{space}:{index}"``, kept in ``names`` (one space's cache) while the cache has room."""
    name = f"{space}:{index}"
    if len(names) < MAX_POINT_NAMES:
        names[index] = name
    return name


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC ``@timestamp`` (``2024-05-14T06:00:00.123456Z``)."""
    # Hundreds of events share a second: its date-time part is parsed once.
    seconds = _SECONDS.get(text[:19])
    if seconds is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        seconds = _SECONDS[text[:19]] = _whole_seconds(text)
    if len(text) > 21 and text[19] == ".":
        frac = text[20:-1]
        digits = len(frac)
        return seconds + int(frac) / (_POWERS_OF_TEN[digits] if digits < 10 else 10**digits)
    return float(seconds)


class Observation:
    """The inventory's view of one event. ``from_initiator`` is None when the role is unknown."""

    __slots__ = (
        "calls",
        "dst_addr",
        "dst_ip",
        "dst_mac",
        "flags",
        "from_initiator",
        "identity",
        "protocol",
        "signature",
        "src_addr",
        "src_ip",
        "src_mac",
        "ts",
        "values",
        "vlan",
    )

    def __init__(self, protocol: str, ts: float, event: Event) -> None:
        # _str/_int inlined: this runs once per event.
        get = event.get
        self.protocol = protocol
        self.ts = ts
        value = get("source.ip")
        self.src_ip: str | None = value if isinstance(value, str) else None
        value = get("destination.ip")
        self.dst_ip: str | None = value if isinstance(value, str) else None
        value = get("source.mac")
        self.src_mac: str | None = value if isinstance(value, str) else None
        value = get("destination.mac")
        self.dst_mac: str | None = value if isinstance(value, str) else None
        value = get("network.vlan.id")
        self.vlan: int | None = value if isinstance(value, int) and not isinstance(value, bool) else None
        self.from_initiator: bool | None = None
        self.src_addr: Address = None
        self.dst_addr: Address = None
        self.calls: list[Call] = []
        self.values: list[tuple[str, float]] | None = None
        self.signature: str | None = None
        self.identity: dict[str, Any] | None = None
        self.flags: list[str] | None = None  # e.g. DNP3 IIN flags seen in a response

    # -- derived views ---------------------------------------------------------------------------

    @property
    def src_role(self) -> str | None:
        if self.from_initiator is None:
            return None
        return ROLES[self.protocol][0 if self.from_initiator else 1]

    @property
    def dst_role(self) -> str | None:
        if self.from_initiator is None:
            return None
        return ROLES[self.protocol][1 if self.from_initiator else 0]

    def endpoints(self) -> tuple[tuple[str, Address], tuple[str, Address]]:
        """((initiator ip, address), (responder ip, address)); only when the role is known."""
        src, dst = (self.src_ip, self.src_addr), (self.dst_ip, self.dst_addr)
        return (src, dst) if self.from_initiator else (dst, src)  # type: ignore[return-value]


# -- Modbus ------------------------------------------------------------------------------------------


def _modbus(obs: Observation, e: Event) -> None:
    get = e.get
    unit = _addr(get("modbus.unit_id"))
    pdu = get("modbus.pdu_type")
    request = pdu == "request"
    obs.from_initiator = request
    if request:
        obs.dst_addr = unit
    else:
        obs.src_addr = unit
    code = get("modbus.function_code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    action = get("event.action")
    name = action if isinstance(action, str) and action else f"function_{code}"
    fclass = codes.MODBUS_CLASSES.get(code, codes.OTHER) if code is not None else codes.OTHER
    touched: list[Touch] = []
    address, quantity = get("modbus.address"), get("modbus.quantity")
    address_is_int = isinstance(address, int) and not isinstance(address, bool)
    # A response's address and quantity are copies of its request's: the request recorded them.
    if address_is_int and request:
        count = quantity if _isint(quantity) and quantity > 0 else 1
        touched.append(("addr", address, address + count - 1))
    waddr, wquantity = get("modbus.write.address"), get("modbus.write.quantity")
    if waddr is not None and _isint(waddr) and _isint(wquantity) and wquantity > 0:
        touched.append(("write", waddr, waddr + wquantity - 1))
    records = get("modbus.file_records")
    if isinstance(records, list) and isinstance(get("modbus.file_numbers"), list):
        for rec in records[:MAX_TOUCHES]:
            if (
                isinstance(rec, dict)
                and _isint(rec.get("file"))
                and _isint(rec.get("record"))
            ):
                length = rec.get("length") if _isint(rec.get("length")) else 1
                touched.append((f"file{rec['file']}", rec["record"], rec["record"] + max(length, 1) - 1))
    obs.calls.append((name, code, fclass, touched))
    if request:
        obs.signature = f"{name}@{address}+{quantity}" if address_is_int else name
        return
    if pdu != "response":
        return
    space = codes.MODBUS_VALUE_SPACES.get(code)  # type: ignore[arg-type]
    values = get("modbus.values")
    if space and address_is_int and isinstance(values, list) and get("modbus.matched"):
        values = values[:MAX_VALUES]
        if {*map(type, values)} <= _INT_ONLY:  # registers: every value is a plain int, none to drop
            obs.values = list(zip(point_names(space, address, len(values)), values, strict=True))
        else:
            obs.values = [(f"{space}:{address + i}", v) for i, v in enumerate(values) if _number(v)]
    objects = get("modbus.objects")
    if isinstance(objects, dict) and objects:
        obs.identity = {codes.MODBUS_IDENTITY_KEYS.get(k, str(k)): str(v) for k, v in objects.items()}
    elif get("modbus.server_id") is not None:
        obs.identity = {"server_id": e.get("modbus.server_id")}
        if e.get("modbus.additional_data"):
            obs.identity["server_id_data"] = str(e["modbus.additional_data"])


# -- DNP3 ------------------------------------------------------------------------------------------------


def _dnp3_attributes() -> dict[int, str]:
    try:
        from otsentry.protocols.dnp3.codes import DEVICE_ATTRIBUTES
    except ImportError:  # the DNP3 tables are optional for the inventory
        return {}
    return DEVICE_ATTRIBUTES


_DNP3_ATTRIBUTE_NAMES = _dnp3_attributes()
_GROUP_SPACES = {group: f"g{group}" for group in range(256)}  # an object group's point space


def _dnp3(obs: Observation, e: Event) -> None:
    get = e.get
    source, destination = get("dnp3.link.source"), get("dnp3.link.destination")  # _addr, inlined
    obs.src_addr = source if isinstance(source, (str, int)) and not isinstance(source, bool) else None
    obs.dst_addr = (
        destination if isinstance(destination, (str, int)) and not isinstance(destination, bool) else None
    )
    code = get("dnp3.application.function_code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    direction = get("dnp3.link.dir")
    if direction is None:
        if code is None:
            return
        direction = code < 129  # responses (129–131) come from the outstation
    from_initiator = obs.from_initiator = bool(direction)
    action = get("event.action")
    if isinstance(action, str) and action:
        name = action
    else:
        name = f"function_{code}" if code is not None else "link"
    # Link-layer only frames (resets, link status) carry no application function: diagnostic.
    fclass = codes.DNP3_CLASSES.get(code, codes.OTHER) if code is not None else codes.DIAGNOSTIC
    touched: list[Touch] = []
    objects = get("dnp3.objects")
    values: list[tuple[str, float]] = []
    identity: dict[str, Any] = {}
    gvs: list[str] = []  # a request's signature names its objects; a response's does not matter
    if isinstance(objects, list):
        for obj in objects[:MAX_TOUCHES]:
            if not isinstance(obj, dict):
                continue
            group = obj.get("group")
            if not isinstance(group, int) or isinstance(group, bool):
                continue
            if from_initiator:
                gvs.append(f"g{group}v{obj.get('variation')}")
            points = obj.get("points")
            if group == 0 and not from_initiator:
                _dnp3_attribute(obj, identity)
                continue
            space = _GROUP_SPACES.get(group) or f"g{group}"
            start, stop = obj.get("start"), obj.get("stop")
            indexes = None
            if _isint(start) and _isint(stop) and stop >= start:
                touched.append((space, start, stop))
            elif isinstance(points, list):
                # Points as the decoder gives them (dicts with an int index) go through C-level
                # maps; anything else takes the loop, which skips what does not fit.
                indexes = _indexes(points[:MAX_TOUCHES])
                if indexes is not None:
                    touched += zip(repeat(space), indexes, indexes, strict=False)  # repeat() is endless
                else:
                    for point in points[:MAX_TOUCHES]:
                        if isinstance(point, dict):
                            index = point.get("index")
                            if isinstance(index, int) and not isinstance(index, bool):
                                touched.append((space, index, index))
            value_space = codes.DNP3_VALUE_GROUPS.get(group)
            if value_space and not from_initiator and isinstance(points, list):
                _dnp3_values(points[:MAX_VALUES], indexes, value_space, values)
    attrs = e.get("dnp3.device_attributes")
    if isinstance(attrs, dict):
        identity.update({str(k): v for k, v in attrs.items() if isinstance(v, str | int | float)})
    obs.calls.append((name, code, fclass, touched))
    if from_initiator:
        if code is not None and fclass == codes.READ:
            obs.signature = f"{name} {','.join(gvs)}" if gvs else name
        elif code is not None and code != 0:
            obs.signature = name
    else:
        if values:
            obs.values = values
        if identity:
            obs.identity = identity
        flags = e.get("dnp3.iin_flags")
        if isinstance(flags, list) and flags:
            obs.flags = [str(f) for f in flags[:32]]


def _indexes(points: list[Any]) -> list[int] | None:
    """Each point's index when every point is a dict with an int index, else None."""
    if {*map(type, points)} <= _DICT_ONLY:
        indexes = list(map(dict.get, points, repeat("index")))
        if {*map(type, indexes)} <= _INT_ONLY:
            return indexes
    return None


def _dnp3_values(
    points: list[Any], indexes: list[int] | None, space: str, values: list[tuple[str, float]]
) -> None:
    """Append (point name, value) for each point with an int index and a number value; ``indexes``
    are the points' (from ``_indexes``), if known."""
    names = _point_names_of(space)
    if indexes is None:
        indexes = _indexes(points)
    if indexes is not None and len(indexes) == len(points):
        numbers = list(map(dict.get, points, repeat("value")))
        if {*map(type, numbers)} <= _NUMBER_TYPES:  # every point has a number: keep them all
            found = list(map(names.get, indexes))
            if None in found:
                found = [name or _point_name(names, space, i) for name, i in zip(found, indexes, strict=True)]
            values += zip(found, numbers, strict=True)
            return
    for point in points:
        if isinstance(point, dict):
            index = point.get("index")
            if isinstance(index, int) and not isinstance(index, bool):
                value = point.get("value")
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values.append((names.get(index) or _point_name(names, space, index), value))


def _dnp3_attribute(obj: dict[str, Any], identity: dict[str, Any]) -> None:
    """Group 0 (device attributes): variation = attribute number, value in the object or its point."""
    variation = obj.get("variation")
    name = obj.get("attribute") or _DNP3_ATTRIBUTE_NAMES.get(variation) or f"attribute_{variation}"  # type: ignore[arg-type]
    value = obj.get("value")
    if value is None:
        points = obj.get("points")
        if isinstance(points, list) and points and isinstance(points[0], dict):
            value = points[0].get("value")
    if isinstance(value, str | int | float) and not isinstance(value, bool) and variation not in (254, 255):
        identity[str(name)] = value


# -- IEC 60870-5-104 ----------------------------------------------------------------------------


def _cot_number(cot: Any) -> int | None:
    if _isint(cot):
        return cot & 0x3F
    if isinstance(cot, str):
        text = cot.strip().lower().replace("-", "_").replace(" ", "_")
        return int(text) if text.isdigit() else codes.IEC104_COT_NAMES.get(text)
    return None


_IEC104_U_FROM_CONTROLLING = frozenset({"startdt_act", "stopdt_act"})  # IEC 60870-5-104 §5.3
_IEC104_U_FROM_CONTROLLED = frozenset({"startdt_con", "stopdt_con"})


def _iec104(obs: Observation, e: Event) -> None:
    type_id = _int(e.get("iec104.type_id"))
    cot = _cot_number(e.get("iec104.cot"))
    name = _action(e, "apdu")
    from_controlling: bool | None = None
    if _isint(type_id):
        if type_id < 45 or type_id == 70:
            from_controlling = False
        elif cot in codes.IEC104_COT_FROM_CONTROLLING or (type_id == 102 and cot == 5):
            from_controlling = True
        elif cot in codes.IEC104_COT_FROM_CONTROLLED:
            from_controlling = False
    elif name in _IEC104_U_FROM_CONTROLLING:
        from_controlling = True
    elif name in _IEC104_U_FROM_CONTROLLED:
        from_controlling = False
    if from_controlling is None:
        # TESTFR, S frames (and unusual causes) go either way: the controlled station is the one
        # listening on the IEC 104 port (§10.1: the controlling station connects).
        from_controlling = e.get("destination.port") == e.get("server.port")
    obs.from_initiator = from_controlling
    ca = e.get("iec104.common_address")
    ca = _addr(ca[0] if ca else None) if isinstance(ca, list) else _addr(ca)
    if from_controlling:
        obs.dst_addr = ca
    else:
        obs.src_addr = ca
    fclass = codes.iec104_class(type_id) if _isint(type_id) else codes.DIAGNOSTIC
    ioas = e.get("iec104.ioa")
    touched: list[Touch] = []
    if isinstance(ioas, list):
        touched = [("ioa", i, i) for i in ioas[:MAX_TOUCHES] if _isint(i)]
    elif _isint(ioas):
        touched = [("ioa", ioas, ioas)]
    if e.get("iec104.apci") == "S":
        fclass = codes.OTHER
    obs.calls.append((name, type_id if _isint(type_id) else None, fclass, touched))
    if from_controlling:
        obs.signature = f"{name} ca={ca}" if ca is not None else name
    elif type_id in codes.IEC104_VALUE_TYPES and isinstance(ioas, list):
        values = e.get("iec104.value", e.get("iec104.values"))  # flat list aligned with iec104.ioa
        if isinstance(values, list):
            obs.values = [
                (f"ioa:{i}", v)
                for i, v in zip(ioas[:MAX_VALUES], values, strict=False)
                if _isint(i) and isinstance(v, int | float) and not isinstance(v, bool)
            ]


# -- DLMS/COSEM --------------------------------------------------------------------------------------


_DLMS_CLIENT_APDUS = ("aarq", "rlrq", "initiate_request")
_DLMS_SERVER_APDUS = (
    "aare",
    "rlre",
    "initiate_response",
    "event_notification",
    "data_notification",
    "exception_response",
    "confirmed_service_error",
)
_LDN_OBIS = "0-0:42.0.0.255"  # COSEM logical device name (Blue Book, class 1 attribute 2)


def _norm(name: Any) -> str:
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


def _first(e: Event, *keys: str) -> Any:
    for key in keys:
        value = e.get(key)
        if value is not None:
            return value
    return None


def _dlms(obs: Observation, e: Event) -> None:
    apdu = _norm(_str(e.get("dlms.apdu")) or _action(e, "apdu"))
    if "request" in apdu or apdu.endswith(_DLMS_CLIENT_APDUS):
        obs.from_initiator = True
    elif "response" in apdu or apdu.endswith(_DLMS_SERVER_APDUS) or "notification" in apdu:
        obs.from_initiator = False
    else:
        obs.from_initiator = e.get("destination.port") == e.get("server.port")
    # Wrapper wPorts: the client SAP and the server's logical device (IEC 62056-47).
    obs.src_addr = _addr(_first(e, "dlms.wrapper.source_port", "dlms.wrapper.source"))
    obs.dst_addr = _addr(_first(e, "dlms.wrapper.destination_port", "dlms.wrapper.destination"))
    # The action names the meaning (remote_disconnect, clock_set, …); the APDU says read/write/act.
    name = _action(e, apdu)
    touched: list[Touch] = []
    obis = e.get("dlms.obis")
    obis_list = obis if isinstance(obis, list) else [obis] if obis else []
    attribute = e.get("dlms.attribute_id", e.get("dlms.method_id"))
    attrs = attribute if isinstance(attribute, list) else [attribute] * len(obis_list)
    for code, attr in zip(obis_list[:MAX_TOUCHES], attrs, strict=False):
        touched.append(("obis", f"{code}/{attr}" if attr is not None else str(code), None))
    obs.calls.append((name, None, codes.keyword_class(apdu), touched))
    if obs.from_initiator:
        obs.signature = f"{name} {','.join(t[1] for t in touched)}" if touched else name
    identity: dict[str, Any] = {}
    title = e.get("dlms.system_title")
    if isinstance(title, str) and title:
        identity["system_title"] = title
        maker = _system_title_maker(title)
        if maker:
            identity["manufacturer_id"] = maker
    value = e.get("dlms.value")
    if obis == _LDN_OBIS and isinstance(value, str) and not obs.from_initiator:
        identity["logical_device_name"] = _printable(value)
    if identity:
        obs.identity = identity


def _printable(value: str) -> str:
    """An octet string rendered as hex, as text when it is printable ASCII (an LDN like ``GRX…``)."""
    try:
        text = bytes.fromhex(value).decode("ascii")
    except ValueError:
        return value
    return text if text.isprintable() else value


def _system_title_maker(title: str) -> str | None:
    """The FLAG manufacturer id: the system title's first 3 bytes are ASCII letters (Green Book 4.3.4)."""
    raw = title.replace(":", "").replace("-", "").replace(" ", "")
    try:
        head = bytes.fromhex(raw[:6]).decode("ascii")
    except ValueError:
        head = title[:3]
    return head if len(head) == 3 and head.isalpha() else None


# -- ANSI C12.22 -------------------------------------------------------------------------------------


_C1222_GENERIC_ACTIONS = frozenset({"table_write", "table_read", "response", "unknown_service"})


def _c1222(obs: Observation, e: Event) -> None:
    obs.src_addr = _addr(e.get("c1222.calling_ap_title"))
    obs.dst_addr = _addr(e.get("c1222.called_ap_title"))
    services = e.get("c1222.services")
    action = _norm(_action(e, "epsem"))
    pdu = e.get("c1222.pdu_type")
    is_response = pdu == "response" if pdu else "response" in action
    calls = obs.calls
    if isinstance(services, list) and services:
        for svc in services[:MAX_TOUCHES]:
            if not isinstance(svc, dict):
                continue
            name = _norm(svc.get("service") or "service")
            if not pdu and svc.get("response_code") is not None:
                is_response = True
            touched: list[Touch] = []
            table = svc.get("table_id")
            if _isint(table):
                touched.append(("table", table, table))
            procedure = svc.get("procedure")
            fclass = codes.keyword_class(name)
            if _isint(procedure):
                touched.append(("procedure", procedure, procedure))
                fclass = codes.CONTROL  # a write to ST7 runs a procedure (C12.19 §9.1.8)
                if action not in _C1222_GENERIC_ACTIONS:
                    name = action  # procedure_remote_reset, remote_disconnect … say more than "write"
            calls.append((name, None, fclass, touched))
    else:
        calls.append((action, None, codes.keyword_class(action), []))
    obs.from_initiator = not is_response
    if not is_response:
        obs.signature = " ".join(c[0] + "".join(f" {t[0]}{t[1]}" for t in c[3]) for c in calls[:4])
    ident: dict[str, Any] = {}
    if is_response:  # an Identify response describes its sender
        ident = {k.removeprefix("c1222.identify."): v for k, v in e.items()
                 if k.startswith("c1222.identify.") and isinstance(v, str | int | float)}
    else:  # a Registration request carries the registering node's serial number
        serial = e.get("c1222.registration.electronic_serial_number")
        if isinstance(serial, str):
            ident["electronic_serial_number"] = serial
    if ident:
        obs.identity = ident


ADAPTERS: dict[str, Callable[[Observation, Event], None]] = {
    "modbus": _modbus,
    "dnp3": _dnp3,
    "iec104": _iec104,
    "dlms": _dlms,
    "c1222": _c1222,
}


def observe(event: Event) -> Observation | None:
    """The observation of a protocol event, or None for events the inventory ignores (alerts,
    metrics, protocols it does not know). Decode errors still reveal who talks: they keep the
    addresses but no role, function or values."""
    if event.get("event.kind", "event") != "event":
        return None
    protocol = event.get("network.protocol")
    adapter = ADAPTERS.get(protocol)  # type: ignore[arg-type]
    if adapter is None:
        return None
    stamp = event.get("@timestamp")
    ts = parse_timestamp(stamp) if isinstance(stamp, str) else float(stamp or 0.0)
    obs = Observation(protocol, ts, event)  # type: ignore[arg-type]
    if event.get("event.dataset") == "otsentry.decode_error":
        return obs
    adapter(obs, event)
    return obs
