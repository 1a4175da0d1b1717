"""DLMS/COSEM (IEC 62056-5-3 xDLMS, IEC 62056-6-2 COSEM) over the IEC 62056-47 wrapper.

``SPEC`` claims TCP/UDP 4059 (the IANA port "DLMS/COSEM") and finds the wrapper on any other
port with a strict probe; :func:`spec_with_ports` adds ports a site configures (4063/4064 are
common for further logical devices or gateways).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from otsentry.protocols import ProtocolSpec
from otsentry.protocols.dlms.analyzer import DlmsAnalyzer
from otsentry.protocols.dlms.wrapper import probe

DEFAULT_PORT = 4059

SPEC = ProtocolSpec(
    name="dlms",
    tcp_ports=frozenset({DEFAULT_PORT}),
    udp_ports=frozenset({DEFAULT_PORT}),
    probe=probe,
    stream_analyzer=DlmsAnalyzer,
    datagram_analyzer=DlmsAnalyzer,
)


def spec_with_ports(tcp_ports: Iterable[int] = (), udp_ports: Iterable[int] = ()) -> ProtocolSpec:
    """``SPEC`` with extra configured ports claimed outright (no probe needed on them)."""
    return replace(SPEC, tcp_ports=SPEC.tcp_ports | frozenset(tcp_ports),
                   udp_ports=SPEC.udp_ports | frozenset(udp_ports))


__all__ = ["SPEC", "DlmsAnalyzer", "probe", "spec_with_ports"]
