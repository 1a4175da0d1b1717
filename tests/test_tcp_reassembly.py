"""TCP stream reassembly: order, retransmission, overlap, holes, bounds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from otsentry.net.tcp import TcpStats, TcpStream, seq_diff


class Recorder:
    def __init__(self, max_pending: int = 256 * 1024) -> None:
        self.chunks: list[bytes | None] = []  # None marks a gap
        self.stats = TcpStats()
        self.stream = TcpStream(self.chunks.append, lambda: self.chunks.append(None), self.stats, max_pending)

    @property
    def data(self) -> bytes:
        return b"".join(c for c in self.chunks if c is not None)

    @property
    def gaps(self) -> int:
        return sum(1 for c in self.chunks if c is None)


def test_seq_diff_wraps() -> None:
    assert seq_diff(5, 0xFFFFFFFE) == 7
    assert seq_diff(0xFFFFFFFE, 5) == -7


def test_in_order_after_syn() -> None:
    r = Recorder()
    r.stream.syn(1000)
    r.stream.segment(1001, b"abc")
    r.stream.segment(1004, b"def")
    assert r.chunks == [b"abc", b"def"]


def test_out_of_order_is_held_until_the_hole_fills() -> None:
    r = Recorder()
    r.stream.syn(0)
    r.stream.segment(4, b"def")
    assert r.chunks == []
    r.stream.segment(1, b"abc")
    assert r.chunks == [b"abc", b"def"]
    assert r.stats.out_of_order == 1


def test_retransmission_and_overlap_first_copy_wins() -> None:
    r = Recorder()
    r.stream.syn(0)
    r.stream.segment(1, b"abcd")
    r.stream.segment(1, b"abcd")  # full retransmission
    r.stream.segment(3, b"XXef")  # overlaps the last two bytes, adds two new ones
    assert r.data == b"abcdef"
    assert r.stats.retransmitted_bytes == 6


def test_sequence_numbers_wrap_around() -> None:
    r = Recorder()
    r.stream.syn(0xFFFFFFFD)
    r.stream.segment(0xFFFFFFFE, b"ab")
    r.stream.segment(0, b"cd")
    r.stream.segment(2, b"ef")
    assert r.data == b"abcdef"


def test_midstream_pickup_signals_a_gap_first() -> None:
    r = Recorder()
    r.stream.segment(123456, b"xyz")
    assert r.chunks == [None, b"xyz"]
    assert r.stats.midstream == 1


def test_acked_hole_is_declared_lost() -> None:
    r = Recorder()
    r.stream.syn(0)
    r.stream.segment(1, b"aa")
    r.stream.segment(5, b"cc")  # bytes 3-4 missing
    r.stream.ack(7)  # the receiver has them: we never will
    assert r.chunks == [b"aa", None, b"cc"]
    assert r.stats.gaps == 1


def test_segment_behind_an_already_acked_hole_skips_at_once() -> None:
    r = Recorder()
    r.stream.syn(0)
    r.stream.segment(1, b"aa")
    r.stream.ack(9)
    r.stream.segment(7, b"dd")
    assert r.chunks == [b"aa", None, b"dd"]


def test_pending_buffer_is_bounded() -> None:
    r = Recorder(max_pending=100)
    r.stream.syn(0)
    r.stream.segment(1, b"a")
    for i in range(10):
        r.stream.segment(1000 + 30 * i, b"x" * 30)
    # Never more than the cap (plus the one segment that crossed it) waits.
    assert r.stream.pending_bytes <= 130
    assert r.stats.overflow >= 1
    assert r.gaps >= 1


def test_flush_delivers_what_waits_behind_holes() -> None:
    r = Recorder()
    r.stream.syn(0)
    r.stream.segment(10, b"later")
    r.stream.flush()
    assert r.chunks == [None, b"later"]


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=400),
    cuts=st.lists(st.integers(min_value=1, max_value=399), max_size=12),
    order=st.randoms(use_true_random=False),
    dups=st.lists(st.integers(min_value=0, max_value=20), max_size=5),
    isn=st.integers(min_value=0, max_value=0xFFFFFFFF),
)
def test_any_order_with_duplicates_rebuilds_the_stream(data, cuts, order, dups, isn) -> None:
    """Whatever the order and duplication, a lossless capture yields the exact byte stream."""
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    segments = [(points[i], data[points[i] : points[i + 1]]) for i in range(len(points) - 1)]
    segments += [segments[d % len(segments)] for d in dups]
    order.shuffle(segments)
    r = Recorder()
    r.stream.syn(isn)
    for offset, chunk in segments:
        r.stream.segment((isn + 1 + offset) & 0xFFFFFFFF, chunk)
    r.stream.flush()
    assert r.gaps == 0
    assert r.data == data
