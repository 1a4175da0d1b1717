"""DNP3 object library: the size of every standard group/variation and its point decoder.

Sizes and field order from IEEE Std 1815-2012 Annex A (object library), cross-checked with the
generated variation code of stepfunc/dnp3 (dnp3/src/app/gen) and, on the shared captures, with
Wireshark's and Zeek's decoding. A decoder is ``decode(buf, off, size) -> dict`` with the point's
fields (``value``, ``flags``, ``time`` …, never ``index``: the walker adds it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from otsentry.protocols.dnp3 import codes

Point = dict[str, Any]
Decoder = Callable[[bytes, int, int], Point]

# Special sizes in OBJECTS: packed bits per point, or a self-describing / size-prefixed object.
PACKED_1 = -1  # 1 bit per point (g1v1, g10v1, g12v3, g80v1)
PACKED_2 = -2  # 2 bits per point (g3v1)
ATTRIBUTE = -3  # g0: data type, length, value
PREFIXED = -4  # variable size: only decodable with a size prefix (qualifier 0x5B …)
OCTETS = -5  # g110-g113: size is the variation

_EPOCH = datetime(1970, 1, 1)
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z: datetime's limit


_SECOND_TEXT: dict[int, str] = {}  # event times cluster: render each second once
_MILLI_TEXT = [f".{milli:03d}Z" for milli in range(1000)]


def ms_to_iso(ms: int) -> str | None:
    """DNP3 absolute time (ms since 1970-01-01 UTC, 48 bits) as RFC 3339, None past year 9999."""
    if ms > _MAX_MS:
        return None
    sec, milli = divmod(ms, 1000)
    text = _SECOND_TEXT.get(sec)
    if text is None:
        if len(_SECOND_TEXT) > 4096:
            _SECOND_TEXT.clear()
        text = _SECOND_TEXT[sec] = (_EPOCH + timedelta(seconds=sec)).isoformat()
    return text + _MILLI_TEXT[milli]


# --- bulk decoding ---------------------------------------------------------------------------------
# The high-volume point types (binaries, counters, analogs) are decoded a whole object header at a
# time: Struct.iter_unpack yields rows (index, fields…) of index-prefixed objects, one unpack of a
# whole range run gives columns zipped with the indices, and one list comprehension with a dict display
# builds the points: no Python call per point. Values equal the per-point decoders': for a flags
# octet f ≤ 255, ``f > 127`` is ``bool(f & 0x80)`` and ``f >> 6`` is ``(f >> 6) & 3``.
Rows = Any
Builder = Callable[[Rows], list[Point]]

# kind → builder of points from rows (index, fields…).
_BUILDERS: dict[str, Builder] = {
    "bin": lambda rows: [{"index": i, "value": f > 127, "flags": f} for i, f in rows],
    "bin_abs": lambda rows: [
        {"index": i, "value": f > 127, "flags": f, "time": ms_to_iso(lo | hi << 32)} for i, f, lo, hi in rows
    ],
    "bin_rel": lambda rows: [
        {"index": i, "value": f > 127, "flags": f, "relative_time_ms": r} for i, f, r in rows
    ],
    "dbl": lambda rows: [{"index": i, "value": f >> 6, "flags": f} for i, f in rows],
    "dbl_abs": lambda rows: [
        {"index": i, "value": f >> 6, "flags": f, "time": ms_to_iso(lo | hi << 32)} for i, f, lo, hi in rows
    ],
    "dbl_rel": lambda rows: [
        {"index": i, "value": f >> 6, "flags": f, "relative_time_ms": r} for i, f, r in rows
    ],
    "fv": lambda rows: [{"index": i, "value": v, "flags": f} for i, f, v in rows],
    "v": lambda rows: [{"index": i, "value": v} for i, v in rows],
    "fvt": lambda rows: [
        {"index": i, "value": v, "flags": f, "time": ms_to_iso(lo | hi << 32)} for i, f, v, lo, hi in rows
    ],
}
# A bulk layout: (struct format of one object without '<', fields per object, builder, prefix width
# (0 = none) → Struct of one object with that index prefix).
Layout = tuple[str, int, Builder, dict[int, struct.Struct]]
_LAYOUTS: dict[Decoder, Layout] = {}
# (object format, count) → Struct of a whole run without prefixes, for runs up to _MAX_RUN objects
# (longer ones, only with a raised point budget, take the row-by-row path). Bounded: emptied when full.
_RUNS: dict[tuple[str, int], struct.Struct] = {}
_MAX_RUNS = 128  # ≤ 34 KB each (256 objects of the widest layout): ≤ 4.4 MB
_MAX_RUN = 256
_COLUMNS = [tuple(slice(k, None, width) for k in range(width)) for width in range(8)]


def _layout(fmt: str, build: Builder) -> Layout:
    one = {width: struct.Struct(f"<{code}{fmt}") for width, code in ((0, ""), (1, "B"), (2, "H"), (4, "I"))}
    return fmt, len(fmt), build, one


def bulk_points(
    layout: Layout, buf: bytes, off: int, take: int, pwidth: int, start: int | None
) -> list[Point]:
    """Points of ``take`` consecutive objects at ``off`` (the caller checked they are there) with an
    index prefix of ``pwidth`` octets, or (no prefix) indices counted from ``start``."""
    fmt, nfields, build, one = layout
    if pwidth:  # rows (index, fields…) straight from the octets
        row = one[pwidth]
        return build(row.iter_unpack(buf[off : off + take * row.size]))
    base = start or 0
    if fmt == "B":  # flags octets only: the octets are the column
        return build(enumerate(buf[off : off + take], base))
    if take > _MAX_RUN:
        row = one[0]
        return build([(i, *r) for i, r in enumerate(row.iter_unpack(buf[off : off + take * row.size]), base)])
    key = (fmt, take)
    run = _RUNS.get(key)
    if run is None:
        if len(_RUNS) >= _MAX_RUNS:
            _RUNS.clear()
        run = _RUNS[key] = struct.Struct("<" + fmt * take)
    values = run.unpack_from(buf, off)
    indices = range(base, base + take)
    if nfields == 1:
        return build(zip(indices, values, strict=True))
    return build(zip(indices, *map(values.__getitem__, _COLUMNS[nfields]), strict=True))


# --- fixed-size decoder factories ----------------------------------------------------------------


def _binary(time: str = "", double: bool = False) -> tuple[int, Decoder]:
    """Flags octet whose bit 7 (or bits 6-7 for double-bit) is the state; optional time."""
    fmt = {"": "<B", "abs": "<BIH", "rel": "<BH"}[time]
    unpack = struct.Struct(fmt).unpack_from

    def decode(buf: bytes, off: int, size: int) -> Point:
        vals = unpack(buf, off)
        flags = vals[0]
        point: Point = {"value": (flags >> 6) & 3 if double else bool(flags & 0x80), "flags": flags}
        if time == "abs":
            point["time"] = ms_to_iso(vals[1] | vals[2] << 32)
        elif time == "rel":
            point["relative_time_ms"] = vals[1]
        return point

    _LAYOUTS[decode] = _layout(
        fmt[1:], _BUILDERS[("dbl" if double else "bin") + ("_" + time if time else "")]
    )
    return struct.calcsize(fmt), decode


def _valued(value_fmt: str, flags: bool = True, time: bool = False) -> tuple[int, Decoder]:
    """Optional flags octet, a numeric value, optional 48-bit time (counters, analogs)."""
    fmt = "<" + ("B" if flags else "") + value_fmt + ("IH" if time else "")
    unpack = struct.Struct(fmt).unpack_from
    if flags and time:

        def decode(buf: bytes, off: int, size: int) -> Point:
            f, v, lo, hi = unpack(buf, off)
            return {"value": v, "flags": f, "time": ms_to_iso(lo | hi << 32)}

    elif flags:

        def decode(buf: bytes, off: int, size: int) -> Point:
            f, v = unpack(buf, off)
            return {"value": v, "flags": f}

    else:

        def decode(buf: bytes, off: int, size: int) -> Point:
            return {"value": unpack(buf, off)[0]}

    _LAYOUTS[decode] = _layout(fmt[1:], _BUILDERS["fvt" if time else "fv" if flags else "v"])
    return struct.calcsize(fmt), decode


def _analog_output(value_fmt: str) -> tuple[int, Decoder]:
    """g41 analog output block: value then control status octet."""
    unpack = struct.Struct("<" + value_fmt + "B").unpack_from

    def decode(buf: bytes, off: int, size: int) -> Point:
        v, status = unpack(buf, off)
        return {"value": v, "status": status, "status_name": codes.CONTROL_STATUS.get(status & 0x7F)}

    return struct.calcsize("<" + value_fmt + "B"), decode


def _command_event(value_fmt: str, time: bool = False) -> tuple[int, Decoder]:
    """g13/g43 command events: status octet (bit 7 = commanded state for g13), value, time."""
    fmt = "<B" + value_fmt + ("IH" if time else "")
    unpack = struct.Struct(fmt).unpack_from

    def decode(buf: bytes, off: int, size: int) -> Point:
        vals = unpack(buf, off)
        status = vals[0] & 0x7F
        point: Point = {"status": status, "status_name": codes.CONTROL_STATUS.get(status)}
        if value_fmt:
            point["value"] = vals[1]
        else:
            point["value"] = bool(vals[0] & 0x80)
        if time:
            point["time"] = ms_to_iso(vals[-2] | vals[-1] << 32)
        return point

    return struct.calcsize(fmt), decode


_CROB = struct.Struct("<BBIIB")


def _decode_crob(buf: bytes, off: int, size: int) -> Point:
    code, count, on_time, off_time, status = _CROB.unpack_from(buf, off)
    return {
        "code": code,
        "op_type": codes.CROB_OP_TYPES.get(code & 0x0F, f"RESERVED_{code & 0x0F}"),
        "tcc": codes.CROB_TCC[code >> 6],
        "queue": bool(code & 0x10),
        "clear": bool(code & 0x20),
        "count": count,
        "on_time": on_time,
        "off_time": off_time,
        "status": status & 0x7F,
        "status_name": codes.CONTROL_STATUS.get(status & 0x7F),
    }


_TIME = struct.Struct("<IH")
_TIME_INTERVAL = struct.Struct("<IHI")
_TIME_INTERVAL_UNITS = struct.Struct("<IHIB")
_U16 = struct.Struct("<H")


def _decode_time(buf: bytes, off: int, size: int) -> Point:
    lo, hi = _TIME.unpack_from(buf, off)
    ms = lo | hi << 32
    return {"time": ms_to_iso(ms), "time_ms": ms}


def _decode_time_interval(buf: bytes, off: int, size: int) -> Point:
    lo, hi, interval = _TIME_INTERVAL.unpack_from(buf, off)
    return {"time": ms_to_iso(lo | hi << 32), "interval_ms": interval}


def _decode_time_interval_units(buf: bytes, off: int, size: int) -> Point:
    lo, hi, interval, units = _TIME_INTERVAL_UNITS.unpack_from(buf, off)
    return {"time": ms_to_iso(lo | hi << 32), "interval": interval, "units": units}


def _decode_delay_s(buf: bytes, off: int, size: int) -> Point:
    value = _U16.unpack_from(buf, off)[0]
    return {"value": value, "delay_ms": value * 1000}


def _decode_delay_ms(buf: bytes, off: int, size: int) -> Point:
    value = _U16.unpack_from(buf, off)[0]
    return {"value": value, "delay_ms": value}


def _bcd(size: int) -> tuple[int, Decoder]:
    def decode(buf: bytes, off: int, _size: int) -> Point:
        return {"value": bytes(reversed(buf[off : off + size])).hex()}

    return size, decode


_STAT = struct.Struct("<BHI")
_STAT_TIME = struct.Struct("<BHIIH")


def _decode_security_stat(buf: bytes, off: int, size: int) -> Point:
    flags, assoc, value = _STAT.unpack_from(buf, off)
    return {"value": value, "flags": flags, "association_id": assoc}


def _decode_security_stat_time(buf: bytes, off: int, size: int) -> Point:
    flags, assoc, value, lo, hi = _STAT_TIME.unpack_from(buf, off)
    return {"value": value, "flags": flags, "association_id": assoc, "time": ms_to_iso(lo | hi << 32)}


# --- variable-size decoders (the size comes from the prefix, the variation or the object) ----------


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _decode_octets(buf: bytes, off: int, size: int) -> Point:
    raw = bytes(buf[off : off + size])
    point: Point = {"length": size, "value": raw.hex()}
    if raw.isascii() and raw.decode("ascii").isprintable():
        point["text"] = raw.decode("ascii")
    return point


def _decode_size_only(buf: bytes, off: int, size: int) -> Point:
    return {"size": size}


def _decode_string(buf: bytes, off: int, size: int) -> Point:
    return {"value": _text(bytes(buf[off : off + size]))}


_ATTR_INT_FORMATS = {1: "b", 2: "h", 4: "i"}


def decode_attribute(variation: int, buf: bytes, off: int, end: int) -> tuple[Point, int]:
    """g0 device attribute at ``off``: data type, length, value. Returns (point, next offset).
    Raises ValueError when it does not fit before ``end``."""
    if end - off < 2:
        raise ValueError("device attribute header truncated")
    dtype, length = buf[off], buf[off + 1]
    start = off + 2
    if end - start < length:
        raise ValueError(f"device attribute value truncated: {length} octets announced")
    raw = bytes(buf[start : start + length])
    value: Any
    if dtype == 1:  # VSTR
        value = _text(raw)
    elif dtype in (2, 3) and length <= 8:  # UINT / INT (longer ones stay hex: JSON has no such integers)
        value = int.from_bytes(raw, "little", signed=dtype == 3)
    elif dtype == 4 and length in (4, 8):  # FLT
        value = struct.unpack("<f" if length == 4 else "<d", raw)[0]
    elif dtype == 7 and length == 6:  # TIME
        value = ms_to_iso(int.from_bytes(raw, "little"))
    elif dtype in (254, 255):  # U8BS8LIST: (variation, properties) pairs; bit 0 = writable
        value = [{"variation": raw[i], "writable": bool(raw[i + 1] & 1)} for i in range(0, length - 1, 2)]
    else:  # OSTR, BSTR, unknown: hex
        value = raw.hex()
    point: Point = {
        "attribute": variation,
        "name": codes.DEVICE_ATTRIBUTES.get(variation),
        "data_type": codes.ATTRIBUTE_TYPES.get(dtype, dtype),
        "value": value,
    }
    return point, start + length


_FILE_AUTH = struct.Struct("<HHHHI")
_FILE_COMMAND = struct.Struct("<HHIHHIIHHH")
_FILE_STATUS = struct.Struct("<IIHHB")
_FILE_TRANSPORT = struct.Struct("<II")
_FILE_TRANSPORT_STATUS = struct.Struct("<IIB")
_FILE_DESCRIPTOR = struct.Struct("<HHHIIHHH")


def _name_at(buf: bytes, obj: int, end: int, offset: int, size: int) -> str | None:
    # File names are located by an offset from the start of the object.
    if offset + size > end - obj:
        return None
    return _text(bytes(buf[obj + offset : obj + offset + size]))


def _decode_file(variation: int, buf: bytes, off: int, size: int) -> Point:
    end = off + size
    if variation == 2 and size >= _FILE_AUTH.size:  # authentication: never the password
        name_off, name_size, _pw_off, pw_size, _key = _FILE_AUTH.unpack_from(buf, off)
        return {"user_name": _name_at(buf, off, end, name_off, name_size), "password_length": pw_size}
    if variation == 3 and size >= _FILE_COMMAND.size:  # file command
        name_off, name_size, lo, hi, perms, _key, fsize, mode, block, req = _FILE_COMMAND.unpack_from(
            buf, off
        )
        return {
            "file_name": _name_at(buf, off, end, name_off, name_size),
            "created": ms_to_iso(lo | hi << 32),
            "permissions": f"{perms & 0o777:03o}",
            "file_size": fsize,
            "mode": codes.FILE_MODES.get(mode, mode),
            "max_block_size": block,
            "request_id": req,
        }
    if variation in (4, 6) and size >= (_FILE_STATUS.size if variation == 4 else _FILE_TRANSPORT_STATUS.size):
        if variation == 4:  # file command status
            handle, fsize, block, req, status = _FILE_STATUS.unpack_from(buf, off)
            point: Point = {"handle": handle, "file_size": fsize, "max_block_size": block, "request_id": req}
            text_at = off + _FILE_STATUS.size
        else:  # file transport status
            handle, block_num, status = _FILE_TRANSPORT_STATUS.unpack_from(buf, off)
            point = {"handle": handle, "block": block_num & 0x7FFFFFFF, "last": bool(block_num >> 31)}
            text_at = off + _FILE_TRANSPORT_STATUS.size
        point["status"] = status
        point["status_name"] = codes.FILE_STATUS.get(status)
        if end > text_at:
            point["text"] = _text(bytes(buf[text_at:end]))
        return point
    if variation == 5 and size >= _FILE_TRANSPORT.size:  # file transport: data length only
        handle, block_num = _FILE_TRANSPORT.unpack_from(buf, off)
        return {
            "handle": handle,
            "block": block_num & 0x7FFFFFFF,
            "last": bool(block_num >> 31),
            "data_length": size - _FILE_TRANSPORT.size,
        }
    if variation == 7 and size >= _FILE_DESCRIPTOR.size:  # file descriptor
        name_off, name_size, ftype, fsize, lo, hi, perms, req = _FILE_DESCRIPTOR.unpack_from(buf, off)
        return {
            "file_name": _name_at(buf, off, end, name_off, name_size),
            "file_type": codes.FILE_TYPES.get(ftype, ftype),
            "file_size": fsize,
            "created": ms_to_iso(lo | hi << 32),
            "permissions": f"{perms & 0o777:03o}",
            "request_id": req,
        }
    if variation == 8:  # file specification string
        return {"file_name": _text(bytes(buf[off:end]))}
    return {"size": size}


_U32 = struct.Struct("<I")
_AUTH_HEAD = struct.Struct("<IH")  # challenge/key-change sequence number, user number


def _decode_auth(variation: int, buf: bytes, off: int, size: int) -> Point:
    """g120 secure authentication: names, sequence numbers, users and algorithms — never keys,
    challenge data, MACs or certificates (only their lengths)."""
    end = off + size
    point: Point = {"auth": codes.AUTH_VARIATIONS.get(variation, f"variation_{variation}")}
    if variation in (1, 2, 3, 5, 6, 7, 12, 13) and size >= 6:
        seq, user = _AUTH_HEAD.unpack_from(buf, off)
        point["sequence"] = seq
        point["user"] = user
        rest = off + 6
        if variation == 1 and size >= 8:
            mal, reason = buf[rest], buf[rest + 1]
            point["mac_algorithm"] = codes.AUTH_MAC_ALGORITHMS.get(mal, mal)
            point["reason"] = codes.AUTH_CHALLENGE_REASONS.get(reason, reason)
            point["challenge_length"] = end - rest - 2
        elif variation == 2:
            point["mac_length"] = end - rest
        elif variation == 5 and size >= 11:
            kwa, kst, mal = buf[rest], buf[rest + 1], buf[rest + 2]
            cdl = _U16.unpack_from(buf, rest + 3)[0]
            point["key_wrap_algorithm"] = codes.AUTH_KEY_WRAP_ALGORITHMS.get(kwa, kwa)
            point["key_status"] = codes.AUTH_KEY_STATUS.get(kst, kst)
            point["mac_algorithm"] = codes.AUTH_MAC_ALGORITHMS.get(mal, mal)
            point["challenge_length"] = cdl
            point["mac_length"] = max(0, end - rest - 5 - cdl)
        elif variation == 6:
            point["wrapped_key_length"] = end - rest
        elif variation == 7 and size >= 9:
            assoc = _U16.unpack_from(buf, rest)[0]
            err = buf[rest + 2]
            point["association_id"] = assoc
            point["error_code"] = err
            point["error"] = codes.AUTH_ERRORS.get(err)
            if size >= 15:
                lo, hi = _TIME.unpack_from(buf, rest + 3)
                point["time"] = ms_to_iso(lo | hi << 32)
                if end > rest + 9:
                    point["text"] = _text(bytes(buf[rest + 9 : end]))
        elif variation in (12, 13) and size >= 8:
            point["data_length"] = _U16.unpack_from(buf, rest)[0]
    elif variation == 4 and size >= 2:
        point["user"] = _U16.unpack_from(buf, off)[0]
    elif variation == 8 and size >= 2:
        point["key_change_method"] = codes.AUTH_KEY_CHANGE_METHODS.get(buf[off], buf[off])
        point["certificate_type"] = buf[off + 1]
        point["certificate_length"] = size - 2
    elif variation in (9, 14, 15):
        point["mac_length"] = size
    elif variation == 10 and size >= 16:
        kcm, op = buf[off], buf[off + 1]
        scs = _U32.unpack_from(buf, off + 2)[0]
        role, expiry, name_len = struct.unpack_from("<HHH", buf, off + 6)
        point["key_change_method"] = codes.AUTH_KEY_CHANGE_METHODS.get(kcm, kcm)
        point["operation"] = codes.AUTH_USER_OPERATIONS.get(op, op)
        point["sequence"] = scs
        point["user_role"] = role
        point["expiry_days"] = expiry
        if off + 16 + name_len <= end:
            point["user_name"] = _text(bytes(buf[off + 16 : off + 16 + name_len]))
    elif variation == 11 and size >= 5:
        kcm = buf[off]
        name_len = _U16.unpack_from(buf, off + 1)[0]
        point["key_change_method"] = codes.AUTH_KEY_CHANGE_METHODS.get(kcm, kcm)
        if off + 5 + name_len <= end:
            point["user_name"] = _text(bytes(buf[off + 5 : off + 5 + name_len]))
    point["size"] = size
    return point


def _variable(group: int, variation: int) -> Decoder:
    if group == 70:
        return lambda buf, off, size: _decode_file(variation, buf, off, size)
    if group == 120:
        return lambda buf, off, size: _decode_auth(variation, buf, off, size)
    if group == 90:
        return _decode_string
    return _decode_size_only


# --- the table ------------------------------------------------------------------------------------


def _build() -> dict[tuple[int, int], tuple[int, Decoder | None]]:
    t: dict[tuple[int, int], tuple[int, Decoder | None]] = {}
    for gv in ((1, 2), (2, 1), (10, 2), (11, 1)):
        t[gv] = _binary()
    for gv in ((2, 2), (11, 2)):
        t[gv] = _binary("abs")
    t[2, 3] = _binary("rel")
    t[3, 2] = t[4, 1] = _binary(double=True)
    t[4, 2] = _binary("abs", double=True)
    t[4, 3] = _binary("rel", double=True)
    t[1, 1] = t[10, 1] = t[12, 3] = t[80, 1] = (PACKED_1, None)
    t[3, 1] = (PACKED_2, None)
    t[12, 1] = t[12, 2] = (_CROB.size, _decode_crob)
    t[13, 1] = _command_event("")
    t[13, 2] = _command_event("", time=True)
    # Counters (g20-g23): 32/16-bit, with/without flag, with/without time of freeze/event.
    t[20, 1] = t[20, 3] = _valued("I")
    t[20, 2] = t[20, 4] = _valued("H")
    t[20, 5] = t[20, 7] = _valued("I", flags=False)
    t[20, 6] = t[20, 8] = _valued("H", flags=False)
    for g in (21, 22, 23):
        t[g, 1] = t[g, 3] = _valued("I")
        t[g, 2] = t[g, 4] = _valued("H")
        t[g, 5] = t[g, 7] = _valued("I", time=True)
        t[g, 6] = t[g, 8] = _valued("H", time=True)
    t[21, 9] = t[21, 11] = _valued("I", flags=False)
    t[21, 10] = t[21, 12] = _valued("H", flags=False)
    # Analog inputs and outputs.
    t[30, 1], t[30, 2] = _valued("i"), _valued("h")
    t[30, 3], t[30, 4] = _valued("i", flags=False), _valued("h", flags=False)
    t[30, 5], t[30, 6] = _valued("f"), _valued("d")
    t[31, 1], t[31, 2] = _valued("i"), _valued("h")
    t[31, 3], t[31, 4] = _valued("i", time=True), _valued("h", time=True)
    t[31, 5], t[31, 6] = _valued("i", flags=False), _valued("h", flags=False)
    t[31, 7], t[31, 8] = _valued("f"), _valued("d")
    for g in (32, 33, 42):
        t[g, 1], t[g, 2] = _valued("i"), _valued("h")
        t[g, 3], t[g, 4] = _valued("i", time=True), _valued("h", time=True)
        t[g, 5], t[g, 6] = _valued("f"), _valued("d")
        t[g, 7], t[g, 8] = _valued("f", time=True), _valued("d", time=True)
    t[34, 1], t[34, 2], t[34, 3] = (
        _valued("H", flags=False),
        _valued("I", flags=False),
        _valued("f", flags=False),
    )
    t[40, 1], t[40, 2], t[40, 3], t[40, 4] = _valued("i"), _valued("h"), _valued("f"), _valued("d")
    t[41, 1], t[41, 2], t[41, 3], t[41, 4] = (
        _analog_output("i"),
        _analog_output("h"),
        _analog_output("f"),
        _analog_output("d"),
    )
    t[43, 1], t[43, 2] = _command_event("i"), _command_event("h")
    t[43, 3], t[43, 4] = _command_event("i", time=True), _command_event("h", time=True)
    t[43, 5], t[43, 6] = _command_event("f"), _command_event("d")
    t[43, 7], t[43, 8] = _command_event("f", time=True), _command_event("d", time=True)
    # Time and date, common time of occurrence, time delay.
    t[50, 1] = t[50, 3] = t[51, 1] = t[51, 2] = (6, _decode_time)
    t[50, 2] = (10, _decode_time_interval)
    t[50, 4] = (11, _decode_time_interval_units)
    t[52, 1] = (2, _decode_delay_s)
    t[52, 2] = (2, _decode_delay_ms)
    for v in (1, 2, 3, 4):  # class objects: header only
        t[60, v] = (0, None)
    t[101, 1], t[101, 2], t[101, 3] = _bcd(2), _bcd(4), _bcd(8)
    t[102, 1] = _valued("B", flags=False)
    t[121, 1] = t[122, 1] = (7, _decode_security_stat)
    t[122, 2] = (13, _decode_security_stat_time)
    # g120v3/v4 have a fixed size and are sent with a count qualifier; the others need a size prefix.
    t[120, 3] = (6, _variable(120, 3))
    t[120, 4] = (2, _variable(120, 4))
    for v in (1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15):
        t[120, v] = (PREFIXED, _variable(120, v))
    for v in range(1, 9):
        t[70, v] = (PREFIXED, _variable(70, v))
    for gv in ((83, 1), (83, 2), (85, 1), (86, 1), (86, 3), (87, 1), (88, 1), (90, 1), (91, 1)):
        t[gv] = (PREFIXED, _variable(*gv))
    t[86, 2] = _valued("B", flags=False)
    return t


OBJECTS = _build()
# (group, variation) → bulk layout, for the decoders that have one.
BULK = {gv: _LAYOUTS[dec] for gv, (_size, dec) in OBJECTS.items() if dec in _LAYOUTS}

# g0 (device attributes) and g110-g113 (octet strings, VTO) are handled by group.
ATTRIBUTE_GROUP = 0
OCTET_GROUPS = frozenset({110, 111, 112, 113})

Spec = tuple[int, Decoder | None, Layout | None]
# group << 8 | variation → (size or special code, decoder, bulk layout or None): the walker's one
# lookup per object header; object_spec() covers the groups handled by group.
SPECS: dict[int, Spec] = {
    g << 8 | v: (size, dec, BULK.get((g, v))) for (g, v), (size, dec) in OBJECTS.items()
}
_OCTETS_SPEC: Spec = (OCTETS, _decode_octets, None)
_ATTRIBUTE_SPEC: Spec = (ATTRIBUTE, None, None)


def object_spec(group: int, variation: int) -> Spec | None:
    """(size or special code, decoder, bulk layout) of a group/variation, None when unknown."""
    spec = SPECS.get(group << 8 | variation)
    if spec is not None:
        return spec
    if group in OCTET_GROUPS:
        return _OCTETS_SPEC
    if group == ATTRIBUTE_GROUP:
        return _ATTRIBUTE_SPEC
    return None


def object_size(group: int, variation: int) -> tuple[int, Decoder | None] | None:
    """(size or one of the special codes, decoder) for a group/variation, None when unknown."""
    spec = OBJECTS.get((group, variation))
    if spec is not None:
        return spec
    if group in OCTET_GROUPS:
        return (OCTETS, _decode_octets)
    if group == ATTRIBUTE_GROUP:
        return (ATTRIBUTE, None)
    return None


def decode_variable(group: int, variation: int) -> Decoder:
    """Decoder for an object whose size comes from a size prefix."""
    spec = OBJECTS.get((group, variation))
    if spec is not None and spec[1] is not None:
        return spec[1]
    if group in OCTET_GROUPS:
        return _decode_octets
    return _decode_size_only


def iin_bit_name(index: int) -> str | None:
    """Name of IIN bit ``index`` as addressed by g80v1 (0-7 = IIN1.0-7, 8-15 = IIN2.0-7)."""
    if 0 <= index < 16:
        bit = 1 << (index + 8) if index < 8 else 1 << (index - 8)
        for mask, name in codes.IIN_FLAGS:
            if mask == bit:
                return name
    return None
