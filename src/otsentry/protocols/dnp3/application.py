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
from typing import Any

from otsentry.protocols.base import DecodeError
from otsentry.protocols.dnp3 import codes
from otsentry.protocols.dnp3.objects import (
    ATTRIBUTE,
    BULK,
    OCTETS,
    PACKED_1,
    PACKED_2,
    PREFIXED,
    bulk_points,
    decode_attribute,
    decode_variable,
    iin_bit_name,
    ms_to_iso,
    object_size,
)

MAX_POINTS = 256  # decoded points per message; past it objects are still walked, not decoded

_UINT = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I")}
_PAIR = {1: struct.Struct("<BB"), 2: struct.Struct("<HH"), 4: struct.Struct("<II")}
# Range specifier → (kind, width): "ss" start/stop, "addr" single address, "count", "ff" free format.
_RANGES: dict[int, tuple[str, int]] = {
    0: ("ss", 1),
    1: ("ss", 2),
    2: ("ss", 4),
    3: ("addr", 1),
    4: ("addr", 2),
    5: ("addr", 4),
    6: ("all", 0),
    7: ("count", 1),
    8: ("count", 2),
    9: ("count", 4),
    11: ("ff", 1),
}
# Prefix code → (kind, width).
_PREFIXES: dict[int, tuple[str, int]] = {
    0: ("", 0),
    1: ("index", 1),
    2: ("index", 2),
    3: ("index", 4),
    4: ("size", 1),
    5: ("size", 2),
    6: ("size", 4),
}


class ObjectError(Exception):
    """The walk cannot go on; objects decoded so far stay valid."""


def decode_fragment(frag: bytes, fields: dict[str, Any], max_points: int = MAX_POINTS) -> None:
    """Decode an application fragment into ``fields`` (dotted EVENTS.md names).

    Raises DecodeError when even the header is missing. Object walk problems do not raise: the
    objects decoded so far are kept and ``dnp3.objects_truncated``/``dnp3.objects_error`` are set.
    """
    n = len(frag)
    if n < 2:
        raise DecodeError(f"application fragment of {n} octet(s): no function code")
    ctrl = frag[0]
    fc = frag[1]
    name = codes.APP_FUNCTIONS.get(fc)
    fields["event.action"] = name or f"function_{fc}"
    fields["dnp3.application.function_code"] = fc
    fields["dnp3.application.function"] = name or f"unknown_{fc}"
    fields["dnp3.application.sequence"] = ctrl & codes.APP_SEQ
    fields["dnp3.application.fir"] = bool(ctrl & codes.APP_FIR)
    fields["dnp3.application.fin"] = bool(ctrl & codes.APP_FIN)
    fields["dnp3.application.con"] = bool(ctrl & codes.APP_CON)
    fields["dnp3.application.uns"] = bool(ctrl & codes.APP_UNS)
    off = 2
    # Every application message carries the object lists, empty when it has no objects.
    fields["dnp3.objects"] = []
    fields["dnp3.object_gv"] = []
    if fc in codes.RESPONSE_FUNCTIONS:
        if n < 4:
            raise DecodeError(f"response fragment of {n} octets: IIN missing")
        iin = frag[2] << 8 | frag[3]
        fields["dnp3.iin"] = iin
        fields["dnp3.iin_flags"] = codes.iin_flag_names(iin)
        off = 4
    if off < n:
        _walk(frag, off, fc, fields, max_points)


