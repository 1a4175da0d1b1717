"""Live capture: AF_PACKET with a TPACKET_V3 ring (or libpcap), yielding RawFrame like the file readers.

The AF_PACKET path talks to the kernel through the ``socket`` and ``mmap`` modules only (no C extension):

* the socket is created with protocol 0 (nothing queued yet), gets a TPACKET_V3 RX ring, the compiled
  BPF filter (SO_ATTACH_FILTER), and only then is bound to the interface with ETH_P_ALL — so no frame
  that the filter would reject is ever seen;
* promiscuous mode through PACKET_ADD_MEMBERSHIP / PACKET_MR_PROMISC (reference-counted by the kernel
  and dropped with the socket: no ioctl on the interface flags, CAP_NET_RAW is enough);
* PACKET_FANOUT with PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG: N worker processes each open a socket
  in one group and the kernel spreads the interface's frames by a *symmetric* flow hash, so both
  directions of a flow always reach the same worker; IPv4 fragments are reassembled before hashing;
* drops from PACKET_STATISTICS (``tp_packets`` includes ``tp_drops``; V3 adds ``tp_freeze_q_cnt``, the
  times the ring was full and froze). The kernel resets them on every read: they are accumulated here.

Ring layout (include/uapi/linux/if_packet.h): ``block_nr`` blocks of ``block_size`` bytes; each starts with
``struct tpacket_block_desc`` (version, offset_to_priv, then ``tpacket_hdr_v1``: block_status, num_pkts,
offset_to_first_pkt, blk_len, seq_num, timestamps). A block belongs to user space while
``block_status & TP_STATUS_USER``; frames inside are ``struct tpacket3_hdr`` chained by ``tp_next_offset``.
A block is copied out and handed back at once, so the kernel can refill it while Python decodes.

Linux strips the outer 802.1Q/802.1ad tag before taps see the frame and reports it in the frame
header (TP_STATUS_VLAN_VALID, tp_vlan_tci, tp_vlan_tpid): it is put back into the bytes here, as libpcap
does, so the decoder sees the frame as it was on the wire.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from otsentry.capture.pcapfile import RawFrame

# <linux/if_packet.h>, <linux/if_ether.h>, <asm-generic/socket.h>
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_IGNORE_OUTGOING = 23
PACKET_MR_PROMISC = 1
TPACKET_V3 = 2
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_UNIQUEID = 0x2000  # kernel ≥ 4.19: let the kernel pick an unused group id
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
ETH_P_8021Q = 0x8100

# ARPHRD_* (<linux/if_arp.h>) → LINKTYPE_* of the frames a SOCK_RAW socket delivers.
ARPHRD_TO_LINKTYPE = {1: 1, 772: 1, 65534: 101}  # Ethernet, loopback (Ethernet framing), none (raw IP)

_REQ3 = struct.Struct("7I")  # struct tpacket_req3
_STATS3 = struct.Struct("3I")  # struct tpacket_stats_v3
_BLOCK = struct.Struct("<III")  # num_pkts, offset_to_first_pkt, blk_len (at offset 12 of the block)
# tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status, tp_mac, tp_net (struct tpacket3_hdr)
_FRAME = struct.Struct("<IIIIIIHH")
_VLAN = struct.Struct("<IH")  # hv1.tp_vlan_tci, hv1.tp_vlan_tpid (at offset 32 of the frame header)
_TAG = struct.Struct(">HH")
FRAME_SIZE = 2048  # tp_frame_size: only used by the kernel to size its bookkeeping for V3


class LiveCaptureError(OSError):
    """An interface cannot be captured; the message says which and why."""


@dataclass
class KernelStats:
    """Kernel counters since the socket was opened (accumulated: the kernel resets them on read)."""

    packets: int = 0  # frames that passed the filter, including the dropped ones
    drops: int = 0  # frames lost because the ring was full
    freeze_q: int = 0  # times the ring froze for lack of a free block (TPACKET_V3)

    def as_dict(self) -> dict[str, int]:
        return {"packets": self.packets, "drops": self.drops, "freeze_q": self.freeze_q}


@dataclass(frozen=True)
class RingSpec:
    block_size: int = 1 << 20
    block_count: int = 64
    block_timeout_ms: int = 50

    @classmethod
    def from_sizes(cls, ring_mb: int, block_kb: int, block_timeout_ms: int) -> RingSpec:
        return cls(block_kb * 1024, ring_mb * 1024 // block_kb, block_timeout_ms)


class Source(Protocol):
    ifname: str
    linktype: int
    frames_seen: int
    bytes_seen: int

    def fileno(self) -> int: ...
    def pending_error(self) -> int: ...
    def check(self) -> None: ...
    def read(self) -> list[RawFrame]: ...
    def stats(self) -> KernelStats: ...
    def set_filter(self, program: list[tuple[int, int, int, int]] | None, text: str | None) -> None: ...
    def close(self) -> None: ...


def interface_linktype(ifname: str) -> int:
    """LINKTYPE_* of ``ifname``'s frames, from its ARPHRD type in sysfs."""
    try:
        arphrd = int(Path(f"/sys/class/net/{ifname}/type").read_text())
    except OSError:
        raise LiveCaptureError(f"{ifname}: no such network interface") from None
    linktype = ARPHRD_TO_LINKTYPE.get(arphrd)
    if linktype is None:
        raise LiveCaptureError(f"{ifname}: unsupported link type (ARPHRD {arphrd}); Ethernet or raw IP only")
    return linktype


