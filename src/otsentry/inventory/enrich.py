"""The enrichment stage between the protocol events and detection.

It keeps the in-memory inventory current, adds inventory context to each event (so Sigma rules read
plain fields), and — given a baseline — appends baseline deviation alerts. Called with a batch of
events, it extends *that list* with its alerts and returns it, so it works both as a pipeline stage
(``events = enrich(events)``) and as a sensor sink placed before the sinks that should see alerts.

Fields added to protocol events (when known):

* ``otsentry.source.role`` / ``otsentry.destination.role`` — protocol role of the sender/receiver
  (``master``, ``outstation``, ``client``, ``server``, ``controlling``, ``controlled``);
* ``otsentry.source.device`` / ``otsentry.destination.device`` — the logical device
  (``10.20.2.31/dnp3:10``, ``10.20.2.21/modbus:1``, or the IP when the role has no address);
* ``otsentry.source.vendor`` / ``otsentry.destination.vendor`` — MAC vendor (IEEE registry);
* ``otsentry.function_class`` — ``read``, ``write``, ``control``, ``diagnostic`` or ``other``
  (the most active class when a message carries several services);
* in detect mode, ``otsentry.baseline.known_pair`` — whether the baseline has this pair.
"""

from __future__ import annotations

import time
from typing import Any

from otsentry.inventory import oui
from otsentry.inventory.baseline import Baseline
from otsentry.inventory.codes import CONTROL, DIAGNOSTIC, OTHER, READ, WRITE
from otsentry.inventory.comms import endpoint_id
from otsentry.inventory.deviations import Detector
from otsentry.inventory.observe import Event, observe
from otsentry.inventory.settings import Limits, Thresholds
from otsentry.inventory.state import Inventory
from otsentry.inventory.store import InventoryStore

_CLASS_RANK = {CONTROL: 5, WRITE: 4, DIAGNOSTIC: 3, READ: 2, OTHER: 1}
MAX_ENDPOINT_FIELDS = 65536


class Enricher:
    """``__call__(events) -> events``; ``flush()`` writes the inventory; ``close()`` flushes."""

    def __init__(
        self,
        baseline: Baseline | None = None,
        thresholds: Thresholds | None = None,
        limits: Limits | None = None,
        store: InventoryStore | None = None,
        add_fields: bool = True,
        flush_seconds: float = 5.0,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.inventory = Inventory(
            limits, seed=seed, on_evict=self._write_evicted if store else None, loader=store
        )
        self.detector = Detector(baseline, thresholds) if baseline is not None else None
        self.add_fields = add_fields
        self.flush_seconds = flush_seconds
        self._next_flush = time.monotonic() + flush_seconds
        self._next_tick = 0.0
        self.alerts = 0
        self.errors = 0
        self.last_error: str | None = None
        self._endpoint_fields: dict[tuple[Any, ...], dict[str, Any]] = {}  # see _annotate

    def __call__(self, events: list[Event]) -> list[Event]:
        alerts: list[Event] = []
        one = self._one
        for event in events:
            try:
                one(event, alerts)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
                # A malformed event must not stop the sensor: count it, keep the first reason.
                self.errors += 1
                self.last_error = self.last_error or f"{exc.__class__.__name__}: {exc}"
        if alerts:
            self.alerts += len(alerts)
            events.extend(alerts)
        if self.store is not None and time.monotonic() >= self._next_flush:
            self.flush()
        return events

    def _one(self, event: Event, alerts: list[Event]) -> None:
        obs = observe(event)
        if obs is None:
            return
        pair = self.inventory.update(obs)
        if self.add_fields and obs.from_initiator is not None:
            _annotate(event, obs, self._endpoint_fields)
        detector = self.detector
        if detector is None:
            return
        if obs.ts >= self._next_tick:
            if self._next_tick:
                alerts += detector.tick(obs.ts)
            self._next_tick = obs.ts + detector.tick_every
        found = detector.check(obs, event)
        if self.add_fields:
            event["otsentry.baseline.known_pair"] = pair is not None and pair.key in detector.baseline.pairs
        if found:
            alerts += found

    def finish(self) -> list[Event]:
        """End of input: a last silence check at the latest packet time; returns its alerts."""
        if self.detector is None or self.detector.start is None:
            return []
        alerts = self.detector.tick(self.inventory.now)
        self.alerts += len(alerts)
        return alerts

    def flush(self) -> None:
        if self.store is None:
            return
        assets, pairs = self.inventory.take_dirty()
        if assets or pairs:
            self.store.write(self.inventory, assets, pairs)
        if self.detector is not None:
            dirty = [d for d in self.detector.deviations.values() if d.dirty]
            if dirty:
                self.store.write_deviations(dirty)
        self._next_flush = time.monotonic() + self.flush_seconds

    def close(self) -> None:
        self.flush()

    def _write_evicted(self, assets: list[Any], pairs: list[Any]) -> None:
        assert self.store is not None
        self.store.write(self.inventory, assets, pairs)

    def stats(self) -> dict[str, Any]:
        out = self.inventory.stats()
        out["alerts"] = self.alerts
        out["errors"] = self.errors
        if self.detector is not None:
            out["deviations"] = len(self.detector.deviations)
        return out


def _annotate(event: Event, obs: Any, cache: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    # Roles, devices and vendors depend only on who talks in which role: the fields are built once
    # per sender/receiver and direction, then copied in one update (in the order listed above).
    key = (
        obs.protocol,
        obs.from_initiator,
        obs.src_ip,
        obs.src_addr,
        obs.src_mac,
        obs.dst_ip,
        obs.dst_addr,
        obs.dst_mac,
    )
    fields = cache.get(key)
    if fields is None:
        if len(cache) >= MAX_ENDPOINT_FIELDS:
            cache.clear()
        fields = cache[key] = _endpoint_fields(obs)
    event.update(fields)
    calls = obs.calls
    if calls:
        event["otsentry.function_class"] = (
            calls[0][2] if len(calls) == 1 else max((c[2] for c in calls), key=_CLASS_RANK.__getitem__)
        )


def _endpoint_fields(obs: Any) -> dict[str, Any]:
    protocol = obs.protocol
    fields = {
        "otsentry.source.role": obs.src_role,
        "otsentry.destination.role": obs.dst_role,
        "otsentry.source.device": endpoint_id(obs.src_ip, protocol, obs.src_addr),
        "otsentry.destination.device": endpoint_id(obs.dst_ip, protocol, obs.dst_addr),
    }
    if obs.src_mac:
        vendor = oui.vendor(obs.src_mac)
        if vendor:
            fields["otsentry.source.vendor"] = vendor
    if obs.dst_mac:
        vendor = oui.vendor(obs.dst_mac)
        if vendor:
            fields["otsentry.destination.vendor"] = vendor
    return fields
