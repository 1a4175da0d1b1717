"""pcap/pcapng reader: shared captures against capinfos/tshark, every format variant, every damage case."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from capture_makers import (
    BASE_NS,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    Frame,
    block,
    custom_block,
    editcap,
    epb,
    frames_of,
    idb,
    isb,
    nrb,
    packet_block,
    pcap_bytes,
    shb,
    spb,
    transport_samples,
    wrap,
    write_pcap,
    write_pcapng,
)
from otsentry.capture import CaptureError, RawFrame, pcapfile, read_capture
from shared import SHARED_PCAPS, needs_shared, needs_tshark, shared_captures, tshark_fields

ALL_SHARED = shared_captures(".")
FLOAT_STEP = Decimal("2.4e-7")  # spacing of floats near 1.7e9 s: the best a float timestamp can do
needs_capinfos = pytest.mark.skipif(shutil.which("capinfos") is None, reason="capinfos is not installed")


def us(ts: float) -> str:
    return f"{ts:.6f}"


def tshark_us(epoch: str) -> str:
    """tshark's nanosecond ``frame.time_epoch`` rounded to the µs, as ``us`` rounds a float."""
    return f"{Decimal(epoch):.6f}"


def sample_frames(linktype: int = LINKTYPE_ETHERNET) -> list[Frame]:
    return frames_of(wrap(linktype, p) for p in transport_samples())


# -- the shared captures ---------------------------------------------------------------------------------


