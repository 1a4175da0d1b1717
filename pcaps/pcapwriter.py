"""Writers for libpcap files (either byte order, µs or ns) and pcapng (several interfaces, EPB and SPB).

Formats: libpcap per https://wiki.wireshark.org/Development/LibpcapFileFormat and
draft-ietf-opsawg-pcap; pcapng per draft-ietf-opsawg-pcapng (SHB 0x0A0D0D0A, IDB 1, SPB 3, EPB 6).
Nothing time- or host-dependent goes into a file, so the same frames give the same bytes.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

# Link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
SNAPLEN = 65535


class PcapWriter:
    """Classic libpcap: ``write`` takes the time in integer nanoseconds."""

    def __init__(
        self,
        out: BinaryIO,
        linktype: int = LINKTYPE_ETHERNET,
        nanosecond: bool = False,
        big_endian: bool = False,
        snaplen: int = SNAPLEN,
    ) -> None:
        self.out = out
        self.nanosecond = nanosecond
        self.snaplen = snaplen
        order = ">" if big_endian else "<"
        self._record = struct.Struct(order + "IIII")
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        out.write(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts_ns: int, data: bytes | bytearray) -> None:
        seconds, fraction = divmod(ts_ns, 1_000_000_000)
        if not self.nanosecond:
            fraction //= 1000
        caplen = min(len(data), self.snaplen)
        self.out.write(self._record.pack(seconds, fraction, caplen, len(data)))
        self.out.write(data[:caplen])


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _options(options: list[tuple[int, bytes]]) -> bytes:
    if not options:
        return b""
    body = b"".join(struct.pack("<HH", code, len(value)) + _pad4(value) for code, value in options)
    return body + struct.pack("<HH", 0, 0)  # opt_endofopt


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


class PcapngWriter:
    """pcapng, little-endian: ``add_interface`` first, then ``write`` (EPB) or ``write_simple`` (SPB)."""

    SHB, IDB, SPB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000003, 0x00000006
    OPT_COMMENT, SHB_USERAPPL, IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 1, 4, 2, 3, 9

    def __init__(self, out: BinaryIO, application: str = "otsentry pcaps/generate.py") -> None:
        self.out = out
        self._resolution: list[int] = []  # timestamp units per second, per interface
        self._snaplen: list[int] = []
        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)  # byte-order magic, v1.0, section length unknown
        out.write(_block(self.SHB, body + _options([(self.SHB_USERAPPL, application.encode())])))

    def add_interface(
        self, linktype: int, name: str, description: str = "", tsresol_exp10: int = 6, snaplen: int = SNAPLEN
    ) -> int:
        """Describe an interface; returns its id. ``tsresol_exp10`` 6 = µs, 9 = ns."""
        options = [(self.IF_NAME, name.encode())]
        if description:
            options.append((self.IF_DESCRIPTION, description.encode()))
        if tsresol_exp10 != 6:
            options.append((self.IF_TSRESOL, bytes([tsresol_exp10])))
        body = struct.pack("<HHI", linktype, 0, snaplen) + _options(options)
        self.out.write(_block(self.IDB, body))
        self._resolution.append(10**tsresol_exp10)
        self._snaplen.append(snaplen)
        return len(self._resolution) - 1

    def write(self, interface: int, ts_ns: int, data: bytes, comment: str | None = None) -> None:
        """An Enhanced Packet Block."""
        units = ts_ns * self._resolution[interface] // 1_000_000_000
        caplen = min(len(data), self._snaplen[interface])
        body = struct.pack("<IIIII", interface, units >> 32, units & 0xFFFFFFFF, caplen, len(data))
        options = _options([(self.OPT_COMMENT, comment.encode())] if comment else [])
        self.out.write(_block(self.EPB, body + _pad4(data[:caplen]) + options))

    def write_simple(self, data: bytes) -> None:
        """A Simple Packet Block: interface 0, no timestamp."""
        caplen = min(len(data), self._snaplen[0])
        self.out.write(_block(self.SPB, struct.pack("<I", len(data)) + _pad4(data[:caplen])))
