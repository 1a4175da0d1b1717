"""The decoded packet handed from the L2–L4 decoder to the flow table."""

from __future__ import annotations


class Packet:
    """One IP packet carrying TCP or UDP, decoded down to its L4 payload.

    Addresses stay raw ``bytes`` (4 or 16 long) and MACs raw 6-byte ``bytes``: the flow table
    renders them to text once per flow, not once per packet.
    """

    __slots__ = (
        "ack",
        "dport",
        "dst_addr",
        "dst_mac",
        "flags",
        "frame",
        "ifname",
        "inner_vlan",
        "ip_version",
        "payload",
        "proto",
        "seq",
        "sport",
        "src_addr",
        "src_mac",
        "ts",
        "vlan",
        "wire_len",
    )

    def __init__(
        self,
        ts: float,
        frame: int,
        src_mac: bytes | None,
        dst_mac: bytes | None,
        vlan: int | None,
        inner_vlan: int | None,
        ip_version: int,
        src_addr: bytes,
        dst_addr: bytes,
        proto: int,
        sport: int,
        dport: int,
        flags: int,
        seq: int,
        ack: int,
        payload: bytes,
        wire_len: int,
        ifname: str | None = None,
    ) -> None:
        self.ts = ts
        self.frame = frame
        self.src_mac = src_mac
        self.dst_mac = dst_mac
        self.vlan = vlan  # outer 802.1Q id (ECS network.vlan.id)
        self.inner_vlan = inner_vlan  # QinQ inner id (ECS network.inner.vlan.id)
        self.ip_version = ip_version
        self.src_addr = src_addr
        self.dst_addr = dst_addr
        self.proto = proto  # 6 TCP, 17 UDP
        self.sport = sport
        self.dport = dport
        self.flags = flags  # TCP flags byte (0 for UDP)
        self.seq = seq  # TCP sequence number (0 for UDP)
        self.ack = ack  # TCP acknowledgement number (0 for UDP)
        self.payload = payload  # L4 payload
        self.wire_len = wire_len  # original length on the wire, for byte counters
        self.ifname = ifname


TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
