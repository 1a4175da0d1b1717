"""A-XDR: the byte cursor every DLMS codec shares, and the COSEM ``Data`` decoder.

Encoding rules: IEC 61334-6 (A-XDR) as used by IEC 62056-5-3 (DLMS UA Green Book ed. 9, 9.5
"Abstract syntax of COSEM data"). Variable lengths use the BER-like form: one byte below 0x80,
else ``0x8N`` followed by N big-endian bytes.

``read_data`` turns a ``Data`` value into JSON-friendly Python values while walking it
iteratively (no recursion, so hostile nesting cannot exhaust the stack). What it *renders* is
capped by :class:`Budget` (depth, number of values, characters); what it *walks* is bounded by
the bytes present, and every declared count/length is checked against those bytes before use.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from otsentry.protocols.base import DecodeError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class Reader:
    """Bounds-checked big-endian cursor over one APDU (``bytes`` or ``memoryview``)."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.end - self.pos:
            raise DecodeError(f"truncated {what}: need {n} bytes, {self.end - self.pos} left")

    def u8(self, what: str = "byte") -> int:
        if self.pos >= self.end:
            raise DecodeError(f"truncated {what}: need 1 byte, 0 left")
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def peek(self) -> int | None:
        return self.buf[self.pos] if self.pos < self.end else None

    def u16(self, what: str = "unsigned16") -> int:
        self.need(2, what)
        (value,) = _U16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return value

    def u32(self, what: str = "unsigned32") -> int:
        self.need(4, what)
        (value,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return value

    def take(self, n: int, what: str) -> bytes:
        self.need(n, what)
        value = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return value

    def skip(self, n: int, what: str) -> None:
        self.need(n, what)
        self.pos += n

    def length(self, what: str = "length") -> int:
        """A-XDR/BER definite length; the value is *not* checked against the bytes left."""
        first = self.u8(what)
        if first < 0x80:
            return first
        size = first & 0x7F
        if size == 0 or size > 4:
            raise DecodeError(f"bad {what} encoding 0x{first:02x}")
        self.need(size, what)
        value = int.from_bytes(self.buf[self.pos : self.pos + size], "big")
        self.pos += size
        return value

    def octet_string(self, what: str) -> bytes:
        n = self.length(f"{what} length")
        return self.take(n, what)

    def count(self, what: str, min_item_size: int = 1) -> int:
        """A SEQUENCE OF quantity, refused when the bytes left cannot hold that many items."""
        n = self.length(f"{what} count")
        if n * min_item_size > self.end - self.pos:
            raise DecodeError(f"{what} count {n} exceeds the {self.end - self.pos} bytes left")
        return n

    def expect_end(self, what: str) -> None:
        if self.pos != self.end:
            raise DecodeError(f"{self.end - self.pos} trailing bytes after {what}")


# Data CHOICE tags -> ASN.1 names (Green Book ed. 9, 9.5 "Data ::= CHOICE"; delta types from
# Blue Book ed. 14, 4.1.5 "Common data types").
DATA_TYPES: dict[int, str] = {
    0: "null-data",
    1: "array",
    2: "structure",
    3: "boolean",
    4: "bit-string",
    5: "double-long",
    6: "double-long-unsigned",
    9: "octet-string",
    10: "visible-string",
    12: "utf8-string",
    13: "bcd",
    15: "integer",
    16: "long",
    17: "unsigned",
    18: "long-unsigned",
    19: "compact-array",
    20: "long64",
    21: "long64-unsigned",
    22: "enum",
    23: "float32",
    24: "float64",
    25: "date-time",
    26: "date",
    27: "time",
    28: "delta-integer",
    29: "delta-long",
    30: "delta-double-long",
    31: "delta-unsigned",
    32: "delta-long-unsigned",
    33: "delta-double-long-unsigned",
    255: "dont-care",
}
ARRAY, STRUCTURE, COMPACT_ARRAY = 1, 2, 19
OCTET_STRING = 9

# Fixed-size scalars: tag -> struct format (">" big-endian); floats handled apart for NaN/inf.
_FIXED: dict[int, struct.Struct] = {
    3: struct.Struct(">?"),
    5: struct.Struct(">i"),
    6: struct.Struct(">I"),
    13: struct.Struct(">b"),
    15: struct.Struct(">b"),
    16: struct.Struct(">h"),
    17: struct.Struct(">B"),
    18: struct.Struct(">H"),
    20: struct.Struct(">q"),
    21: struct.Struct(">Q"),
    22: struct.Struct(">B"),
    23: struct.Struct(">f"),
    24: struct.Struct(">d"),
    28: struct.Struct(">b"),
    29: struct.Struct(">h"),
    30: struct.Struct(">i"),
    31: struct.Struct(">B"),
    32: struct.Struct(">H"),
    33: struct.Struct(">I"),
}
_FLOATS = frozenset({23, 24})
_CALENDAR_SIZES = {25: 12, 26: 5, 27: 4}
_STRINGS = frozenset({4, 9, 10, 12})
_EMPTY = frozenset({0, 255})


@dataclass(slots=True)
class Limits:
    """How much of one value is rendered into an event (the walk itself is never cut short)."""

    max_depth: int = 8
    max_values: int = 256
    max_string_bytes: int = 256
    max_chars: int = 8192


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class Budget:
    """What is left to render; ``truncated`` tells the event that a value was cut."""

    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    values: int = 0
    chars: int = 0
    truncated: bool = False

    def admit(self, chars: int = 0) -> bool:
        if self.values >= self.limits.max_values or self.chars + chars > self.limits.max_chars:
            self.truncated = True
            return False
        self.values += 1
        self.chars += chars
        return True


def render_date_time(raw: bytes) -> str:
    """COSEM date-time (Blue Book 4.1.6.1): 12 bytes -> ``YYYY-MM-DDThh:mm:ss.cc±hh:mm``.

    Not-specified fields (0xFF/0xFFFF) print as ``*``; deviation is minutes *from local time to
    UTC* (so -60 is UTC+01:00); 0x8000 means unspecified and prints no offset. A clock status
    other than 0x00/0xFF is appended as ``;status=0xNN``.
    """
    if len(raw) != 12:
        return raw.hex()
    text = f"{render_date(raw[:5])}T{render_time(raw[5:9])}"
    (deviation,) = struct.unpack_from(">h", raw, 9)
    if deviation != -0x8000:
        offset = -deviation
        sign = "+" if offset >= 0 else "-"
        text += f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    status = raw[11]
    if status not in (0x00, 0xFF):
        text += f";status=0x{status:02x}"
    return text


def render_date(raw: bytes) -> str:
    """COSEM date (5 bytes: year, month, day of month, day of week) -> ``YYYY-MM-DD``."""
    if len(raw) != 5:
        return raw.hex()
    (year,) = _U16.unpack_from(raw, 0)
    year_text = "*" if year == 0xFFFF else f"{year:04d}"
    return f"{year_text}-{_field(raw[2])}-{_field(raw[3])}"


def render_time(raw: bytes) -> str:
    """COSEM time (4 bytes: hour, minute, second, hundredths) -> ``hh:mm:ss.cc``."""
    if len(raw) != 4:
        return raw.hex()
    return f"{_field(raw[0])}:{_field(raw[1])}:{_field(raw[2])}.{_field(raw[3])}"


def _field(value: int) -> str:
    return "*" if value == 0xFF else f"{value:02d}"


def _float(value: float) -> float | str:
    # JSON has no NaN/Infinity; keep the fact rather than turning it into null.
    return value if math.isfinite(value) else str(value)


def _render_string(tag: int, raw: bytes, budget: Budget) -> Any:
    cap = budget.limits.max_string_bytes
    if len(raw) > cap:
        budget.truncated = True
        raw = raw[:cap]
    if tag == OCTET_STRING:
        return raw.hex()
    if tag == 10:
        return raw.decode("latin-1")
    if tag == 12:
        return raw.decode("utf-8", "replace")
    return "".join(f"{b:08b}" for b in raw)  # bit-string, cut to whole bytes by the caller


def _read_scalar(tag: int, r: Reader) -> tuple[Any, int]:
    """Decode a non-container value whose tag was read; returns (value, rendered size hint)."""
    fmt = _FIXED.get(tag)
    if fmt is not None:
        r.need(fmt.size, DATA_TYPES[tag])
        (value,) = fmt.unpack_from(r.buf, r.pos)
        r.pos += fmt.size
        if tag in _FLOATS:
            value = _float(value)
        return value, 8
    size = _CALENDAR_SIZES.get(tag)
    if size is not None:
        raw = r.take(size, DATA_TYPES[tag])
        renderer = render_date_time if tag == 25 else render_date if tag == 26 else render_time
        return renderer(raw), 32
    if tag in _EMPTY:
        return None, 0
    raise DecodeError(f"unknown A-XDR data type {tag}")


def _read_string(tag: int, r: Reader) -> tuple[bytes, int]:
    """The raw bytes of a length-prefixed string type and the number of significant bits."""
    n = r.length(f"{DATA_TYPES[tag]} length")
    if tag == 4:
        raw = r.take((n + 7) // 8, "bit-string")
        return raw, n
    return r.take(n, DATA_TYPES[tag]), n * 8


def read_data(r: Reader, budget: Budget | None = None) -> Any:
    """Decode one ``Data`` value at the cursor into JSON-friendly values.

    Containers become lists, octet-strings hex, strings text, bit-strings ``"0101…"``, calendar
    types their text rendering, ``null-data``/``dont-care`` ``None``. Values beyond the budget are
    left out of the rendering (``budget.truncated``) but still walked and checked.
    """
    budget = budget or Budget()
    max_depth = budget.limits.max_depth
    root: list[Any] = []
    # Each frame: [list being filled or None when not rendered, values still to read].
    stack: list[list[Any]] = [[root, 1]]
    while stack:
        frame = stack[-1]
        if frame[1] == 0:
            stack.pop()
            continue
        frame[1] -= 1
        target = frame[0]
        tag = r.u8("data type")
        if tag in (ARRAY, STRUCTURE):
            n = r.count(DATA_TYPES[tag])
            child: list[Any] | None = None
            if target is not None and len(stack) <= max_depth and budget.admit():
                child = []
                target.append(child)
            elif target is not None:
                budget.truncated = True
            stack.append([child, n])
            continue
        if tag == COMPACT_ARRAY:
            value = read_compact_array(r, budget if target is not None else None)
            if target is not None and budget.admit():
                target.append(value)
            continue
        if tag in _STRINGS:
            raw, bits = _read_string(tag, r)
            if target is not None and budget.admit(min(len(raw), budget.limits.max_string_bytes) * 2):
                text = _render_string(tag, raw, budget)
                target.append(text[:bits] if tag == 4 else text)
            continue
        value, size = _read_scalar(tag, r)
        if target is not None and budget.admit(size):
            target.append(value)
    return root[0] if root else None


def data_type_at(r: Reader) -> str | None:
    """Name of the Data type at the cursor without consuming it."""
    tag = r.peek()
    return None if tag is None else DATA_TYPES.get(tag, f"unknown-{tag}")


# -- compact-array (Blue Book 4.1.5, "compact-array [19] SEQUENCE {contents-description,
#    array-contents}"): a type description, then an octet string of tagless values ------------

_MAX_TYPE_DEPTH = 16

# A type description is a tag int, ("array", count, element) or ("structure", [fields]).
TypeDescription = Any


def read_type_description(r: Reader, depth: int = 0) -> TypeDescription:
    if depth > _MAX_TYPE_DEPTH:
        raise DecodeError("compact-array type description nested too deep")
    tag = r.u8("type description")
    if tag == ARRAY:
        count = r.u16("compact-array element count")
        return ("array", count, read_type_description(r, depth + 1))
    if tag == STRUCTURE:
        n = r.count("type description structure")
        return ("structure", [read_type_description(r, depth + 1) for _ in range(n)])
    if tag == COMPACT_ARRAY or (tag not in _FIXED and tag not in _CALENDAR_SIZES and tag not in _STRINGS
                                and tag not in _EMPTY):
        raise DecodeError(f"bad compact-array element type {tag}")
    return tag


def read_compact_array(r: Reader, budget: Budget | None) -> list[Any] | None:
    """Decode a compact-array after its tag; ``budget`` None walks without rendering."""
    description = read_type_description(r)
    size = r.length("compact-array contents length")
    r.need(size, "compact-array contents")
    contents = Reader(r.buf, r.pos, r.pos + size)
    r.pos += size
    # Zero-size elements (null-data) would let a tiny description stand for unbounded work:
    # every element costs a step, and steps are bounded by the contents size.
    steps = [4 * size + 64]
    values: list[Any] | None = [] if budget is not None else None
    while contents.remaining:
        start = contents.pos
        value = _read_compact_value(contents, description, budget, steps)
        if contents.pos == start:
            raise DecodeError("compact-array element of zero size")
        if values is not None and budget is not None and not budget.truncated:
            values.append(value)
    return values


def _read_compact_value(r: Reader, description: TypeDescription, budget: Budget | None,
                        steps: list[int]) -> Any:
    """One tagless element; scalars past the budget (or when not rendering) come back as None."""
    steps[0] -= 1
    if steps[0] < 0:
        raise DecodeError("compact-array describes more elements than its contents hold")
    if isinstance(description, tuple):
        if description[0] == "array":
            _, count, element = description
            return [_read_compact_value(r, element, budget, steps) for _ in range(count)]
        return [_read_compact_value(r, member, budget, steps) for member in description[1]]
    tag = description
    if tag in _STRINGS:
        raw, bits = _read_string(tag, r)
        if budget is None or not budget.admit(min(len(raw), budget.limits.max_string_bytes) * 2):
            return None
        text = _render_string(tag, raw, budget)
        return text[:bits] if tag == 4 else text
    value, size = _read_scalar(tag, r)
    return value if budget is not None and budget.admit(size) else None
