"""The parent's merge of worker event files: capture order from the key arrays, never a lost line."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from otsentry import parallel


def _write_part(tmp: Path, index: int, count: int, events: list[tuple[int, int]]) -> str:
    """A worker part holding one line per (capture, frame), written through ShardSink as a worker does."""
    path = str(tmp / f"part{index}.jsonl")
    sink = parallel.ShardSink(path, index, count)
    for capture, frame in events:
        sink.capture = capture
        line = b'{"w":%d,"c":%d,"otsentry.pcap.frame":%d}\n' % (index, capture, frame)
        sink.write([{"otsentry.pcap.frame": frame}], [line])
    sink.close()
    return path


def _merge(paths: list[str]) -> list[bytes]:
    out = io.BytesIO()
    parallel.merge_parts(paths, out)
    return out.getvalue().splitlines(keepends=True)


@pytest.mark.parametrize("block", [1, 3, 64, 1 << 18])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_merge_gives_capture_order_at_any_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, block: int
) -> None:
    monkeypatch.setattr(parallel, "MERGE_BLOCK", block)
    rng = random.Random(workers * 1000 + block)
    # Two captures; frames owned by a random worker; some frames give several events.
    owned: list[list[tuple[int, int]]] = [[] for _ in range(workers)]
    for capture in range(2):
        for frame in range(1, 400):
            worker = rng.randrange(workers)
            owned[worker] += [(capture, frame)] * rng.choice([0, 1, 1, 1, 2, 3])
    paths = [_write_part(tmp_path, i, workers, events) for i, events in enumerate(owned)]
    lines = _merge(paths)
    got = [(int(line.split(b'"c":')[1].split(b",")[0]), int(line.split(b":")[-1][:-2])) for line in lines]
    assert got == sorted(e for events in owned for e in events)
    assert sum(map(len, owned)) == len(lines)


def test_a_part_out_of_order_loses_no_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys ascend per worker by construction; if a bug broke that, the merge must still copy every line.
    monkeypatch.setattr(parallel, "MERGE_BLOCK", 4)
    first = _write_part(tmp_path, 0, 2, [(0, f) for f in (5, 3, 9, 1, 2, 8, 7)])
    second = _write_part(tmp_path, 1, 2, [(0, f) for f in (4, 6, 10)])
    lines = _merge([first, second])
    assert sorted(lines) == sorted(
        Path(first).read_bytes().splitlines(True) + Path(second).read_bytes().splitlines(True)
    )


def test_empty_parts(tmp_path: Path) -> None:
    paths = [_write_part(tmp_path, i, 2, []) for i in range(2)]
    assert _merge(paths) == []
