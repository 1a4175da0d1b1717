"""Capture file readers: classic libpcap (either byte order, µs or ns) and pcapng.

Formats: draft-ietf-opsawg-pcap (libpcap file format) and draft-ietf-opsawg-pcapng (pcapng).
``read_capture`` is pure Python over a memory map (the file is never read whole into memory);
``read_capture_libpcap`` reads through libpcap (pcapy-ng), the binding live capture uses too.
Both yield the same ``RawFrame`` records. Anything wrong with the file — bad magic, a record cut short,
an absurd length — ends the iteration with one ``CaptureError`` that names the file, the byte offset
and the record number, after every good record before the damage has been yielded.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

# File magics, read as a little-endian uint32 from the first four bytes.
PCAP_MAGIC_US = 0xA1B2C3D4  # libpcap, microsecond timestamps
PCAP_MAGIC_NS = 0xA1B23C4D  # libpcap, nanosecond timestamps
PCAP_MAGIC_MODIFIED = 0xA1B2CD34  # Kuznetzov's "modified" libpcap: not supported, named in the error
PCAPNG_SHB = 0x0A0D0D0A  # pcapng Section Header Block type (a palindrome: same in both byte orders)
PCAPNG_BOM = 0x1A2B3C4D  # pcapng byte-order magic

# pcapng block types (draft-ietf-opsawg-pcapng §10.1).
BLOCK_IDB = 0x00000001  # Interface Description Block
BLOCK_PB = 0x00000002  # Packet Block (obsolete)
BLOCK_SPB = 0x00000003  # Simple Packet Block
BLOCK_EPB = 0x00000006  # Enhanced Packet Block

# pcapng option codes (draft-ietf-opsawg-pcapng §4.2 and §4.2 IDB options).
OPT_ENDOFOPT = 0
OPT_IF_NAME = 2
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

# Minimum block lengths (header + fixed fields + trailing length), per block type.
MIN_BLOCK = 12
MIN_SHB = 28
MIN_IDB = 20
MIN_SPB = 16
MIN_EPB = 32  # the obsolete PB has the same fixed part

# Limits that tell a damaged file from a real one.
MAX_CAPLEN = 262144  # libpcap's MAXIMUM_SNAPLEN; Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD
SNAPLEN_FLOOR = 65535  # writers often put a small or zero snaplen in the header: never trust it below this
SNAPLEN_SLACK = 1024  # e.g. an FCS or a VLAN tag added after the snaplen was applied
MAX_BLOCK = 16 * 1024 * 1024  # no real pcapng block (packet, name table, custom) comes near this

STREAM_CHUNK = 1 << 22  # read size for inputs that cannot be memory-mapped (pipes)

# pcap_datalink() returns DLT_* values; map the ones that differ back to the LINKTYPE_* in the file
# (https://www.tcpdump.org/linktypes.html: DLT_RAW is 12 on most systems, 14 on OpenBSD → LINKTYPE_RAW 101).
DLT_TO_LINKTYPE = {12: 101, 14: 101}


class CaptureError(Exception):
    """One clear line: what is wrong with which file, at which byte offset and record."""


class RawFrame(NamedTuple):
    """One captured frame as read from the file.

    A NamedTuple rather than a frozen dataclass: it is just as immutable and typed, and building one is
    three times cheaper (measured: a frozen slots dataclass caps the reader at ~0.4 M records/s).
    """

    ts: float  # seconds since the epoch
    linktype: int  # LINKTYPE_* of the frame's interface
    data: bytes  # the captured bytes (may be shorter than wire_len when the capture was snapped)
    wire_len: int  # length on the wire
    ifname: str | None  # pcapng if_name of the interface, else None


_new_frame = tuple.__new__


class _Source:
    """The file's bytes: the whole file memory-mapped, or — for pipes — a window refilled in chunks.

    ``data`` holds the bytes from file offset ``base`` on. Readers index ``data`` directly and call
    ``more`` only when a record runs past its end.
    """

    __slots__ = ("base", "data", "file", "map", "stream_eof")

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.base = 0
        self.map: mmap.mmap | None = None
        self.stream_eof = True
        try:
            self.map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            self.data: bytes | mmap.mmap = self.map
        except (OSError, ValueError):  # empty file, pipe, or not a real file: read it in chunks
            self.stream_eof = False
            self.data = b""
            self.more(0, 24)

    def more(self, off: int, need: int) -> int:
        """Make ``need`` bytes from ``off`` available if the input has them; return their new offset."""
        if self.stream_eof:
            return off
        chunks = [self.data[off:]]
        have = len(chunks[0])
        while have < need:
            chunk = self.file.read(max(STREAM_CHUNK, need - have))
            if not chunk:
                self.stream_eof = True
                break
            chunks.append(chunk)
            have += len(chunk)
        self.base += off
        self.data = b"".join(chunks)
        return 0

    def close(self) -> None:
        self.data = b""
        if self.map is not None:
            self.map.close()
        self.file.close()


def read_capture(path: str | Path) -> Iterator[RawFrame]:
    """Frames of a pcap or pcapng file, in file order.

    The file is opened and its magic checked now (a non-capture raises ``CaptureError`` at once);
    records are read lazily.
    """
    try:
        file = open(path, "rb")  # noqa: SIM115 - the generator closes it
    except OSError as exc:
        raise CaptureError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        src = _Source(file)
        head = bytes(src.data[:24])
    except OSError as exc:
        file.close()
        raise CaptureError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(head) < 4:
        src.close()
        raise CaptureError(f"{path}: not a capture file: only {len(head)} bytes long")
    magic_le = int.from_bytes(head[:4], "little")
    magic_be = int.from_bytes(head[:4], "big")
    if magic_le == PCAPNG_SHB:
        return _pcapng_frames(src, str(path))
    for magic, order in ((magic_le, "<"), (magic_be, ">")):
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            if len(head) < 24:
                src.close()
                raise CaptureError(f"{path}: pcap file header cut short: {len(head)} of 24 bytes")
            return _pcap_frames(src, str(path), order, nanosecond=magic == PCAP_MAGIC_NS)
    src.close()
    if PCAP_MAGIC_MODIFIED in (magic_le, magic_be):
        raise CaptureError(f"{path}: modified (Kuznetzov) libpcap format is not supported")
    raise CaptureError(f"{path}: not a pcap or pcapng file (magic 0x{head[:4].hex()} at offset 0)")


def _pcap_frames(src: _Source, path: str, order: str, nanosecond: bool) -> Iterator[RawFrame]:
    _, _, _, _, _, snaplen, network = struct.unpack_from(order + "IHHiIII", src.data, 0)
    linktype = network & 0x03FFFFFF  # upper bits carry FCS information (draft-ietf-opsawg-pcap §4)
    limit = min(MAX_CAPLEN, max(snaplen, SNAPLEN_FLOOR) + SNAPLEN_SLACK)
    scale = 1_000_000_000.0 if nanosecond else 1_000_000.0
    record = struct.Struct(order + "IIII").unpack_from
    new, cls = _new_frame, RawFrame
    buf = src.data
    end = len(buf)
    off = 24
    count = 0
    try:
        while True:
            body = off + 16
            if body > end:
                off = src.more(off, 16)
                buf, body = src.data, off + 16
                end = len(buf)
                if off == end:
                    return
                if body > end:
                    raise CaptureError(f"{path}: file cut short in the middle of a packet header at offset "
                                       f"{src.base + off} (record {count + 1})")
            sec, frac, caplen, wire_len = record(buf, off)
            nxt = body + caplen
            if caplen > limit:
                raise CaptureError(f"{path}: absurd record length {caplen} (snaplen {snaplen}) at offset "
                                   f"{src.base + off} (record {count + 1})")
            if nxt > end:
                off = src.more(off, 16 + caplen)
                buf, body = src.data, off + 16
                end, nxt = len(buf), body + caplen
                if nxt > end:
                    raise CaptureError(f"{path}: file cut short in the middle of a packet at offset "
                                       f"{src.base + off} (record {count + 1}: {caplen} bytes announced, "
                                       f"{end - body} present)")
            count += 1
            yield new(cls, (sec + frac / scale, linktype, buf[body:nxt], wire_len, None))
            off = nxt
    except (OSError, ValueError, struct.error) as exc:  # an I/O error mid-file; never let it escape raw
        raise CaptureError(f"{path}: read error after record {count}: {exc}") from None
    finally:
        src.close()


class _Interface:
    """What a pcapng Interface Description Block says about the packets that refer to it."""

    __slots__ = ("divisor", "linktype", "name", "snaplen", "tsoffset")

    def __init__(self, linktype: int, snaplen: int, name: str | None, divisor: int, tsoffset: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.name = name
        self.divisor = divisor  # timestamp units per second (if_tsresol)
        self.tsoffset = tsoffset  # seconds to add (if_tsoffset)

    def seconds(self, units: int) -> float:
        whole, frac = divmod(units, self.divisor)  # exact to the unit, even for ns since the epoch
        return whole + self.tsoffset + frac / self.divisor


def _parse_idb(buf: bytes | mmap.mmap, off: int, blen: int, order: str) -> _Interface:
    linktype, _, snaplen = struct.unpack_from(order + "HHI", buf, off + 8)
    name: str | None = None
    divisor = 1_000_000  # default if_tsresol: 10^-6
    tsoffset = 0
    opt_hdr = struct.Struct(order + "HH").unpack_from
    pos, opts_end = off + 16, off + blen - 4
    while pos + 4 <= opts_end:
        code, length = opt_hdr(buf, pos)
        value_at = pos + 4
        if code == OPT_ENDOFOPT or value_at + length > opts_end:
            break  # end of options, or a damaged option list: keep what was read
        if code == OPT_IF_NAME:
            name = bytes(buf[value_at:value_at + length]).rstrip(b"\0").decode("utf-8", "replace")
        elif code == OPT_IF_TSRESOL and length >= 1:
            resol = buf[value_at]
            # MSB clear: 10^-n seconds per unit; MSB set: 2^-n (draft-ietf-opsawg-pcapng §4.2, if_tsresol).
            divisor = 2 ** (resol & 0x7F) if resol & 0x80 else 10**resol
        elif code == OPT_IF_TSOFFSET and length >= 8:
            tsoffset = struct.unpack_from(order + "q", buf, value_at)[0]
        pos = value_at + ((length + 3) & ~3)
    return _Interface(linktype, snaplen, name, divisor, tsoffset)


def _pcapng_frames(src: _Source, path: str) -> Iterator[RawFrame]:
    new, cls = _new_frame, RawFrame
    interfaces: list[_Interface] = []
    order = "<"
    block_hdr = trailer = epb = pb = None  # set by each SHB, in that section's byte order
    last_ts = 0.0
    buf = src.data
    end = len(buf)
    off = 0
    count = 0
    problem = ""  # set before a break: what is wrong at ``off``
    try:
        while True:
            if off + MIN_BLOCK > end:
                off = src.more(off, MIN_BLOCK)
                buf = src.data
                end = len(buf)
                if off == end:
                    return
                if off + MIN_BLOCK > end:
                    problem = "file cut short in the middle of a block header"
                    break
            if buf[off:off + 4] == b"\x0a\x0d\x0d\x0a":  # a new section: its byte order rules from here on
                bom = bytes(buf[off + 8:off + 12])
                if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                    problem = f"bad pcapng byte-order magic 0x{bom.hex()}"
                    break
                order = "<" if bom[0] == 0x4D else ">"
                block_hdr = struct.Struct(order + "II").unpack_from
                trailer = struct.Struct(order + "I").unpack_from
                epb = struct.Struct(order + "IIIII").unpack_from
                pb = struct.Struct(order + "HHIIII").unpack_from
                interfaces = []
            elif block_hdr is None:
                problem = "pcapng file does not start with a section header block"
                break
            btype, blen = block_hdr(buf, off)
            if blen < MIN_BLOCK or blen & 3 or blen > MAX_BLOCK:
                problem = f"bad pcapng block length {blen} (block type 0x{btype:x})"
                break
            nxt = off + blen
            if nxt > end:
                off = src.more(off, blen)
                buf = src.data
                end, nxt = len(buf), off + blen
                if nxt > end:
                    problem = (f"file cut short in the middle of a block ({blen} bytes announced, "
                               f"{end - off} present)")
                    break
            if trailer(buf, nxt - 4)[0] != blen:
                copy = trailer(buf, nxt - 4)[0]
                problem = f"pcapng block length {blen} does not match its trailing copy {copy}"
                break

            if btype in (BLOCK_EPB, BLOCK_PB):
                if blen < MIN_EPB:
                    problem = f"packet block too short ({blen} bytes)"
                    break
                if btype == BLOCK_EPB:
                    iface_id, ts_hi, ts_lo, caplen, wire_len = epb(buf, off + 8)
                else:
                    iface_id, _, ts_hi, ts_lo, caplen, wire_len = pb(buf, off + 8)
                if caplen > blen - MIN_EPB or caplen > MAX_CAPLEN:
                    problem = f"absurd packet length {caplen} in a {blen}-byte block"
                    break
                if iface_id >= len(interfaces):
                    problem = f"packet refers to interface {iface_id}, but {len(interfaces)} are described"
                    break
                iface = interfaces[iface_id]
                last_ts = iface.seconds((ts_hi << 32) | ts_lo)
                count += 1
                data = buf[off + 28:off + 28 + caplen]
                yield new(cls, (last_ts, iface.linktype, data, wire_len, iface.name))
            elif btype == BLOCK_SPB:
                if not interfaces:
                    problem = "simple packet block before any interface description block"
                    break
                iface = interfaces[0]  # an SPB always belongs to the section's first interface
                wire_len = trailer(buf, off + 8)[0]
                caplen = min(wire_len, iface.snaplen) if iface.snaplen else wire_len
                if caplen > blen - MIN_SPB or caplen > MAX_CAPLEN:
                    problem = f"absurd packet length {caplen} in a {blen}-byte simple packet block"
                    break
                count += 1
                # An SPB carries no timestamp: keep packet time monotonic with the previous packet's.
                data = buf[off + 12:off + 12 + caplen]
                yield new(cls, (last_ts, iface.linktype, data, wire_len, iface.name))
            elif btype == BLOCK_IDB:
                if blen < MIN_IDB:
                    problem = f"interface description block too short ({blen} bytes)"
                    break
                interfaces.append(_parse_idb(buf, off, blen, order))
            elif btype == PCAPNG_SHB:
                major = struct.unpack_from(order + "H", buf, off + 12)[0]
                if blen < MIN_SHB or major != 1:
                    problem = f"unsupported pcapng section header (version {major}, {blen} bytes)"
                    break
            # Any other block (name resolution, interface statistics, decryption secrets, custom…) is skipped.
            off = nxt
        raise CaptureError(f"{path}: {problem} at offset {src.base + off} (record {count + 1})")
    except (OSError, ValueError, struct.error) as exc:
        raise CaptureError(f"{path}: read error after record {count}: {exc}") from None
    finally:
        src.close()


def read_capture_libpcap(path: str | Path) -> Iterator[RawFrame]:
    """Frames read through libpcap (pcapy-ng): the same records as ``read_capture``.

    libpcap delivers microsecond timestamps (nanosecond files are rounded down to the µs) and no
    interface names; a pcapng file whose interfaces have different link types is refused by libpcap.
    """
    import pcapy  # the binding is only needed on this path

    try:
        reader = pcapy.open_offline(str(path))
    except pcapy.PcapError as exc:
        raise CaptureError(f"{path}: {exc}") from None
    dlt = reader.datalink()
    return _libpcap_frames(reader, str(path), DLT_TO_LINKTYPE.get(dlt, dlt), pcapy.PcapError)


def _libpcap_frames(reader: Any, path: str, linktype: int, pcap_error: type[Exception]) -> Iterator[RawFrame]:
    new, cls = _new_frame, RawFrame
    next_packet = reader.next
    count = 0
    try:
        while True:
            header, data = next_packet()
            if header is None:
                return
            sec, usec = header.getts()
            count += 1
            yield new(cls, (sec + usec / 1_000_000.0, linktype, data, header.getlen(), None))
    except pcap_error as exc:
        raise CaptureError(f"{path}: libpcap: {exc} (record {count + 1})") from None
    finally:
        reader.close()
