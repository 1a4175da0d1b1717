"""Fuzzing the C12.22 analyzer: random bytes, and structure-aware mutations of valid messages (from
the public captures and hand-built C12.19 messages) with every BER and service length recomputed,
so the mutation reaches the decoders instead of dying at the framing. Nothing may raise, every
event must serialise, and a valid PDU after a mutated one must still decode."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c1222_helpers import (
    C1222_CAPTURES,
    acse,
    ber_len,
    epsem,
    full_read,
    logon,
    offset_read,
    procedure_write,
    read_ok,
    read_segments,
    security,
    tlv,
)
from otsentry.protocols.base import Message
from otsentry.protocols.c1222 import MAX_PDU_SIZE, C1222DatagramAnalyzer, C1222StreamAnalyzer, probe

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


HEAD_END_SIDE = "1.3.6.1.4.1.33507.1919.12345678.0"
METER_SIDE = "1.3.6.1.4.1.33507"


def _seed_pdus() -> list[bytes]:
    pdus = [
        acse(user_information=epsem(procedure_write(3, params=b"\x01\x02"))),
        acse(user_information=epsem(security(b"secret", 5), logon(1, b"op"))),
        acse(user_information=epsem(full_read(1), offset_read(8, 0, 4))),
        acse(METER_SIDE, HEAD_END_SIDE, epsem(read_ok(b"GE  KV2c    \x01\x02\x03\x04")), called_invocation=7),
        acse(user_information=epsem(procedure_write(10), control=0x84, ed_class=b"EDCL", mac=b"MAC!")),
    ]
    for path in C1222_CAPTURES:
        pdus += [seg.payload for seg in read_segments(path) if seg.payload]
    return pdus


SEEDS = _seed_pdus()
VALID = acse(user_information=epsem(full_read(2)))


# -- a BER tree that keeps lengths honest --------------------------------------------------------------

Node = list  # [tag, bytes | list[Node]]


def _parse(data: bytes, depth: int = 0) -> list[Node]:
    nodes, pos = [], 0
    while pos < len(data):
        tag, first = data[pos], data[pos + 1]
        count = first & 0x7F if first & 0x80 else 0
        length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big") if count else first
        start = pos + 2 + count
        content = data[start : start + length]
        nodes.append([tag, _parse(content, depth + 1) if tag & 0x20 and depth < 8 else content])
        pos = start + length
    return nodes


def _encode(nodes: list[Node]) -> bytes:
    return b"".join(tlv(tag, _encode(body) if isinstance(body, list) else body) for tag, body in nodes)


def _leaves(nodes: list[Node], out: list[tuple[list[Node], int]]) -> list[tuple[list[Node], int]]:
    for i, (_, body) in enumerate(nodes):
        if isinstance(body, list):
            _leaves(body, out)
        else:
            out.append((nodes, i))
    return out


def _services(body: bytes) -> tuple[bytes, list[bytes]]:
    """Split a cleartext EPSEM into its header octets and services (best effort on seeds)."""
    control = body[0]
    head = 1 + (4 if control & 0x10 else 0)
    services, pos = [], head
    while pos < len(body):
        length = body[pos]
        if length == 0 or length & 0x80:
            break
        services.append(body[pos + 1 : pos + 1 + length])
        pos += 1 + length
    return body[:head], services


@st.composite
def mutated_pdu(draw: st.DrawFn) -> bytes:
    root = _parse(draw(st.sampled_from(SEEDS)))
    elements = root[0][1]
    assert isinstance(elements, list)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["leaf", "leaf", "epsem", "epsem", "drop", "dup", "tag"]))
        leaves = _leaves(elements, [])
        if op == "epsem":
            epsems = [(n, i) for n, i in leaves if n[i][0] == 0x81 and len(n[i][1]) > 1]
            if not epsems:
                continue
            nodes, i = draw(st.sampled_from(epsems))
            head, services = _services(nodes[i][1])
            if services and draw(st.booleans()):
                k = draw(st.integers(0, len(services) - 1))
                services[k] = services[k][:1] + draw(st.binary(max_size=40))
            else:
                services.append(bytes([draw(st.integers(0, 0x7F))]) + draw(st.binary(max_size=30)))
            control = draw(st.sampled_from([head[0], draw(st.integers(0, 255))]))
            nodes[i][1] = bytes([control]) + head[1:] + b"".join(ber_len(len(s)) + s for s in services)
        elif op == "leaf" and leaves:
            nodes, i = draw(st.sampled_from(leaves))
            content = bytearray(nodes[i][1])
            kind = draw(st.sampled_from(["flip", "replace", "truncate", "extend"]))
            if kind == "flip" and content:
                at = draw(st.integers(0, len(content) - 1))
                content[at] ^= 1 << draw(st.integers(0, 7))
            elif kind == "replace":
                content = bytearray(draw(st.binary(max_size=24)))
            elif kind == "truncate":
                del content[draw(st.integers(0, len(content))) :]
            else:
                content += draw(st.binary(min_size=1, max_size=8))
            nodes[i][1] = bytes(content)
        elif op in ("drop", "dup", "tag") and elements:
            i = draw(st.integers(0, len(elements) - 1))
            if op == "drop":
                del elements[i]
            elif op == "dup":
                elements.insert(i, [elements[i][0], elements[i][1]])
            else:
                elements[i][0] = draw(st.integers(0x80, 0xBF))
    return _encode(root)


def _check(out: list[Message]) -> None:
    for _, _, _, fields in out:
        assert fields["network.protocol"] == "c1222"
        assert fields["event.dataset"] in ("otsentry.c1222", "otsentry.decode_error")
        assert fields["event.action"]
        orjson.dumps(fields)  # no bytes, no int beyond 64 bits
        _no_bytes(fields)


def _no_bytes(value: Any) -> None:
    assert not isinstance(value, bytes | bytearray | memoryview)
    if isinstance(value, dict):
        for v in value.values():
            _no_bytes(v)
    elif isinstance(value, list):
        for v in value:
            _no_bytes(v)


@SETTINGS
@given(pdu=mutated_pdu())
def test_mutated_messages_decode_or_report_and_keep_sync(pdu: bytes) -> None:
    analyzer = C1222StreamAnalyzer(vendor_procedures={"*": {1: "remote_disconnect"}})
    out: list[Message] = []
    analyzer.on_data(0, pdu + VALID, 1.0, 1, out)
    _check(out)
    assert len(out) == 2  # the framing stays right: one event for the mutant, one for the valid PDU
    assert out[1][3]["event.action"] == "table_read"
    probe(pdu)
    datagram: list[Message] = []
    C1222DatagramAnalyzer().on_datagram(1, pdu, 1.0, 1, datagram)
    _check(datagram)
    assert len(datagram) == 1


@SETTINGS
@given(chunks=st.lists(st.binary(max_size=300), max_size=12), gap_at=st.integers(-1, 12))
def test_random_bytes_never_raise(chunks: list[bytes], gap_at: int) -> None:
    analyzer = C1222StreamAnalyzer()
    out: list[Message] = []
    for i, chunk in enumerate(chunks):
        if i == gap_at:
            analyzer.on_gap(0)
        analyzer.on_data(0, chunk, 1.0, i, out)
        assert analyzer.buffered[0] <= MAX_PDU_SIZE
    _check(out)
    datagrams: list[Message] = []
    for chunk in chunks:
        probe(chunk)
        C1222DatagramAnalyzer().on_datagram(0, chunk, 1.0, 1, datagrams)
    _check(datagrams)


@SETTINGS
@given(prefix=st.binary(max_size=200), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_garbage_then_valid_pdus_in_any_split(prefix: bytes, cuts: list[int]) -> None:
    """After arbitrary garbage, the valid PDUs that follow are found whatever the segment cuts."""
    stream = prefix.replace(b"\x60", b"\x61") + VALID + VALID
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    analyzer = C1222StreamAnalyzer()
    out: list[Message] = []
    for a, b in itertools.pairwise(points):
        analyzer.on_data(0, stream[a:b], 1.0, 1, out)
    _check(out)
    actions = [m[3]["event.action"] for m in out]
    assert actions[-2:] == ["table_read", "table_read"]
    assert actions.count("decode_error") == (1 if prefix else 0)