def _walk(frag: bytes, off: int, fc: int, fields: dict[str, Any], max_points: int) -> None:
    objects: list[dict[str, Any]] = []
    gvs: list[str] = []
    budget = [max_points]  # points left to decode (a list so helpers can spend it)
    fields["dnp3.objects"] = objects
    fields["dnp3.object_gv"] = gvs
    n = len(frag)
    request = fc < 128
    header_only_fc = request and fc in codes.HEADER_ONLY_FUNCTIONS
    freeze_at_time = request and fc in codes.FREEZE_AT_TIME_FUNCTIONS
    cto: int | None = None  # common time of occurrence (g51) for relative-time events
    try:
        while off < n:
            if n - off < 3:
                raise ObjectError(f"object header truncated at offset {off}")
            group, variation, qualifier = frag[off], frag[off + 1], frag[off + 2]
            off += 3
            obj: dict[str, Any] = {"group": group, "variation": variation, "qualifier": qualifier}
            objects.append(obj)
            gvs.append(f"g{group}v{variation}")
            if qualifier & 0x80:
                raise ObjectError(f"g{group}v{variation}: reserved qualifier bit set (0x{qualifier:02x})")
            rng = _RANGES.get(qualifier & 0x0F)
            prefix = _PREFIXES.get((qualifier >> 4) & 0x07)
            if rng is None or prefix is None:
                raise ObjectError(f"g{group}v{variation}: reserved qualifier 0x{qualifier:02x}")
            kind, width = rng
            start: int | None = None
            count: int | None = None
            if kind == "ss":
                if n - off < 2 * width:
                    raise ObjectError(f"g{group}v{variation}: range field truncated")
                start, stop = _PAIR[width].unpack_from(frag, off)
                off += 2 * width
                obj["start"] = start
                obj["stop"] = stop
                if stop < start:
                    raise ObjectError(f"g{group}v{variation}: stop index {stop} below start {start}")
                count = stop - start + 1
            elif kind == "addr":
                if n - off < width:
                    raise ObjectError(f"g{group}v{variation}: range field truncated")
                start = _UINT[width].unpack_from(frag, off)[0]
                off += width
                count = 1
                obj["start"] = obj["stop"] = start
            elif kind != "all":
                if n - off < width:
                    raise ObjectError(f"g{group}v{variation}: range field truncated")
                count = _UINT[width].unpack_from(frag, off)[0]
                off += width
            if count is not None:
                obj["count"] = count
            pkind, pwidth = prefix
            if kind == "ff":
                if pkind == "":
                    raise ObjectError(f"g{group}v{variation}: free-format qualifier without size prefix")
                pkind = "size"  # 0x1B-0x3B: the older "identifier size" spelling of the same thing

            # Objects with a size prefix carry data whatever the function (e.g. READ of g70v5,
            # aggressive-mode g120 in any request); otherwise these requests name points only.
            header_only = count is None or (
                pkind != "size"
                and (variation == 0 or (header_only_fc and group != 120) or (freeze_at_time and group != 50))
            )
            if header_only:
                if count and pkind == "index":  # e.g. READ with qualifier 0x17/0x28: index list
                    need = count * pwidth
                    if need > n - off:
                        raise ObjectError(f"g{group}v{variation}: {count} indices need {need} octets")
                    off = _index_list(frag, off, count, pwidth, obj, budget)
                continue
            assert count is not None
            spec = object_size(group, variation)
            if spec is None:
                raise ObjectError(f"unknown object g{group}v{variation}: size unknown")
            size, decode = spec
            if pkind == "size":
                off = _size_prefixed(frag, off, count, pwidth, group, variation, obj, budget)
            elif size == ATTRIBUTE:
                off = _attributes(frag, off, count, pwidth, start, variation, obj, budget)
            elif size == PREFIXED:
                raise ObjectError(f"g{group}v{variation}: variable-size object without a size prefix")
            elif size in (PACKED_1, PACKED_2):
                if pkind:
                    raise ObjectError(f"g{group}v{variation}: packed object with an index prefix")
                off = _packed(frag, off, count, -size, start, group, obj, budget)
            else:
                if size == OCTETS:
                    size = variation
                off = _fixed(frag, off, count, pwidth, size, decode, start, obj, budget)
                if group == 51 and obj.get("points"):
                    cto = obj["points"][-1]["time_ms"]
                elif cto is not None and variation == 3 and group in (2, 4):
                    _apply_cto(obj, cto)
    except ObjectError as exc:
        fields["dnp3.objects_truncated"] = True
        fields["dnp3.objects_error"] = str(exc)
    if budget[0] < 0:
        fields["dnp3.points_truncated"] = True
    if not FLAT_GROUPS.isdisjoint(o["group"] for o in objects):
        _flatten(objects, fields)


def _index_list(frag: bytes, off: int, count: int, width: int, obj: dict[str, Any], budget: list[int]) -> int:
    take = min(count, max(budget[0], 0))
    if take:
        unpack = _UINT[width].unpack_from
        obj["points"] = [{"index": unpack(frag, off + i * width)[0]} for i in range(take)]
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
    start: int | None,
    obj: dict[str, Any],
    budget: list[int],
) -> int:
    stride = pwidth + size
    need = count * stride
    left = len(frag) - off
    # Objects that fit are decoded even when the count lies (a compliant outstation rejects the
    # request, a sloppy one may act on them); the loop is bounded by the octets, not the count.
    fits = count if need <= left else left // stride if stride else count
    take = min(fits, max(budget[0], 0))
    layout = BULK.get((obj["group"], obj["variation"])) if take else None
    if layout is not None:
        obj["points"] = bulk_points(layout, frag, off, take, pwidth, start)
    elif take and decode is not None:
        points = []
        if pwidth:
            unpack = _UINT[pwidth].unpack_from
            for i in range(take):
                p = off + i * stride
                point = decode(frag, p + pwidth, size)
                point["index"] = unpack(frag, p)[0]
                points.append(point)
        else:  # without a range the index is the position in the header (as Wireshark shows it)
            base = start or 0
            for i in range(take):
                point = decode(frag, off + i * stride, size)
                point["index"] = base + i
                points.append(point)
        obj["points"] = points
    if need > left:
        if decode is not None:
            _spend(budget, take)
        raise ObjectError(
            f"g{obj['group']}v{obj['variation']}: {count} objects need {need} octets, {left} left"
        )
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
_CONTROL_FIELDS = tuple(zip(_CONTROL_KEYS, [f"dnp3.control.{k}" for k in _CONTROL_KEYS], strict=True))
_ANALOG_OUTPUT_FIELDS = tuple((k, f"dnp3.analog_output.{k}") for k in ("index", "value", "status"))
FLAT_GROUPS = frozenset({12, 41, 70, 120})


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
            points = [p for p in points if "code" in p]
            for key, name in _CONTROL_FIELDS if points else ():
                fields[name] = fields.get(name, []) + [p[key] for p in points]
        elif group == 41:
            points = [p for p in points if "value" in p]
            for key, name in _ANALOG_OUTPUT_FIELDS if points else ():
                fields[name] = fields.get(name, []) + [p[key] for p in points]
        elif group == 70:
            names = [p["file_name"] for p in points if p.get("file_name")]
            if names:
                fields["dnp3.file.name"] = fields.get("dnp3.file.name", []) + names
        elif group == 120:
            fields["dnp3.auth.message"] = fields.get("dnp3.auth.message", []) + [p["auth"] for p in points]
            errors = [p["error"] or p["error_code"] for p in points if "error_code" in p]
            if errors:
                fields["dnp3.auth.error"] = fields.get("dnp3.auth.error", []) + errors
