"""Baseline deviation detection: compares each observation with a learned :class:`Baseline`.

One root cause gives one deviation. For a message the checks run in this order and the first
that fires explains the message (later ones would only repeat it):

1. ``new_asset`` — an IP the baseline does not know (everything it does is folded into that one
   deviation, so accepting it teaches the baseline what the new asset did);
2. for a pair the baseline does not know: ``new_dnp3_master`` (a known outstation polled by a master
   it never had), ``new_pair`` (two hosts that never talked), ``new_protocol`` (hosts that talked,
   but not in this protocol), ``new_asset`` for a new logical device (a new unit id or link address
   on a known IP), else ``new_pair`` for the logical pair;
3. for a known pair: ``new_function_code``, ``write_outside_range`` (writes and controls on points
   outside the learned ranges), ``value_out_of_band``, ``polling_period_deviation``.

Independently: ``new_mac_for_ip`` for a known IP, and ``channel_silent`` when a responder whose
polling was learned sends nothing for too long. Deviations are identified by a stable id (a hash
of kind and subject), so ``baseline accept ID`` works across runs. Kinds that describe a state
(values, polling, silence) fire again after the state returned to normal; the others fire once.
"""

from __future__ import annotations

import functools
import hashlib
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from otsentry.inventory import oui
from otsentry.inventory.baseline import (
    Baseline,
    BaselineAsset,
    BaselineDevice,
    BaselinePair,
    BaselinePoll,
    iter_channels,
)
from otsentry.inventory.codes import ACTIVE_CLASSES
from otsentry.inventory.comms import REQUEST, RESPONSE, ItemSet, PairKey, RangeSet, endpoint_id, pair_id
from otsentry.inventory.observe import Address, Event, Observation
from otsentry.inventory.settings import Thresholds

DATASET = "otsentry.baseline"
MAX_DEVIATIONS = 100_000  # distinct deviations kept for dedup; past it new ones are counted, not raised
MAX_FRAGMENT_PAIRS = 32  # what a deviation remembers of a new asset's or pair's activity

# Sigma level → event.severity, as in EVENTS.md's severity table.
SEVERITY: dict[str, tuple[int, str]] = {
    "new_asset": (5, "medium"),
    "new_mac_for_ip": (7, "high"),
    "new_pair": (5, "medium"),
    "new_protocol": (5, "medium"),
    "new_dnp3_master": (7, "high"),
    "new_function_code": (7, "high"),
    "write_outside_range": (7, "high"),
    "value_out_of_band": (5, "medium"),
    "polling_period_deviation": (3, "low"),
    "channel_silent": (5, "medium"),
}
RULE_NAMES: dict[str, str] = {
    "new_asset": "New asset",
    "new_mac_for_ip": "New MAC address for a known IP",
    "new_pair": "New communication pair",
    "new_protocol": "New protocol between known assets",
    "new_dnp3_master": "New DNP3 master for an outstation",
    "new_function_code": "New function for a communication pair",
    "write_outside_range": "Write or control outside the learned range",
    "value_out_of_band": "Process value outside its learned band",
    "polling_period_deviation": "Polling period changed",
    "channel_silent": "Channel gone silent",
}


@functools.lru_cache(maxsize=65536)  # repeats of a deviation look their id up once per message
def deviation_id(action: str, subject: str) -> str:
    return hashlib.sha1(f"{action}|{subject}".encode()).hexdigest()[:12]


