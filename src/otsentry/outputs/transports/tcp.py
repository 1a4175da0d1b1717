"""Syslog over TCP with octet-counting framing (RFC 6587 §3.4.1), and over TLS (RFC 5425 §4.3).

Each frame is ``MSG-LEN SP SYSLOG-MSG``. Syslog over TCP has no application acknowledgement, so a
message counts as delivered once the peer's TCP has acknowledged all its bytes: the kernel's send queue
(SIOCOUTQ, unsent + unacknowledged bytes) is empty. A receiver killed with such data still in its own
queue loses it; that is why the forwarder resends the last ``resend_window`` messages after every
reconnect (documented duplicates; use RELP where nothing may be lost).
"""

from __future__ import annotations

import array
import fcntl
import socket
import termios
import time
from collections.abc import Sequence

from otsentry.outputs.transports import net
from otsentry.outputs.transports.base import Item, Transport, TransportError


def unacknowledged_bytes(sock: socket.socket) -> int:
    """Bytes in the socket's send queue the peer has not acknowledged (Linux SIOCOUTQ = TIOCOUTQ)."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf, True)
    return buf[0]


def octet_counted(message: bytes) -> bytes:
    return b"%d %s" % (len(message), message)


class TcpTransport(Transport):
    acknowledged = False

    def __init__(self, dest) -> None:  # type: ignore[no-untyped-def]
        super().__init__(dest)
        self.resend_after_reconnect = dest.resend_window
        self.sock: socket.socket | None = None

    def open(self) -> None:
        self.sock = net.connect(self.dest)

    def send(self, items: Sequence[Item]) -> None:
        if self.sock is None:
            raise TransportError("not connected")
        net.send_all(self.sock, b"".join(octet_counted(message) for _, message in items))
        self.inflight.add(seq for seq, _ in items)

    def poll(self, timeout: float) -> int | None:
        if self.sock is None:
            raise TransportError("not connected")
        deadline = time.monotonic() + timeout
        while True:
            if net.read_available(self.sock, 0) is None:
                raise TransportError("receiver closed the connection")
            if len(self.inflight) == 0:
                return self.inflight.acked
            if unacknowledged_bytes(self.sock) == 0:
                self.inflight.ack_all()
                return self.inflight.acked
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.inflight.acked
            time.sleep(min(remaining, 0.002))

    def close(self) -> None:
        if self.sock is not None:
            net.close_quietly(self.sock)
            self.sock = None
