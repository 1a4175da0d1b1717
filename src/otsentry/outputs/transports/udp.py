"""Syslog over UDP (RFC 5426): one message per datagram, best effort — no acknowledgement exists.

A message counts as delivered when the kernel took the datagram. Datagrams larger than the IPv4
limit are cut to it (RFC 5426 §3.2 lets receivers truncate anyway).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from otsentry.outputs.transports.base import Item, Transport, TransportError

MAX_DATAGRAM = 65507  # IPv4: 65535 - 20 (IP header) - 8 (UDP header)


class UdpTransport(Transport):
    acknowledged = False

    def __init__(self, dest) -> None:  # type: ignore[no-untyped-def]
        super().__init__(dest)
        self.sock: socket.socket | None = None

    def open(self) -> None:
        try:
            info = socket.getaddrinfo(self.dest.host, self.dest.port, type=socket.SOCK_DGRAM)[0]
            self.sock = socket.socket(info[0], socket.SOCK_DGRAM)
            self.sock.connect(info[4])
        except OSError as exc:
            raise TransportError(f"udp {self.dest.host}:{self.dest.port}: {exc}") from exc

    def send(self, items: Sequence[Item]) -> None:
        if self.sock is None:
            raise TransportError("not open")
        for seq, message in items:
            try:
                self.sock.send(message[:MAX_DATAGRAM])
            except ConnectionRefusedError:
                pass  # an earlier datagram met ICMP port unreachable; UDP gives no more than that
            except OSError as exc:
                raise TransportError(f"udp send: {exc}") from exc
            self.inflight.add((seq,))
        self.inflight.ack_all()

    def poll(self, timeout: float) -> int | None:
        return self.inflight.acked

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
