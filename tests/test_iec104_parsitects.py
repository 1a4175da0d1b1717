"""The parsitects/zeek-iec104 annotated-hex expectations (APDUs of iec104.pcap with the field values
a Spicy IEC 104 analyzer must produce): decode those bytes and assert every listed value.

Format (README.org there): hex octets are input; ``;`` starts assertions — ``name=value`` or a
bare unit name like ``iec104::Ctrl_i``; ``;;`` starts a plain comment."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from iec104_helpers import PARSITECTS, SHARED_PCAPS, decode_stream, replay

TESTS = sorted(PARSITECTS.glob("*.test")) if PARSITECTS.is_dir() else []
_HEX = re.compile(r"^[0-9a-fA-F]{2}$")

# Spicy unit names that say which APCI format was parsed; other bare names are structure only.
UNIT_APCI = {"iec104::Ctrl_i": "I", "iec104::Ctrl_s": "S", "iec104::Ctrl_u": "U"}
TAG_APCI = {"0": "I", "1": "S", "3": "U"}


def _first_object(fields: dict) -> dict:
    return fields["iec104.objects"][0]


# Spicy field name → (otsentry value, expected value parsed from the annotation text)
CHECKS: dict[str, Callable[[dict, str], tuple[Any, Any]]] = {
    "len": lambda f, v: (f["iec104.length"], int(v)),
    "tag": lambda f, v: (f["iec104.apci"], TAG_APCI[v]),
    "ssn": lambda f, v: (f["iec104.send_seq"], int(v)),
    "rsn": lambda f, v: (f["iec104.recv_seq"], int(v)),
    "type_id": lambda f, v: (f["iec104.type"], v.removeprefix("TypeID::")),
    "nobj": lambda f, v: (f["iec104.num_objects"], int(v)),
    "sq": lambda f, v: (f["iec104.sq"], bool(int(v))),
    "cot": lambda f, v: (f["iec104.cause"], v.removeprefix("CoT::").lower()),
    "pn": lambda f, v: (f["iec104.negative"], bool(int(v))),
    "test": lambda f, v: (f["iec104.test"], bool(int(v))),
    "originator_address": lambda f, v: (f["iec104.originator"], int(v)),
    "common_address": lambda f, v: (f["iec104.common_address"], int(v)),
    "obj_addr": lambda f, v: (_first_object(f)["ioa"], int(v)),
    "rcs": lambda f, v: (_first_object(f)["value"], int(v)),
    "qu": lambda f, v: (_first_object(f)["qualifier"], int(v)),
    "se": lambda f, v: (_first_object(f)["select"], bool(int(v))),
    "coi": lambda f, v: (_first_object(f)["qualifier"], int(v)),
    "lpc": lambda f, v: (_first_object(f)["local_param_change"], bool(int(v))),
}


def parse(path: Path) -> tuple[bytes, list[str]]:
    """The input octets and the assertions, in file order."""
    octets = bytearray()
    assertions: list[str] = []
    for line in path.read_text().splitlines():
        code, _, comment = line.partition(";")
        octets += bytes(int(token, 16) for token in code.split() if _HEX.match(token))
        if comment and not comment.startswith(";"):
            assertions += comment.split()
    return bytes(octets), assertions


@pytest.mark.skipif(not TESTS, reason=f"parsitects annotated hex not found at {PARSITECTS}")
@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_annotated_hex(path: Path) -> None:
    data, assertions = parse(path)
    (fields,) = decode_stream(data)
    assert fields["event.dataset"] == "otsentry.iec104"
    checked = 0
    for assertion in assertions:
        name, has_value, value = assertion.partition("=")
        if not has_value:
            if name in UNIT_APCI:
                assert fields["iec104.apci"] == UNIT_APCI[name]
            elif name.startswith("iec104::") and name.endswith("_io"):
                assert fields["iec104.type"] == name.removeprefix("iec104::").removesuffix("_io")
            continue
        assert name in CHECKS, f"{path.name}: no mapping for the assertion {assertion}"
        ours, expected = CHECKS[name](fields, value)
        assert ours == expected, f"{path.name}: {assertion}"
        checked += 1
    assert checked >= 14


def test_both_annotated_files_are_present() -> None:
    if not PARSITECTS.is_dir():
        pytest.skip(f"parsitects annotated hex not found at {PARSITECTS}")
    assert {p.name for p in TESTS} == {"c_rc_na_1.test", "m_ei_na_1.test"}


def test_annotated_apdus_come_from_the_capture() -> None:
    """The annotated bytes are APDUs of iec104.pcap, and our replay of it decodes them identically."""
    if not TESTS:
        pytest.skip(f"parsitects annotated hex not found at {PARSITECTS}")
    captured = replay(SHARED_PCAPS / "zeek-iec104" / "iec104.pcap")
    for path in TESTS:
        data, _ = parse(path)
        assert data in captured.apdus, path.name
        assert any(decode_stream(data)[0] in messages for messages in captured.by_frame.values())
