"""Point ranges, polling statistics and the memory bounds of the inventory."""

from __future__ import annotations

import random
import statistics

import pytest

from inventory_scenario import event, modbus
from otsentry.inventory.comms import ItemSet, PollStats, RangeSet, pair_id, parse_pair_id
from otsentry.inventory.observe import observe
from otsentry.inventory.settings import Limits
from otsentry.inventory.state import Inventory

T0 = 1_715_666_400.0


def test_ranges_merge_adjacent_and_overlapping_spans() -> None:
    r = RangeSet()
    for lo, hi in ((10, 19), (0, 4), (5, 5), (30, 30), (18, 25), (100, 100)):
        r = r.add(lo, hi)
    assert r.render() == "0-5,10-25,30,100"
    assert (0, 5) in r and (12, 25) in r and (30, 30) in r
    assert (5, 10) not in r and (26, 26) not in r and (99, 100) not in r and (101, 101) not in r
    assert r.outside(0, 40) == [(6, 9), (26, 29), (31, 40)]
    assert r.outside(3, 4) == []
    assert RangeSet.parse(r.render()).bounds == r.bounds


def test_ranges_coarsen_past_the_cap_but_never_lose_a_point() -> None:
    r = RangeSet()
    points = random.Random(1).sample(range(10_000), 500)
    for p in points:
        r = r.add(p, p, cap=8)
    assert len(r.spans()) == 8
    assert all((p, p) in r for p in points)
    assert r.bounds[0] == min(points) and r.bounds[-1] == max(points)


def test_item_sets_stop_at_their_cap_with_a_wildcard() -> None:
    items = ItemSet()
    for i in range(70):
        items.add(f"1-0:{i}.8.0.255/2", cap=64)
    assert len(items.items) == 65 and "*" in items.items
    assert "anything" in items


def test_poll_median_and_jitter_on_a_known_series() -> None:
    """Intervals 0.90, 0.95, 1.00, 1.05, 1.10 repeated: median 1.0, median absolute deviation 0.05."""
    stats = PollStats("read", "read", T0)
    ts = T0
    for k in range(30):
        ts += (0.90, 0.95, 1.00, 1.05, 1.10)[k % 5]
        stats.add(ts, 32, random.Random(0).random)
    assert stats.n == 30
    assert stats.median == pytest.approx(1.0, abs=1e-6)
    assert stats.jitter == pytest.approx(0.05, abs=1e-6)


def test_poll_statistics_are_robust_to_missed_polls_and_bounded() -> None:
    """10 000 polls, 2 s period, Gaussian jitter σ = 40 ms, 5 % missed (a doubled interval), one 60 s
    reconnect pause: the reservoir (32 intervals) estimates the median within 1 % and the jitter
    (MAD; σ·0.6745 = 27 ms for a Gaussian) within a few ms."""
    rng = random.Random(7)
    stats = PollStats("read", "read", T0)
    ts, intervals = T0, []
    for k in range(10_000):
        dt = 2.0 + rng.gauss(0, 0.040)
        if rng.random() < 0.05:
            dt += 2.0
        if k == 5000:
            dt += 60
        ts += dt
        intervals.append(dt)
        stats.add(ts, 32, rng.random)
    assert stats.n == 10_000 and len(stats.samples) == 32
    assert stats.median == pytest.approx(2.0, rel=0.01)
    assert stats.jitter == pytest.approx(0.040 * 0.6745, abs=0.012)
    assert statistics.median(intervals) == pytest.approx(2.0, rel=0.01)  # the reference agrees


def test_pair_ids_round_trip() -> None:
    for key in (
        ("modbus", "10.0.0.1", None, "10.0.0.2", 7),
        ("dnp3", "fd00::1", 1, "fd00::2", 10),
        ("c1222", "10.0.0.1", "1.2.840.10066.1", "10.0.0.2", ".2.16.124"),
    ):
        assert parse_pair_id(pair_id(key)) == key


def _read(ts: float, client: int, server: int, unit: int = 1, address: int = 0) -> dict:
    return event(
        ts,
        (f"10.1.{client >> 8}.{client & 255}", None),
        (f"10.2.{server >> 8}.{server & 255}", None),
        50000,
        502,
        True,
        modbus(3, "read_holding_registers", "request", unit=unit, address=address, quantity=1),
    )


def test_least_recently_seen_pairs_are_evicted_first() -> None:
    evicted: list = []
    inv = Inventory(Limits(max_pairs=100, evict_fraction=0.1), on_evict=lambda a, p: evicted.extend(p))
    for i in range(150):
        inv.update(observe(_read(T0 + i, 1, i)))
        if i == 90:
            inv.update(observe(_read(T0 + i + 0.5, 1, 0)))  # pair 0 seen again: now recent
    assert len(inv.pairs) <= 100
    gone = {p.key[3] for p in evicted}
    assert "10.2.0.0" not in gone and "10.2.0.1" in gone
    assert all(p.last < min(q.last for q in inv.pairs.values()) for p in evicted)
    assert inv.evicted["pairs"] == len(evicted)


def test_poll_trackers_are_evicted_before_pairs() -> None:
    inv = Inventory(Limits(max_poll_trackers=10, evict_fraction=0.5))
    for i in range(20):
        for k in range(3):
            inv.update(observe(_read(T0 + i * 10 + k, 1, 1, address=i)))  # 20 signatures on one pair
    pair = next(iter(inv.pairs.values()))
    assert inv.poll_trackers == len(pair.trackers) <= 10
    assert (
        "read_holding_registers@19+1" in pair.trackers and "read_holding_registers@0+1" not in pair.trackers
    )
    assert len(pair.functions[("request", "read_holding_registers")].spaces["addr"].spans()) == 1  # 0-19 kept
    assert inv.evicted["poll_trackers"] >= 10


def test_assets_are_evicted_least_recently_seen_first() -> None:
    inv = Inventory(Limits(max_assets=50, evict_fraction=0.2))
    for i in range(80):
        inv.update(observe(_read(T0 + i, i, i)))
    assert len(inv.assets) <= 50
    assert "10.1.0.79" in inv.assets and "10.1.0.0" not in inv.assets
