"""Every tunable of the inventory and the baseline, in one place.

The sensor's config file fills these (``[baseline]`` and ``[inventory]`` tables); the defaults suit
a substation or plant LAN polled every second to every few minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Thresholds:
    """When an observation counts as a deviation from the learned baseline."""

    # Polling: a request type is "polled" when learned from at least ``poll_min_samples`` intervals
    # whose jitter (median absolute deviation) is at most ``poll_max_jitter_ratio`` × the period.
    poll_min_samples: int = 20
    poll_max_jitter_ratio: float = 0.25
    # Detection compares the median of the last ``poll_window`` intervals with the learned period;
    # it deviates when off by more than max(tolerance × period, jitter factor × jitter, minimum).
    poll_window: int = 9
    poll_tolerance: float = 0.25
    poll_jitter_factor: float = 4.0
    poll_min_tolerance: float = 0.05
    # A responder (outstation, server, controlled station) whose polling was learned is silent when
    # it sends nothing for max(silence_timeout, silence_periods × its fastest learned period) seconds.
    silence_timeout: float = 120.0
    silence_periods: float = 10.0
    # Process values: a learned band [lo, hi] widens by max(margin × (hi − lo), min margin) each side.
    value_band_margin: float = 0.1
    value_band_min_margin: float = 1.0
    value_min_samples: int = 10


@dataclass
class Limits:
    """Memory bounds of the in-memory inventory (see ``otsentry.inventory.state`` for the eviction order)."""

    max_assets: int = 200_000
    max_pairs: int = 1_000_000
    max_poll_trackers: int = 250_000
    max_devices_per_asset: int = 256
    max_macs_per_asset: int = 8
    max_functions_per_pair: int = 64
    max_signatures_per_pair: int = 16
    max_points_per_device: int = 512
    max_value_points: int = 500_000  # process value points tracked in all; later points are not
    max_ranges_per_space: int = 32
    max_items_per_space: int = 64
    max_spaces_per_function: int = 16
    poll_reservoir: int = 32
    evict_fraction: float = 0.1
    # A MAC address seen with more IPs than this is a router's: not a vendor hint for those IPs.
    router_mac_ips: int = 8


def from_mapping(cls: type, values: dict[str, Any] | None) -> Any:
    """Build ``cls`` from a config-file table, rejecting unknown keys (a typo must not pass silently)."""
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__.lower()} setting(s): {', '.join(unknown)}")
    return cls(**values)
