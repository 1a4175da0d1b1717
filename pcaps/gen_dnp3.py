"""DNP3 link frames, transport segments and application fragments built with ``struct``.

Source: IEEE Std 1815-2012 — link layer §9.2 (0x0564 start, LEN = 5 + user data, CRC-16/DNP after the
8-byte header and after every 16-byte data block, poly 0x3D65 reflected, xorout 0xFFFF, little-endian),
transport §8.2 (FIN 0x80, FIR 0x40, 6-bit sequence, ≤ 249 fragment bytes per segment), application
§4.2.2 (control FIR/FIN/CON/UNS/SEQ, function codes Table 4-2, IIN §4.2.2.7), object headers and
qualifiers §4.2.2.7.3, object layouts Annex A (g1v2, g2v2, g10v2, g12v1, g20v1, g30v1, g32v1, g50v3,
g52v2, g60, g70v3/v4, g80v1, g90v1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

Truth = dict[str, Any]

# Application function codes (IEEE 1815-2012 Table 4-2) in snake_case.
FUNCTION_NAMES: dict[int, str] = {
    0: "confirm",
    1: "read",
    2: "write",
    3: "select",
    4: "operate",
    5: "direct_operate",
    6: "direct_operate_nr",
    7: "immed_freeze",
    8: "immed_freeze_nr",
    9: "freeze_clear",
    10: "freeze_clear_nr",
    11: "freeze_at_time",
    12: "freeze_at_time_nr",
    13: "cold_restart",
    14: "warm_restart",
    15: "initialize_data",
    16: "initialize_appl",
    17: "start_appl",
    18: "stop_appl",
    19: "save_config",
    20: "enable_unsolicited",
    21: "disable_unsolicited",
    22: "assign_class",
    23: "delay_measure",
    24: "record_current_time",
    25: "open_file",
    26: "close_file",
    27: "delete_file",
    28: "get_file_info",
    29: "authenticate_file",
    30: "abort_file",
    31: "activate_config",
    32: "authenticate_req",
    33: "auth_req_no_ack",
    129: "response",
    130: "unsolicited_response",
    131: "authenticate_resp",
}
FC = {name: code for code, name in FUNCTION_NAMES.items()}

# Link control (§9.2.4.1): DIR 0x80 (from master), PRM 0x40 (primary); primary function codes.
DIR, PRM = 0x80, 0x40
LINK_UNCONFIRMED_USER_DATA = 4
LINK_REQUEST_LINK_STATUS = 9
LINK_STATUS = 11  # secondary

# IIN bits (§4.2.2.7.2): IIN1 in the high byte of the 16-bit value used here.
IIN_CLASS1_EVENTS = 0x0200
IIN_CLASS2_EVENTS = 0x0400
IIN_NEED_TIME = 0x1000
IIN_DEVICE_RESTART = 0x8000

MAX_SEGMENT_DATA = 249  # §8.2.1: 250 bytes of link user data minus the transport header


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1  # 0x3D65 bit-reversed
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()
# Two bytes per lookup: after XOR-ing a little-endian word into the 16-bit register, two table steps
# depend only on the register, so they are tabulated once (65,536 entries).
_CRC_TABLE2 = [
    (c1 >> 8) ^ _CRC_TABLE[c1 & 0xFF] for c1 in ((s >> 8) ^ _CRC_TABLE[s & 0xFF] for s in range(65536))
]


def crc16_dnp(data: bytes) -> int:
    crc = 0
    even = len(data) & ~1
    for word in struct.unpack_from(f"<{even // 2}H", data):
        crc = _CRC_TABLE2[crc ^ word]
    if len(data) & 1:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ data[-1]) & 0xFF]
    return ~crc & 0xFFFF


def link_frame(
    control: int, destination: int, source: int, user_data: bytes = b"", corrupt_block: int | None = None
) -> bytes:
    """A complete link frame; ``corrupt_block`` (0 = header) gets a wrong CRC."""
    if len(user_data) > 250:
        raise ValueError("link user data is at most 250 bytes")
    header = struct.pack("<BBBBHH", 0x05, 0x64, 5 + len(user_data), control, destination, source)
    blocks = [header] + [user_data[i : i + 16] for i in range(0, len(user_data), 16)]
    out = bytearray()
    for n, block in enumerate(blocks):
        crc = crc16_dnp(block)
        if n == corrupt_block:
            crc ^= 0x5A5A
        out += block + struct.pack("<H", crc)
    return bytes(out)


def transport_segments(fragment: bytes, first_sequence: int, max_data: int = MAX_SEGMENT_DATA) -> list[bytes]:
    """Split an application fragment into transport segments (header byte + data)."""
    chunks = [fragment[i : i + max_data] for i in range(0, len(fragment), max_data)] or [b""]
    segments = []
    for n, chunk in enumerate(chunks):
        header = (
            (0x80 if n == len(chunks) - 1 else 0) | (0x40 if n == 0 else 0) | ((first_sequence + n) & 0x3F)
        )
        segments.append(bytes([header]) + chunk)
    return segments


# ---- application layer -------------------------------------------------------------------------


def _app_control(
    sequence: int, con: bool = False, uns: bool = False, fir: bool = True, fin: bool = True
) -> int:
    return (
        (0x80 if fir else 0)
        | (0x40 if fin else 0)
        | (0x20 if con else 0)
        | (0x10 if uns else 0)
        | (sequence & 0xF)
    )


@dataclass
class Obj:
    """One object header and its objects: the bytes and the truth record (EVENTS.md ``dnp3.objects``)."""

    data: bytes
    truth: Truth

    @property
    def gv(self) -> str:
        return f"g{self.truth['group']}v{self.truth['variation']}"


@dataclass
class Fragment:
    """An application fragment with its truth; ``objects`` keep their order."""

    function_code: int
    sequence: int
    con: bool = False
    uns: bool = False
    iin: int | None = None  # responses only
    objects: list[Obj] = field(default_factory=list)

    @property
    def is_response(self) -> bool:
        return self.function_code >= 129

    def encode(self) -> bytes:
        head = bytes([_app_control(self.sequence, self.con, self.uns), self.function_code])
        if self.is_response:
            head += struct.pack("!H", self.iin or 0)  # IIN1 then IIN2
        return head + b"".join(o.data for o in self.objects)

    def truth(self) -> Truth:
        t: Truth = {
            "protocol": "dnp3",
            "function_code": self.function_code,
            "action": FUNCTION_NAMES.get(self.function_code, f"unknown_function_{self.function_code}"),
            "app_sequence": self.sequence,
            "con": self.con,
            "uns": self.uns,
        }
        if self.is_response:
            t["iin"] = self.iin or 0
        t["objects"] = [o.truth for o in self.objects]
        t["object_gv"] = [o.gv for o in self.objects]
        if any(o.truth.get("truncated") for o in self.objects):
            t["objects_truncated"] = True  # the fragment ends inside an object's data: malformed
        return t


def _header(group: int, variation: int, qualifier: int, range_bytes: bytes = b"") -> bytes:
    return bytes([group, variation, qualifier]) + range_bytes


def class_objects(*classes: int) -> list[Obj]:
    """g60v1..v4 (class 0..3 data) with qualifier 0x06 (all objects)."""
    return [
        Obj(_header(60, c + 1, 0x06), {"group": 60, "variation": c + 1, "qualifier": 0x06}) for c in classes
    ]


def all_objects(group: int, variation: int) -> Obj:
    return Obj(_header(group, variation, 0x06), {"group": group, "variation": variation, "qualifier": 0x06})


def _range(start: int, count: int) -> tuple[int, bytes]:
    """Start/stop with 1-byte (0x00) or 2-byte (0x01) indices."""
    stop = start + count - 1
    if stop <= 0xFF:
        return 0x00, struct.pack("<BB", start, stop)
    return 0x01, struct.pack("<HH", start, stop)


def _static(
    group: int,
    variation: int,
    start: int,
    points: list[dict[str, Any]],
    fmt: str,
    values: list[tuple[Any, ...]],
) -> Obj:
    qualifier, rng = _range(start, len(points))
    body = b"".join(struct.pack(fmt, *v) for v in values)
    truth = {
        "group": group,
        "variation": variation,
        "qualifier": qualifier,
        "start": start,
        "stop": start + len(points) - 1,
        "count": len(points),
        "points": points,
    }
    return Obj(_header(group, variation, qualifier, rng) + body, truth)


ONLINE = 0x01


def binary_inputs(start: int, states: list[int], group: int = 1) -> Obj:
    """g1v2 binary input / g10v2 binary output status, with flags: bit 7 is the state."""
    flags = [ONLINE | (0x80 if s else 0) for s in states]
    points = [
        {"index": start + i, "flags": f, "value": s}
        for i, (f, s) in enumerate(zip(flags, states, strict=True))
    ]
    return _static(group, 2, start, points, "<B", [(f,) for f in flags])


def analog_inputs(start: int, values: list[int]) -> Obj:
    """g30v1: 32-bit analog input with flag."""
    points = [{"index": start + i, "flags": ONLINE, "value": v} for i, v in enumerate(values)]
    return _static(30, 1, start, points, "<Bi", [(ONLINE, v) for v in values])


def counters(start: int, values: list[int]) -> Obj:
    """g20v1: 32-bit counter with flag."""
    points = [{"index": start + i, "flags": ONLINE, "value": v} for i, v in enumerate(values)]
    return _static(20, 1, start, points, "<BI", [(ONLINE, v) for v in values])


def _time48(ms: int) -> bytes:
    return struct.pack("<Q", ms)[:6]


def binary_events(events: list[tuple[int, int, int]]) -> Obj:
    """g2v2 binary input events with absolute time, qualifier 0x28 (2-byte count, 2-byte index prefix)."""
    body = b"".join(struct.pack("<HB", i, ONLINE | (0x80 if s else 0)) + _time48(t) for i, s, t in events)
    points = [
        {"index": i, "flags": ONLINE | (0x80 if s else 0), "value": s, "time_ms": t} for i, s, t in events
    ]
    truth = {"group": 2, "variation": 2, "qualifier": 0x28, "count": len(events), "points": points}
    return Obj(_header(2, 2, 0x28, struct.pack("<H", len(events))) + body, truth)


def analog_events(events: list[tuple[int, int]]) -> Obj:
    """g32v1 32-bit analog events without time, qualifier 0x28."""
    body = b"".join(struct.pack("<HBi", i, ONLINE, v) for i, v in events)
    points = [{"index": i, "flags": ONLINE, "value": v} for i, v in events]
    truth = {"group": 32, "variation": 1, "qualifier": 0x28, "count": len(events), "points": points}
    return Obj(_header(32, 1, 0x28, struct.pack("<H", len(events))) + body, truth)


# CROB control code (Annex A.10, g12v1): op type bits 0-3, QUEUE 0x10, CLEAR 0x20, TCC bits 6-7.
OP_TYPES = {0: "nul", 1: "pulse_on", 2: "pulse_off", 3: "latch_on", 4: "latch_off"}
TCC = {0: "nul", 1: "close", 2: "trip"}


def crob(index: int, code: int, count: int = 1, on_ms: int = 0, off_ms: int = 0, status: int = 0) -> Obj:
    """g12v1 control relay output block, qualifier 0x28, one object."""
    body = struct.pack("<HH", 1, index) + struct.pack("<BBIIB", code, count, on_ms, off_ms, status)
    point = {
        "index": index,
        "code": code,
        "op_type": OP_TYPES.get(code & 0x0F, "undefined"),
        "tcc": TCC.get(code >> 6, "undefined"),
        "count": count,
        "on_time": on_ms,
        "off_time": off_ms,
        "status": status,
    }
    truth = {"group": 12, "variation": 1, "qualifier": 0x28, "count": 1, "points": [point]}
    return Obj(_header(12, 1, 0x28) + body, truth)


def last_recorded_time(ms: int) -> Obj:
    """g50v3 time and date at last recorded time, qualifier 0x07 count 1 (LAN time sync, §5.1.8.2)."""
    truth = {
        "group": 50,
        "variation": 3,
        "qualifier": 0x07,
        "count": 1,
        "points": [{"index": 0, "time_ms": ms}],
    }
    return Obj(_header(50, 3, 0x07, b"\x01") + _time48(ms), truth)


def time_delay_fine(ms: int) -> Obj:
    """g52v2 time delay fine (ms), qualifier 0x07 count 1 — the answer to a restart."""
    truth = {
        "group": 52,
        "variation": 2,
        "qualifier": 0x07,
        "count": 1,
        "points": [{"index": 0, "value": ms}],
    }
    return Obj(_header(52, 2, 0x07, b"\x01") + struct.pack("<H", ms), truth)


def clear_restart() -> Obj:
    """g80v1 internal indications, index 7 (DEVICE_RESTART) written 0, qualifier 0x00."""
    truth = {
        "group": 80,
        "variation": 1,
        "qualifier": 0x00,
        "start": 7,
        "stop": 7,
        "count": 1,
        "points": [{"index": 7, "value": 0}],
    }
    return Obj(_header(80, 1, 0x00, b"\x07\x07") + b"\x00", truth)


FILE_MODE_DELETE = 0  # g70v3 operational mode: 0 = null (used for delete), 1 read, 2 write, 3 append


def file_command(
    name: str,
    request_id: int,
    mode: int = FILE_MODE_DELETE,
    created_ms: int = 0,
    permissions: int = 0,
    auth_key: int = 0,
    size: int = 0,
    max_block: int = 0,
) -> Obj:
    """g70v3 file command, qualifier 0x5B (1-byte count, 2-byte object size prefix)."""
    raw = name.encode()
    obj = (
        struct.pack("<HH", 26, len(raw))
        + _time48(created_ms)
        + struct.pack("<HIIHHH", permissions, auth_key, size, mode, max_block, request_id)
        + raw
    )
    truth = {
        "group": 70,
        "variation": 3,
        "qualifier": 0x5B,
        "count": 1,
        "points": [{"index": 0, "file_name": name, "mode": mode, "request_id": request_id}],
    }
    return Obj(_header(70, 3, 0x5B, b"\x01") + struct.pack("<H", len(obj)) + obj, truth)


def file_command_status(request_id: int, status: int = 0, handle: int = 0) -> Obj:
    """g70v4 file command status, qualifier 0x5B."""
    obj = struct.pack("<IIHHB", handle, 0, 0, request_id, status)
    truth = {
        "group": 70,
        "variation": 4,
        "qualifier": 0x5B,
        "count": 1,
        "points": [{"index": 0, "request_id": request_id, "status": status}],
    }
    return Obj(_header(70, 4, 0x5B, b"\x01") + struct.pack("<H", len(obj)) + obj, truth)


# ---- link + transport wrapping -----------------------------------------------------------------


@dataclass
class Association:
    """A master↔outstation pair on one connection: addresses, transport sequences, app sequences."""

    master: int
    outstation: int
    transport_seq: list[int] = field(default_factory=lambda: [0, 0])  # [from master, from outstation]
    master_seq: int = 0
    unsolicited_seq: int = 0

    def next_master_seq(self) -> int:
        seq, self.master_seq = self.master_seq, (self.master_seq + 1) & 0xF
        return seq

    def next_unsolicited_seq(self) -> int:
        seq, self.unsolicited_seq = self.unsolicited_seq, (self.unsolicited_seq + 1) & 0xF
        return seq

    def link_frames(
        self,
        from_master: bool,
        fragment: bytes,
        max_data: int = MAX_SEGMENT_DATA,
        corrupt: tuple[int, int] | None = None,
    ) -> list[bytes]:
        """The link frames carrying ``fragment``; ``corrupt`` = (frame index, block index) gets a bad CRC."""
        side = 0 if from_master else 1
        segments = transport_segments(fragment, self.transport_seq[side], max_data)
        self.transport_seq[side] = (self.transport_seq[side] + len(segments)) & 0x3F
        control = (DIR if from_master else 0) | PRM | LINK_UNCONFIRMED_USER_DATA
        dst, src = (self.outstation, self.master) if from_master else (self.master, self.outstation)
        return [
            link_frame(control, dst, src, seg, corrupt[1] if corrupt and corrupt[0] == n else None)
            for n, seg in enumerate(segments)
        ]

    def link_truth(
        self, from_master: bool, link_function: int = LINK_UNCONFIRMED_USER_DATA, prm: bool = True
    ) -> Truth:
        dst, src = (self.outstation, self.master) if from_master else (self.master, self.outstation)
        return {
            "link_source": src,
            "link_destination": dst,
            "link_function_code": link_function,
            "dir": from_master,
            "prm": prm,
        }


# ---- more IIN bits, freeze, files, configuration ---------------------------------------------------

IIN_BROADCAST = 0x0100  # IIN1.0: a broadcast message was received
IIN_DEVICE_TROUBLE = 0x4000  # IIN1.6
IIN_EVENT_BUFFER_OVERFLOW = 0x0008  # IIN2.3
IIN_CONFIG_CORRUPT = 0x0020  # IIN2.5
BROADCAST_NO_CONFIRM = 0xFFFF  # §9.2.5.3.3: broadcast address, no application confirmation asked for

CROB_SUCCESS, CROB_NO_SELECT = 0, 2  # Table A-14 control status codes

FILE_MODE_READ = 1


def truncated_analog_inputs(start: int, values: list[int], claimed: int) -> Obj:
    """g30v1 whose start/stop range claims ``claimed`` points while only ``values`` follow: the object
    data runs past the end of the fragment (malformed; put it last in the fragment)."""
    obj = analog_inputs(start, values + [0] * (claimed - len(values)))
    cut = len(obj.data) - 5 * (claimed - len(values))  # g30v1 is 5 octets per point
    truth = dict(obj.truth, points=obj.truth["points"][: len(values)], truncated=True)
    return Obj(obj.data[:cut], truth)


def file_specification(name: str) -> Obj:
    """g70v8 file specification string, qualifier 0x5B (1-byte count, 2-byte object size prefix)."""
    raw = name.encode()
    truth = {
        "group": 70,
        "variation": 8,
        "qualifier": 0x5B,
        "count": 1,
        "points": [{"index": 0, "file_name": name}],
    }
    return Obj(_header(70, 8, 0x5B, b"\x01") + struct.pack("<H", len(raw)) + raw, truth)


def activation_status(time_delay_ms: int, status: int = 0) -> Obj:
    """g91v1 status of the requested operation (ACTIVATE_CONFIG response), qualifier 0x5B: time delay
    (UINT32 ms), count of status elements, then each status code with its additional-text length (0)."""
    obj = struct.pack("<IBBB", time_delay_ms, 1, status, 0)
    truth = {
        "group": 91,
        "variation": 1,
        "qualifier": 0x5B,
        "count": 1,
        "points": [{"index": 0, "time_delay": time_delay_ms, "status": status}],
    }
    return Obj(_header(91, 1, 0x5B, b"\x01") + struct.pack("<H", len(obj)) + obj, truth)


# ---- secure authentication v5 (IEEE 1815-2012 clause 7, objects A.45 g120) -------------------------

AUTH_MAC_HMAC_SHA256_16 = 4  # MAL: HMAC-SHA-256 truncated to 16 octets
AUTH_KEY_WRAP_AES_128 = 1  # KWA
AUTH_KEY_STATUS_OK, AUTH_KEY_STATUS_NOT_INIT = 1, 2  # KST
AUTH_REASON_CRITICAL = 1  # RSN
AUTH_ERROR_AUTHENTICATION_FAILED = 1  # error code
AUTH_VARIATION_NAMES = {
    1: "challenge",
    2: "reply",
    3: "aggressive_mode_request",
    4: "session_key_status_request",
    5: "session_key_status",
    6: "session_key_change",
    7: "error",
    9: "hmac",
}


def _auth_object(variation: int, body: bytes, point: dict[str, Any]) -> Obj:
    """A variable-size g120 object: qualifier 0x5B, one object with a 2-octet size prefix."""
    truth = {
        "group": 120,
        "variation": variation,
        "qualifier": 0x5B,
        "count": 1,
        "points": [{"index": 0, "auth": AUTH_VARIATION_NAMES[variation]} | point],
    }
    return Obj(_header(120, variation, 0x5B, b"\x01") + struct.pack("<H", len(body)) + body, truth)


def auth_challenge(sequence: int, user: int, challenge: bytes) -> Obj:
    """g120v1: CSQ, USR, MAL, RSN (critical), challenge data."""
    body = struct.pack("<IHBB", sequence, user, AUTH_MAC_HMAC_SHA256_16, AUTH_REASON_CRITICAL) + challenge
    return _auth_object(1, body, {"sequence": sequence, "user": user, "reason": "CRITICAL"})


def auth_reply(sequence: int, user: int, mac_value: bytes) -> Obj:
    """g120v2: CSQ, USR, MAC value."""
    body = struct.pack("<IH", sequence, user) + mac_value
    return _auth_object(2, body, {"sequence": sequence, "user": user})


def auth_aggressive_request(sequence: int, user: int) -> Obj:
    """g120v3: fixed 6 octets (CSQ, USR), qualifier 0x07 count 1; first object of an aggressive-mode
    critical request."""
    truth = {
        "group": 120,
        "variation": 3,
        "qualifier": 0x07,
        "count": 1,
        "points": [{"index": 0, "auth": "aggressive_mode_request", "sequence": sequence, "user": user}],
    }
    return Obj(_header(120, 3, 0x07, b"\x01") + struct.pack("<IH", sequence, user), truth)


def auth_hmac(mac_value: bytes) -> Obj:
    """g120v9: the MAC that ends an aggressive-mode request."""
    return _auth_object(9, mac_value, {})


def session_key_status_request(user: int) -> Obj:
    """g120v4: fixed 2 octets (USR), qualifier 0x07 count 1."""
    truth = {
        "group": 120,
        "variation": 4,
        "qualifier": 0x07,
        "count": 1,
        "points": [{"index": 0, "auth": "session_key_status_request", "user": user}],
    }
    return Obj(_header(120, 4, 0x07, b"\x01") + struct.pack("<H", user), truth)


def session_key_status(sequence: int, user: int, status: int, challenge: bytes, mac_value: bytes) -> Obj:
    """g120v5: KSQ, USR, KWA, KST, MAL, CDL, challenge data, MAC value (empty until keys are set)."""
    body = struct.pack(
        "<IHBBBH", sequence, user, AUTH_KEY_WRAP_AES_128, status, AUTH_MAC_HMAC_SHA256_16, len(challenge)
    )
    return _auth_object(
        5, body + challenge + mac_value, {"sequence": sequence, "user": user, "key_status": status}
    )


def session_key_change(sequence: int, user: int, wrapped_keys: bytes) -> Obj:
    """g120v6: KSQ, USR, the session keys wrapped with the update key."""
    return _auth_object(
        6, struct.pack("<IH", sequence, user) + wrapped_keys, {"sequence": sequence, "user": user}
    )


def auth_error(sequence: int, user: int, association: int, error: int, time_ms: int) -> Obj:
    """g120v7: CSQ, USR, association id, error code, time of error (48-bit ms), no text."""
    body = struct.pack("<IHHB", sequence, user, association, error) + _time48(time_ms)
    return _auth_object(
        7, body, {"sequence": sequence, "user": user, "error_code": error, "association_id": association}
    )
