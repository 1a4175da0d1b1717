"""The kernel capture filter: its text from the enabled protocols' ports, compiled by libpcap.

``capture.filter`` chooses the trade-off:

* ``"ports"`` (default) — only TCP/UDP traffic on the enabled protocols' registered ports (plus
  ``extra_tcp_ports``/``extra_udp_ports`` and an ``extra_filter`` expression OR'ed in). The kernel drops
  everything else before it is copied to the ring, so a busy SPAN port of office traffic costs nothing.
  The price: a protocol on a *non-standard* port, which the flow layer would find with its heuristic
  probes, is never seen — list such ports in the extras.
* ``"all"`` — no filter: every frame reaches the decoder and the heuristics find Modbus or DNP3 on any
  port, at the cost of decoding (and possibly dropping) all traffic.
* anything else — a BPF expression of your own (``man pcap-filter``), used as it is.

IP fragments always pass the "ports" filter: only the first fragment carries the ports, and the sensor
reassembles (with PACKET_FANOUT_FLAG_DEFRAG the kernel reassembles IPv4 before filtering anyway).
Linux removes the outer VLAN tag before the filter runs (it is kept in the ring's frame header and
put back by the live reader), so the base expression matches single-tagged frames; ``or (vlan and …)``
catches the inner tag of QinQ frames, which stays in the packet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from otsentry.protocols import ProtocolSpec, all_specs

if TYPE_CHECKING:
    from otsentry.config import Config

# pcap DLT_* values for pcap_compile (https://www.tcpdump.org/linktypes.html).
DLT_EN10MB = 1
DLT_RAW = 12
LINKTYPE_TO_DLT = {1: DLT_EN10MB, 101: DLT_RAW}

# Any IPv4 fragment (MF set or a non-zero offset), or an IPv6 packet whose first extension header is a
# Fragment header (next header 44, RFC 8200 §4.5).
FRAGMENTS = "(ip[6:2] & 0x3fff != 0) or (ip6 and ip6[6] = 44)"


class FilterError(ValueError):
    """libpcap refused the filter text; the message is libpcap's."""


def enabled_specs(names: Iterable[str] = (), c1222: ProtocolSpec | None = None) -> list[ProtocolSpec]:
    """The protocol specs named (all of them when ``names`` is empty), in probe order; ``c1222``
    replaces the default C12.22 spec (one configured with vendor procedure tables)."""
    wanted = set(names)
    specs = [c1222 if c1222 is not None and s.name == "c1222" else s for s in all_specs()]
    return [s for s in specs if not wanted or s.name in wanted]


def _ports_clause(proto: str, ports: Iterable[int]) -> str | None:
    ordered = sorted(set(ports))
    if not ordered:
        return None
    return f"({proto} and ({' or '.join(f'port {p}' for p in ordered)}))"


def port_filter(
    specs: Iterable[ProtocolSpec],
    extra_tcp: Iterable[int] = (),
    extra_udp: Iterable[int] = (),
    extra: str = "",
    vlan: bool = True,
) -> str:
    """The "ports" filter text: the specs' TCP/UDP ports and the extras, plus IP fragments."""
    specs = list(specs)
    tcp = {p for s in specs for p in s.tcp_ports} | set(extra_tcp)
    udp = {p for s in specs for p in s.udp_ports} | set(extra_udp)
    clauses = [c for c in (_ports_clause("tcp", tcp), _ports_clause("udp", udp)) if c]
    clauses.append(FRAGMENTS)
    if extra.strip():
        clauses.append(f"({extra.strip()})")
    base = " or ".join(clauses)
    # ``vlan`` shifts every later offset by the tag: the tagged variant must come last.
    return f"({base}) or (vlan and ({base}))" if vlan else base


def filter_for(config: Config) -> str | None:
    """The filter text ``config`` asks for (None: capture everything); compiled once to check it."""
    cap = config.capture
    mode = cap.filter.strip()
    if mode == "all":
        return None
    if mode == "ports":
        text = port_filter(
            enabled_specs(config.sensor.protocols),
            cap.extra_tcp_ports,
            cap.extra_udp_ports,
            cap.extra_filter,
            cap.vlan,
        )
    else:
        text = mode
    compile_filter(text, snaplen=cap.snaplen)
    return text


def compile_filter(text: str, linktype: int = 1, snaplen: int = 262144) -> list[tuple[int, int, int, int]]:
    """Classic BPF instructions ``(code, jt, jf, k)`` for ``text`` on ``linktype`` frames (libpcap)."""
    import pcapy  # the binding is only needed where a filter is compiled

    dlt = LINKTYPE_TO_DLT.get(linktype, linktype)
    try:
        program = pcapy.compile(dlt, snaplen, text, 1, 0xFFFFFFFF)
    except pcapy.PcapError as exc:
        raise FilterError(f"libpcap cannot compile {text!r}: {exc}") from None
    return [tuple(insn) for insn in program.get_bpf()]  # type: ignore[misc]
