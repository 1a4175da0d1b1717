"""Flow table: roles, both-direction lookup, dispatch by port and probe, timeouts, cap."""

from __future__ import annotations

from otsentry.net.flows import IGNORED, FlowLimits, FlowTable
from otsentry.net.packet import TCP_ACK, TCP_FIN, TCP_SYN, Packet
from otsentry.protocols import ProtocolSpec

A = bytes([10, 0, 0, 1])
B = bytes([10, 0, 0, 2])


class EchoAnalyzer:
    """Emits one message per delivered chunk; records gaps."""

    protocol = "echo"

    def __init__(self) -> None:
        self.gaps: list[int] = []

    def on_data(self, direction, data, ts, frame, out) -> None:
        out.append((direction, ts, frame, {"event.dataset": "otsentry.echo", "data": bytes(data)}))

    def on_gap(self, direction) -> None:
        self.gaps.append(direction)

    def on_datagram(self, direction, data, ts, frame, out) -> None:
        self.on_data(direction, data, ts, frame, out)


ECHO = ProtocolSpec(
    name="echo",
    tcp_ports=frozenset({502}),
    udp_ports=frozenset({20000}),
    probe=lambda data: data.startswith(b"ECHO"),
    stream_analyzer=EchoAnalyzer,
    datagram_analyzer=EchoAnalyzer,
)


def pkt(ts, frame, src, sport, dst, dport, flags=TCP_ACK, seq=0, ack=0, payload=b"", proto=6):
    return Packet(
        ts,
        frame,
        b"\x00\x11\x22\x33\x44\x55",
        None,
        None,
        None,
        4,
        src,
        dst,
        proto,
        sport,
        dport,
        flags,
        seq,
        ack,
        payload,
        60 + len(payload),
    )


def make_table(limits=None):
    got, ended = [], []
    table = FlowTable([ECHO], lambda flow, msgs: got.extend((flow, m) for m in msgs), ended.append, limits)
    return table, got, ended


def test_handshake_sets_roles_and_directions() -> None:
    table, got, _ = make_table()
    table.packet(pkt(1.0, 1, A, 40000, B, 502, TCP_SYN, seq=100))
    table.packet(pkt(1.1, 2, B, 502, A, 40000, TCP_SYN | TCP_ACK, seq=500, ack=101))
    table.packet(pkt(1.2, 3, A, 40000, B, 502, TCP_ACK, seq=101, ack=501, payload=b"req"))
    table.packet(pkt(1.3, 4, B, 502, A, 40000, TCP_ACK, seq=501, ack=104, payload=b"resp"))
    assert len(table) == 1
    flow = got[0][0]
    assert (flow.client_addr, flow.client_port, flow.server_port) == (A, 40000, 502)
    assert [(m[0], m[2], m[3]["data"]) for _, m in got] == [(0, 3, b"req"), (1, 4, b"resp")]
    assert flow.packets == [2, 2]


def test_midstream_server_packet_first_keeps_roles_by_port() -> None:
    table, got, _ = make_table()
    table.packet(pkt(1.0, 1, B, 502, A, 40000, seq=7, payload=b"resp"))
    flow, (direction, _, _, _) = got[0]
    assert flow.server_port == 502 and direction == 1
    assert flow.analyzer.gaps == [1]  # told it joined mid-stream


def test_probe_attaches_on_unknown_port_and_ignores_others() -> None:
    table, got, _ = make_table()
    table.packet(pkt(1.0, 1, A, 40000, B, 7777, seq=1, payload=b"ECHO hello"))
    assert got and got[0][0].protocol == "echo"
    for i in range(5):
        table.packet(pkt(2.0, 2 + i, A, 40001, B, 80, seq=1 + 3 * i, payload=b"GET"))
    http = next(f for f in table.lru.values() if f.server_port == 80)
    assert http.state == IGNORED and http.streams is None


def test_udp_datagrams_go_to_the_datagram_analyzer() -> None:
    table, got, _ = make_table()
    table.packet(pkt(1.0, 1, A, 20000, B, 20000, payload=b"\x05\x64", proto=17))
    assert got[0][1][3]["data"] == b"\x05\x64"


def test_idle_flows_expire_in_packet_time_and_leave_a_record() -> None:
    table, _, ended = make_table(FlowLimits(tcp_idle=10, udp_idle=10, closed_linger=1))
    table.packet(pkt(1.0, 1, A, 40000, B, 502, seq=1, payload=b"x"))
    table.packet(pkt(5.0, 2, A, 40001, B, 502, seq=1, payload=b"y"))
    table.packet(pkt(12.0, 3, A, 40001, B, 502, seq=2, payload=b"z"))
    assert [f.client_port for f in ended] == [40000]
    rec = ended[0].record()
    assert rec["client_ip"] == "10.0.0.1" and rec["client_packets"] == 1 and rec["messages"] == 1


def test_closed_flows_linger_briefly() -> None:
    table, _, ended = make_table(FlowLimits(tcp_idle=100, udp_idle=100, closed_linger=2))
    table.packet(pkt(1.0, 1, A, 40000, B, 502, TCP_FIN | TCP_ACK, seq=1))
    table.packet(pkt(4.0, 2, A, 40001, B, 502, seq=1, payload=b"y"))
    assert [f.client_port for f in ended] == [40000]


def test_hard_cap_evicts_least_recently_seen() -> None:
    table, _, ended = make_table(FlowLimits(max_flows=3))
    for port in (1001, 1002, 1003):
        table.packet(pkt(1.0, 1, A, port, B, 502, seq=1, payload=b"x"))
    table.packet(pkt(1.1, 2, A, 1001, B, 502, seq=2, payload=b"x"))  # 1001 is fresh again
    table.packet(pkt(1.2, 3, A, 1004, B, 502, seq=1, payload=b"x"))
    assert [f.client_port for f in ended] == [1002]
    assert len(table) == 3 and len(table.by_key) == 6
