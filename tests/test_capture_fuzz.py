"""Fuzz the capture readers: whatever the bytes, only frames or one CaptureError — never a hang."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture_makers import (
    LINKTYPE_ETHERNET,
    epb,
    frames_of,
    idb,
    pcap_bytes,
    shb,
    spb,
    transport_samples,
    wrap,
)
from otsentry.capture import CaptureError, RawFrame, read_capture

FRAMES = frames_of(wrap(LINKTYPE_ETHERNET, p) for p in transport_samples())
VALID_PCAP = pcap_bytes(FRAMES[:4])
VALID_PCAPNG = b"".join([shb(), idb(LINKTYPE_ETHERNET, 200, name="eth0", tsresol=9)]
                        + [epb(0, f.ts_ns, f.data) for f in FRAMES[:3]] + [spb(FRAMES[3].data[:200])])
PCAP_HEADERS = [pcap_bytes([], big_endian=be, nanosecond=ns) for be in (False, True) for ns in (False, True)]
PCAPNG_HEADERS = [shb(order) + idb(LINKTYPE_ETHERNET, order=order) for order in ("<", ">")]

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


SCRATCH = Path(tempfile.mkdtemp(prefix="otsentry-fuzz-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)


def read_all(content: bytes) -> list[RawFrame]:
    """Every frame before the error (if any); anything but CaptureError fails the test."""
    path = SCRATCH / "fuzz.cap"
    path.write_bytes(content)
    frames: list[RawFrame] = []
    try:
        frames.extend(read_capture(path))
    except CaptureError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    for frame in frames:
        assert isinstance(frame.data, bytes) and len(frame.data) <= 262144
    return frames


@FUZZ
@given(header=st.sampled_from(PCAP_HEADERS + PCAPNG_HEADERS), tail=st.binary(max_size=600))
def test_random_bytes_after_a_valid_header(header: bytes, tail: bytes) -> None:
    frames = read_all(header + tail)
    assert sum(16 + len(f.data) for f in frames) <= len(tail)


@FUZZ
@given(base=st.sampled_from([VALID_PCAP, VALID_PCAPNG]),
       edits=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.integers(0, 4000))
def test_mutated_and_truncated_valid_files(base: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    content = bytearray(base)
    for pos, value in edits:
        content[pos % len(content)] = value
    read_all(bytes(content[:max(cut, 4)]))


@FUZZ
@given(content=st.binary(max_size=300))
def test_random_files(content: bytes) -> None:
    read_all(content)
