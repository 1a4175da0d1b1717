"""The capture filter: its text from the protocols' ports, and what the compiled program accepts.

The compiled program is run on crafted frames by libpcap's own BPF interpreter (pcapy's
``BPFProgram.filter``), the same instructions the kernel gets.
"""

from __future__ import annotations

import socket
import struct

import pcapy
import pytest

from otsentry.capture import bpf
from otsentry.config import parse_config
from otsentry.protocols import all_specs


def _ipv4(proto: int, l4: bytes, frag: int = 0) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(l4),
            1,
            frag,
            64,
            proto,
            0,
            socket.inet_aton("10.0.0.1"),
            socket.inet_aton("10.0.0.2"),
        )
        + l4
    )


def _ports(sport: int, dport: int) -> bytes:
    return struct.pack("!HH", sport, dport) + bytes(16)


def _eth(l3: bytes, ethertype: int = 0x0800, tags: tuple[int, ...] = ()) -> bytes:
    head = bytes(12)
    for tpid in tags:
        head += struct.pack("!HH", tpid, 5)
    return head + struct.pack("!H", ethertype) + l3


def _ipv6(next_header: int, body: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), next_header, 64, bytes(16), bytes(16)) + body


FRAMES = {
    "modbus": _eth(_ipv4(6, _ports(40000, 502))),
    "modbus reply": _eth(_ipv4(6, _ports(502, 40000))),
    "dnp3 udp": _eth(_ipv4(17, _ports(20000, 20000))),
    "iec104": _eth(_ipv4(6, _ports(40000, 2404))),
    "http": _eth(_ipv4(6, _ports(40000, 80))),
    "dns": _eth(_ipv4(17, _ports(40000, 53))),
    "dlms wrapper 4063": _eth(_ipv4(6, _ports(40000, 4063))),
    "qinq inner tag, modbus": _eth(_ipv4(6, _ports(40000, 502)), tags=(0x8100,)),
    "qinq inner tag, http": _eth(_ipv4(6, _ports(40000, 80)), tags=(0x8100,)),
    "ipv4 later fragment": _eth(_ipv4(6, b"\x00" * 24, frag=0x0003)),
    "ipv4 first fragment, http": _eth(_ipv4(6, _ports(40000, 80), frag=0x2000)),
    "ipv6 modbus": _eth(_ipv6(6, _ports(40000, 502)), 0x86DD),
    "ipv6 fragment": _eth(_ipv6(44, bytes(8) + bytes(24)), 0x86DD),
    "arp": _eth(bytes(28), 0x0806),
}


def _accepted(text: str) -> set[str]:
    program = pcapy.compile(pcapy.DLT_EN10MB, 262144, text, 1, 0xFFFFFFFF)
    assert [tuple(i) for i in program.get_bpf()] == bpf.compile_filter(text)
    return {name for name, frame in FRAMES.items() if program.filter(frame)}


def test_ports_filter_takes_every_protocols_ports() -> None:
    text = bpf.filter_for(parse_config({}, "t"))
    assert text is not None
    for spec in all_specs():
        for port in spec.tcp_ports | spec.udp_ports:
            assert f"port {port}" in text
    assert _accepted(text) == {
        "modbus",
        "modbus reply",
        "dnp3 udp",
        "iec104",
        "qinq inner tag, modbus",
        "ipv4 later fragment",
        "ipv4 first fragment, http",
        "ipv6 modbus",
        "ipv6 fragment",
    }


def test_extras_and_enabled_protocols() -> None:
    config = parse_config(
        {
            "sensor": {"protocols": ["modbus"]},
            "capture": {"extra_tcp_ports": [4063], "extra_filter": "arp", "vlan": False},
        },
        "t",
    )
    text = bpf.filter_for(config)
    assert text is not None and "20000" not in text and "vlan" not in text
    assert _accepted(text) == {
        "modbus",
        "modbus reply",
        "dlms wrapper 4063",
        "arp",
        "ipv4 later fragment",
        "ipv4 first fragment, http",
        "ipv6 modbus",
        "ipv6 fragment",
    }


def test_all_and_custom_filters() -> None:
    assert bpf.filter_for(parse_config({"capture": {"filter": "all"}}, "t")) is None
    custom = parse_config({"capture": {"filter": "tcp port 80"}}, "t")
    assert bpf.filter_for(custom) == "tcp port 80"
    assert _accepted("tcp port 80") == {"http", "ipv4 first fragment, http"}


def test_a_bad_expression_is_refused_with_libpcaps_reason() -> None:
    with pytest.raises(bpf.FilterError, match=r"libpcap cannot compile 'tcp prot 502': .*syntax error"):
        bpf.compile_filter("tcp prot 502")


def test_programs_end_by_keeping_the_snaplen() -> None:
    program = bpf.compile_filter("tcp port 502", snaplen=1500)
    assert (0x06, 0, 0, 1500) in program and (0x06, 0, 0, 0) in program  # BPF_RET|BPF_K: keep / drop
