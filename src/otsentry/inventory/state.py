"""The in-memory inventory: assets, logical devices and pairs, updated from observations.

Memory is bounded by :class:`~otsentry.inventory.settings.Limits`. Eviction order, cheapest
loss first:

1. **Poll trackers** (the interval reservoirs) of the request types updated least recently, when
   more than ``max_poll_trackers`` exist. The pair keeps its counts and ranges; its stored polling
   summary (if flushed) stays in SQLite.
2. **Pairs** seen least recently, when more than ``max_pairs`` exist: the oldest ``evict_fraction``
   are handed to ``on_evict`` (the store writes them first) and dropped. A later message of an
   evicted pair starts a fresh record that the store merges into the stored row (counts add up,
   first/last seen and ranges widen).
3. **Assets** seen least recently, when more than ``max_assets`` exist, the same way.

Within a record nothing grows without limit: devices per asset, MACs per asset, functions,
signatures and value points per pair, ranges and items per space are capped (Limits).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any, Protocol

from otsentry.inventory import oui
from otsentry.inventory.assets import Asset, Device, with_item
from otsentry.inventory.codes import ROLES
from otsentry.inventory.comms import Pair, PairKey
from otsentry.inventory.observe import Observation
from otsentry.inventory.settings import Limits


class Loader(Protocol):
    """Where records evicted earlier (or written by an earlier run) come back from: the store."""

    def load_asset(self, ip: str) -> Asset | None: ...

    def load_pair(self, key: PairKey) -> Pair | None: ...


class Inventory:
    def __init__(
        self,
        limits: Limits | None = None,
        seed: int = 0,
        on_evict: Callable[[list[Asset], list[Pair]], None] | None = None,
        loader: Loader | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.assets: dict[str, Asset] = {}
        self.pairs: dict[PairKey, Pair] = {}
        self.mac_ips: dict[str, set[str]] = {}  # to tell routers' MACs from hosts'
        self.poll_trackers = 0
        self.value_points = 0
        self._names: dict[str, str] = {}  # one copy of each point name
        self.now = 0.0
        self.events = 0
        self.evicted = {"pairs": 0, "assets": 0, "poll_trackers": 0}
        self.on_evict = on_evict
        self.loader = loader
        self.dirty_assets: list[Asset] = []
        self.dirty_pairs: list[Pair] = []
        self._rand = random.Random(seed).random

    # -- updates ----------------------------------------------------------------------------------

    def _asset(self, ip: str, mac: str | None, vlan: int | None, ts: float) -> Asset:
        asset = self.assets.get(ip)
        if asset is None:
            asset = self.loader.load_asset(ip) if self.loader is not None else None
            if asset is None:
                asset = Asset(ip, ts)
            else:
                asset.first = min(asset.first, ts)
                asset.last = max(asset.last, ts)
            self.assets[ip] = asset
        elif ts > asset.last:
            asset.last = ts
        asset.messages += 1
        if mac is not None:
            macs = asset.macs
            if mac not in macs:
                if len(macs) >= self.limits.max_macs_per_asset:
                    del macs[min(macs, key=macs.__getitem__)]
                ips = self.mac_ips.get(mac)
                if ips is None:
                    ips = self.mac_ips[mac] = set()
                if len(ips) <= self.limits.router_mac_ips:
                    ips.add(asset.ip)
            macs[mac] = ts
        if vlan is not None:
            if asset.vlans is None:
                asset.vlans = set()
            if len(asset.vlans) < 8:
                asset.vlans.add(vlan)
        if not asset.dirty:
            asset.dirty = True
            self.dirty_assets.append(asset)
        return asset

    def _seen(self, ip: str, mac: str | None, vlan: int | None, ts: float, protocol: str) -> Asset:
        """The asset for ``ip``, touched: the common case (known asset, known MAC) without the slow path."""
        asset = self.assets.get(ip)
        if (
            asset is None
            or (mac is not None and mac not in asset.macs)
            or (vlan is not None and (asset.vlans is None or vlan not in asset.vlans))
        ):
            asset = self._asset(ip, mac, vlan, ts)
        else:
            if ts > asset.last:
                asset.last = ts
            asset.messages += 1
            if mac is not None:
                asset.macs[mac] = ts
            if not asset.dirty:
                asset.dirty = True
                self.dirty_assets.append(asset)
        if protocol not in asset.protocols:
            asset.protocols = with_item(asset.protocols, protocol)
        return asset

    def update(self, obs: Observation) -> Pair | None:
        """Fold one observation in; the pair it belongs to, or None when its role is unknown."""
        self.events += 1
        ts = obs.ts
        if ts > self.now:
            self.now = ts
        protocol = obs.protocol
        src = self._seen(obs.src_ip, obs.src_mac, obs.vlan, ts, protocol) if obs.src_ip else None
        dst = self._seen(obs.dst_ip, obs.dst_mac, obs.vlan, ts, protocol) if obs.dst_ip else None
        if len(self.assets) > self.limits.max_assets:
            self._evict_assets(keep=(src, dst))
        from_initiator = obs.from_initiator
        if from_initiator is None or src is None or dst is None:
            return None
        initiator_role, responder_role = ROLES[protocol]
        src_addr, dst_addr = obs.src_addr, obs.dst_addr
        cap = self.limits.max_devices_per_asset
        src_dev = src.devices.get((protocol, src_addr)) or src.device(protocol, src_addr, ts, cap)
        dst_dev = dst.devices.get((protocol, dst_addr)) or dst.device(protocol, dst_addr, ts, cap)
        if src_dev is not None:
            if ts > src_dev.last:
                src_dev.last = ts
            role = initiator_role if from_initiator else responder_role
            if role not in src_dev.roles:
                src_dev.roles = with_item(src_dev.roles, role)
            if obs.identity:
                src_dev.merge_identity(obs.identity)
            if obs.values:
                self._values(src_dev, obs.values)
        if dst_dev is not None:
            if ts > dst_dev.last:
                dst_dev.last = ts
            role = responder_role if from_initiator else initiator_role
            if role not in dst_dev.roles:
                dst_dev.roles = with_item(dst_dev.roles, role)
        if from_initiator:
            key = (protocol, src.ip, src_addr, dst.ip, dst_addr)
        else:
            key = (protocol, dst.ip, dst_addr, src.ip, src_addr)
        pair = self.pairs.get(key)
        if pair is None:
            pair = self.loader.load_pair(key) if self.loader is not None else None
            if pair is None:
                pair = Pair(key, ts)
            self.pairs[key] = pair
            if len(self.pairs) > self.limits.max_pairs:
                self._evict_pairs(keep=pair)
        if pair.update(obs, self.limits, self._rand):
            self.poll_trackers += 1
            if self.poll_trackers > self.limits.max_poll_trackers:
                self._evict_poll_trackers()
        if not pair.dirty:
            pair.dirty = True
            self.dirty_pairs.append(pair)
        return pair

    def _values(self, device: Device, values: list[tuple[str, float]]) -> None:
        bands = device.values
        if bands is None:
            bands = device.values = {}
        get = bands.get
        max_points, max_value_points = self.limits.max_points_per_device, self.limits.max_value_points
        names = self._names
        added = 0  # new points; self.value_points is updated once, after the loop
        for point, value in values:
            band = get(point)
            if band is None:
                if len(bands) < max_points and self.value_points + added < max_value_points:
                    name = names.setdefault(point, point) if len(names) < 1_000_000 else point
                    bands[name] = [value, value, 1]
                    added += 1
                continue
            if value < band[0]:
                band[0] = value
            elif value > band[1]:
                band[1] = value
            band[2] += 1
        if added:
            self.value_points += added

    # -- queries ----------------------------------------------------------------------------------------

    def is_router_mac(self, mac: str) -> bool:
        return len(self.mac_ips.get(mac, ())) > self.limits.router_mac_ips

    def host_mac(self, asset: Asset) -> str | None:
        """The asset's own MAC (most recent one that is not a router's), if any."""
        own = [m for m in asset.macs if not self.is_router_mac(m)]
        return max(own, key=asset.macs.__getitem__) if own else None

    def vendor(self, asset: Asset) -> str | None:
        mac = self.host_mac(asset)
        return oui.vendor(mac) if mac else None

    @staticmethod
    def vendor_of(mac: str) -> str | None:
        return oui.vendor(mac)

    def take_dirty(self) -> tuple[list[Asset], list[Pair]]:
        """The records changed since the last call (for the store), marked clean."""
        assets, pairs = self.dirty_assets, self.dirty_pairs
        self.dirty_assets, self.dirty_pairs = [], []
        for a in assets:
            a.dirty = False
        for p in pairs:
            p.dirty = False
        return assets, pairs

    def stats(self) -> dict[str, Any]:
        return {
            "assets": len(self.assets),
            "pairs": len(self.pairs),
            "poll_trackers": self.poll_trackers,
            "events": self.events,
            "evicted": dict(self.evicted),
        }

    # -- eviction (see the module docstring for the order) ------------------------------------------

    def _batch(self, total: int) -> int:
        return max(1, int(total * self.limits.evict_fraction))

    def _evict_poll_trackers(self) -> None:
        trackers = [
            (t.last, pair.key, sig)
            for pair in self.pairs.values()
            if pair.polls is not None
            for sig, t in pair.trackers.items()
        ]
        for _, key, sig in heapq.nsmallest(self._batch(len(trackers)), trackers):
            self.pairs[key].drop_tracker(sig)
            self.poll_trackers -= 1
            self.evicted["poll_trackers"] += 1

    def _evict_pairs(self, keep: Pair) -> None:
        """The least recently seen pairs, never ``keep`` (the one being updated: it may have just been
        loaded from the store with an old last-seen time)."""
        candidates = (p for p in self.pairs.values() if p is not keep)
        victims = heapq.nsmallest(self._batch(len(self.pairs)), candidates, key=lambda p: p.last)
        if self.on_evict is not None:
            self.on_evict([], victims)
        for pair in victims:
            del self.pairs[pair.key]
            if pair.polls is not None:
                self.poll_trackers -= len(pair.trackers)
        gone = {id(p) for p in victims}
        self.dirty_pairs = [p for p in self.dirty_pairs if id(p) not in gone]
        self.evicted["pairs"] += len(victims)

    def _evict_assets(self, keep: tuple[Asset | None, Asset | None]) -> None:
        candidates = (a for a in self.assets.values() if a is not keep[0] and a is not keep[1])
        victims = heapq.nsmallest(self._batch(len(self.assets)), candidates, key=lambda a: a.last)
        if self.on_evict is not None:
            self.on_evict(victims, [])
        for asset in victims:
            del self.assets[asset.ip]
            for device in asset.devices.values():
                self.value_points -= len(device.values or ())
        gone = {id(a) for a in victims}
        self.dirty_assets = [a for a in self.dirty_assets if id(a) not in gone]
        self.evicted["assets"] += len(victims)
