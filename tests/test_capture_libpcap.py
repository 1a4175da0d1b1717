"""The libpcap path (pcapy-ng) yields the same frames as the pure-Python reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture_makers import (
    BASE_NS,
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    editcap,
    epb,
    frames_of,
    idb,
    pcap_bytes,
    shb,
    transport_samples,
    wrap,
    write_pcap,
    write_pcapng,
)
from otsentry.capture import CaptureError, RawFrame, read_capture, read_capture_libpcap
from shared import needs_shared, needs_tshark, shared_captures

ALL_SHARED = shared_captures(".")


@needs_shared
def test_both_readers_yield_identical_frames_on_every_shared_capture() -> None:
    assert len(ALL_SHARED) >= 150
    total = 0
    for path in ALL_SHARED:
        ours = list(read_capture(path))
        theirs = list(read_capture_libpcap(path))
        assert ours == theirs, path
        total += len(ours)
    assert total > 50_000


@pytest.mark.parametrize("linktype", [LINKTYPE_ETHERNET, LINKTYPE_RAW, 0, 113, 276, 228, 229])
def test_link_types_map_back_from_libpcap_dlt_values(tmp_path: Path, linktype: int) -> None:
    samples = transport_samples()
    if linktype == 228:
        samples = [p for p in samples if p.version == 4]
    if linktype == 229:
        samples = [p for p in samples if p.version == 6]
    path = write_pcap(tmp_path / "f.pcap", frames_of(wrap(linktype, p) for p in samples), linktype=linktype)
    assert list(read_capture_libpcap(path)) == list(read_capture(path))
    assert {f.linktype for f in read_capture_libpcap(path)} == {linktype}


@needs_tshark  # editcap comes with it
def test_big_endian_nanosecond_and_pcapng_files(tmp_path: Path) -> None:
    frames = [f._replace(ts_ns=f.ts_ns + 999) for f in frames_of(wrap(1, p) for p in transport_samples())]
    path = write_pcap(tmp_path / "be.pcap", frames, big_endian=True, nanosecond=True)
    ours, theirs = list(read_capture(path)), list(read_capture_libpcap(path))
    assert [f[1:] for f in ours] == [f[1:] for f in theirs]
    # libpcap hands out µs: the nanoseconds are cut off, never rounded up
    assert all(0 <= a.ts - b.ts < 1.2e-6 for a, b in zip(ours, theirs, strict=True))
    as_pcapng = editcap(write_pcap(tmp_path / "us.pcap", frames), tmp_path / "x.pcapng", "pcapng")
    assert [f[:4] for f in read_capture_libpcap(as_pcapng)] == [f[:4] for f in read_capture(as_pcapng)]


def test_errors_are_capture_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01" * 100)
    with pytest.raises(CaptureError, match=r"garbage\.bin"):
        read_capture_libpcap(garbage)
    with pytest.raises(CaptureError):
        read_capture_libpcap(tmp_path / "missing.pcap")

    frames = frames_of(wrap(1, p) for p in transport_samples())
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(pcap_bytes(frames)[:-10])
    got: list[RawFrame] = []
    with pytest.raises(CaptureError, match=r"cut.pcap: libpcap: .*truncated.* \(record 8\)"):
        got.extend(read_capture_libpcap(cut))
    assert [f.data for f in got] == [f.data for f in frames[:7]]

    # libpcap takes one link type per file: a pcapng with two is refused (the pure-Python reader takes it)
    mixed = write_pcapng(tmp_path / "mixed.pcapng", [
        shb(), idb(LINKTYPE_ETHERNET), idb(LINKTYPE_RAW),
        epb(0, BASE_NS // 1000, frames[0].data), epb(1, BASE_NS // 1000, frames[1].data[14:])])
    assert len(list(read_capture(mixed))) == 2
    with pytest.raises(CaptureError):
        list(read_capture_libpcap(mixed))
