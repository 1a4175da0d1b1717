"""Replay across worker processes, sharded by flow.

Python runs one core per process, so a replay on an N-core appliance runs N workers. Each
worker reads the whole capture (cheap: the reader is a fraction of the per-packet cost),
decodes every frame — so frame numbers and IP fragment reassembly stay exact — and handles
only the flows whose symmetric 5-tuple hash selects it: both directions of a flow always land
on the same worker, as with the kernel's PACKET_FANOUT_HASH in live capture. Each worker writes
its own event file; the parent merges them in capture order.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from array import array
from bisect import bisect_right
from collections import Counter
from itertools import groupby
from pathlib import Path
from typing import Any, BinaryIO

from otsentry.events import Event
from otsentry.sensor import JsonLinesSink, Sensor, Summary
from otsentry.store import EventStore

# Each worker writes, beside its event lines, one key per line: (capture, frame) packed into an int and
# tagged with the worker index, and the line's length. The parent merges on these arrays, so it never
# parses a JSON line, and copies runs of lines from one worker as byte ranges.
KEY_TYPE, LENGTH_TYPE = "q", "L"
FRAME_BITS = 40  # frame numbers below 2^40 per capture
MERGE_BLOCK = 1 << 18  # keys read per worker per round: bounds the parent's memory on huge captures


class ShardSink(JsonLinesSink):
    """A worker's event lines plus their merge keys (see ``merge_parts``)."""

    def __init__(self, path: str, index: int, count: int) -> None:
        super().__init__(path)
        self.keys = open(path + ".keys", "wb")  # noqa: SIM115 - closed by close()
        self.lengths = open(path + ".lengths", "wb")  # noqa: SIM115 - closed by close()
        self.index, self.count = index, count
        self.capture = 0

    def write(self, events: list[Event], lines: list[bytes]) -> None:
        super().write(events, lines)
        base, count, index = self.capture << FRAME_BITS, self.count, self.index
        array(KEY_TYPE, [(base | e["otsentry.pcap.frame"]) * count + index for e in events]).tofile(self.keys)
        array(LENGTH_TYPE, map(len, lines)).tofile(self.lengths)

    def close(self) -> None:
        super().close()
        self.keys.close()
        self.lengths.close()


class _Part:
    """One worker's output, read a block of keys at a time."""

    def __init__(self, path: str) -> None:
        self.lines = open(path, "rb")  # noqa: SIM115 - closed by merge_parts
        self._keys = open(path + ".keys", "rb")  # noqa: SIM115
        self._lengths = open(path + ".lengths", "rb")  # noqa: SIM115
        self.keys, self.lengths, self.at = array(KEY_TYPE), array(LENGTH_TYPE), 0

    def refill(self) -> bool:
        """Make keys[at:] non-empty; False when the worker's output is used up."""
        if self.at < len(self.keys):
            return True
        self.keys, self.lengths, self.at = array(KEY_TYPE), array(LENGTH_TYPE), 0
        data = self._keys.read(MERGE_BLOCK * self.keys.itemsize)
        self.keys.frombytes(data)
        self.lengths.frombytes(self._lengths.read(len(self.keys) * self.lengths.itemsize))
        return bool(self.keys)

    def close(self) -> None:
        for fh in (self.lines, self._keys, self._lengths):
            fh.close()


def merge_parts(paths: list[str], out: BinaryIO) -> None:
    """Write the workers' event lines to ``out`` in (capture, frame) order.

    Each worker's keys ascend. Per round, every line with a key up to the smallest block-final key
    can go out: no later block holds a smaller one. Those keys are sorted together (two ascending
    runs: a linear merge in C) and consecutive lines of one worker are copied as one byte range.
    """
    parts = [_Part(p) for p in paths]
    count = len(parts)
    try:
        while live := [p for p in parts if p.refill()]:
            cutoff = min(p.keys[-1] for p in live)
            taken: list[int] = []
            for part in live:
                # The part owning the cutoff gives its whole block, so every round makes progress.
                end = len(part.keys) if part.keys[-1] == cutoff else bisect_right(part.keys, cutoff, part.at)
                taken += part.keys[part.at : end]
            taken.sort()
            for worker, run in groupby(taken, count.__rmod__):
                part = parts[worker]
                n = len(list(run))
                start = part.at
                out.write(part.lines.read(sum(part.lengths[start : start + n])))
                part.at = start + n
    finally:
        for part in parts:
            part.close()


def _work(
    index: int, count: int, captures: list[str], part: str | None, db: str | None, observer: str
) -> dict[str, Any]:
    sink = ShardSink(part, index, count) if part else None
    store = EventStore(db) if db else None
    sensor = Sensor(observer_name=observer, events_out=sink, store=store, shard=(index, count))
    for capture, path in enumerate(captures):
        if sink is not None:
            sink.capture = capture
        sensor.replay(path)
    summary = sensor.close()
    return summary.__dict__


def merge_summaries(parts: list[dict[str, Any]]) -> Summary:
    """Every worker saw every frame: take capture-level counts once, add up the per-flow ones."""
    first = parts[0]
    summary = Summary(
        packets=first["packets"],
        bytes=first["bytes"],
        ip_packets=first["ip_packets"],
        decoder=Counter(first["decoder"]),
        capture_errors=list(first["capture_errors"]),
        seconds=max(p["seconds"] for p in parts),
    )
    for part in parts:
        summary.flows += part["flows"]
        summary.events.update(part["events"])
        summary.decode_errors.update(part["decode_errors"])
        for name, value in part["tcp"].items():
            summary.tcp[name] = summary.tcp.get(name, 0) + value
    return summary


def replay_parallel(
    captures: list[Path], workers: int, events_out: Path | None, db: Path | None, observer: str
) -> Summary:
    """Replay ``captures`` with ``workers`` processes; events merged into ``events_out``."""
    paths = [str(p) for p in captures]
    with tempfile.TemporaryDirectory(
        prefix="otsentry-", dir=events_out.parent if events_out else None
    ) as tmp:
        parts = [os.path.join(tmp, f"part{i}.jsonl") if events_out else None for i in range(workers)]
        if db is not None:
            EventStore(db).close()  # create the schema once, before the workers race for it
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers) as pool:
            jobs = [
                pool.apply_async(_work, (i, workers, paths, parts[i], str(db) if db else None, observer))
                for i in range(workers)
            ]
            results = [job.get() for job in jobs]
        if events_out is not None:
            with open(events_out, "wb") as out:
                merge_parts([part for part in parts if part], out)
    return merge_summaries(results)
