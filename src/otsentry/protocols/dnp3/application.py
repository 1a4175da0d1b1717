"""DNP3 application layer: the fragment header and a walk over every object header.

Fragment (IEEE 1815-2012 clause 4.2.2): application control, function code, IIN (responses only),
then object headers ``group | variation | qualifier | range`` each followed by its objects.
The qualifier's high nibble is the object prefix code (0 none, 1-3 index of 1/2/4 octets, 4-6
object size of 1/2/4 octets), the low nibble the range specifier (0-2 start/stop of 1/2/4 octets,
3-5 one virtual address, 6 none, 7-9 count of 1/2/4 octets, 0xB free-format count of 1 octet).

Never trust a count: the octets a header needs are checked before any per-object loop, so a 2^32
count with 3 octets of data fails at once.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Any

from otsentry.protocols.base import DecodeError
from otsentry.protocols.dnp3 import codes
from otsentry.protocols.dnp3.objects import (
    ATTRIBUTE,
    OCTETS,
    PACKED_1,
    PACKED_2,
    PREFIXED,
    SPECS,
    bulk_points,
    decode_attribute,
    decode_variable,
    iin_bit_name,
    ms_to_iso,
    object_size,
    object_spec,
)

MAX_POINTS = 256  # decoded points per message; past it objects are still walked, not decoded

_UINT = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I")}
_PAIR = {1: struct.Struct("<BB"), 2: struct.Struct("<HH"), 4: struct.Struct("<II")}
_INDEX_FORMATS = {1: "B", 2: "H", 4: "I"}
# Range specifier kinds: start/stop, one virtual address, none ("all"), count, free-format count.
_SS, _ADDR, _ALL, _COUNT, _FF = range(5)
# Range specifier → (kind, width).
_RANGES: dict[int, tuple[int, int]] = {
    0: (_SS, 1),
    1: (_SS, 2),
    2: (_SS, 4),
    3: (_ADDR, 1),
    4: (_ADDR, 2),
    5: (_ADDR, 4),
    6: (_ALL, 0),
    7: (_COUNT, 1),
    8: (_COUNT, 2),
    9: (_COUNT, 4),
    11: (_FF, 1),
}
# Prefix kinds: none, point index, object size; _FF_NO_SIZE marks a free-format range without one.
_NO_PREFIX, _INDEX, _SIZE, _FF_NO_SIZE = range(4)
# Prefix code → (kind, width).
_PREFIXES: dict[int, tuple[int, int]] = {
    0: (_NO_PREFIX, 0),
    1: (_INDEX, 1),
    2: (_INDEX, 2),
    3: (_INDEX, 4),
    4: (_SIZE, 1),
    5: (_SIZE, 2),
    6: (_SIZE, 4),
}

Qualifier = tuple[int, int, Any, int, int]


def _qualifier(qualifier: int) -> Qualifier | None:
    # (range kind, range width, range unpacker, prefix kind, prefix width); None when reserved.
    rng = _RANGES.get(qualifier & 0x0F)
    prefix = _PREFIXES.get((qualifier >> 4) & 0x07)
    if qualifier & 0x80 or rng is None or prefix is None:
        return None
    kind, width = rng
    pkind, pwidth = prefix
    unpack = (_PAIR if kind == _SS else _UINT).get(width)
    if kind == _FF:
        # 0x1B-0x3B: the older "identifier size" spelling of a size prefix.
        pkind = _FF_NO_SIZE if pkind == _NO_PREFIX else _SIZE
    return kind, width, unpack.unpack_from if unpack else None, pkind, pwidth


_QUALIFIERS = [_qualifier(q) for q in range(256)]


def _qualifier_problem(group: int, variation: int, qualifier: int) -> str:
    if qualifier & 0x80:
        return f"g{group}v{variation}: reserved qualifier bit set (0x{qualifier:02x})"
    return f"g{group}v{variation}: reserved qualifier 0x{qualifier:02x}"


# Application header fields by control octet and by function code, in EVENTS.md order.
_APP_CONTROL_FIELDS = [
    {
        "dnp3.application.sequence": ctrl & codes.APP_SEQ,
        "dnp3.application.fir": bool(ctrl & codes.APP_FIR),
        "dnp3.application.fin": bool(ctrl & codes.APP_FIN),
        "dnp3.application.con": bool(ctrl & codes.APP_CON),
        "dnp3.application.uns": bool(ctrl & codes.APP_UNS),
    }
    for ctrl in range(256)
]
_APP_FUNCTION_FIELDS = [
    {
        "event.action": codes.APP_FUNCTIONS.get(fc) or f"function_{fc}",
        "dnp3.application.function_code": fc,
        "dnp3.application.function": codes.APP_FUNCTIONS.get(fc) or f"unknown_{fc}",
    }
    for fc in range(256)
]
_HEADERS: dict[int, dict[str, Any]] = {}  # ctrl << 8 | fc → header_fields()
_MAX_HEADERS = 4096  # a device uses a handful; random fragments must not fill memory


def header_fields(ctrl: int, fc: int) -> dict[str, Any]:
    """The fields of an application header (control octet, function code) in EVENTS.md order, with
    placeholders for what decode_objects sets: the object lists and, in responses, the IIN. Shared:
    copy before changing."""
    key = ctrl << 8 | fc
    fields = _HEADERS.get(key)
    if fields is None:
        fields = {
            **_APP_FUNCTION_FIELDS[fc],
            **_APP_CONTROL_FIELDS[ctrl],
            "dnp3.objects": None,
            "dnp3.object_gv": None,
        }
        if fc in codes.RESPONSE_FUNCTIONS:
            fields["dnp3.iin"] = fields["dnp3.iin_flags"] = None
        if len(_HEADERS) >= _MAX_HEADERS:
            _HEADERS.clear()
        _HEADERS[key] = fields
    return fields


# IIN1 names then IIN2 names, by octet (the IIN_FLAGS order).
_IIN1_NAMES = [codes.iin_flag_names(octet << 8) for octet in range(256)]
_IIN2_NAMES = [codes.iin_flag_names(octet) for octet in range(256)]
# Requests that only name objects (class polls above all) repeat octet for octet: their object
# lists, by function code and object octets, are copied instead of walked again (~2.5× faster).
_NAMED: dict[bytes, tuple[tuple[dict[str, Any], ...], tuple[str, ...]]] = {}
_MAX_NAMED = 1024
_MAX_NAMED_LEN = 64
_GV_NAMES: dict[int, str] = {}  # group << 8 | variation → "g{group}v{variation}"
_MAX_GV_NAMES = 4096


class ObjectError(Exception):
    """The walk cannot go on; objects decoded so far stay valid."""


def decode_fragment(frag: bytes, fields: dict[str, Any], max_points: int = MAX_POINTS) -> None:
    """Decode an application fragment into ``fields`` (dotted EVENTS.md names).

    Raises DecodeError when even the header is missing. Object walk problems do not raise: the
    objects decoded so far are kept and ``dnp3.objects_truncated``/``dnp3.objects_error`` are set.
    """
    if len(frag) < 2:
        raise DecodeError(f"application fragment of {len(frag)} octet(s): no function code")
    fields.update(header_fields(frag[0], frag[1]))
    decode_objects(frag, fields, max_points)


def decode_objects(frag: bytes, fields: dict[str, Any], max_points: int = MAX_POINTS) -> None:
    """The IIN and objects of a fragment of at least 2 octets into ``fields``, which already holds
    ``header_fields(frag[0], frag[1])``. Raises DecodeError when a response has no IIN."""
    n = len(frag)
    fc = frag[1]
    # Every application message carries the object lists, empty when it has no objects.
    objects: list[dict[str, Any]] = []
    gvs: list[str] = []
    fields["dnp3.objects"] = objects
    fields["dnp3.object_gv"] = gvs
    off = 2
    if fc in codes.RESPONSE_FUNCTIONS:
        if n < 4:
            raise DecodeError(f"response fragment of {n} octets: IIN missing")
        fields["dnp3.iin"] = frag[2] << 8 | frag[3]
        fields["dnp3.iin_flags"] = _IIN1_NAMES[frag[2]] + _IIN2_NAMES[frag[3]]  # a new list
        off = 4
    if off >= n:
        return
    if fc in codes.HEADER_ONLY_FUNCTIONS and n <= _MAX_NAMED_LEN:
        key = bytes(frag[1:])
        named = _NAMED.get(key)
        if named is not None:
            objects.extend([obj.copy() for obj in named[0]])
            gvs.extend(named[1])
            return
        known = len(fields)
        _walk(frag, off, fc, fields, objects, gvs, max_points)
        # Kept only when the walk added no field (no problem, no truncation) and no point: then the
        # lists depend on nothing but these octets, whatever the point budget.
        if len(fields) == known and not any("points" in obj for obj in objects):
            if len(_NAMED) >= _MAX_NAMED:
                _NAMED.clear()
            _NAMED[key] = (tuple(obj.copy() for obj in objects), tuple(gvs))
        return
    _walk(frag, off, fc, fields, objects, gvs, max_points)


def _walk(
    frag: bytes,
    off: int,
    fc: int,
    fields: dict[str, Any],
    objects: list[dict[str, Any]],
    gvs: list[str],
    max_points: int,
) -> None:
    budget = [max_points]  # points left to decode (a list so helpers can spend it)
    n = len(frag)
    request = fc < 128
    header_only_fc = request and fc in codes.HEADER_ONLY_FUNCTIONS
    freeze_at_time = request and fc in codes.FREEZE_AT_TIME_FUNCTIONS
    cto: int | None = None  # common time of occurrence (g51) for relative-time events
    flat = False  # an object of a group with flat per-element arrays was seen
    qualifiers = _QUALIFIERS
    gv_names = _GV_NAMES
    specs = SPECS
    try:
        while off < n:
            if n - off < 3:
                raise ObjectError(f"object header truncated at offset {off}")
            group = frag[off]
            variation = frag[off + 1]
            qualifier = frag[off + 2]
            off += 3
            obj: dict[str, Any] = {"group": group, "variation": variation, "qualifier": qualifier}
            objects.append(obj)
            gv = group << 8 | variation
            name = gv_names.get(gv)
            if name is None:
                if len(gv_names) >= _MAX_GV_NAMES:
                    gv_names.clear()
                name = gv_names[gv] = f"g{group}v{variation}"
            gvs.append(name)
            if group in FLAT_GROUPS:
                flat = True
            q = qualifiers[qualifier]
            if q is None:
                raise ObjectError(_qualifier_problem(group, variation, qualifier))
            kind, width, unpack_range, pkind, pwidth = q
            if kind == _ALL:  # no range, no count: a header that names objects (class polls)
                continue
            start: int | None = None
            count: int
            if kind == _SS:
                if n - off < 2 * width:
                    raise ObjectError(f"g{group}v{variation}: range field truncated")
                start, stop = unpack_range(frag, off)
                off += 2 * width
                obj["start"] = start
                obj["stop"] = stop
                if stop < start:
                    raise ObjectError(f"g{group}v{variation}: stop index {stop} below start {start}")
                count = stop - start + 1
                obj["count"] = count
            elif n - off < width:
                raise ObjectError(f"g{group}v{variation}: range field truncated")
            elif kind == _ADDR:
                start = unpack_range(frag, off)[0]
                off += width
                count = 1
                obj["start"] = obj["stop"] = start
                obj["count"] = count
            else:
                count = unpack_range(frag, off)[0]
                off += width
                obj["count"] = count
            if pkind == _FF_NO_SIZE:
                raise ObjectError(f"g{group}v{variation}: free-format qualifier without size prefix")

            # Objects with a size prefix carry data whatever the function (e.g. READ of g70v5,
            # aggressive-mode g120 in any request); otherwise these requests name points only.
            if pkind != _SIZE and (
                variation == 0 or (header_only_fc and group != 120) or (freeze_at_time and group != 50)
            ):
                if count and pkind == _INDEX:  # e.g. READ with qualifier 0x17/0x28: index list
                    need = count * pwidth
                    if need > n - off:
                        raise ObjectError(f"g{group}v{variation}: {count} indices need {need} octets")
                    off = _index_list(frag, off, count, pwidth, obj, budget)
                continue
            spec = specs.get(gv) or object_spec(group, variation)
            if spec is None:
                raise ObjectError(f"unknown object g{group}v{variation}: size unknown")
            size, decode, layout = spec
            if pkind == _SIZE:
                off = _size_prefixed(frag, off, count, pwidth, group, variation, obj, budget)
            elif size > 0:
                stride = pwidth + size
                if layout is not None and 0 < count <= budget[0] and count * stride <= n - off:
                    # The common case, all objects present and within the budget: _fixed inlined.
                    obj["points"] = bulk_points(layout, frag, off, count, pwidth, start)
                    budget[0] -= count
                    off += count * stride
                else:
                    off = _fixed(
                        frag, off, count, pwidth, size, decode, layout, start, group, variation, obj, budget
                    )
                if group == 51:
                    if "points" in obj:
                        cto = obj["points"][-1]["time_ms"]
                elif cto is not None and variation == 3 and group in (2, 4):
                    _apply_cto(obj, cto)
            elif size == ATTRIBUTE:
                off = _attributes(frag, off, count, pwidth, start, variation, obj, budget)
            elif size == PREFIXED:
                raise ObjectError(f"g{group}v{variation}: variable-size object without a size prefix")
            elif size in (PACKED_1, PACKED_2):
                if pkind:
                    raise ObjectError(f"g{group}v{variation}: packed object with an index prefix")
                off = _packed(frag, off, count, -size, start, group, obj, budget)
            else:  # OCTETS: the size is the variation; or a header-only object of size 0
                if size == OCTETS:
                    size = variation
                off = _fixed(
                    frag, off, count, pwidth, size, decode, layout, start, group, variation, obj, budget
                )
    except ObjectError as exc:
        fields["dnp3.objects_truncated"] = True
        fields["dnp3.objects_error"] = str(exc)
    if budget[0] < 0:
        fields["dnp3.points_truncated"] = True
    if flat:
        _flatten(objects, fields)


def _index_list(frag: bytes, off: int, count: int, width: int, obj: dict[str, Any], budget: list[int]) -> int:
    take = min(count, max(budget[0], 0))
    if take:
        indices = struct.unpack_from(f"<{take}{_INDEX_FORMATS[width]}", frag, off)
        obj["points"] = [{"index": index} for index in indices]
    _spend(budget, count)
    return off + count * width


def _spend(budget: list[int], count: int) -> None:
    if count > budget[0]:
        budget[0] = -1 if budget[0] >= 0 else budget[0]
    else:
        budget[0] -= count


def _fixed(
    frag: bytes,
    off: int,
    count: int,
    pwidth: int,
    size: int,
    decode: Any,
    layout: Any,
    start: int | None,
    group: int,
    variation: int,
    obj: dict[str, Any],
    budget: list[int],
) -> int:
    stride = pwidth + size
    need = count * stride
    left = len(frag) - off
    # Objects that fit are decoded even when the count lies (a compliant outstation rejects the
    # request, a sloppy one may act on them); the loop is bounded by the octets, not the count.
    fits = count if need <= left else left // stride if stride else count
    left_points = budget[0]
    take = fits if fits <= left_points else left_points if left_points > 0 else 0  # min(fits, max(left, 0))
    if take and decode is not None:
        if layout is not None:
            obj["points"] = bulk_points(layout, frag, off, take, pwidth, start)
        elif pwidth:
            unpack = _UINT[pwidth].unpack_from
            points = []
            for p in range(off, off + take * stride, stride):
                point = decode(frag, p + pwidth, size)
                point["index"] = unpack(frag, p)[0]
                points.append(point)
            obj["points"] = points
        else:  # without a range the index is the position in the header (as Wireshark shows it)
            points = []
            for index, p in enumerate(range(off, off + take * stride, stride), start or 0):
                point = decode(frag, p, size)
                point["index"] = index
                points.append(point)
            obj["points"] = points
    if need > left:
        if decode is not None:
            _spend(budget, take)
        raise ObjectError(f"g{group}v{variation}: {count} objects need {need} octets, {left} left")
    if decode is not None:
        _spend(budget, count)
    return off + need


def _packed(
    frag: bytes,
    off: int,
    count: int,
    bits: int,
    start: int | None,
    group: int,
    obj: dict[str, Any],
    budget: list[int],
) -> int:
    need = (count * bits + 7) >> 3
    if need > len(frag) - off:
        raise ObjectError(f"g{group}v{obj['variation']}: {count} packed points need {need} octets")
    take = min(count, max(budget[0], 0))
    if take:
        base = start or 0
        value = int.from_bytes(frag[off : off + need], "little")
        mask = (1 << bits) - 1
        if bits == 1:
            points: list[dict[str, Any]] = [
                {"index": base + i, "value": bool(value >> i & 1)} for i in range(take)
            ]
        else:
            points = [{"index": base + i, "value": value >> (2 * i) & mask} for i in range(take)]
        if group == 80:
            for point in points:
                point["iin"] = iin_bit_name(point["index"])
        obj["points"] = points
    _spend(budget, count)
    return off + need


def _size_prefixed(
    frag: bytes,
    off: int,
    count: int,
    pwidth: int,
    group: int,
    variation: int,
    obj: dict[str, Any],
    budget: list[int],
) -> int:
    # Each object consumes at least its prefix, so the loop ends when the octets do.
    n = len(frag)
    unpack = _UINT[pwidth].unpack_from
    decode = decode_variable(group, variation)
    spec = object_size(group, variation)
    fixed = spec[0] if spec is not None and spec[0] >= 0 else 0  # a fixed layout needs that many octets
    points = []
    for i in range(count):
        if n - off < pwidth:
            raise ObjectError(f"g{group}v{variation}: object size prefix truncated")
        size = unpack(frag, off)[0]
        off += pwidth
        if size > n - off:
            raise ObjectError(f"g{group}v{variation}: object of {size} octets, {n - off} left")
        if size < fixed:
            raise ObjectError(f"g{group}v{variation}: object size {size} below its {fixed} octets")
        if budget[0] > 0:
            if group == 0:
                try:
                    point, _ = decode_attribute(variation, frag, off, off + size)
                except ValueError as exc:
                    raise ObjectError(f"g0v{variation}: {exc}") from None
            else:
                point = decode(frag, off, size)
            point["index"] = i  # position in the header: size-prefixed objects have no point index
            points.append(point)
            budget[0] -= 1
        elif budget[0] == 0:
            budget[0] = -1
        off += size
    if points:
        obj["points"] = points
    return off


def _attributes(
    frag: bytes,
    off: int,
    count: int,
    pwidth: int,
    start: int | None,
    variation: int,
    obj: dict[str, Any],
    budget: list[int],
) -> int:
    n = len(frag)
    points = []
    unpack = _UINT[pwidth].unpack_from if pwidth else None
    for i in range(count):  # each attribute takes ≥ 2 octets: bounded by the fragment
        index = (start or 0) + i
        if unpack is not None:
            if n - off < pwidth:
                raise ObjectError("device attribute index truncated")
            index = unpack(frag, off)[0]
            off += pwidth
        try:
            point, off = decode_attribute(variation, frag, off, n)
        except ValueError as exc:
            raise ObjectError(f"g0v{variation}: {exc}") from None
        if budget[0] > 0:
            point["index"] = index
            points.append(point)
            budget[0] -= 1
        elif budget[0] == 0:
            budget[0] = -1
    if points:
        obj["points"] = points
    return off


def _apply_cto(obj: dict[str, Any], cto: int) -> None:
    for point in obj.get("points", ()):
        point["time"] = ms_to_iso(cto + point["relative_time_ms"])


_CONTROL_KEYS = ("index", "code", "op_type", "tcc", "count", "on_time", "off_time", "status")
_CONTROL_NAMES = tuple(f"dnp3.control.{k}" for k in _CONTROL_KEYS)
_CONTROL_ROW = itemgetter(*_CONTROL_KEYS)
_ANALOG_OUTPUT_KEYS = ("index", "value", "status")
_ANALOG_OUTPUT_NAMES = tuple(f"dnp3.analog_output.{k}" for k in _ANALOG_OUTPUT_KEYS)
_ANALOG_OUTPUT_ROW = itemgetter(*_ANALOG_OUTPUT_KEYS)
FLAT_GROUPS = frozenset({12, 41, 70, 120})


def _append_columns(fields: dict[str, Any], names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    # One array per name, extended when an earlier object of the message started it.
    for name, column in zip(names, zip(*rows, strict=True), strict=True):
        fields[name] = [*fields.get(name, ()), *column]


def _flatten(objects: list[dict[str, Any]], fields: dict[str, Any]) -> None:
    """Flat per-element arrays that Sigma can match: CROBs, analog output commands, file names,
    authentication messages."""
    for obj in objects:
        group = obj["group"]
        points = obj.get("points") if group in FLAT_GROUPS else None
        if not points:
            continue
        # Index-only points (e.g. a READ naming g12v1 indexes) carry no command to flatten.
        if group == 12 and obj["variation"] == 1:
            rows = [_CONTROL_ROW(p) for p in points if "code" in p]
            if rows:
                _append_columns(fields, _CONTROL_NAMES, rows)
        elif group == 41:
            rows = [_ANALOG_OUTPUT_ROW(p) for p in points if "value" in p]
            if rows:
                _append_columns(fields, _ANALOG_OUTPUT_NAMES, rows)
        elif group == 70:
            names = [p["file_name"] for p in points if p.get("file_name")]
            if names:
                fields["dnp3.file.name"] = fields.get("dnp3.file.name", []) + names
        elif group == 120:
            fields["dnp3.auth.message"] = fields.get("dnp3.auth.message", []) + [p["auth"] for p in points]
            errors = [p["error"] or p["error_code"] for p in points if "error_code" in p]
            if errors:
                fields["dnp3.auth.error"] = fields.get("dnp3.auth.error", []) + errors
