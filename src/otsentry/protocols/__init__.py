"""Protocol registry: which analyzer handles a flow, by port or by a heuristic probe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from otsentry.protocols.base import DatagramAnalyzer, StreamAnalyzer


@dataclass(frozen=True)
class ProtocolSpec:
    """How the flow layer finds and builds one protocol's analyzer.

    ``probe`` looks at the first payload bytes seen in one direction of a flow on a port that
    no spec claims, and must be strict (it runs on all non-ICS traffic: a false positive makes
    a bogus event stream). It gets at least 8 bytes when the segment has them.
    """

    name: str
    tcp_ports: frozenset[int] = field(default_factory=frozenset)
    udp_ports: frozenset[int] = field(default_factory=frozenset)
    probe: Callable[[bytes], bool] | None = None
    stream_analyzer: Callable[[], StreamAnalyzer] | None = None
    datagram_analyzer: Callable[[], DatagramAnalyzer] | None = None


def all_specs() -> list[ProtocolSpec]:
    """Every protocol otsentry decodes, in probe order (strictest probe first)."""
    from otsentry.protocols import dnp3, modbus

    specs = [dnp3.SPEC, modbus.SPEC]
    for name in ("c1222", "dlms", "iec104"):
        try:
            module = __import__(f"otsentry.protocols.{name}", fromlist=["SPEC"])
        except ImportError:
            continue
        specs.append(module.SPEC)
    return specs