def interface_rx_packets(ifname: str) -> int | None:
    """Frames the interface received (all of them, before any filter), or None if unknown."""
    try:
        return int(Path(f"/sys/class/net/{ifname}/statistics/rx_packets").read_text())
    except (OSError, ValueError):
        return None


def _fprog(program: list[tuple[int, int, int, int]]) -> tuple[bytes, Any]:
    """``struct sock_fprog`` bytes for setsockopt, and the buffer it points to (keep it alive)."""
    insns = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(insns, len(insns))
    return struct.pack("HP", len(program), ctypes.addressof(buf)), buf


def _drop_all() -> list[tuple[int, int, int, int]]:
    return [(0x06, 0, 0, 0)]  # BPF_RET|BPF_K 0: accept nothing


class AfPacketSource:
    """One AF_PACKET socket with a TPACKET_V3 ring on one interface, optionally in a fanout group."""

    def __init__(
        self,
        ifname: str,
        program: list[tuple[int, int, int, int]] | None,
        ring: RingSpec = RingSpec(),
        promiscuous: bool = True,
        fanout_group: int | None = None,
        fanout: bool = True,
        ignore_outgoing: bool = True,
    ) -> None:
        self.ifname = ifname
        self.linktype = interface_linktype(ifname)
        self.ring_spec = ring
        self.frames_seen = 0
        self.bytes_seen = 0
        self.kernel = KernelStats()
        self.fanout_id: int | None = None
        self._filter_buf: Any = None
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise LiveCaptureError(f"{ifname}: cannot open an AF_PACKET socket: permission denied "
                                   "(needs CAP_NET_RAW)") from None
        try:
            self._setup(program, promiscuous, fanout, fanout_group, ignore_outgoing)
        except BaseException:
            self.sock.close()
            raise

    def _setup(self, program: list[tuple[int, int, int, int]] | None, promiscuous: bool, fanout: bool,
               fanout_group: int | None, ignore_outgoing: bool) -> None:
        sock, ifname, ring = self.sock, self.ifname, self.ring_spec
        step = "set TPACKET_V3"
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            step = "create the ring"
            frames = ring.block_size // FRAME_SIZE * ring.block_count
            req = _REQ3.pack(ring.block_size, ring.block_count, FRAME_SIZE, frames, ring.block_timeout_ms,
                             0, 0)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            self.ring = mmap.mmap(sock.fileno(), ring.block_size * ring.block_count, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
            step = "attach the filter"
            self.set_filter(program, None)
            if ignore_outgoing:
                step = "ignore outgoing frames"
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            step = "bind"
            sock.bind((ifname, ETH_P_ALL))
            self.ifindex = socket.if_nametoindex(ifname)
            if promiscuous:
                step = "enter promiscuous mode"
                mreq = struct.pack("iHH8s", socket.if_nametoindex(ifname), PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            if fanout:
                step = "join the fanout group"
                self.fanout_id = self._join_fanout(fanout_group)
        except OSError as exc:
            raise LiveCaptureError(f"{ifname}: cannot {step}: {exc.strerror or exc}") from None
        self.block = 0
        self.block_size = ring.block_size
        self.block_count = ring.block_count
        self.ring_bytes = ring.block_size * ring.block_count

    def _join_fanout(self, group: int | None) -> int:
        flags = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG
        if group is None:  # the first socket: a fresh group id the kernel guarantees unused
            arg = struct.pack("I", (flags | PACKET_FANOUT_FLAG_UNIQUEID) << 16)
            self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, arg)
            value = struct.unpack("I", self.sock.getsockopt(SOL_PACKET, PACKET_FANOUT, 4))[0]
            return value & 0xFFFF
        self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", group | (flags << 16)))
        return group

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending_error(self) -> int:
        """The socket's pending error (cleared by reading it): ENETDOWN when the link went down."""
        return self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    def check(self) -> None:
        """Raise if the interface is gone (or replaced by a new one of the same name): the socket is dead."""
        try:
            index = socket.if_nametoindex(self.ifname)
        except OSError:
            index = 0
        if index != self.ifindex:
            raise LiveCaptureError(f"{self.ifname}: interface removed")

    def set_filter(self, program: list[tuple[int, int, int, int]] | None, text: str | None) -> None:
        """Replace the kernel filter (atomic in the kernel: no frame sees no filter)."""
        fprog, buf = _fprog(program if program is not None else [(0x06, 0, 0, 0xFFFFFFFF)])
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self._filter_buf = buf

    def read(self) -> list[RawFrame]:
        """Every frame of every block the kernel has handed over; the blocks are returned at once."""
        ring, size, count = self.ring, self.block_size, self.block_count
        unpack_block, unpack_frame, unpack_vlan = _BLOCK.unpack_from, _FRAME.unpack_from, _VLAN.unpack_from
        new, cls, ifname, linktype = tuple.__new__, RawFrame, self.ifname, self.linktype
        out: list[RawFrame] = []
        append = out.append
        nbytes = 0
        while True:
            base = self.block * size
            if not ring[base + 8] & TP_STATUS_USER:
                break
            num, first, blk_len = unpack_block(ring, base + 12)
            block = ring[base:base + blk_len]  # one copy, then the block goes back to the kernel
            ring[base + 8:base + 12] = b"\0\0\0\0"  # TP_STATUS_KERNEL
            self.block = (self.block + 1) % count
            off = first
            for _ in range(num):
                nxt, sec, nsec, snaplen, wire_len, status, mac, _net = unpack_frame(block, off)
                start = off + mac
                data = block[start:start + snaplen]
                if status & TP_STATUS_VLAN_VALID:
                    tci, tpid = unpack_vlan(block, off + 32)
                    if not status & TP_STATUS_VLAN_TPID_VALID or not tpid:
                        tpid = ETH_P_8021Q
                    data = data[:12] + _TAG.pack(tpid, tci & 0xFFFF) + data[12:]
                    wire_len += 4
                nbytes += wire_len
                append(new(cls, (sec + nsec / 1e9, linktype, data, wire_len, ifname)))
                off += nxt
        self.frames_seen += len(out)
        self.bytes_seen += nbytes
        return out

    def stats(self) -> KernelStats:
        packets, drops, freeze_q = _STATS3.unpack(self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS,
                                                                        _STATS3.size))
        k = self.kernel
        k.packets += packets
        k.drops += drops
        k.freeze_q += freeze_q
        return KernelStats(k.packets, k.drops, k.freeze_q)

    def close(self) -> None:
        ring = getattr(self, "ring", None)
        if ring is not None:
            ring.close()
        self.sock.close()


