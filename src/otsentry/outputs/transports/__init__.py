"""Transports: each sends encoded messages and reports which sequence numbers the receiver acknowledged."""

from __future__ import annotations

from otsentry.outputs.config import Destination
from otsentry.outputs.transports.base import HardError, RetryLater, Transport, TransportError

__all__ = ["HardError", "RetryLater", "Transport", "TransportError", "open_transport"]


def open_transport(dest: Destination) -> Transport:
    """A transport for ``dest`` (not yet connected: call ``open()``)."""
    if dest.transport == "udp":
        from otsentry.outputs.transports.udp import UdpTransport

        return UdpTransport(dest)
    if dest.transport in ("tcp", "tls"):
        from otsentry.outputs.transports.tcp import TcpTransport

        return TcpTransport(dest)
    if dest.transport == "relp":
        from otsentry.outputs.transports.relp import RelpTransport

        return RelpTransport(dest)
    if dest.transport == "hec":
        from otsentry.outputs.transports.hec import HecTransport

        return HecTransport(dest)
    from otsentry.outputs.transports.jsonfile import JsonLinesTransport

    return JsonLinesTransport(dest)
