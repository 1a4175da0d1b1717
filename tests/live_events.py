"""Helpers for the live tests: how to start ``otsentry run``, and how to compare event files."""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PCAPS = REPO / "pcaps"
PYTHON = sys.executable

OTSENTRY = [PYTHON, "-m", "otsentry"]

# Fields that depend on how the frames were read, not on what was on the wire.
READER_FIELDS = {
    "event.created",
    "otsentry.pcap.file",
    "otsentry.pcap.frame",
    "modbus.request_frame",
    "observer.ingress.interface.name",
    "@timestamp",
    # seconds between a SELECT and its OPERATE: packet times, which the kernel and tcpdump stamp apart
    "otsentry.dnp3.select.age",
}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def protocol_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event.kind") == "event"]


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _key(event: dict[str, Any], drop: set[str]) -> str:
    return json.dumps({k: v for k, v in event.items() if k not in drop}, sort_keys=True)


def compare_events(
    live: list[dict[str, Any]],
    offline: list[dict[str, Any]],
    drop: set[str] = READER_FIELDS,
    max_skew: float = 0.05,
) -> list[str]:
    """Differences between two event lists as readable lines (empty: the same events).

    Events are equal when every field but the reader-dependent ones is equal, and their packet times
    differ by at most ``max_skew`` seconds (two capture sockets stamp the same frame separately).
    """
    problems = []
    live_keys, offline_keys = Counter(_key(e, drop) for e in live), Counter(_key(e, drop) for e in offline)
    for key, count in (live_keys - offline_keys).items():
        problems.append(f"live only ({count}x): {key[:400]}")
    for key, count in (offline_keys - live_keys).items():
        problems.append(f"offline only ({count}x): {key[:400]}")
    if problems or "@timestamp" not in drop:
        return problems
    times: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])
    for side, events in enumerate((live, offline)):
        for e in events:
            times[_key(e, drop)][side].append(seconds(e["@timestamp"]))
    for key, (a, b) in times.items():
        for x, y in zip(sorted(a), sorted(b), strict=True):
            if abs(x - y) > max_skew:
                problems.append(f"packet time differs by {x - y:+.6f} s: {key[:200]}")
    return problems
