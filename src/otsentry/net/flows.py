"""The flow table: 5-tuple → flow, client/server roles, TCP reassembly and protocol dispatch.

Each flow is registered under both of its directed keys, so a packet costs one dict lookup
whichever way it travels. Flows leave the table when idle (packet time, not wall time),
shortly after FIN/RST, or — least recently seen first — when the table is at its hard cap.
A flow that leaves is handed to ``on_flow_end`` as a record (packets, bytes, start/end).
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otsentry.net.packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet
from otsentry.net.tcp import TcpStats, TcpStream
from otsentry.protocols import ProtocolSpec
from otsentry.protocols.base import Message

TCP = 6
UDP = 17

# Flow states for protocol dispatch.
PROBING = 0  # no port match yet: try the heuristics on the first data segments
ATTACHED = 1  # an analyzer owns the flow
IGNORED = 2  # not a protocol we decode: count packets, skip payload work

PROBE_SEGMENTS = 4  # data segments to try the heuristics on before giving a flow up


@dataclass(frozen=True)
class FlowLimits:
    tcp_idle: float = 600.0  # SCADA polls keep sessions open for days; idle 10 min means gone
    udp_idle: float = 120.0
    closed_linger: float = 30.0  # after FIN/RST, catch late retransmissions
    max_flows: int = 200_000
    max_pending_bytes: int = 256 * 1024  # per direction, out-of-order data waiting for a hole


def render_ip(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


def render_mac(mac: bytes | None) -> str | None:
    return mac.hex("-").upper() if mac else None


class Flow:
    """One bidirectional conversation. Index 0 of the per-direction lists is client→server."""

    __slots__ = (
        "analyzer",
        "bytes",
        "client_addr",
        "client_port",
        "closing",
        "community_id",
        "cur_frame",
        "cur_ts",
        "event_base",
        "first_ts",
        "id",
        "ifname",
        "inner_vlan",
        "last_ts",
        "macs",
        "messages",
        "packets",
        "probes",
        "proto",
        "protocol",
        "server_addr",
        "server_port",
        "state",
        "streams",
        "vlan",
    )

    def __init__(self, flow_id: int, pkt: Packet, client_is_src: bool) -> None:
        self.id = flow_id
        self.proto = pkt.proto
        if client_is_src:
            self.client_addr, self.client_port = pkt.src_addr, pkt.sport
            self.server_addr, self.server_port = pkt.dst_addr, pkt.dport
        else:
            self.client_addr, self.client_port = pkt.dst_addr, pkt.dport
            self.server_addr, self.server_port = pkt.src_addr, pkt.sport
        self.first_ts = self.last_ts = pkt.ts
        self.packets = [0, 0]
        self.bytes = [0, 0]
        self.macs: list[bytes | None] = [None, None]
        self.vlan = pkt.vlan
        self.inner_vlan = pkt.inner_vlan
        self.ifname = pkt.ifname
        self.state = PROBING
        self.protocol: str | None = None
        self.analyzer: Any = None
        self.streams: list[TcpStream] | None = None
        self.probes = 0
        self.closing = False
        self.messages = 0
        self.community_id: str | None = None  # computed by the event builder on first use
        self.cur_ts = pkt.ts
        self.cur_frame = pkt.frame
        self.event_base: Any = None  # per-direction event fields, built by the event builder

    def record(self) -> dict[str, Any]:
        """The flow record kept after the flow ends (column names of the ``flows`` table)."""
        return {
            "community_id": self.community_id,
            "transport": "tcp" if self.proto == TCP else "udp",
            "protocol": self.protocol,
            "client_ip": render_ip(self.client_addr),
            "client_port": self.client_port,
            "server_ip": render_ip(self.server_addr),
            "server_port": self.server_port,
            "vlan": self.vlan,
            "client_mac": render_mac(self.macs[0]),
            "server_mac": render_mac(self.macs[1]),
            "client_packets": self.packets[0],
            "server_packets": self.packets[1],
            "client_bytes": self.bytes[0],
            "server_bytes": self.bytes[1],
            "start": self.first_ts,
            "end": self.last_ts,
            "messages": self.messages,
        }


MessagesFn = Callable[[Flow, list[Message]], None]
FlowEndFn = Callable[[Flow], None]


class FlowTable:
    """Routes decoded packets to per-flow reassembly and protocol analyzers."""

    def __init__(
        self,
        specs: list[ProtocolSpec],
        on_messages: MessagesFn,
        on_flow_end: FlowEndFn | None = None,
        limits: FlowLimits | None = None,
    ) -> None:
        self.limits = limits or FlowLimits()
        self.on_messages = on_messages
        self.on_flow_end = on_flow_end
        self.tcp_ports = {port: spec for spec in specs for port in spec.tcp_ports}
        self.udp_ports = {port: spec for spec in specs for port in spec.udp_ports}
        self.tcp_probes = [s for s in specs if s.probe and s.stream_analyzer]
        self.udp_probes = [s for s in specs if s.probe and s.datagram_analyzer]
        self.by_key: dict[tuple, tuple[Flow, int]] = {}
        self.lru: OrderedDict[int, Flow] = OrderedDict()
        self.tcp_stats = TcpStats()
        self.next_id = 1
        self.flows_total = 0
        self.evicted = 0
        self.last_sweep = 0.0
        self.out: list[Message] = []

    def __len__(self) -> int:
        return len(self.lru)

    # -- the hot path -------------------------------------------------------------------------

    def packet(self, pkt: Packet) -> None:
        key = (pkt.proto, pkt.src_addr, pkt.sport, pkt.dst_addr, pkt.dport)
        entry = self.by_key.get(key)
        if entry is None:
            flow, direction = self._new_flow(pkt, key)
        else:
            flow, direction = entry
            self.lru.move_to_end(flow.id)
        ts = pkt.ts
        flow.last_ts = ts
        flow.packets[direction] += 1
        flow.bytes[direction] += pkt.wire_len
        if flow.macs[direction] is None and pkt.src_mac is not None:
            flow.macs[direction] = pkt.src_mac
            flow.event_base = None  # cached event fields lack this MAC
        if ts - self.last_sweep >= 1.0:
            self.expire(ts)
        if flow.state == IGNORED:
            return
        flow.cur_ts = ts
        flow.cur_frame = pkt.frame
        if pkt.proto == TCP:
            self._tcp(flow, direction, pkt)
        elif pkt.payload:
            self._udp(flow, direction, pkt)
        out = self.out
        if out:
            flow.messages += len(out)
            self.on_messages(flow, out)
            self.out = []

    def _tcp(self, flow: Flow, direction: int, pkt: Packet) -> None:
        flags = pkt.flags
        streams = flow.streams
        if streams is None:
            streams = flow.streams = self._make_streams(flow)
        if flags & TCP_SYN:
            streams[direction].syn(pkt.seq)
        if flags & TCP_ACK:
            streams[1 - direction].ack(pkt.ack)
        payload = pkt.payload
        if payload:
            if flow.state == PROBING:
                self._probe_tcp(flow, direction, payload)
                if flow.state == IGNORED:
                    return
            streams[direction].segment(pkt.seq, payload)
        if flags & (TCP_FIN | TCP_RST) and not flow.closing:
            flow.closing = True
            for stream in streams:
                stream.flush()

    def _udp(self, flow: Flow, direction: int, pkt: Packet) -> None:
        if flow.state == PROBING:
            for spec in self.udp_probes:
                if spec.probe and spec.probe(pkt.payload):
                    self._attach(flow, spec, datagram=True)
                    break
            else:
                flow.state = IGNORED
                return
        flow.analyzer.on_datagram(direction, pkt.payload, pkt.ts, pkt.frame, self.out)

    # -- flow life cycle ------------------------------------------------------------------------

    def _new_flow(self, pkt: Packet, key: tuple) -> tuple[Flow, int]:
        client_is_src = self._client_is_src(pkt)
        flow = Flow(self.next_id, pkt, client_is_src)
        self.next_id += 1
        self.flows_total += 1
        rkey = (pkt.proto, pkt.dst_addr, pkt.dport, pkt.src_addr, pkt.sport)
        direction = 0 if client_is_src else 1
        self.by_key[key] = (flow, direction)
        self.by_key[rkey] = (flow, 1 - direction)
        self.lru[flow.id] = flow
        if len(self.lru) > self.limits.max_flows:
            _, oldest = self.lru.popitem(last=False)
            self.evicted += 1
            self._end(oldest)
        ports = self.tcp_ports if pkt.proto == TCP else self.udp_ports
        spec = ports.get(flow.server_port)
        if spec is not None:
            self._attach(flow, spec, datagram=pkt.proto == UDP)
        elif not (self.tcp_probes if pkt.proto == TCP else self.udp_probes):
            flow.state = IGNORED
        return flow, direction

    def _client_is_src(self, pkt: Packet) -> bool:
        """Who opened the connection: the SYN sender; mid-stream, the side not on a service port."""
        if pkt.proto == TCP:
            if pkt.flags & TCP_SYN:
                return not pkt.flags & TCP_ACK
            ports = self.tcp_ports
        else:
            ports = self.udp_ports
        if pkt.dport in ports:
            return True
        if pkt.sport in ports:
            return False
        return pkt.sport >= pkt.dport  # ephemeral ports are the high ones

    def _attach(self, flow: Flow, spec: ProtocolSpec, datagram: bool) -> None:
        factory = spec.datagram_analyzer if datagram else spec.stream_analyzer
        if factory is None:
            flow.state = IGNORED
            return
        flow.analyzer = factory()
        flow.protocol = spec.name
        flow.state = ATTACHED

    def _probe_tcp(self, flow: Flow, direction: int, payload: bytes) -> None:
        for spec in self.tcp_probes:
            if spec.probe and spec.probe(payload):
                self._attach(flow, spec, datagram=False)
                if flow.probes:
                    # The analyzer joins after the connection started: bytes before are unseen.
                    flow.analyzer.on_gap(0)
                    flow.analyzer.on_gap(1)
                return
        flow.probes += 1
        if flow.probes >= PROBE_SEGMENTS:
            flow.state = IGNORED
            flow.streams = None

    def _make_streams(self, flow: Flow) -> list[TcpStream]:
        def deliverer(direction: int) -> Callable[[bytes], None]:
            def deliver(data: bytes) -> None:
                if flow.state == ATTACHED:
                    flow.analyzer.on_data(direction, data, flow.cur_ts, flow.cur_frame, self.out)

            return deliver

        def gapper(direction: int) -> Callable[[], None]:
            def gap() -> None:
                if flow.state == ATTACHED:
                    flow.analyzer.on_gap(direction)

            return gap

        limit = self.limits.max_pending_bytes
        return [TcpStream(deliverer(d), gapper(d), self.tcp_stats, limit) for d in (0, 1)]

    def expire(self, now: float) -> None:
        """Drop flows idle past their timeout, oldest first (packet time)."""
        self.last_sweep = now
        limits = self.limits
        shortest = min(limits.tcp_idle, limits.udp_idle, limits.closed_linger)
        expired = []
        for flow in self.lru.values():
            idle = now - flow.last_ts
            if idle < shortest:
                break  # the rest were seen more recently
            if flow.closing:
                timeout = limits.closed_linger
            else:
                timeout = limits.tcp_idle if flow.proto == TCP else limits.udp_idle
            if idle >= timeout:
                expired.append(flow)
        for flow in expired:
            del self.lru[flow.id]
            self._end(flow)

    def flush(self) -> None:
        """End every flow (end of a replay, or shutdown)."""
        for flow in list(self.lru.values()):
            self._end(flow)
        self.lru.clear()

    def _end(self, flow: Flow) -> None:
        key = (flow.proto, flow.client_addr, flow.client_port, flow.server_addr, flow.server_port)
        self.by_key.pop(key, None)
        self.by_key.pop(
            (flow.proto, flow.server_addr, flow.server_port, flow.client_addr, flow.client_port), None
        )
        if flow.streams is not None and flow.state == ATTACHED:
            flow.cur_ts = flow.last_ts
            for stream in flow.streams:
                stream.flush()
            if self.out:
                flow.messages += len(self.out)
                self.on_messages(flow, self.out)
                self.out = []
        if self.on_flow_end is not None:
            self.on_flow_end(flow)
