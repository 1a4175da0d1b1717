"""DNP3 (IEEE 1815) over TCP and UDP: link frames with CRC checks, transport reassembly keyed by
direction and link addresses, application headers and every object header of a fragment."""

from __future__ import annotations

from otsentry.protocols import ProtocolSpec
from otsentry.protocols.dnp3.session import Dnp3DatagramAnalyzer, Dnp3StreamAnalyzer, probe

SPEC = ProtocolSpec(
    name="dnp3",
    tcp_ports=frozenset({20000}),
    udp_ports=frozenset({20000}),
    probe=probe,
    stream_analyzer=Dnp3StreamAnalyzer,
    datagram_analyzer=Dnp3DatagramAnalyzer,
)

__all__ = ["SPEC", "Dnp3DatagramAnalyzer", "Dnp3StreamAnalyzer", "probe"]
