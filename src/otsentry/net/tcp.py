"""Per-direction TCP stream reassembly for a passive sensor.

A tap sees what the endpoints see, plus capture artefacts: it may join mid-connection, see
retransmissions and reordering, and miss segments. Each direction of a flow is one
:class:`TcpStream` that turns segments into in-order bytes for the protocol analyzer:

* in-order data goes straight through (the common case costs one comparison);
* out-of-order segments wait in a bounded buffer until the hole is filled;
* retransmitted and overlapping bytes already delivered are dropped (first copy wins, the
  policy of most end hosts and of Suricata's default);
* a hole is declared lost — the analyzer is told with ``on_gap`` and resynchronises — when the
  receiver acknowledges past it (it got bytes we never saw), when the wait buffer is full, or
  when the flow ends.

Memory per direction is bounded by ``max_pending`` bytes of waiting segments.
"""

from __future__ import annotations

from collections.abc import Callable

SEQ_MOD = 1 << 32
HALF = 1 << 31

DeliverFn = Callable[[bytes], None]
GapFn = Callable[[], None]


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in 32-bit sequence space, as a signed distance."""
    d = (a - b) & 0xFFFFFFFF
    return d - SEQ_MOD if d >= HALF else d


class TcpStats:
    """Counters over all streams of a sensor (kept off the hot objects)."""

    __slots__ = ("gaps", "midstream", "out_of_order", "overflow", "retransmitted_bytes", "segments")

    def __init__(self) -> None:
        self.segments = 0
        self.out_of_order = 0
        self.retransmitted_bytes = 0
        self.gaps = 0
        self.midstream = 0
        self.overflow = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class TcpStream:
    """Reassembles one direction of one TCP connection."""

    __slots__ = ("acked", "deliver", "gap", "max_pending", "next_seq", "pending", "pending_bytes", "stats")

    def __init__(
        self, deliver: DeliverFn, gap: GapFn, stats: TcpStats, max_pending: int = 256 * 1024
    ) -> None:
        self.deliver = deliver
        self.gap = gap
        self.stats = stats
        self.max_pending = max_pending
        self.next_seq: int | None = None  # next byte we expect; None before the first segment
        self.pending: dict[int, bytes] = {}  # out-of-order segments by sequence number
        self.pending_bytes = 0
        self.acked: int | None = None  # highest ack the receiver sent for this direction

    def syn(self, isn: int) -> None:
        """A SYN fixes the initial sequence number: data starts at ``isn + 1``."""
        if self.next_seq is None:
            self.next_seq = (isn + 1) & 0xFFFFFFFF

    def segment(self, seq: int, data: bytes) -> None:
        """Handle one data-carrying segment."""
        stats = self.stats
        stats.segments += 1
        expected = self.next_seq
        if expected is None:
            # First bytes of a connection whose handshake we never saw: start here and let
            # the analyzer know it may be in the middle of a PDU.
            stats.midstream += 1
            self.gap()
            expected = seq
        rel = seq_diff(seq, expected)
        if rel == 0:
            self.next_seq = (seq + len(data)) & 0xFFFFFFFF
            self.deliver(data)
            if self.pending:
                self._drain()
            return
        if rel < 0:
            end = rel + len(data)
            if end <= 0:
                stats.retransmitted_bytes += len(data)
                return
            stats.retransmitted_bytes += -rel
            data = data[-rel:]
            self.next_seq = (expected + len(data)) & 0xFFFFFFFF
            self.deliver(data)
            if self.pending:
                self._drain()
            return
        # A hole before this segment.
        stats.out_of_order += 1
        if self.acked is not None and seq_diff(self.acked, seq) >= 0:
            # The receiver already acknowledged bytes up to here: the hole was sent and we missed it.
            self._store(seq, data)
            self._skip_hole()
            return
        self._store(seq, data)
        if self.pending_bytes > self.max_pending:
            stats.overflow += 1
            self._skip_hole()

    def ack(self, ack: int) -> None:
        """The receiver acknowledged up to ``ack``; a hole below it will never be filled."""
        if self.acked is None or seq_diff(ack, self.acked) > 0:
            self.acked = ack
        if self.pending and self.next_seq is not None and seq_diff(ack, self.next_seq) > 0:
            first = min(self.pending, key=lambda s: seq_diff(s, self.next_seq or 0))
            if seq_diff(ack, first) >= 0:
                self._skip_hole()

    def flush(self) -> None:
        """The flow is over: deliver what waits behind holes, each hole signalled."""
        while self.pending:
            self._skip_hole()

    def _store(self, seq: int, data: bytes) -> None:
        old = self.pending.get(seq)
        if old is None or len(old) < len(data):
            self.pending[seq] = data
            self.pending_bytes += len(data) - (len(old) if old else 0)

    def _skip_hole(self) -> None:
        """Declare the hole before the earliest waiting segment lost and continue there."""
        expected = self.next_seq if self.next_seq is not None else 0
        first = min(self.pending, key=lambda s: seq_diff(s, expected))
        if seq_diff(first, expected) > 0:
            self.stats.gaps += 1
            self.gap()
            self.next_seq = first
        self._drain()

    def _drain(self) -> None:
        """Deliver waiting segments that are now in order (trimming overlaps)."""
        pending = self.pending
        while pending:
            expected = self.next_seq
            assert expected is not None
            data = pending.pop(expected, None)
            if data is None:
                # A waiting segment may overlap the delivered edge rather than start on it.
                for seq in list(pending):
                    rel = seq_diff(seq, expected)
                    if rel < 0:
                        seg = pending.pop(seq)
                        self.pending_bytes -= len(seg)
                        if rel + len(seg) > 0:
                            self.stats.retransmitted_bytes += -rel
                            self._store(expected, seg[-rel:])
                        else:
                            self.stats.retransmitted_bytes += len(seg)
                data = pending.pop(expected, None)
                if data is None:
                    return
            self.pending_bytes -= len(data)
            self.next_seq = (expected + len(data)) & 0xFFFFFFFF
            self.deliver(data)