class LibpcapSource:
    """The fallback: libpcap through pcapy-ng (one worker: the binding has no portable fanout)."""

    def __init__(self, ifname: str, filter_text: str | None, snaplen: int, promiscuous: bool,
                 timeout_ms: int, buffer_bytes: int) -> None:
        import pcapy

        self.ifname = ifname
        self.frames_seen = 0
        self.bytes_seen = 0
        self._error = pcapy.PcapError
        try:
            reader = pcapy.create(ifname)
            reader.set_snaplen(snaplen)
            reader.set_promisc(1 if promiscuous else 0)
            reader.set_timeout(timeout_ms)
            reader.set_buffer_size(buffer_bytes)
            reader.activate()
            if filter_text is not None:
                reader.setfilter(filter_text)
            reader.setnonblock(1)
        except pcapy.PcapError as exc:
            raise LiveCaptureError(f"{ifname}: libpcap: {exc}") from None
        self.reader = reader
        dlt = reader.datalink()
        self.linktype = {12: 101, 14: 101}.get(dlt, dlt)
        self._batch: list[RawFrame] = []

    def fileno(self) -> int:
        return self.reader.getfd()

    def pending_error(self) -> int:
        return 0

    def check(self) -> None:
        pass  # libpcap reports a vanished interface as a read error

    def _on_packet(self, header: Any, data: bytes) -> None:
        sec, usec = header.getts()
        self._batch.append(tuple.__new__(RawFrame, (sec + usec / 1e6, self.linktype, data, header.getlen(),
                                                    self.ifname)))

    def read(self) -> list[RawFrame]:
        self._batch = []
        try:
            self.reader.dispatch(-1, self._on_packet)
        except self._error as exc:
            raise LiveCaptureError(f"{self.ifname}: libpcap: {exc}") from None
        out = self._batch
        self.frames_seen += len(out)
        self.bytes_seen += sum(f.wire_len for f in out)
        return out

    def stats(self) -> KernelStats:
        received, dropped, _ifdropped = self.reader.stats()
        return KernelStats(received, dropped, 0)  # libpcap's ps_recv counts the dropped ones too on Linux

    def set_filter(self, program: list[tuple[int, int, int, int]] | None, text: str | None) -> None:
        self.reader.setfilter(text or "")

    def close(self) -> None:
        self.reader.close()


