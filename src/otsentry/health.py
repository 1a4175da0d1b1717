"""Sensor health: per-interval capture and pipeline numbers, as metric events and health alerts.

Every stats interval the live service hands the cumulative counters of each interface (frames and bytes
the sensor read, the kernel's packets/drops/freeze count, the link's own rx_packets) and of the pipeline
to :meth:`HealthMonitor.update`, which returns

* metric events (``event.kind: metric``, ``event.dataset: otsentry.health``): one ``capture_stats`` per
  interface and one ``sensor_stats``, for the event log and the SIEM;
* health alerts (``event.kind: alert``, ``rule.ruleset: sensor``): ``interface_silent`` when an interface
  captured nothing for ``silent_after`` seconds, and ``capture_loss`` when the kernel dropped more than
  ``loss_threshold`` of an interval's packets. Each fires once per episode and re-arms after recovery;
* the numbers for the periodic stats log line.

It is pure bookkeeping on numbers given to it (time included), so it is tested without a network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from otsentry.detect import severity
from otsentry.events import format_timestamp

Event = dict[str, Any]

SILENT_RULE = ("otsentry-capture-silent", "Capture interface silent", severity.SEVERITIES["high"])
LOSS_RULE = ("otsentry-capture-loss", "Capture loss above threshold", severity.SEVERITIES["high"])


@dataclass
class InterfaceCounters:
    """Cumulative counters of one interface, summed over the workers that capture it."""

    frames: int = 0  # frames the sensor read from the ring
    bytes: int = 0  # their wire length
    kernel_packets: int = 0  # frames that passed the kernel filter (including drops)
    kernel_drops: int = 0
    freeze_q: int = 0
    rx_packets: int | None = None  # all frames the link received (sysfs), before any filter

    def add(self, other: dict[str, Any]) -> None:
        self.frames += other.get("frames", 0)
        self.bytes += other.get("bytes", 0)
        self.kernel_packets += other.get("packets", 0)
        self.kernel_drops += other.get("drops", 0)
        self.freeze_q += other.get("freeze_q", 0)


@dataclass
class PipelineCounters:
    """Cumulative numbers of the pipeline after capture."""

    events: int = 0  # protocol events written (metric events not counted)
    alerts: int = 0
    decode_errors: int = 0
    flows: int = 0  # flows currently tracked
    outbox_lag: int | None = None  # alerts not yet acknowledged by the slowest SIEM destination
    workers: int = 1


@dataclass
class _InterfaceState:
    last: InterfaceCounters
    last_activity: float
    rx_at_activity: int | None = None  # the link's rx_packets when the interface last captured something
    silent: bool = False
    lossy: bool = False


@dataclass
class HealthMonitor:
    observer_name: str
    interfaces: list[str]
    silent_after: float = 300.0
    loss_threshold: float = 0.001
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self._state = {name: _InterfaceState(InterfaceCounters(), self.started) for name in self.interfaces}
        self._last_pipeline = PipelineCounters()
        self._last_time = self.started

    def update(
        self, now: float, interfaces: dict[str, InterfaceCounters], pipeline: PipelineCounters
    ) -> tuple[list[Event], list[Event], dict[str, Any]]:
        """Metric events, health alerts and the stats-line numbers for the interval ending ``now``."""
        interval = max(now - self._last_time, 1e-9)
        metrics: list[Event] = []
        alerts: list[Event] = []
        per_interface: dict[str, Any] = {}
        for name, state in self._state.items():
            cur = interfaces.get(name, InterfaceCounters())
            prev = state.last
            packets = cur.kernel_packets - prev.kernel_packets
            drops = cur.kernel_drops - prev.kernel_drops
            frames = cur.frames - prev.frames
            nbytes = cur.bytes - prev.bytes
            loss = drops / packets if packets > 0 else 0.0
            numbers = {
                "interval": round(interval, 3),
                "frames": frames,
                "pps": round(frames / interval, 1),
                "mbps": round(nbytes * 8 / interval / 1e6, 3),
                "kernel_packets": packets,
                "drops": drops,
                "freeze_q": cur.freeze_q - prev.freeze_q,
                "loss_ratio": round(loss, 6),
                "frames_total": cur.frames,
                "drops_total": cur.kernel_drops,
            }
            if cur.rx_packets is not None and prev.rx_packets is not None:
                numbers["link_rx_packets"] = cur.rx_packets - prev.rx_packets
            per_interface[name] = numbers
            metrics.append(self._metric(now, "capture_stats", name, numbers))
            if packets > 0 or frames > 0 or state.rx_at_activity is None:
                if packets > 0 or frames > 0:
                    state.last_activity = now
                state.rx_at_activity = cur.rx_packets
                state.silent = False
            elif not state.silent and now - state.last_activity >= self.silent_after:
                state.silent = True
                link = (cur.rx_packets - state.rx_at_activity
                        if cur.rx_packets is not None and state.rx_at_activity is not None else None)
                alerts.append(self._silent_alert(now, name, now - state.last_activity, link, numbers))
            if drops > 0 and loss > self.loss_threshold:
                if not state.lossy:
                    state.lossy = True
                    alerts.append(self._loss_alert(now, name, numbers))
            else:
                state.lossy = False
            state.last = InterfaceCounters(cur.frames, cur.bytes, cur.kernel_packets, cur.kernel_drops,
                                           cur.freeze_q, cur.rx_packets)
        prev_p = self._last_pipeline
        events = pipeline.events - prev_p.events
        sensor = {
            "interval": round(interval, 3),
            "events": events,
            "events_per_second": round(events / interval, 1),
            "events_total": pipeline.events,
            "alerts": pipeline.alerts - prev_p.alerts,
            "alerts_total": pipeline.alerts,
            "decode_errors": pipeline.decode_errors - prev_p.decode_errors,
            "flows": pipeline.flows,
            "outbox_lag": pipeline.outbox_lag,
            "workers": pipeline.workers,
            "uptime": round(now - self.started, 1),
        }
        metrics.append(self._metric(now, "sensor_stats", None, sensor))
        self._last_pipeline = PipelineCounters(**vars(pipeline))
        self._last_time = now
        stats = {
            **{k: sensor[k] for k in ("events_per_second", "alerts", "alerts_total", "flows", "outbox_lag")},
            "pps": round(sum(v["pps"] for v in per_interface.values()), 1),
            "mbps": round(sum(v["mbps"] for v in per_interface.values()), 3),
            "drops": sum(v["drops"] for v in per_interface.values()),
            "drops_total": sum(v["drops_total"] for v in per_interface.values()),
            "interfaces": per_interface,
        }
        return metrics, alerts, stats

    # -- documents --------------------------------------------------------------------------------

    def _base(self, now: float, kind: str, action: str, ifname: str | None) -> Event:
        stamp = format_timestamp(now)
        doc: Event = {
            "@timestamp": stamp,
            "event.kind": kind,
            "event.module": "otsentry",
            "event.dataset": "otsentry.health",
            "event.action": action,
            "event.created": stamp,
            "observer.name": self.observer_name,
        }
        if ifname is not None:
            doc["observer.ingress.interface.name"] = ifname
        return doc

    def _metric(self, now: float, action: str, ifname: str | None, numbers: dict[str, Any]) -> Event:
        doc = self._base(now, "metric", action, ifname)
        doc.update({f"otsentry.health.{k}": v for k, v in numbers.items()})
        return doc

    def _alert(self, now: float, action: str, ifname: str, rule: tuple[str, str, severity.Severity],
               message: str, numbers: dict[str, Any]) -> Event:
        rule_id, rule_name, level = rule
        doc = self._base(now, "alert", action, ifname)
        doc.update({
            "rule.id": rule_id,
            "rule.name": rule_name,
            "rule.ruleset": "sensor",
            "event.severity": level.number,
            "log.level": level.level,
            "message": message,
            "otsentry.alert.count": 1,
            "otsentry.alert.status": "new",
        })
        doc.update({f"otsentry.health.{k}": v for k, v in numbers.items()})
        return doc

    def _silent_alert(self, now: float, ifname: str, quiet: float, link: int | None,
                      numbers: dict[str, Any]) -> Event:
        if link:
            why = (f"the link received {link} frames in that time but none matched the capture filter: "
                   "check the SPAN session's source ports/VLANs and capture.filter")
        elif link == 0:
            why = "the link itself receives nothing: check the SPAN session, the tap and the cable"
        else:
            why = "check the SPAN session, the tap and the cable"
        message = f"Interface {ifname} captured no packets for {quiet:.0f} s: {why}."
        return self._alert(now, "interface_silent", ifname, SILENT_RULE, message, numbers)

    def _loss_alert(self, now: float, ifname: str, numbers: dict[str, Any]) -> Event:
        message = (
            f"Interface {ifname} lost {numbers['drops']} of {numbers['kernel_packets']} packets "
            f"({numbers['loss_ratio']:.2%}) in {numbers['interval']:.0f} s: the sensor cannot keep up — "
            "narrow capture.filter, add capture.workers or raise capture.ring_mb; events from the affected "
            "flows may be missing."
        )
        return self._alert(now, "capture_loss", ifname, LOSS_RULE, message, numbers)

    def set_thresholds(self, silent_after: float, loss_threshold: float) -> None:
        self.silent_after = silent_after
        self.loss_threshold = loss_threshold
