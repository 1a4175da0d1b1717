"""IPv4 and IPv6 fragment reassembly with bounded memory and packet-time timeouts.

A datagram is keyed by (src, dst, id, proto) for IPv4 (RFC 791) and (src, dst, id) for IPv6
(RFC 8200 §4.5: only the offset-zero fragment's Next Header counts). Overlapping fragments keep the
bytes that arrived first (first wins, as Linux and Suricata's default BSD-like policy do for the
overlapping part) and are counted, since overlaps are an evasion technique, not normal traffic.

Bounds: a datagram may not exceed 65535 bytes (RFC 791/8200 without jumbograms — the
"ping of death" check), a datagram holds at most ``MAX_FRAGMENTS`` pieces, and the reassembler holds at
most ``max_datagrams`` datagrams and ``max_bytes`` buffered bytes; past a cap the oldest datagram goes.
A datagram still incomplete ``timeout`` seconds (packet time) after its first fragment expires; expiry is
checked as fragments arrive and at ``flush``, so unfragmented traffic pays nothing for it.

Counters (in the Counter passed in): ``ip_reassembled``, ``ip_frag_expired``, ``ip_frag_evicted``,
``ip_frag_overlap``, ``ip_frag_bad`` (beyond 64 KiB, empty, too many pieces, or contradicting the known end).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from collections.abc import Hashable

MAX_DATAGRAM = 65535
MAX_FRAGMENTS = 1024  # legitimate datagrams have a few dozen at most (64 KiB / 1280-byte IPv6 MTU = 52)


class _Datagram:
    """Pieces of one datagram: a growing buffer plus the sorted, disjoint byte ranges filled so far."""

    __slots__ = ("buf", "ends", "first_ts", "pieces", "proto", "starts", "total", "wire_len")

    def __init__(self, ts: float) -> None:
        self.buf = bytearray()
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.total: int | None = None  # known once the last fragment (MF clear) arrived
        self.first_ts = ts
        self.proto: int | None = None  # L4 protocol, from the offset-zero fragment
        self.wire_len = 0  # sum of the fragments' frame lengths, for byte counters
        self.pieces = 0


class FragmentReassembler:
    """Collects fragments; ``add`` returns the whole payload once the last hole is filled."""

    def __init__(self, counters: Counter[str], timeout: float = 30.0, max_datagrams: int = 4096,
                 max_bytes: int = 32 * 1024 * 1024) -> None:
        self.counters = counters
        self.timeout = timeout
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.buffered = 0  # bytes held by incomplete datagrams
        self._datagrams: OrderedDict[Hashable, _Datagram] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._datagrams)

    def add(self, key: Hashable, offset: int, more: bool, chunk: bytes, ts: float, wire_len: int,
            proto: int | None) -> tuple[bytes, int, int] | None:
        """Add one fragment; ``proto`` is the L4 protocol if this fragment knows it (offset 0, or IPv4).

        Returns ``(payload, proto, wire_len)`` of the completed datagram, else None.
        """
        datagrams = self._datagrams
        self.expire(ts)
        end = offset + len(chunk)
        if end > MAX_DATAGRAM or not chunk:  # past 64 KiB, or an empty fragment that carries nothing
            self.counters["ip_frag_bad"] += 1
            return None
        dgram = datagrams.get(key)
        if dgram is None:
            while len(datagrams) >= self.max_datagrams:
                self._drop_oldest("ip_frag_evicted")
            dgram = datagrams[key] = _Datagram(ts)
        dgram.wire_len += wire_len
        if not more:
            if (dgram.total is not None and dgram.total != end) or (dgram.ends and dgram.ends[-1] > end):
                self.counters["ip_frag_bad"] += 1  # a second, different end: the first one stands
                return None
            dgram.total = end
        elif dgram.total is not None and end > dgram.total:
            self.counters["ip_frag_bad"] += 1  # data past the known end of the datagram
            return None
        if offset == 0 and proto is not None and dgram.proto is None:
            dgram.proto = proto
        dgram.pieces += 1
        if dgram.pieces > MAX_FRAGMENTS:
            self.counters["ip_frag_bad"] += 1
            self._remove(key, dgram)
            return None
        self._fill(dgram, offset, end, chunk)
        if dgram.total is not None and dgram.ends == [dgram.total] and dgram.starts[0] == 0:
            self._remove(key, dgram)
            self.counters["ip_reassembled"] += 1
            proto = dgram.proto if dgram.proto is not None else -1
            return bytes(dgram.buf[:dgram.total]), proto, dgram.wire_len
        while self.buffered > self.max_bytes and datagrams:
            self._drop_oldest("ip_frag_evicted")
        return None

    def _fill(self, dgram: _Datagram, start: int, end: int, chunk: bytes) -> None:
        """Copy the parts of [start, end) no earlier fragment filled, then merge the ranges."""
        starts, ends, buf = dgram.starts, dgram.ends, dgram.buf
        if len(buf) < end:
            self.buffered += end - len(buf)
            buf.extend(bytes(end - len(buf)))
        first = bisect_left(ends, start)  # ranges [first, last) overlap or touch [start, end]
        last = bisect_right(starts, end)
        pos = start
        for k in range(first, last):
            if starts[k] < end and ends[k] > start:
                self.counters["ip_frag_overlap"] += 1
            if starts[k] > pos:
                buf[pos:starts[k]] = chunk[pos - start:starts[k] - start]
            pos = max(pos, ends[k])
        if pos < end:
            buf[pos:end] = chunk[pos - start:]
        if first < last:
            start, end = min(start, starts[first]), max(end, ends[last - 1])
        starts[first:last] = [start]
        ends[first:last] = [end]

    def expire(self, now: float) -> None:
        """Drop datagrams whose first fragment is older than the timeout (packet time)."""
        datagrams = self._datagrams
        limit = now - self.timeout
        while datagrams:
            key, dgram = next(iter(datagrams.items()))
            if dgram.first_ts >= limit:
                break
            self._remove(key, dgram)
            self.counters["ip_frag_expired"] += 1

    def flush(self) -> None:
        """End of input: every incomplete datagram expires."""
        if self._datagrams:
            self.counters["ip_frag_expired"] += len(self._datagrams)
        self._datagrams.clear()
        self.buffered = 0

    def _drop_oldest(self, reason: str) -> None:
        key, dgram = next(iter(self._datagrams.items()))
        self._remove(key, dgram)
        self.counters[reason] += 1

    def _remove(self, key: Hashable, dgram: _Datagram) -> None:
        del self._datagrams[key]
        self.buffered -= len(dgram.buf)
