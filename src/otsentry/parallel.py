"""Replay across worker processes, sharded by flow.

Python runs one core per process, so a replay on an N-core appliance runs N workers. Each
worker reads the whole capture (cheap: the reader is a fraction of the per-packet cost),
decodes every frame — so frame numbers and IP fragment reassembly stay exact — and handles
only the flows whose symmetric 5-tuple hash selects it: both directions of a flow always land
on the same worker, as with the kernel's PACKET_FANOUT_HASH in live capture. Each worker writes
its own event file; the parent merges them in capture order.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from otsentry.sensor import JsonLinesSink, Sensor, Summary
from otsentry.store import EventStore

FRAME_TAG = b'"otsentry.pcap.frame":'


def _work(
    index: int, count: int, captures: list[str], part: str | None, db: str | None, observer: str
) -> dict[str, Any]:
    sink = JsonLinesSink(part) if part else None
    store = EventStore(db) if db else None
    sensor = Sensor(observer_name=observer, events_out=sink, store=store, shard=(index, count))
    for path in captures:
        sensor.replay(path)
    summary = sensor.close()
    return summary.__dict__


def _order_key(line: bytes, file_index: dict[bytes, int]) -> tuple[int, int]:
    """(capture index, frame) of an event line, read without parsing the JSON."""
    at = line.rfind(FRAME_TAG) + len(FRAME_TAG)
    end = at
    while line[end : end + 1].isdigit():
        end += 1
    start = line.find(b'"otsentry.pcap.file":"') + 22
    name = line[start : line.find(b'"', start)]
    return file_index.get(name, 0), int(line[at:end])


def _lines(path: str, file_index: dict[bytes, int]) -> Iterator[tuple[tuple[int, int], bytes]]:
    with open(path, "rb") as fh:
        for line in fh:
            yield _order_key(line, file_index), line


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
            file_index = {p.encode(): i for i, p in enumerate(paths)}
            with open(events_out, "wb") as out:
                streams = [_lines(part, file_index) for part in parts if part]
                out.writelines(line for _, line in heapq.merge(*streams, key=lambda item: item[0]))
    return merge_summaries(results)