def format_ts(ts: float) -> str:
    sec = int(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{round((ts - sec) * 1e6) % 1000000:06d}Z"


def _render_spans(spans: list[Any]) -> str:
    return ",".join(
        str(s) if not isinstance(s, tuple) else (str(s[0]) if s[0] == s[1] else f"{s[0]}-{s[1]}")
        for s in spans
    )


@dataclass
class Deviation:
    id: str
    action: str
    subject: str
    message: str
    expected: Any
    observed: Any
    first_seen: float
    last_seen: float
    count: int = 1
    fragment: Baseline | None = None
    remove_channel: tuple[str, str, Address] | None = None
    dirty: bool = True

    def detail(self) -> dict[str, Any]:
        return {
            "merge": self.fragment.to_doc() if self.fragment is not None else None,
            "remove_channel": list(self.remove_channel) if self.remove_channel else None,
        }


@dataclass
class _PollWindow:
    last: float
    intervals: deque = field(default_factory=deque)
    deviating: bool = False


class Detector:
    def __init__(self, baseline: Baseline, thresholds: Thresholds | None = None) -> None:
        self.baseline = baseline
        self.t = t = thresholds or Thresholds()
        self.host_protocols: dict[tuple[str, str], set[str]] = {}
        self.devices: set[tuple[str, str, Address]] = set()
        self.masters: dict[tuple[str, Address], set[tuple[str, Address]]] = {}
        for protocol, iip, iaddr, rip, raddr in baseline.pairs:
            self.host_protocols.setdefault((iip, rip), set()).add(protocol)
            if protocol == "dnp3":
                self.masters.setdefault((rip, raddr), set()).add((iip, iaddr))
        for ip, asset in baseline.assets.items():
            for protocol, address in asset.devices:
                self.devices.add((ip, protocol, address))
        self.channels: dict[tuple[str, str, Address], tuple[float, float]] = {
            ch: (max(t.silence_timeout, t.silence_periods * period), period)
            for ch, period in iter_channels(baseline)
        }
        self.tick_every = max(1.0, min((v[0] for v in self.channels.values()), default=60.0) / 4)
        self.channel_last: dict[tuple[str, str, Address], float] = {}
        self.channel_alerted: set[tuple[str, str, Address]] = set()
        self.deviations: dict[str, Deviation] = {}
        self.reported: dict[tuple, str] = {}
        self.out_of_band: set[tuple[tuple[str, str, Address], str]] = set()
        self.poll_windows: dict[tuple[PairKey, str], _PollWindow] = {}
        self.start: float | None = None
        self.now = 0.0
        self.dropped = 0

    # -- raising ---------------------------------------------------------------------------------------

    def _fire(
        self,
        out: list[Event],
        action: str,
        subject: str,
        ts: float,
        event: Event | None,
        message: str,
        expected: Any,
        observed: Any,
        related: list[str],
    ) -> Deviation | None:
        dev_id = deviation_id(action, subject)
        dev = self.deviations.get(dev_id)
        if dev is None:
            if len(self.deviations) >= MAX_DEVIATIONS:
                self.dropped += 1
                return None
            dev = self.deviations[dev_id] = Deviation(
                dev_id, action, subject, message, expected, observed, ts, ts
            )
        else:
            dev.count += 1
            dev.last_seen = max(dev.last_seen, ts)
            dev.message, dev.expected, dev.observed = message, expected, observed
            dev.dirty = True
        severity, level = SEVERITY[action]
        alert: Event = (
            dict(event) if event is not None else {"@timestamp": format_ts(ts), "event.module": "otsentry"}
        )
        if event is not None and "event.action" in event:
            alert["otsentry.baseline.event_action"] = event["event.action"]
        alert.update(
            {
                "event.kind": "alert",
                "event.module": "otsentry",
                "event.dataset": DATASET,
                "event.action": action,
                "rule.ruleset": "baseline",
                "rule.id": f"otsentry.baseline.{action}",
                "rule.name": RULE_NAMES[action],
                "event.severity": severity,
                "log.level": level,
                "message": message,
                "related.ip": sorted(set(related)),
                "otsentry.baseline.deviation_id": dev_id,
                "otsentry.baseline.subject": subject,
                "otsentry.baseline.expected": expected,
                "otsentry.baseline.observed": observed,
                "otsentry.alert.status": "new",
            }
        )
        out.append(alert)
        return dev

    def _once(
        self,
        out: list[Event],
        action: str,
        subject: str,
        obs: Observation,
        event: Event,
        message: str,
        expected: Any,
        observed: Any,
    ) -> Deviation | None:
        """Raise a once-only deviation; later hits only count (and teach its fragment)."""
        dev = self.deviations.get(deviation_id(action, subject))
        if dev is not None:
            dev.count += 1
            dev.last_seen = max(dev.last_seen, obs.ts)
            dev.dirty = True
        else:
            related = [ip for ip in (obs.src_ip, obs.dst_ip) if ip]
            dev = self._fire(out, action, subject, obs.ts, event, message, expected, observed, related)
        return dev

    def _learn_into(self, dev: Deviation | None, obs: Observation) -> None:
        if dev is None:
            return
        if dev.fragment is None:
            dev.fragment = Baseline()
        if len(dev.fragment.pairs) < MAX_FRAGMENT_PAIRS:
            dev.fragment.add_observation(obs)

    # -- checks ------------------------------------------------------------------------------------------

    def check(self, obs: Observation, event: Event) -> list[Event]:
        out: list[Event] = []
        ts = obs.ts
        if self.start is None:
            self.start = ts
        if ts > self.now:
            self.now = ts
        b = self.baseline
        for ip, mac in ((obs.src_ip, obs.src_mac), (obs.dst_ip, obs.dst_mac)):
            if ip and mac:
                asset = b.assets.get(ip)
                if asset is not None and asset.macs and mac not in asset.macs:
                    self._new_mac(out, ip, mac, asset, obs, event)
        if obs.from_initiator is False and obs.src_ip:
            # Liveness first: a responder answering an unknown master (a failover) is not silent.
            self._alive(out, (obs.src_ip, obs.protocol, obs.src_addr), obs, event)
        unknown = [ip for ip in (obs.src_ip, obs.dst_ip) if ip and ip not in b.assets]
        for ip in unknown:
            self._root(
                out,
                ("ip", ip),
                "new_asset",
                ip,
                obs,
                event,
                f"New asset {ip}{_mac_note(obs, ip)} {_doing(obs)}.",
                f"one of the {len(b.assets)} assets in the baseline",
                _describe(obs, ip),
            )
        if unknown or obs.from_initiator is None:
            return out
        (iip, iaddr), (rip, raddr) = obs.endpoints()
        protocol = obs.protocol
        key = (protocol, iip, iaddr, rip, raddr)
        pair = b.pairs.get(key)
        if pair is None:
            self._unknown_pair(out, key, obs, event)
            return out
        self._functions(out, key, pair, obs, event)
        if obs.values:
            self._values(out, key, obs, event)
        if obs.signature is not None and obs.from_initiator and pair.polling:
            self._polling(out, key, pair, obs, event)
        return out

    def _new_mac(
        self, out: list[Event], ip: str, mac: str, asset: BaselineAsset, obs: Observation, event: Event
    ) -> None:
        vendor = oui.vendor(mac)
        known = sorted(asset.macs)
        dev = self._once(
            out,
            "new_mac_for_ip",
            f"{ip} {mac}",
            obs,
            event,
            f"{ip} now uses MAC {mac}{f' ({vendor})' if vendor else ''};"
            f" the baseline knows {', '.join(known)}.",
            known,
            mac,
        )
        if dev is not None and dev.fragment is None:
            dev.fragment = Baseline(assets={ip: BaselineAsset(macs={mac})})

    def _root(
        self,
        out: list[Event],
        skey: tuple,
        action: str,
        subject: str,
        obs: Observation,
        event: Event,
        message: str,
        expected: Any,
        observed: Any,
    ) -> None:
        dev_id = self.reported.get(skey)
        if dev_id is not None:
            dev = self.deviations.get(dev_id)
            if dev is not None:
                dev.count += 1
                dev.last_seen = max(dev.last_seen, obs.ts)
                dev.dirty = True
                self._learn_into(dev, obs)
            return
        dev = self._once(out, action, subject, obs, event, message, expected, observed)
        if dev is not None:
            self.reported[skey] = dev.id
            self._learn_into(dev, obs)

    def _unknown_pair(self, out: list[Event], key: PairKey, obs: Observation, event: Event) -> None:
        protocol, iip, iaddr, rip, raddr = key
        initiator, responder = endpoint_id(iip, protocol, iaddr), endpoint_id(rip, protocol, raddr)
        pid = pair_id(key)
        masters = self.masters.get((rip, raddr)) if protocol == "dnp3" else None
        protocols = self.host_protocols.get((iip, rip))
        if masters is not None and (iip, iaddr) not in masters:
            known = sorted(endpoint_id(ip, "dnp3", a) for ip, a in masters)
            self._root(
                out,
                ("dnp3_master", iip, iaddr, rip, raddr),
                "new_dnp3_master",
                f"{initiator} -> {responder}",
                obs,
                event,
                f"{initiator} acts as DNP3 master of outstation {responder},"
                f" whose masters are {', '.join(known)}.",
                known,
                initiator,
            )
        elif protocols is None:
            peers = sorted({f"{p} {i}" for (i, r), ps in self.host_protocols.items() if r == rip for p in ps})
            self._root(
                out,
                ("host", iip, rip),
                "new_pair",
                f"{iip} -> {rip}",
                obs,
                event,
                f"{iip} talks {protocol} to {rip} for the first time ({_doing(obs)}).",
                peers or [f"no initiator talks to {rip}"],
                pid,
            )
        elif protocol not in protocols:
            self._root(
                out,
                ("host_protocol", iip, rip, protocol),
                "new_protocol",
                f"{protocol} {iip} -> {rip}",
                obs,
                event,
                f"{iip} talks {protocol} to {rip}; in the baseline they talk only "
                f"{', '.join(sorted(protocols))}.",
                sorted(protocols),
                protocol,
            )
        else:
            for ip, address in ((rip, raddr), (iip, iaddr)):
                if address is not None and (ip, protocol, address) not in self.devices:
                    device = endpoint_id(ip, protocol, address)
                    known = sorted(
                        endpoint_id(ip, p, a) for (i, p, a) in self.devices if i == ip and p == protocol
                    )
                    self._root(
                        out,
                        ("device", ip, protocol, address),
                        "new_asset",
                        device,
                        obs,
                        event,
                        f"New logical device {device} ({_doing(obs)}).",
                        known,
                        device,
                    )
                    return
            known = sorted(pair_id(k) for k in self.baseline.pairs if k[1] == iip and k[3] == rip)
            self._root(
                out,
                ("pair", key),
                "new_pair",
                pid,
                obs,
                event,
                f"New communication {pid} ({_doing(obs)}).",
                known,
                pid,
            )

    def _functions(
        self, out: list[Event], key: PairKey, pair: BaselinePair, obs: Observation, event: Event
    ) -> None:
        direction = REQUEST if obs.from_initiator else RESPONSE
        for name, code, fclass, touched in obs.calls:
            learned = pair.functions.get((direction, name))
            if learned is None:
                pid = pair_id(key)
                known = sorted(n for d, n in pair.functions if d == direction)
                shown = f"{name} ({code})" if code is not None else name
                dev = self._once(
                    out,
                    "new_function_code",
                    f"{pid} {name}",
                    obs,
                    event,
                    f"{pid}: new {direction} {shown}; learned: {', '.join(known) or 'none'}.",
                    known,
                    shown,
                )
                self._learn_into(dev, obs)
                continue
            if direction != REQUEST or fclass not in ACTIVE_CLASSES:
                continue
            for space, lo, hi in touched:
                ranges = learned.ranges.get(space)
                if hi is None:
                    if isinstance(ranges, ItemSet) and str(lo) in ranges:
                        continue
                    missing: list[Any] = [str(lo)]
                    allowed: Any = ranges.render() if isinstance(ranges, ItemSet) else []
                else:
                    if isinstance(ranges, RangeSet) and (lo, hi) in ranges:
                        continue
                    missing = ranges.outside(lo, hi) if isinstance(ranges, RangeSet) else [(lo, hi)]
                    allowed = ranges.render() if isinstance(ranges, RangeSet) else ""
                pid = pair_id(key)
                shown = _render_spans(missing)
                allowed_text = allowed if isinstance(allowed, str) else ",".join(allowed)
                dev = self._once(
                    out,
                    "write_outside_range",
                    f"{pid} {name} {space} {shown}",
                    obs,
                    event,
                    f"{pid}: {name} on {space} {shown}, outside the learned {allowed_text or 'nothing'}.",
                    allowed,
                    shown,
                )
                self._learn_into(dev, obs)

    def _values(self, out: list[Event], key: PairKey, obs: Observation, event: Event) -> None:
        t = self.t
        device = (key[3], key[0], key[4])
        asset = self.baseline.assets.get(key[3])
        learned = asset.devices.get((key[0], key[4])) if asset is not None else None
        if learned is None or not learned.values:
            return
        for point, value in obs.values or ():
            band = learned.values.get(point)
            if band is None:
                continue
            lo, hi = band
            margin = max(t.value_band_margin * (hi - lo), t.value_band_min_margin)
            state = (device, point)
            if lo - margin <= value <= hi + margin:
                self.out_of_band.discard(state)
                continue
            if state in self.out_of_band:
                continue
            self.out_of_band.add(state)
            subject = f"{endpoint_id(*device)} {point}"
            dev = self._fire(
                out,
                "value_out_of_band",
                subject,
                obs.ts,
                event,
                f"{subject} reads {value}, outside its learned band [{lo}, {hi}] (± {margin:g}).",
                f"[{lo}, {hi}] ± {margin:g}",
                str(value),
                [key[1], key[3]],
            )
            if dev is not None:
                if dev.fragment is None:
                    dev.fragment = Baseline()
                frag_asset = dev.fragment.assets.setdefault(key[3], BaselineAsset())
                frag = frag_asset.devices.setdefault((key[0], key[4]), BaselineDevice())
                old = frag.values.get(point)
                frag.values[point] = (min(value, old[0]), max(value, old[1])) if old else (value, value)

    def _polling(
        self, out: list[Event], key: PairKey, pair: BaselinePair, obs: Observation, event: Event
    ) -> None:
        sig = obs.signature
        learned = pair.polling.get(sig)  # type: ignore[arg-type]
        if learned is None:
            return
        t = self.t
        wkey = (key, sig)
        window = self.poll_windows.get(wkey)  # type: ignore[arg-type]
        if window is None:
            self.poll_windows[wkey] = _PollWindow(obs.ts, deque(maxlen=t.poll_window))  # type: ignore[index]
            return
        dt = obs.ts - window.last
        if dt <= 0:
            return
        window.last = obs.ts
        window.intervals.append(dt)
        if len(window.intervals) < t.poll_window:
            return
        ordered = sorted(window.intervals)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        tolerance = max(
            t.poll_tolerance * learned.period, t.poll_jitter_factor * learned.jitter, t.poll_min_tolerance
        )
        off = abs(median - learned.period) > tolerance
        if not off:
            window.deviating = False
            return
        if window.deviating:
            return
        window.deviating = True
        pid = pair_id(key)
        dev = self._fire(
            out,
            "polling_period_deviation",
            f"{pid} {sig}",
            obs.ts,
            event,
            f"{pid}: '{sig}' now every {median:.3f} s (median of the last {t.poll_window}); "
            f"learned {learned.period:.3f} s ± {tolerance:.3f}.",
            f"{learned.period:.3f} s (jitter {learned.jitter:.3f} s)",
            f"{median:.3f} s",
            [key[1], key[3]],
        )
        if dev is not None:
            spread = statistics.median(abs(x - median) for x in window.intervals)
            dev.fragment = Baseline(
                pairs={
                    key: BaselinePair(
                        polling={
                            sig: BaselinePoll(
                                round(median, 6),  # type: ignore[dict-item]
                                round(spread, 6),
                            )
                        }
                    )
                }
            )

    # -- silence ---------------------------------------------------------------------------------------------

    def _alive(
        self, out: list[Event], channel: tuple[str, str, Address], obs: Observation, event: Event
    ) -> None:
        limits = self.channels.get(channel)
        if limits is None:
            return
        last = self.channel_last.get(channel, self.start)
        self.channel_last[channel] = obs.ts
        if channel in self.channel_alerted:
            self.channel_alerted.discard(channel)
        elif last is not None and obs.ts - last > limits[0]:
            self._silent(out, channel, last, obs.ts)  # no tick ran during the gap: report it now

    def tick(self, now: float) -> list[Event]:
        """Channels silent for longer than their timeout, as of packet time ``now``."""
        out: list[Event] = []
        if self.start is None:
            return out
        if now > self.now:
            self.now = now
        for channel, (timeout, _period) in self.channels.items():
            last = self.channel_last.get(channel, self.start)
            if now - last > timeout and channel not in self.channel_alerted:
                self.channel_alerted.add(channel)
                self._silent(out, channel, last, now)
        return out

    def _silent(self, out: list[Event], channel: tuple[str, str, Address], last: float, now: float) -> None:
        ip, protocol, address = channel
        timeout, period = self.channels[channel]
        device = endpoint_id(ip, protocol, address)
        dev = self._fire(
            out,
            "channel_silent",
            f"{device} {protocol}",
            now,
            None,
            f"{device} has sent no {protocol} message for {now - last:.0f} s"
            f" (learned polling every {period:.3f} s; "
            f"timeout {timeout:.0f} s).",
            f"a {protocol} message at least every {timeout:.0f} s",
            f"silent since {format_ts(last)}",
            [ip],
        )
        if out and dev is not None:
            out[-1].update({"network.protocol": protocol, "source.ip": ip})
            dev.remove_channel = channel


def _mac_note(obs: Observation, ip: str) -> str:
    mac = obs.src_mac if ip == obs.src_ip else obs.dst_mac
    if not mac:
        return ""
    vendor = oui.vendor(mac)
    return f" (MAC {mac}{', ' + vendor if vendor else ''})"


def _doing(obs: Observation) -> str:
    names = ", ".join(c[0] for c in obs.calls[:3]) or "message"
    if obs.from_initiator is None:
        return f"{obs.protocol} {names} {obs.src_ip} -> {obs.dst_ip}"
    (iip, iaddr), (rip, raddr) = obs.endpoints()
    return (
        f"{obs.protocol} {names}, {endpoint_id(iip, obs.protocol, iaddr)} -> "
        f"{endpoint_id(rip, obs.protocol, raddr)}"
    )


def _describe(obs: Observation, ip: str) -> str:
    role = obs.src_role if ip == obs.src_ip else obs.dst_role
    return f"{ip} ({obs.protocol} {role or 'peer'})"