class LiveCapture:
    """Frames from one or more sources, with a housekeeping call between reads.

    ``frames(housekeeping)`` is the iterable to hand to ``Sensor.process_frames``: it blocks in poll()
    while the interfaces are quiet and calls ``housekeeping()`` at least every ``interval`` seconds
    (between two frames, never in the middle of one); it ends when ``housekeeping`` returns False.

    A link that goes down and up again keeps its socket (the kernel re-attaches it; ``link_events``
    records what happened for the log). An interface that disappears ends the capture with
    LiveCaptureError, so the service exits and systemd restarts it once the interface is back.
    """

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self.by_fd = {src.fileno(): src for src in sources}
        self.poller = select.poll()
        for src in sources:
            self.poller.register(src.fileno(), select.POLLIN | select.POLLERR)
        self.link_events: list[tuple[str, str]] = []  # (interface, os.strerror of the socket error)

    def frames(self, housekeeping: Callable[[], bool], interval: float = 0.2) -> Iterator[RawFrame]:
        clock = time.monotonic
        next_tick = clock() + interval
        next_check = clock() + 1.0
        sources = self.sources
        while True:
            got = False
            for src in sources:
                batch = src.read()
                if batch:
                    got = True
                    yield from batch
            now = clock()
            if now >= next_tick:
                next_tick = now + interval
                if not housekeeping():
                    return
                if now >= next_check:
                    next_check = now + 1.0
                    for src in sources:
                        src.check()
            if not got:
                for fd, mask in self.poller.poll(max(1, int((next_tick - now) * 1000))):
                    if mask & select.POLLERR:
                        self._socket_error(self.by_fd[fd])

    def _socket_error(self, src: Source) -> None:
        code = src.pending_error()  # reading it clears it: poll() stops reporting POLLERR
        src.check()  # ENETDOWN comes for a link down and for a removed interface alike
        if code:
            self.link_events.append((src.ifname, os.strerror(code)))

    def close(self) -> None:
        for src in self.sources:
            src.close()