@needs_shared
@needs_capinfos
def test_shared_captures_count_and_time_range_match_capinfos() -> None:
    """Every shared capture: frame count, earliest and latest time as Wireshark's wiretap reads them."""
    assert len(ALL_SHARED) >= 150
    out = subprocess.run(
        ["capinfos", "-T", "-r", "-M", "-c", "-a", "-e", "-S", *map(str, ALL_SHARED)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = {
        Path(name): (int(count), first, last)
        for name, count, first, last in (line.split("\t") for line in out.splitlines())
    }
    for path in ALL_SHARED:
        frames = list(read_capture(path))
        count, first, last = expected[path]
        assert len(frames) == count, path
        if frames:
            times = [f.ts for f in frames]
            assert (us(min(times)), us(max(times))) == (first, last), path


@needs_shared
@needs_tshark
def test_shared_captures_frame_by_frame_through_mergecap_pcapng(tmp_path: Path) -> None:
    """Captures of every link type merged into one multi-interface pcapng by mergecap: each frame's time,
    lengths and interface agree with tshark, and its bytes with the original pcap as we read it."""
    picks = [
        "icsnpp-c1222/c1222_over_ipv6.pcap",  # Linux SLL, IPv6
        "iti-ics/ModbusTCP/modbus_test_data_part2.pcap",  # Ethernet
        "zeek/modbus/fuzz-72.pcap",
        "wireshark-dlms/Output-Ciphered-Director.pcap",
    ]  # BSD null
    picks += [str(p.relative_to(SHARED_PCAPS)) for p in shared_captures("iti-ics/dnp3/opendnp3-3")[:2]]
    sources = [SHARED_PCAPS / name for name in picks]
    merged = tmp_path / "merged.pcapng"
    subprocess.run(["mergecap", "-a", "-F", "pcapng", "-w", str(merged), *map(str, sources)], check=True)
    originals = [f for src in sources for f in read_capture(src)]
    got = list(read_capture(merged))
    rows = tshark_fields(merged, ("frame.time_epoch", "frame.len", "frame.cap_len", "frame.interface_id"))
    assert len(got) == len(rows) == len(originals) > 300
    assert len({f.linktype for f in got}) >= 3
    for frame, original, (_, epoch, wire_len, cap_len, _) in zip(got, originals, rows, strict=True):
        assert us(frame.ts) == tshark_us(epoch)
        assert (frame.wire_len, len(frame.data)) == (int(wire_len), int(cap_len))
        assert (frame.ts, frame.linktype, frame.data, frame.wire_len) == original[:4]


@needs_shared
@needs_tshark  # editcap comes with it
def test_shared_capture_converted_by_editcap_reads_the_same(tmp_path: Path) -> None:
    src = SHARED_PCAPS / "icsnpp-c1222" / "c1222_over_ipv6.pcap"
    original = list(read_capture(src))
    as_pcapng = list(read_capture(editcap(src, tmp_path / "x.pcapng", "pcapng")))
    as_nsec = list(read_capture(editcap(src, tmp_path / "x.ns.pcap", "nsecpcap")))
    assert [f[:4] for f in as_pcapng] == [f[:4] for f in original]
    assert [(us(f.ts), f.linktype, f.data, f.wire_len) for f in as_nsec] == [
        (us(f.ts), f.linktype, f.data, f.wire_len) for f in original
    ]


# -- classic pcap variants ---------------------------------------------------------------------------------


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, big_endian: bool, nanosecond: bool) -> None:
    frames = sample_frames()
    frames[3] = frames[3]._replace(ts_ns=BASE_NS + 987_654_321)  # a sub-µs part: kept in ns files
    path = write_pcap(tmp_path / "f.pcap", frames, big_endian=big_endian, nanosecond=nanosecond)
    got = list(read_capture(path))
    assert [(f.linktype, f.data, f.wire_len, f.ifname) for f in got] == [
        (LINKTYPE_ETHERNET, f.data, len(f.data), None) for f in frames
    ]
    for frame, sent in zip(got, frames, strict=True):
        exact = Decimal(sent.ts_ns) / 10**9 if nanosecond else Decimal(sent.ts_ns // 1000) / 10**6
        assert abs(Decimal(frame.ts) - exact) < FLOAT_STEP


@needs_tshark
def test_big_endian_nanosecond_pcap_times_match_tshark(tmp_path: Path) -> None:
    frames = [f._replace(ts_ns=f.ts_ns + 789) for f in sample_frames()]
    path = write_pcap(tmp_path / "be.pcap", frames, big_endian=True, nanosecond=True)
    rows = tshark_fields(path, ("frame.time_epoch", "ip.src", "ipv6.src"))
    got = list(read_capture(path))
    assert len(rows) == len(got) == len(frames)
    for frame, row in zip(got, rows, strict=True):
        assert abs(Decimal(frame.ts) - Decimal(row[1])) < FLOAT_STEP
        assert row[2] or row[3]  # tshark decoded the IP layer: the file is well formed


def test_zero_length_records_are_frames(tmp_path: Path) -> None:
    frames = [Frame(BASE_NS, b""), Frame(BASE_NS + 1000, b"\x01\x02"), Frame(BASE_NS + 2000, b"", 60)]
    got = list(read_capture(write_pcap(tmp_path / "z.pcap", frames)))
    assert [(f.data, f.wire_len) for f in got] == [(b"", 0), (b"\x01\x02", 2), (b"", 60)]


def test_snapped_record_keeps_wire_length(tmp_path: Path) -> None:
    frames = [Frame(BASE_NS, b"\xaa" * 96, 1514)]
    [frame] = read_capture(write_pcap(tmp_path / "s.pcap", frames, snaplen=96))
    assert (len(frame.data), frame.wire_len) == (96, 1514)


def test_fcs_bits_in_the_linktype_field_are_masked(tmp_path: Path) -> None:
    # draft-ietf-opsawg-pcap §4: bits 26-31 of the LinkType field say whether frames carry an FCS.
    path = write_pcap(tmp_path / "fcs.pcap", sample_frames()[:1], linktype=(1 << 28) | (1 << 26) | 1)
    assert [f.linktype for f in read_capture(path)] == [1]


# -- pcapng ------------------------------------------------------------------------------------------------


def two_interface_blocks(order: str = "<") -> list[bytes]:
    eth = [wrap(LINKTYPE_ETHERNET, p) for p in transport_samples()]
    raw = [wrap(LINKTYPE_RAW, p) for p in transport_samples()]
    return [
        shb(order),
        idb(LINKTYPE_ETHERNET, 65535, name="eth0", order=order),  # default resolution: µs
        nrb(order),
        idb(LINKTYPE_RAW, 0, name="tun-ops", tsresol=9, order=order),  # ns
        idb(LINKTYPE_LINUX_SLL2, 0, name="any", tsresol=0x80 | 20, tsoffset=100, order=order),  # 2^-20 s
        epb(0, BASE_NS // 1000, eth[0], order=order),
        epb(1, BASE_NS + 1_001, raw[1], order=order),
        custom_block(order),
        epb(
            2,
            (BASE_NS // 10**9 - 100) * 2**20 + 2**19,
            wrap(LINKTYPE_LINUX_SLL2, transport_samples()[2]),
            order=order,
        ),
        isb(order),
        epb(0, BASE_NS // 1000 + 7, eth[3], order=order),
    ]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_link_types_names_and_resolutions(tmp_path: Path, order: str) -> None:
    path = write_pcapng(tmp_path / "multi.pcapng", two_interface_blocks(order))
    got = list(read_capture(path))
    assert [(f.linktype, f.ifname) for f in got] == [(1, "eth0"), (101, "tun-ops"), (276, "any"), (1, "eth0")]
    seconds = BASE_NS // 10**9
    assert [us(f.ts) for f in got] == [
        us(BASE_NS / 1e9),
        f"{seconds}.123457",
        f"{seconds}.500000",
        f"{seconds}.123463",
    ]
    assert got[1].ts == pytest.approx(seconds + 0.123457001, abs=2e-7)


@needs_tshark
def test_pcapng_times_and_link_types_match_tshark(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "multi.pcapng", two_interface_blocks())
    rows = tshark_fields(path, ("frame.time_epoch", "frame.interface_name", "ip.src"))
    # Wireshark 4.0 lists a custom block (0xBAD) as a record of its own, without time or interface;
    # we skip it like every non-packet block: frame numbers after such a block differ by one.
    custom = [row for row in rows if not row[1]]
    assert len(custom) == 1
    rows = [row for row in rows if row[1]]
    got = list(read_capture(path))
    assert len(rows) == len(got)
    for frame, (_, epoch, name, ip_src) in zip(got, rows, strict=True):
        assert (us(frame.ts), frame.ifname) == (tshark_us(epoch), name)
        assert ip_src  # tshark found the IP layer: the link type is right


def test_pcapng_sections_reset_byte_order_and_interfaces(tmp_path: Path) -> None:
    frame = wrap(LINKTYPE_ETHERNET, transport_samples()[0])
    blocks = [
        shb("<"),
        idb(LINKTYPE_ETHERNET, name="a", order="<"),
        epb(0, 1_000_000, frame, order="<"),
        shb(">"),
        idb(LINKTYPE_RAW, name="b", order=">"),
        epb(0, 2_000_000, frame[14:], order=">"),
    ]
    got = list(read_capture(write_pcapng(tmp_path / "s.pcapng", blocks)))
    assert [(f.ts, f.linktype, f.ifname, f.data) for f in got] == [
        (1.0, 1, "a", frame),
        (2.0, 101, "b", frame[14:]),
    ]


def test_pcapng_simple_and_obsolete_packet_blocks(tmp_path: Path) -> None:
    frames = [wrap(LINKTYPE_ETHERNET, p) for p in transport_samples()]
    long_frame = frames[7]
    blocks = [
        shb(),
        idb(LINKTYPE_ETHERNET, snaplen=128, name="tap0"),
        epb(0, 5_000_000, frames[0]),
        spb(long_frame[:128], wire_len=len(long_frame)),  # captured length = min(wire, snaplen)
        spb(frames[1]),
        packet_block(0, 6_000_000, frames[2]),
    ]
    got = list(read_capture(write_pcapng(tmp_path / "spb.pcapng", blocks)))
    assert [(f.data, f.wire_len, f.ifname) for f in got] == [
        (frames[0], len(frames[0]), "tap0"),
        (long_frame[:128], len(long_frame), "tap0"),
        (frames[1], len(frames[1]), "tap0"),
        (frames[2], len(frames[2]), "tap0"),
    ]
    assert [f.ts for f in got] == [5.0, 5.0, 5.0, 6.0]  # an SPB has no time: the previous packet's is kept


@needs_tshark
def test_simple_packet_blocks_agree_with_tshark(tmp_path: Path) -> None:
    frames = [wrap(LINKTYPE_ETHERNET, p) for p in transport_samples()]
    blocks = [shb(), idb(LINKTYPE_ETHERNET, snaplen=128)] + [spb(f[:128], wire_len=len(f)) for f in frames]
    path = write_pcapng(tmp_path / "spb.pcapng", blocks)
    rows = tshark_fields(path, ("frame.len", "frame.cap_len", "tcp.srcport", "udp.srcport"))
    got = list(read_capture(path))
    assert [(str(f.wire_len), str(len(f.data))) for f in got] == [(r[1], r[2]) for r in rows]
    assert all(r[3] or r[4] for r in rows)


# -- inputs that cannot be memory-mapped ---------------------------------------------------------------------


def read_through_fifo(tmp_path: Path, content: bytes) -> tuple[list[RawFrame], CaptureError | None]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(content,))
    writer.start()
    frames: list[RawFrame] = []
    error = None
    try:
        frames.extend(read_capture(fifo))
    except CaptureError as exc:
        error = exc
    writer.join()
    return frames, error


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_pipe_input_is_read_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setattr(pcapfile, "STREAM_CHUNK", 50)  # refills land in the middle of records
    frames = sample_frames() * 3
    if kind == "pcap":
        content = pcap_bytes(frames)
    else:
        packets = [epb(0, f.ts_ns // 1000, f.data) for f in frames]
        content = b"".join([shb(), idb(LINKTYPE_ETHERNET), *packets])
    got, error = read_through_fifo(tmp_path, content)
    assert error is None
    assert [f.data for f in got] == [f.data for f in frames]
    (tmp_path / "cut").mkdir()
    got, error = read_through_fifo(tmp_path / "cut", content[:-5])
    assert [f.data for f in got] == [f.data for f in frames[:-1]]
    assert error is not None and "cut short" in str(error)


# -- damage ------------------------------------------------------------------------------------------------


def record_offsets(frames: list[Frame]) -> list[int]:
    offsets, off = [], 24
    for frame in frames:
        offsets.append(off)
        off += 16 + len(frame.data)
    return offsets


def test_not_a_capture_fails_at_once(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"this is not a capture file at all\n" * 4)
    with pytest.raises(CaptureError, match=r"notes.txt: not a pcap or pcapng file \(magic 0x74686973"):
        read_capture(garbage)  # raised by the call itself, before any iteration
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(CaptureError, match="only 0 bytes long"):
        read_capture(empty)
    with pytest.raises(CaptureError, match="cannot open"):
        read_capture(tmp_path / "missing.pcap")
    with pytest.raises(CaptureError, match=r"cannot (open|read)"):
        list(read_capture(tmp_path))
    short = tmp_path / "short.pcap"
    short.write_bytes(pcap_bytes([])[:20])
    with pytest.raises(CaptureError, match="header cut short: 20 of 24 bytes"):
        read_capture(short)
    kuznetzov = tmp_path / "kuz.pcap"
    kuznetzov.write_bytes(bytes.fromhex("34cdb2a1") + bytes(20))
    with pytest.raises(CaptureError, match="Kuznetzov"):
        read_capture(kuznetzov)


def test_header_only_pcap_is_an_empty_capture(tmp_path: Path) -> None:
    assert list(read_capture(write_pcap(tmp_path / "h.pcap", []))) == []


@pytest.mark.parametrize("cut_into", ["data", "header"])
def test_file_cut_short_yields_every_whole_record_then_fails(tmp_path: Path, cut_into: str) -> None:
    frames = sample_frames()
    content = pcap_bytes(frames)
    offsets = record_offsets(frames)
    cut = offsets[5] + (16 + 10 if cut_into == "data" else 9)
    path = tmp_path / "cut.pcap"
    path.write_bytes(content[:cut])
    got: list[RawFrame] = []
    with pytest.raises(CaptureError) as error:
        got.extend(read_capture(path))
    assert [f.data for f in got] == [f.data for f in frames[:5]]
    what = "packet" if cut_into == "data" else "packet header"
    expected = f"cut.pcap: file cut short in the middle of a {what} at offset {offsets[5]} (record 6"
    assert expected in str(error.value)


@needs_shared
def test_shared_capture_cut_in_the_middle(tmp_path: Path) -> None:
    src = SHARED_PCAPS / "iti-ics" / "ModbusTCP" / "mb2.pcap"
    content = src.read_bytes()
    path = tmp_path / "mb2-cut.pcap"
    path.write_bytes(content[: len(content) // 2])
    whole = list(read_capture(src))
    got: list[RawFrame] = []
    with pytest.raises(CaptureError, match=r"cut short in the middle of a packet at offset \d+ \(record \d+"):
        got.extend(read_capture(path))
    assert 0 < len(got) < len(whole)
    assert got == whole[: len(got)]
    # nothing whole was lost: the next record would have ended past the cut
    assert sum(16 + len(f.data) for f in whole[: len(got) + 1]) + 24 > len(content) // 2


@pytest.mark.parametrize(
    ("caplen", "snaplen"), [(0x7FFFFFFF, 65535), (262145, 262144), (70000, 65535), (300000, 0xFFFFFFFF)]
)
def test_absurd_record_length_fails_after_the_good_records(tmp_path: Path, caplen: int, snaplen: int) -> None:
    frames = sample_frames()
    content = bytearray(pcap_bytes(frames, snaplen=snaplen))
    offsets = record_offsets(frames)
    content[offsets[2] + 8 : offsets[2] + 12] = caplen.to_bytes(4, "little")
    path = tmp_path / "huge.pcap"
    path.write_bytes(content)
    got: list[RawFrame] = []
    expected = rf"absurd record length {caplen} .* at offset {offsets[2]} \(record 3\)"
    with pytest.raises(CaptureError, match=expected):
        got.extend(read_capture(path))
    assert len(got) == 2


def test_record_a_little_over_a_small_snaplen_is_accepted(tmp_path: Path) -> None:
    # Writers often leave a small or wrong snaplen in the header; Wireshark reads such files, so do we.
    frames = sample_frames()
    got = list(read_capture(write_pcap(tmp_path / "s.pcap", frames, snaplen=64)))
    assert [f.data for f in got] == [f.data for f in frames]


def pcapng_damage_cases() -> dict[str, tuple[bytes, str]]:
    good = [shb(), idb(LINKTYPE_ETHERNET, name="eth0"), epb(0, 1, b"\x01" * 60)]
    head = b"".join(good)
    bad_len = bytearray(epb(0, 2, b"\x02" * 60))
    bad_len[4:8] = (90).to_bytes(4, "little")
    mismatch = bytearray(epb(0, 2, b"\x02" * 60))
    mismatch[-4:] = (96).to_bytes(4, "little")
    over = bytearray(epb(0, 2, b"\x02" * 60))
    over[20:24] = (61 + 4).to_bytes(4, "little")  # caplen beyond the block
    bad_bom = bytearray(shb())
    bad_bom[8:12] = b"ABCD"
    return {
        "length not a multiple of 4": (head + bytes(bad_len), "bad pcapng block length 90"),
        "length below the minimum": (
            head + (6).to_bytes(4, "little") + (8).to_bytes(4, "little") + bytes(8),
            "bad pcapng block length 8",
        ),
        "trailing length differs": (head + bytes(mismatch), "does not match its trailing copy 96"),
        "packet longer than its block": (head + bytes(over), "absurd packet length 65"),
        "unknown interface": (head + epb(3, 2, b"\x02" * 60), "refers to interface 3, but 1 are described"),
        "cut in a block": (head + epb(0, 2, b"\x02" * 60)[:50], "cut short in the middle of a block"),
        "cut in a block header": (
            head + epb(0, 2, b"\x02" * 60)[:7],
            "cut short in the middle of a block header",
        ),
        "bad byte-order magic": (head + bytes(bad_bom), "bad pcapng byte-order magic 0x41424344"),
        "SPB before an IDB": (shb() + spb(b"\x03" * 60), "simple packet block before any interface"),
        "pcapng version 2": (shb(major=2), "unsupported pcapng section header (version 2"),
        "packet block too short": (head + block(6, bytes(16)), "packet block too short (28 bytes)"),
        "interface block too short": (shb() + block(1, bytes(4)), "interface description block too short"),
        "section header too short": (shb()[:4] + (24).to_bytes(4, "little") + shb()[8:20]
                                     + (24).to_bytes(4, "little"), "section header (version 1, 24 bytes)"),
        "huge block": (
            head + (6).to_bytes(4, "little") + (0xFFFFFFF0).to_bytes(4, "little") + bytes(30),
            "bad pcapng block length 4294967280",
        ),
    }


NO_PACKET_BEFORE = ("SPB before an IDB", "pcapng version 2", "interface block too short",
                    "section header too short")


@pytest.mark.parametrize("case", list(pcapng_damage_cases()))
def test_pcapng_damage_is_one_clear_error(tmp_path: Path, case: str) -> None:
    content, message = pcapng_damage_cases()[case]
    path = tmp_path / "bad.pcapng"
    path.write_bytes(content)
    got: list[RawFrame] = []
    with pytest.raises(CaptureError) as error:
        got.extend(read_capture(path))
    assert message in str(error.value)
    assert str(error.value).startswith(f"{path}: ")
    assert "at offset" in str(error.value)
    assert len(got) == (0 if case in NO_PACKET_BEFORE else 1)
