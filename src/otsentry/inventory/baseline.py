"""The baseline: what normal looks like, as data an OT engineer can read, review, approve and diff.

Learned from the inventory of a learning window: assets with their MACs and logical devices
(roles), pairs (protocol, initiator device → responder device), functions per pair and direction
with the register/point ranges they touched, DNP3 IIN flags seen, the polling period of each
regular request type, and the value band of each read process value.

The YAML document (``export``) is sorted and stable: the same learning gives the same bytes, and
a change shows in ``git diff`` as the lines that changed. Counts and timestamps of individual
messages are *not* in it (they change on every learning run); they live in the inventory.

``merge`` folds a fragment (a partial baseline of the same schema) in: accepting a reviewed
deviation is merging the fragment the detector recorded for it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from otsentry.inventory import oui
from otsentry.inventory.comms import (
    REQUEST,
    RESPONSE,
    ItemSet,
    PairKey,
    RangeSet,
    endpoint_id,
    pair_id,
    parse_endpoint,
    parse_pair_id,
)
from otsentry.inventory.observe import Address, Observation
from otsentry.inventory.settings import Thresholds
from otsentry.inventory.state import Inventory

FORMAT_VERSION = 1
BIG = 1 << 30  # a reviewed baseline never coarsens its ranges
FRAGMENT_CAP = 64  # what a deviation records of a new pair's activity coarsens past this (a register scan)


def ip_sort_key(ip: str) -> tuple[int, int, str]:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0, ip)
    return (addr.version, int(addr), "")


def _addr_key(address: Address) -> tuple[int, Any]:
    return (0, address) if isinstance(address, int) else (1, str(address))


def pair_sort_key(key: PairKey) -> tuple:
    protocol, iip, iaddr, rip, raddr = key
    return (ip_sort_key(iip), _addr_key(iaddr), ip_sort_key(rip), _addr_key(raddr), protocol)


def device_key(protocol: str, address: Address) -> str:
    return protocol if address is None else f"{protocol}:{address}"


def parse_device_key(text: str) -> tuple[str, Address]:
    protocol, sep, address = text.partition(":")
    if not sep:
        return protocol, None
    return protocol, int(address) if address.isdigit() else address


# -- the model ---------------------------------------------------------------------------------------


@dataclass
class BaselineDevice:
    roles: set[str] = field(default_factory=set)
    identity: dict[str, Any] = field(default_factory=dict)  # informational: never compared
    values: dict[str, tuple[float, float]] = field(default_factory=dict)  # process value bands by point


@dataclass
class BaselineAsset:
    macs: set[str] = field(default_factory=set)
    devices: dict[tuple[str, Address], BaselineDevice] = field(default_factory=dict)


@dataclass
class BaselineFunction:
    code: int | None = None
    fclass: str = "other"
    ranges: dict[str, RangeSet | ItemSet] = field(default_factory=dict)


@dataclass
class BaselinePoll:
    period: float
    jitter: float


@dataclass
class BaselinePair:
    functions: dict[tuple[str, str], BaselineFunction] = field(default_factory=dict)
    polling: dict[str, BaselinePoll] = field(default_factory=dict)
    iin_flags: set[str] = field(default_factory=set)


@dataclass
class Baseline:
    assets: dict[str, BaselineAsset] = field(default_factory=dict)
    pairs: dict[PairKey, BaselinePair] = field(default_factory=dict)
    learned: dict[str, Any] = field(default_factory=dict)

    # -- building ---------------------------------------------------------------------------------

    @classmethod
    def learn(
        cls, inventory: Inventory, thresholds: Thresholds | None = None, learned: dict[str, Any] | None = None
    ) -> Baseline:
        """The baseline of everything ``inventory`` saw (its learning window)."""
        t = thresholds or Thresholds()
        out = cls(learned=dict(learned or {}))
        for ip, asset in inventory.assets.items():
            entry = out.assets[ip] = BaselineAsset(macs=set(asset.macs))
            for key, dev in asset.devices.items():
                # Process values belong to the responding device, whichever master read them.
                bands = (dev.values or {}).items()
                values = {p: (b[0], b[1]) for p, b in bands if b[2] >= t.value_min_samples}
                entry.devices[key] = BaselineDevice(set(dev.roles), dict(dev.identity or {}), values)
        for key, pair in inventory.pairs.items():
            bp = out.pairs[key] = BaselinePair()
            for fkey, stats in pair.functions.items():
                ranges: dict[str, RangeSet | ItemSet] = {}
                for space, found in stats.spaces.items():
                    ranges[space] = RangeSet(found) if isinstance(found, RangeSet) else ItemSet(found)
                bp.functions[fkey] = BaselineFunction(stats.code, stats.fclass, ranges)
            for sig, tracker in pair.trackers.items():
                med, jit = tracker.median, tracker.jitter
                if (
                    tracker.n >= t.poll_min_samples
                    and med
                    and jit is not None
                    and jit <= t.poll_max_jitter_ratio * med
                ):
                    # Milliseconds: finer digits would change on every re-learning and clutter reviews.
                    bp.polling[sig] = BaselinePoll(round(med, 3), round(jit, 3))
            bp.iin_flags = set(pair.flags or ())
        return out

    def add_observation(self, obs: Observation) -> None:
        """Record what ``obs`` shows (assets, devices, pair, functions, ranges): the fragment a
        detector keeps for a deviation, so that accepting it teaches the baseline exactly that."""
        # get-or-create, not setdefault: a deviation that repeats calls this per message, and
        # setdefault would build (and drop) a default record every time.
        for ip, mac in ((obs.src_ip, obs.src_mac), (obs.dst_ip, obs.dst_mac)):
            if ip:
                asset = self.assets.get(ip)
                if asset is None:
                    asset = self.assets[ip] = BaselineAsset()
                if mac:
                    asset.macs.add(mac)
        if obs.from_initiator is None or not obs.src_ip or not obs.dst_ip:
            return
        for ip, address, role in (
            (obs.src_ip, obs.src_addr, obs.src_role),
            (obs.dst_ip, obs.dst_addr, obs.dst_role),
        ):
            devices = self.assets[ip].devices
            dev = devices.get((obs.protocol, address))
            if dev is None:
                dev = devices[(obs.protocol, address)] = BaselineDevice()
            dev.roles.add(role)  # type: ignore[arg-type]
        (iip, iaddr), (rip, raddr) = obs.endpoints()
        key = (obs.protocol, iip, iaddr, rip, raddr)
        pair = self.pairs.get(key)
        if pair is None:
            pair = self.pairs[key] = BaselinePair()
        direction = REQUEST if obs.from_initiator else RESPONSE
        for name, code, fclass, touched in obs.calls:
            func = pair.functions.get((direction, name))
            if func is None:
                func = pair.functions[(direction, name)] = BaselineFunction(code, fclass)
            for space, lo, hi in touched:
                _touch(func.ranges, space, lo, hi, FRAGMENT_CAP)
        if obs.flags:
            pair.iin_flags.update(obs.flags)

    def merge(self, other: Baseline) -> None:
        """Fold ``other`` in: sets union, ranges and value bands widen, polling entries replace."""
        for ip, asset in other.assets.items():
            mine = self.assets.setdefault(ip, BaselineAsset())
            mine.macs |= asset.macs
            for key, dev in asset.devices.items():
                md = mine.devices.setdefault(key, BaselineDevice())
                md.roles |= dev.roles
                md.identity.update(dev.identity)
                for point, (lo, hi) in dev.values.items():
                    old = md.values.get(point)
                    md.values[point] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
        for key, pair in other.pairs.items():
            mp = self.pairs.setdefault(key, BaselinePair())
            for fkey, func in pair.functions.items():
                mf = mp.functions.setdefault(fkey, BaselineFunction(func.code, func.fclass))
                for space, found in func.ranges.items():
                    if isinstance(found, RangeSet):
                        for lo, hi in found.spans():
                            _touch(mf.ranges, space, lo, hi)
                    else:
                        for item in found.items:
                            _touch(mf.ranges, space, item, None)
            mp.polling.update(pair.polling)
            mp.iin_flags |= pair.iin_flags

    def remove_channel(self, ip: str, protocol: str, address: Address) -> None:
        """Forget the polling expectations of every pair towards one responder (a retired device)."""
        for key, pair in self.pairs.items():
            if key[0] == protocol and key[3] == ip and key[4] == address:
                pair.polling.clear()

    # -- the document ------------------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        assets: dict[str, Any] = {}
        for ip in sorted(self.assets, key=ip_sort_key):
            asset = self.assets[ip]
            entry: dict[str, Any] = {"macs": sorted(asset.macs)}
            vendors = sorted({v for v in map(oui.vendor, asset.macs) if v})
            if vendors:
                entry["vendor"] = vendors[0] if len(vendors) == 1 else vendors
            devices: dict[str, Any] = {}
            for protocol, address in sorted(asset.devices, key=lambda k: (k[0], _addr_key(k[1]))):
                dev = asset.devices[(protocol, address)]
                doc: dict[str, Any] = {"roles": sorted(dev.roles)}
                if dev.identity:
                    doc["identity"] = {k: dev.identity[k] for k in sorted(dev.identity)}
                if dev.values:
                    doc["values"] = {
                        point: [_num(lo), _num(hi)]
                        for point, (lo, hi) in sorted(dev.values.items(), key=lambda kv: _point_key(kv[0]))
                    }
                devices[device_key(protocol, address)] = doc
            if devices:
                entry["devices"] = devices
            assets[ip] = entry
        pairs: dict[str, Any] = {}
        for key in sorted(self.pairs, key=pair_sort_key):
            pair = self.pairs[key]
            entry = {}
            for direction in (REQUEST, RESPONSE):
                funcs = {}
                for d, name in sorted(k for k in pair.functions if k[0] == direction):
                    func = pair.functions[(d, name)]
                    fdoc: dict[str, Any] = {"class": func.fclass}
                    if func.code is not None:
                        fdoc["code"] = func.code
                    if func.ranges:
                        fdoc["ranges"] = {s: r.render() for s, r in sorted(func.ranges.items())}
                    funcs[name] = fdoc
                if funcs:
                    entry[f"{direction}s"] = funcs
            if pair.polling:
                entry["polling"] = {
                    sig: {"period": p.period, "jitter": p.jitter} for sig, p in sorted(pair.polling.items())
                }
            if pair.iin_flags:
                entry["iin_flags"] = sorted(pair.iin_flags)
            pairs[pair_id(key)] = entry
        return {
            "otsentry_baseline": FORMAT_VERSION,
            "learned": {k: self.learned[k] for k in sorted(self.learned)},
            "assets": assets,
            "pairs": pairs,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Baseline:
        if not isinstance(doc, dict) or doc.get("otsentry_baseline") != FORMAT_VERSION:
            raise ValueError("not an otsentry baseline (missing 'otsentry_baseline: 1')")
        out = cls(learned=dict(doc.get("learned") or {}))
        for ip, entry in (doc.get("assets") or {}).items():
            asset = out.assets[str(ip)] = BaselineAsset(macs=set(entry.get("macs") or ()))
            for dkey, ddoc in (entry.get("devices") or {}).items():
                ddoc = ddoc or {}
                asset.devices[parse_device_key(str(dkey))] = BaselineDevice(
                    set(ddoc.get("roles") or ()),
                    dict(ddoc.get("identity") or {}),
                    {str(p): (float(b[0]), float(b[1])) for p, b in (ddoc.get("values") or {}).items()},
                )
        for pid, entry in (doc.get("pairs") or {}).items():
            entry = entry or {}
            pair = out.pairs[parse_pair_id(str(pid))] = BaselinePair()
            for direction in (REQUEST, RESPONSE):
                for name, fdoc in (entry.get(f"{direction}s") or {}).items():
                    fdoc = fdoc or {}
                    ranges: dict[str, RangeSet | ItemSet] = {}
                    for space, text in (fdoc.get("ranges") or {}).items():
                        ranges[str(space)] = (
                            ItemSet(map(str, text)) if isinstance(text, list) else RangeSet.parse(text)
                        )
                    pair.functions[(direction, str(name))] = BaselineFunction(
                        fdoc.get("code"), fdoc.get("class", "other"), ranges
                    )
            for sig, pdoc in (entry.get("polling") or {}).items():
                pair.polling[str(sig)] = BaselinePoll(float(pdoc["period"]), float(pdoc.get("jitter", 0.0)))
            pair.iin_flags = set(entry.get("iin_flags") or ())
        return out

    def to_yaml(self) -> str:
        return dump_yaml(self.to_doc())

    @classmethod
    def from_text(cls, text: str) -> Baseline:
        """YAML or JSON (JSON is YAML)."""
        return cls.from_doc(yaml.safe_load(text))

    # -- review --------------------------------------------------------------------------------------

    def facts(self) -> dict[str, str]:
        """Every statement the baseline makes, as ``{fact: value}``: the unit of ``diff``."""
        out: dict[str, str] = {}
        for ip, asset in self.assets.items():
            out[f"asset {ip}"] = ""
            for mac in asset.macs:
                out[f"asset {ip} mac {mac}"] = ""
            for (protocol, address), dev in asset.devices.items():
                device = endpoint_id(ip, protocol, address)
                out[f"device {device} {protocol}"] = ",".join(sorted(dev.roles))
                for point, (lo, hi) in dev.values.items():
                    out[f"band {device} {protocol} {point}"] = f"[{_num(lo)}, {_num(hi)}]"
        for key, pair in self.pairs.items():
            pid = pair_id(key)
            out[f"pair {pid}"] = ""
            for (direction, name), func in pair.functions.items():
                out[f"function {pid} {direction} {name}"] = func.fclass
                for space, found in func.ranges.items():
                    rendered = found.render()
                    out[f"range {pid} {direction} {name} {space or '-'}"] = (
                        rendered if isinstance(rendered, str) else ",".join(rendered)
                    )
            for sig, poll in pair.polling.items():
                out[f"polling {pid} {sig}"] = f"{poll.period:.3f}s ±{poll.jitter:.3f}"
            for flag in pair.iin_flags:
                out[f"iin {pid} {flag}"] = ""
        return out

    def summary(self) -> dict[str, int]:
        return {
            "assets": len(self.assets),
            "devices": sum(len(a.devices) for a in self.assets.values()),
            "pairs": len(self.pairs),
            "functions": sum(len(p.functions) for p in self.pairs.values()),
            "polled_request_types": sum(len(p.polling) for p in self.pairs.values()),
            "value_bands": sum(len(d.values) for a in self.assets.values() for d in a.devices.values()),
        }


def diff(old: Baseline, new: Baseline) -> dict[str, list[Any]]:
    """Facts ``added`` in ``new``, ``removed`` from ``old`` and ``changed`` (``[fact, old, new]``)."""
    a, b = old.facts(), new.facts()
    key = _fact_sort_key
    return {
        "added": sorted((f for f in b if f not in a), key=key),
        "removed": sorted((f for f in a if f not in b), key=key),
        "changed": [[f, a[f], b[f]] for f in sorted((f for f in a if f in b and a[f] != b[f]), key=key)],
    }


def _fact_sort_key(fact: str) -> tuple:
    kind, _, rest = fact.partition(" ")
    order = ("asset", "device", "pair", "function", "range", "polling", "band", "iin")
    return (
        order.index(kind) if kind in order else 99,
        [ip_sort_key(p) if p[:1].isdigit() else p for p in rest.split(" ")],
    )


def _touch(ranges: dict[str, RangeSet | ItemSet], space: str, lo: Any, hi: Any, cap: int = BIG) -> None:
    found = ranges.get(space)
    if found is None:
        found = ranges[space] = RangeSet() if hi is not None else ItemSet()
    if hi is None:
        if isinstance(found, ItemSet):
            found.add(str(lo), cap)
    elif isinstance(found, RangeSet):
        ranges[space] = found.add(lo, hi, cap)


def _num(value: float) -> int | float:
    """Band limits as the integers they usually are (registers), else 6 significant digits."""
    if float(value).is_integer():
        return int(value)
    return float(f"{value:.6g}")


def _point_key(point: str) -> tuple[str, int, str]:
    space, _, index = point.rpartition(":")
    return (space, int(index), "") if index.isdigit() else (space, 0, index)


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, one-line lists of scalars (``roles: [server]``, ``hr:3: [120, 310]``),
    keys in the order we built them (already sorted naturally), no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def represent_list(self, data: list[Any]) -> yaml.Node:
        flow = all(isinstance(x, str | int | float) for x in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _Dumper.represent_list)


def dump_yaml(doc: Any) -> str:
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=110
    )


def endpoints_of(key: PairKey) -> tuple[str, str]:
    protocol, iip, iaddr, rip, raddr = key
    return endpoint_id(iip, protocol, iaddr), endpoint_id(rip, protocol, raddr)


def parse_channel(text: str) -> tuple[str, str, Address]:
    """``10.20.2.31/dnp3:10`` → (ip, protocol, address)."""
    ip, protocol, address = parse_endpoint(text)
    return ip, protocol or "", address


def iter_channels(baseline: Baseline) -> Iterable[tuple[tuple[str, str, Address], float]]:
    """Responders whose polling was learned, with their fastest learned period."""
    fastest: dict[tuple[str, str, Address], float] = {}
    for (protocol, _iip, _iaddr, rip, raddr), pair in baseline.pairs.items():
        for poll in pair.polling.values():
            channel = (rip, protocol, raddr)
            if poll.period < fastest.get(channel, float("inf")):
                fastest[channel] = poll.period
    return sorted(fastest.items(), key=lambda kv: (ip_sort_key(kv[0][0]), kv[0][1], _addr_key(kv[0][2])))
