"""Strict parsers for what the SIEM outputs write, written from the specifications (not the formatters).

Each raises ValueError on anything the spec does not allow, so a test that parses a line also checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# -- CEF (ArcSight "Implementing ArcSight CEF", rev. 25) -----------------------------------------------------

_CEF_KEY = re.compile(r"[A-Za-z0-9_]+")


@dataclass
class Cef:
    version: str
    vendor: str
    product: str
    device_version: str
    signature_id: str
    name: str
    severity: str
    extension: dict[str, str] = field(default_factory=dict)


def _cef_header_fields(line: str) -> tuple[list[str], str]:
    """Seven header fields (``\\|`` and ``\\\\`` the only escapes) and the raw extension."""
    fields: list[str] = []
    current: list[str] = []
    i = 0
    while len(fields) < 7:
        if i >= len(line):
            raise ValueError("CEF: header has fewer than 7 fields")
        c = line[i]
        if c in "\r\n":
            raise ValueError("CEF: newline in the header")
        if c == "\\":
            nxt = line[i + 1: i + 2]
            if nxt not in ("|", "\\"):
                raise ValueError(f"CEF: bad header escape \\{nxt}")
            current.append(nxt)
            i += 2
            continue
        if c == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    return fields, line[i:]


def _cef_unescape_value(raw: str) -> str:
    out = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            nxt = raw[i + 1: i + 2]
            mapped = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}.get(nxt)
            if mapped is None:
                raise ValueError(f"CEF: bad extension escape \\{nxt}")
            out.append(mapped)
            i += 2
            continue
        if c == "=":
            raise ValueError("CEF: unescaped = inside a value")
        out.append(c)
        i += 1
    return "".join(out)


def parse_cef(line: str) -> Cef:
    if not line.startswith("CEF:"):
        raise ValueError("CEF: missing CEF: prefix")
    fields, ext = _cef_header_fields(line)
    fields[0] = fields[0][4:]
    if not fields[6].isdigit() or not 0 <= int(fields[6]) <= 10:
        raise ValueError(f"CEF: severity {fields[6]!r} not 0-10")
    if "\n" in ext or "\r" in ext:
        raise ValueError("CEF: raw newline in the extension")
    # positions of unescaped '='
    equals = []
    i = 0
    while i < len(ext):
        if ext[i] == "\\":
            i += 2
            continue
        if ext[i] == "=":
            equals.append(i)
        i += 1
    extension: dict[str, str] = {}
    starts: list[tuple[str, int, int]] = []  # key, key start, value start
    for pos in equals:
        start = pos
        while start > 0 and _CEF_KEY.fullmatch(ext[start - 1]):
            start -= 1
        key = ext[start:pos]
        if not key or (start > 0 and ext[start - 1] != " "):
            raise ValueError(f"CEF: no key before '=' at {pos}")
        starts.append((key, start, pos + 1))
    if starts and starts[0][1] != 0:
        raise ValueError("CEF: extension does not start with a key")
    for n, (key, _start, value_start) in enumerate(starts):
        value_end = starts[n + 1][1] - 1 if n + 1 < len(starts) else len(ext)
        if key in extension:
            raise ValueError(f"CEF: key {key} twice")
        extension[key] = _cef_unescape_value(ext[value_start:value_end])
    return Cef(*fields, extension=extension)


# -- LEEF 2.0 (IBM QRadar LEEF guide, version 2) -------------------------------------------------------------

@dataclass
class Leef:
    vendor: str
    product: str
    version: str
    event_id: str
    delimiter: str
    attributes: dict[str, str]


def parse_leef(line: str) -> Leef:
    if not line.startswith("LEEF:2.0|"):
        raise ValueError("LEEF: not a LEEF 2.0 line")
    parts = line.split("|", 6)
    if len(parts) != 7:
        raise ValueError("LEEF: header has fewer than 6 fields")
    _, vendor, product, version, event_id, delim_field, body = parts
    if len(delim_field) == 1:
        delimiter = delim_field
    elif re.fullmatch(r"(0x|x)[0-9A-Fa-f]{2,4}", delim_field):
        delimiter = chr(int(delim_field.split("x", 1)[1], 16))
    else:
        raise ValueError(f"LEEF: bad delimiter field {delim_field!r}")
    if any((ord(c) < 32 or 0x7F <= ord(c) <= 0x9F) and c != delimiter for c in line):
        raise ValueError("LEEF: control character")
    attributes: dict[str, str] = {}
    for item in body.split(delimiter):
        key, eq, value = item.partition("=")
        if not eq or not key or " " in key:
            raise ValueError(f"LEEF: bad attribute {item!r}")
        if key in attributes:
            raise ValueError(f"LEEF: key {key} twice")
        attributes[key] = value
    return Leef(vendor, product, version, event_id, delimiter, attributes)


# -- RFC 5424 ------------------------------------------------------------------------------------------------

@dataclass
class Syslog5424:
    pri: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    sd: dict[str, dict[str, str]]
    msg: str
    bom: bool


_TIMESTAMP = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
)


def _printusascii(token: str, limit: int, what: str) -> str:
    if not token or len(token) > limit or any(not 33 <= ord(c) <= 126 for c in token):
        raise ValueError(f"RFC 5424: bad {what} {token!r}")
    return token


def _sd_name(token: str) -> str:
    if not token or len(token) > 32 or any(not 33 <= ord(c) <= 126 or c in '= ]"' for c in token):
        raise ValueError(f"RFC 5424: bad SD-NAME {token!r}")
    return token


def parse_5424(data: bytes) -> Syslog5424:
    m = re.match(rb"<(\d{1,3})>1 ", data)
    if not m or not 0 <= int(m[1]) <= 191 or (len(m[1]) > 1 and m[1].startswith(b"0")):
        raise ValueError("RFC 5424: bad PRI/VERSION")
    pos = m.end()
    header = []
    for _ in range(5):
        end = data.index(b" ", pos)
        header.append(data[pos:end].decode("ascii"))
        pos = end + 1
    timestamp, hostname, app, procid, msgid = header
    if timestamp != "-" and not _TIMESTAMP.fullmatch(timestamp):
        raise ValueError(f"RFC 5424: bad TIMESTAMP {timestamp!r}")
    for token, limit, what in ((hostname, 255, "HOSTNAME"), (app, 48, "APP-NAME"), (procid, 128, "PROCID"),
                               (msgid, 32, "MSGID")):
        _printusascii(token, limit, what)
    sd: dict[str, dict[str, str]] = {}
    if data[pos:pos + 1] == b"-":
        pos += 1
    else:
        text = data[pos:].decode("utf-8")
        i = 0
        if not text.startswith("["):
            raise ValueError("RFC 5424: STRUCTURED-DATA missing")
        while i < len(text) and text[i] == "[":
            j = i + 1
            while j < len(text) and text[j] not in " ]":
                j += 1
            sd_id = _sd_name(text[i + 1:j])
            params: dict[str, str] = {}
            while text[j] == " ":
                eq = text.index("=", j)
                name = _sd_name(text[j + 1:eq])
                if text[eq + 1] != '"':
                    raise ValueError("RFC 5424: PARAM-VALUE not quoted")
                k = eq + 2
                value = []
                while True:
                    c = text[k]
                    if c == "\\":
                        nxt = text[k + 1]
                        value.append(nxt if nxt in '"\\]' else "\\" + nxt)  # §6.3.3: others stay as they are
                        k += 2
                        continue
                    if c == "]":
                        raise ValueError("RFC 5424: unescaped ] in PARAM-VALUE")
                    if c == '"':
                        break
                    value.append(c)
                    k += 1
                params[name] = "".join(value)
                j = k + 1
            if text[j] != "]":
                raise ValueError("RFC 5424: SD-ELEMENT not closed")
            sd[sd_id] = params
            i = j + 1
        pos += len(text[:i].encode("utf-8"))
    rest = data[pos:]
    if not rest:
        return Syslog5424(int(m[1]), timestamp, hostname, app, procid, msgid, sd, "", False)
    if rest[:1] != b" ":
        raise ValueError("RFC 5424: no SP before MSG")
    body = rest[1:]
    bom = body.startswith(b"\xef\xbb\xbf")
    msg = body[3:].decode("utf-8") if bom else body.decode("ascii")  # non-ASCII MSG must carry the BOM
    return Syslog5424(int(m[1]), timestamp, hostname, app, procid, msgid, sd, msg, bom)


# -- RFC 3164 ------------------------------------------------------------------------------------------------

_3164 = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<ts>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ( [1-9]|[12]\d|3[01]) "
    r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d) (?P<host>[!-~]+) (?P<tag>[A-Za-z0-9]{1,32})(\[\d+\])?: (?P<msg>.*)",
    re.S,
)


@dataclass
class Syslog3164:
    pri: int
    timestamp: str
    hostname: str
    tag: str
    msg: str


def parse_3164(data: bytes) -> Syslog3164:
    text = data.decode("utf-8")
    m = _3164.fullmatch(text)
    if not m or int(m["pri"]) > 191:
        raise ValueError(f"RFC 3164: not a BSD syslog line: {text[:80]!r}")
    if any(c in "\r\n" for c in m["msg"]):
        raise ValueError("RFC 3164: newline in MSG")
    return Syslog3164(int(m["pri"]), m["ts"], m["host"], m["tag"], m["msg"])


# -- octet counting (RFC 6587 §3.4.1) ------------------------------------------------------------------------

def split_octet_counted(stream: bytes) -> list[bytes]:
    frames = []
    pos = 0
    while pos < len(stream):
        m = re.match(rb"([1-9]\d*) ", stream[pos:pos + 12])
        if not m:
            raise ValueError(f"RFC 6587: bad MSG-LEN at {pos}")
        start = pos + m.end()
        end = start + int(m[1])
        if end > len(stream):
            raise ValueError("RFC 6587: frame cut short")
        frames.append(stream[start:end])
        pos = end
    return frames
