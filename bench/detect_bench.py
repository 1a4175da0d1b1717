"""Detection cost: events/s through the engine with the whole rule pack, and its share of replay time.

    .venv/bin/python bench/detect_bench.py [CAPTURE ...] [--packets N]

For each capture (default: the bench captures in bench/.cache), the first N packets are replayed
three ways: the sensor alone (events kept in memory), the engine alone on those events (median of 3),
and the sensor with the engine as a sink. No inventory stage (its fields would only make more rules
fall through their "known pair" filters), no store.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

from otsentry.capture import CaptureError, read_capture
from otsentry.detect.engine import DetectionEngine, bundled_rules_dir
from otsentry.sensor import Sensor

CACHE = Path(__file__).resolve().parent / ".cache"


def frames(path: Path, packets: int):  # type: ignore[no-untyped-def]
    try:
        yield from itertools.islice(read_capture(path), packets)
    except CaptureError:  # a capture still being written: use what is there
        return


def replay(path: Path, packets: int, sink) -> float:  # type: ignore[no-untyped-def]
    sensor = Sensor(sinks=[sink])
    started = time.perf_counter()
    sensor.process_frames(frames(path, packets))
    sensor.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures", nargs="*", type=Path)
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    captures = args.captures or sorted(CACHE.glob("*.pcap"))
    engine = DetectionEngine.from_paths([bundled_rules_dir()], strict=True)
    print(f"rules loaded: {len(engine.rules)}")
    for path in captures:
        events: list[dict] = []
        alone = replay(path, args.packets, events.extend)
        runs = []
        for _ in range(3):
            engine.reset()
            copies = [dict(e) for e in events]
            started = time.perf_counter()
            alerts = engine(copies)
            alerts += engine.flush()
            runs.append(time.perf_counter() - started)
        engine_s = statistics.median(runs)
        engine.reset()
        together = replay(path, args.packets, engine)
        tests = engine.stats["tests"] / max(engine.stats["events"], 1)
        print(
            f"{path.name}: {len(events):,} events; engine {len(events) / engine_s:,.0f} events/s "
            f"({engine_s * 1e6 / max(len(events), 1):.2f} µs/event, {tests:.1f} rule tests/event, "
            f"{len(alerts)} alerts); replay {args.packets / alone:,.0f} pkt/s alone, "
            f"{args.packets / together:,.0f} pkt/s with the engine ({together / alone:.2f}x the time)"
        )


if __name__ == "__main__":
    main()
