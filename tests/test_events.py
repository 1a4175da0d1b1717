"""Event time formatting: RFC 3339 UTC with microseconds, equal to datetime's rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from otsentry.events import format_timestamp


@given(st.integers(min_value=0, max_value=4_102_444_800), st.integers(min_value=0, max_value=999_999))
def test_pcap_seconds_and_microseconds_render_exactly(sec: int, usec: int) -> None:
    ts = sec + usec / 1_000_000  # how the pcap reader builds packet time
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=sec, microseconds=usec)
    assert format_timestamp(ts) == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_rounding_carries_into_the_next_second() -> None:
    assert format_timestamp(1715666400.9999996) == "2024-05-14T06:00:01.000000Z"
