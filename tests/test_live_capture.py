"""The AF_PACKET TPACKET_V3 source on a veth pair: filter, VLAN tags, fanout, defragmentation, drops.

Frames are injected with a raw AF_PACKET socket on one end of the pair and read on the other.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import time
from collections.abc import Iterator

import pytest

from live_netns import veth_pair
from otsentry.capture.bpf import compile_filter
from otsentry.capture.live import (
    AfPacketSource,
    KernelStats,
    LibpcapSource,
    LiveCapture,
    LiveCaptureError,
    RingSpec,
)
from otsentry.net.decode import Decoder

SKIP = "needs root (CAP_NET_ADMIN for a veth pair, CAP_NET_RAW to capture)" if os.geteuid() != 0 else None
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

SRC_MAC, DST_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
SMALL_RING = RingSpec(block_size=64 * 1024, block_count=4, block_timeout_ms=10)


@pytest.fixture
def veth() -> Iterator[tuple[socket.socket, str]]:
    with veth_pair("otl") as pair:
        yield pair


def ipv4(
    src: str, dst: str, proto: int, body: bytes, ident: int = 1, frag: int = 0, total: int | None = None
) -> bytes:
    length = total if total is not None else 20 + len(body)
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            length,
            ident,
            frag,
            64,
            proto,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        + body
    )


def tcp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x18, 8192, 0, 0) + payload


def ether(l3: bytes, tags: tuple[tuple[int, int], ...] = (), ethertype: int = 0x0800) -> bytes:
    head = DST_MAC + SRC_MAC
    for tpid, vid in tags:
        head += struct.pack("!HH", tpid, vid)
    return head + struct.pack("!H", ethertype) + l3


def collect(capture_sources: list, want: int, timeout: float = 3.0) -> list[list]:
    """Frames per source until ``want`` frames in all or the timeout."""
    got: list[list] = [[] for _ in capture_sources]
    poller = select.poll()
    for src in capture_sources:
        poller.register(src.fileno(), select.POLLIN)
    deadline = time.monotonic() + timeout
    while sum(map(len, got)) < want and time.monotonic() < deadline:
        poller.poll(50)
        for i, src in enumerate(capture_sources):
            got[i] += src.read()
    return got


def test_filter_vlan_tags_and_frame_fields(veth) -> None:
    sender, ifname = veth
    src = AfPacketSource(ifname, compile_filter("tcp port 502 or (vlan and tcp port 502)"), SMALL_RING)
    try:
        packets = [
            ether(
                ipv4(
                    "10.0.0.1",
                    "10.0.0.2",
                    6,
                    tcp(40000, 502, b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x01"),
                )
            ),
            ether(
                ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 80, b"GET /"))
            ),  # not OT: filtered in the kernel
            ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40001, 502)), ((0x8100, 7),)),
            ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40002, 502)), ((0x88A8, 5), (0x8100, 9))),
        ]
        for frame in packets:
            sender.send(frame)
        (frames,) = collect([src], 3)
    finally:
        stats = src.stats()
        src.close()
    assert [f.data for f in frames] == [
        packets[0],
        packets[2],
        packets[3],
    ]  # tags back in place, bytes intact
    assert [f.wire_len for f in frames] == [len(packets[0]), len(packets[2]), len(packets[3])]
    assert all(f.linktype == 1 and f.ifname == ifname for f in frames)
    assert abs(frames[0].ts - time.time()) < 5
    decoded = [Decoder().decode(f, i) for i, f in enumerate(frames, 1)]
    assert [(p.vlan, p.inner_vlan, p.dport) for p in decoded] == [
        (None, None, 502),
        (7, None, 502),
        (5, 9, 502),
    ]
    assert stats == KernelStats(packets=3, drops=0, freeze_q=0)


def test_fanout_keeps_both_directions_of_a_flow_on_one_socket(veth) -> None:
    sender, ifname = veth
    first = AfPacketSource(ifname, None, SMALL_RING)  # creates a fresh group
    second = AfPacketSource(ifname, None, SMALL_RING, fanout_group=first.fanout_id)
    flows = [(f"10.1.0.{i}", f"10.2.0.{i % 7 + 1}", 40000 + i, 502) for i in range(1, 41)]
    try:
        sent = 0
        for client, server, cport, sport in flows:
            for _ in range(3):
                sender.send(ether(ipv4(client, server, 6, tcp(cport, sport, b"q"))))
                sender.send(ether(ipv4(server, client, 6, tcp(sport, cport, b"r"))))
                sent += 2
        got = collect([first, second], sent)
    finally:
        first.close()
        second.close()
    assert sum(map(len, got)) == sent
    owner: dict[frozenset, set[int]] = {}
    for index, frames in enumerate(got):
        for f in frames:
            pkt = Decoder().decode(f, 1)
            key = frozenset({(pkt.src_addr, pkt.sport), (pkt.dst_addr, pkt.dport)})
            owner.setdefault(key, set()).add(index)
    assert len(owner) == len(flows)
    assert all(len(sockets) == 1 for sockets in owner.values())  # symmetric hash: one socket per flow
    assert all(got)  # and the flows are spread over both


def test_fanout_defrag_hands_over_whole_ipv4_datagrams(veth) -> None:
    sender, ifname = veth
    src = AfPacketSource(ifname, compile_filter("tcp port 20000"), SMALL_RING)
    body = tcp(40000, 20000, bytes(range(256)) * 4)
    whole = ipv4("10.0.0.1", "10.0.0.2", 6, body, ident=77)
    try:
        for offset in range(0, len(body), 400):  # three fragments, 400 bytes (a multiple of 8) each
            part = body[offset : offset + 400]
            more = 0x2000 if offset + 400 < len(body) else 0
            sender.send(ether(ipv4("10.0.0.1", "10.0.0.2", 6, part, ident=77, frag=more | offset // 8)))
        (frames,) = collect([src], 1)
        time.sleep(0.1)
        frames += src.read()
    finally:
        src.close()
    assert len(frames) == 1  # reassembled by the kernel before the fanout hash and the filter
    assert frames[0].data[14:] == whole[:10] + frames[0].data[24:26] + whole[12:]  # only the checksum differs
    assert frames[0].wire_len == 14 + len(whole)


def test_drops_are_counted_when_the_ring_is_full(veth) -> None:
    sender, ifname = veth
    src = AfPacketSource(ifname, None, RingSpec(block_size=4096, block_count=2, block_timeout_ms=1000))
    try:
        for i in range(400):  # ~80 frames fit in two 4 KiB blocks; nobody reads
            sender.send(ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 502, b"x" * 8), ident=i)))
        time.sleep(0.2)
        stats = src.stats()
        read = src.read()
        again = src.stats()
    finally:
        src.close()
    assert stats.packets == 400  # tp_packets counts the dropped frames too
    assert 0 < stats.drops < 400 and stats.freeze_q >= 1
    assert len(read) == stats.packets - stats.drops
    assert again.packets == stats.packets and again.drops == stats.drops  # accumulated across reads


def test_filter_swap_on_a_live_socket(veth) -> None:
    sender, ifname = veth
    src = AfPacketSource(ifname, compile_filter("tcp port 502"), SMALL_RING)
    modbus = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 502)))
    dnp3 = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 20000)))
    try:
        sender.send(modbus)
        sender.send(dnp3)
        (before,) = collect([src], 1)
        src.set_filter(compile_filter("tcp port 20000"), "tcp port 20000")
        sender.send(modbus)
        sender.send(dnp3)
        (after,) = collect([src], 1)
        time.sleep(0.05)
        after += src.read()
    finally:
        src.close()
    assert [f.data for f in before] == [modbus]
    assert [f.data for f in after] == [dnp3]


def test_live_capture_calls_housekeeping_while_idle_and_stops(veth) -> None:
    _, ifname = veth
    src = AfPacketSource(ifname, compile_filter("tcp port 502"), SMALL_RING)
    calls: list[float] = []

    def housekeeping() -> bool:
        calls.append(time.monotonic())
        return len(calls) < 5

    started = time.monotonic()
    frames = list(LiveCapture([src]).frames(housekeeping, interval=0.05))
    src.close()
    assert frames == [] and len(calls) == 5
    assert 0.2 <= time.monotonic() - started < 2.0


def test_libpcap_fallback_reads_the_same_frames(veth) -> None:
    sender, ifname = veth
    src = LibpcapSource(ifname, "tcp port 502", 65535, True, 10, 1 << 20)
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 502, b"abc")))
    try:
        time.sleep(0.05)
        sender.send(frame)
        sender.send(ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 80))))
        (frames,) = collect([src], 1)
    finally:
        src.close()
    assert [(f.data, f.linktype, f.ifname) for f in frames] == [(frame, 1, ifname)]


def test_missing_interface_is_one_clear_error() -> None:
    with pytest.raises(LiveCaptureError, match=r"^nosuchif0: no such network interface$"):
        AfPacketSource("nosuchif0", None)


def test_link_down_and_up_keeps_the_capture_and_removal_ends_it() -> None:
    name = f"otk{os.getpid() % 100000}"
    a, b = f"{name}a", f"{name}b"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    try:
        for dev in (a, b):
            subprocess.run(["ip", "link", "set", dev, "addrgenmode", "none"], capture_output=True)
            subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sender.bind((a, 0))
        src = AfPacketSource(b, compile_filter("tcp port 502"), SMALL_RING)
        capture = LiveCapture([src])
        steps = iter(["down", "up", "send", "wait", "delete", "wait", "wait"])
        frame = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 502)))

        def housekeeping() -> bool:
            step = next(steps, None)
            if step in ("down", "up"):
                subprocess.run(["ip", "link", "set", b, step], check=True)
            elif step == "send":
                time.sleep(0.1)
                sender.send(frame)
            elif step == "delete":
                subprocess.run(["ip", "link", "del", a], check=True)
            return step is not None

        got = []
        with pytest.raises(LiveCaptureError, match=rf"^{b}: interface removed$"):
            for f in capture.frames(housekeeping, interval=0.1):
                got.append(f.data)
        src.close()
        sender.close()
    finally:
        subprocess.run(["ip", "link", "del", a], capture_output=True)
    assert got == [frame]  # captured after the link came back, on the same socket
    assert (b, "Network is down") in capture.link_events
