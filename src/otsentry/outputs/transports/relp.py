"""RELP client (Reliable Event Logging Protocol, as spoken by rsyslog's imrelp/librelp).

Source: rsyslog "RELP - The Reliable Event Logging Protocol" (doc/relp.html) and librelp's frame
grammar: ``FRAME = TXNR SP COMMAND SP DATALEN [SP DATA] TRAILER``; TXNR is 1–999999999 and wraps to 1;
DATALEN is at most 9 digits; TRAILER is LF. A session opens with ``open`` offering ``relp_version``,
``relp_software`` and ``commands=syslog``; each ``syslog`` frame is answered by ``rsp`` with the same
TXNR and data ``200 OK`` (anything else is an error); the server may end with ``0 serverclose 0``.
Many frames may be outstanding (the window); an ``rsp 200`` means the server took the message.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Sequence

from otsentry import __version__
from otsentry.outputs.transports import net
from otsentry.outputs.transports.base import HardError, Item, Transport, TransportError

MAX_TXNR = 999_999_999
OPEN_OFFERS = f"relp_version=0\nrelp_software=otsentry,{__version__},https://github.com/otsentry\ncommands=syslog"
_HEADER = re.compile(rb"(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})")


class RelpProtocolError(TransportError):
    pass


def frame(txnr: int, command: str, data: bytes = b"") -> bytes:
    if data:
        return b"%d %s %d %s\n" % (txnr, command.encode(), len(data), data)
    return b"%d %s 0\n" % (txnr, command.encode())


def parse_frames(buffer: bytearray) -> list[tuple[int, str, bytes]]:
    """Complete frames at the start of ``buffer`` (consumed from it); a partial one stays."""
    frames = []
    while buffer:
        space = buffer.find(b" ", buffer.find(b" ") + 1)  # end of "TXNR COMMAND"
        if space < 0:
            if len(buffer) > 64:
                raise RelpProtocolError(f"RELP: bad frame header {bytes(buffer[:64])!r}")
            break
        end_of_len = space + 1
        while end_of_len < len(buffer) and buffer[end_of_len:end_of_len + 1].isdigit():
            end_of_len += 1
        if end_of_len == len(buffer):
            break  # the length may go on in the next read
        match = _HEADER.fullmatch(bytes(buffer[:end_of_len]))
        if match is None:
            raise RelpProtocolError(f"RELP: bad frame header {bytes(buffer[:end_of_len])!r}")
        datalen = int(match[3])
        if datalen == 0:
            if buffer[end_of_len:end_of_len + 1] != b"\n":
                raise RelpProtocolError("RELP: frame without trailer")
            frames.append((int(match[1]), match[2].decode(), b""))
            del buffer[:end_of_len + 1]
            continue
        total = end_of_len + 1 + datalen + 1
        if len(buffer) < total:
            break
        if buffer[end_of_len:end_of_len + 1] != b" " or buffer[total - 1:total] != b"\n":
            raise RelpProtocolError("RELP: frame data or trailer malformed")
        frames.append((int(match[1]), match[2].decode(), bytes(buffer[end_of_len + 1:total - 1])))
        del buffer[:total]
    return frames


class RelpTransport(Transport):
    def __init__(self, dest) -> None:  # type: ignore[no-untyped-def]
        super().__init__(dest)
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.txnr = 0
        self.by_txnr: dict[int, int] = {}

    def _next_txnr(self) -> int:
        self.txnr = self.txnr + 1 if self.txnr < MAX_TXNR else 1
        return self.txnr

    def open(self) -> None:
        self.sock = net.connect(self.dest)
        self.buffer.clear()
        self.by_txnr.clear()
        self.txnr = 0
        txnr = self._next_txnr()
        net.send_all(self.sock, frame(txnr, "open", OPEN_OFFERS.encode()))
        deadline = time.monotonic() + self.dest.connect_timeout
        while time.monotonic() < deadline:
            for number, command, data in self._read(deadline - time.monotonic()):
                if command == "rsp" and number == txnr:
                    if not data.startswith(b"200"):
                        raise HardError(f"RELP open refused: {data[:200].decode(errors='replace')}")
                    if b"commands=" in data and b"syslog" not in data.split(b"commands=", 1)[1]:
                        raise HardError("RELP server does not offer the syslog command")
                    return
        raise TransportError("RELP: no answer to open")

    def _read(self, timeout: float) -> list[tuple[int, str, bytes]]:
        assert self.sock is not None
        data = net.read_available(self.sock, timeout)
        if data is None:
            raise TransportError("RELP: receiver closed the connection")
        self.buffer += data
        frames = parse_frames(self.buffer)
        for number, command, _ in frames:
            if command == "serverclose":
                raise TransportError(f"RELP: server closed the session (txnr {number})")
        return frames

    def send(self, items: Sequence[Item]) -> None:
        if self.sock is None:
            raise TransportError("not connected")
        out = []
        for seq, message in items:
            txnr = self._next_txnr()
            self.by_txnr[txnr] = seq
            out.append(frame(txnr, "syslog", message))
        self.inflight.add(seq for seq, _ in items)
        net.send_all(self.sock, b"".join(out))

    def poll(self, timeout: float) -> int | None:
        if self.sock is None:
            raise TransportError("not connected")
        acked = []
        for number, command, data in self._read(timeout if len(self.inflight) else 0):
            if command != "rsp":
                continue
            seq = self.by_txnr.pop(number, None)
            if seq is None:
                continue
            if not data.startswith(b"200"):
                raise TransportError(f"RELP: message {seq} refused: {data[:200].decode(errors='replace')}")
            acked.append(seq)
        if acked:
            self.inflight.ack(acked)
        return self.inflight.acked

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            if not self.inflight:
                self.sock.sendall(frame(self._next_txnr(), "close"))
                self._read(0.2)
        except (OSError, TransportError):
            pass
        net.close_quietly(self.sock)
        self.sock = None
