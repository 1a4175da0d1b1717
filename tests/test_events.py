"""Event time formatting: RFC 3339 UTC with microseconds, equal to datetime's rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from otsentry.events import format_timestamp, serialise
from otsentry.sensor import Sensor
from shared import SAMPLE_PCAPS


@given(st.integers(min_value=0, max_value=4_102_444_800), st.integers(min_value=0, max_value=999_999))
def test_pcap_seconds_and_microseconds_render_exactly(sec: int, usec: int) -> None:
    ts = sec + usec / 1_000_000  # how the pcap reader builds packet time
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=sec, microseconds=usec)
    assert format_timestamp(ts) == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_rounding_carries_into_the_next_second() -> None:
    assert format_timestamp(1715666400.9999996) == "2024-05-14T06:00:01.000000Z"


def test_serialised_lines_are_exactly_orjsons() -> None:
    """The per-flow JSON splice gives the very bytes orjson gives for the whole event."""
    captured: list[tuple[list[dict], list]] = []
    sensor = Sensor()
    real_flush = sensor.flush_events

    def keep_and_flush() -> None:
        captured.append((list(sensor.pending), list(sensor.pending_parts)))
        real_flush()

    sensor.flush_events = keep_and_flush  # type: ignore[method-assign]
    for capture in sorted(SAMPLE_PCAPS.glob("*.pcap")):
        sensor.replay(capture)
    sensor.close()
    events = [e for batch, _ in captured for e in batch]
    parts = [p for _, batch in captured for p in batch]
    assert len(events) > 500
    for event in events[::3]:  # fields a later stage (enrichment) adds go on top of the splice
        event["otsentry.source.role"] = "master"
        event["otsentry.baseline.known_pair"] = False
    events[1].clear()  # not what the builder recorded: serialised whole
    lines = serialise(events, parts)
    assert lines == [orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in events]
