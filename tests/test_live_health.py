"""Sensor health: rates per interval, metric events, silent-interface and capture-loss alerts."""

from __future__ import annotations

from otsentry.health import HealthMonitor, InterfaceCounters, PipelineCounters

T0 = 1_700_000_000.0


def _monitor(**kwargs: float) -> HealthMonitor:
    return HealthMonitor("tap-1", ["eth1", "eth2"], started=T0, **kwargs)


def _counters(frames: int, nbytes: int, packets: int, drops: int, rx: int | None = None) -> InterfaceCounters:
    return InterfaceCounters(frames, nbytes, packets, drops, 0, rx)


def test_rates_and_metric_events() -> None:
    monitor = _monitor()
    metrics, alerts, stats = monitor.update(
        T0 + 10,
        {"eth1": _counters(20_000, 2_500_000, 20_000, 0, 50_000), "eth2": _counters(0, 0, 0, 0)},
        PipelineCounters(events=5_000, alerts=3, flows=12, outbox_lag=7, workers=2),
    )
    assert alerts == []
    eth1 = next(m for m in metrics if m.get("observer.ingress.interface.name") == "eth1")
    assert eth1["event.kind"] == "metric" and eth1["event.dataset"] == "otsentry.health"
    assert eth1["event.action"] == "capture_stats" and eth1["observer.name"] == "tap-1"
    assert eth1["otsentry.health.pps"] == 2000.0 and eth1["otsentry.health.mbps"] == 2.0
    assert eth1["@timestamp"] == "2023-11-14T22:13:30.000000Z"
    sensor = next(m for m in metrics if m["event.action"] == "sensor_stats")
    assert sensor["otsentry.health.events_per_second"] == 500.0 and sensor["otsentry.health.outbox_lag"] == 7
    assert stats["pps"] == 2000.0 and stats["drops"] == 0 and stats["alerts"] == 3

    metrics, _, stats = monitor.update(
        T0 + 20,
        {"eth1": _counters(30_000, 3_750_000, 30_000, 0, 60_000), "eth2": _counters(0, 0, 0, 0)},
        PipelineCounters(events=6_000, alerts=3, flows=12, workers=2),
    )
    eth1 = next(m for m in metrics if m.get("observer.ingress.interface.name") == "eth1")
    assert eth1["otsentry.health.frames"] == 10_000 and eth1["otsentry.health.link_rx_packets"] == 10_000
    assert stats["events_per_second"] == 100.0 and stats["alerts"] == 0 and stats["alerts_total"] == 3


def test_silent_interface_alerts_once_and_rearms() -> None:
    monitor = _monitor(silent_after=60)
    busy = {"eth1": _counters(10, 1000, 10, 0, 100), "eth2": _counters(10, 1000, 10, 0, 100)}
    assert monitor.update(T0 + 30, busy, PipelineCounters())[1] == []
    quiet_eth2 = {"eth1": _counters(20, 2000, 20, 0, 200), "eth2": _counters(10, 1000, 10, 0, 100)}
    assert monitor.update(T0 + 60, quiet_eth2, PipelineCounters())[1] == []  # quiet for 30 s only
    alerts = monitor.update(
        T0 + 90, {**quiet_eth2, "eth1": _counters(30, 3000, 30, 0, 300)}, PipelineCounters()
    )[1]
    assert [(a["event.action"], a["observer.ingress.interface.name"]) for a in alerts] == [
        ("interface_silent", "eth2")
    ]
    alert = alerts[0]
    assert alert["event.kind"] == "alert" and alert["rule.id"] == "otsentry-capture-silent"
    assert alert["rule.ruleset"] == "sensor" and alert["event.severity"] == 7 and alert["log.level"] == "high"
    assert "no packets for 60 s" in alert["message"] and "link itself receives nothing" in alert["message"]
    again = monitor.update(
        T0 + 120, {**quiet_eth2, "eth1": _counters(40, 4000, 40, 0, 400)}, PipelineCounters()
    )
    assert again[1] == []  # still silent: no second alert
    back = {"eth1": _counters(50, 5000, 50, 0, 500), "eth2": _counters(11, 1100, 11, 0, 101)}
    assert monitor.update(T0 + 130, back, PipelineCounters())[1] == []
    quiet = {"eth1": _counters(60, 6000, 60, 0, 600), "eth2": _counters(11, 1100, 11, 0, 900)}
    assert monitor.update(T0 + 180, quiet, PipelineCounters())[1] == []
    alerts = monitor.update(T0 + 200, {**quiet, "eth1": _counters(70, 7000, 70, 0, 700)}, PipelineCounters())[
        1
    ]
    assert [a["event.action"] for a in alerts] == ["interface_silent"]  # re-armed after it spoke again
    assert "received 799 frames in that time but none matched" in alerts[0]["message"]


def test_capture_loss_above_threshold() -> None:
    monitor = _monitor(loss_threshold=0.01)
    ok = monitor.update(
        T0 + 10, {"eth1": _counters(995, 0, 1000, 5), "eth2": _counters(1, 0, 1, 0)}, PipelineCounters()
    )
    assert ok[1] == []  # 0.5 % is under 1 %
    lossy = monitor.update(
        T0 + 20, {"eth1": _counters(1895, 0, 2000, 105), "eth2": _counters(2, 0, 2, 0)}, PipelineCounters()
    )
    assert [a["event.action"] for a in lossy[1]] == ["capture_loss"]
    alert = lossy[1][0]
    assert alert["rule.id"] == "otsentry-capture-loss" and alert["otsentry.health.drops"] == 100
    assert (
        alert["otsentry.health.loss_ratio"] == 0.1 and "lost 100 of 1000 packets (10.00%)" in alert["message"]
    )
    still = monitor.update(
        T0 + 30, {"eth1": _counters(2795, 0, 3000, 205), "eth2": _counters(3, 0, 3, 0)}, PipelineCounters()
    )
    assert still[1] == [] and still[2]["drops"] == 100  # one alert per episode, numbers still reported
    monitor.update(
        T0 + 40, {"eth1": _counters(3795, 0, 4000, 205), "eth2": _counters(4, 0, 4, 0)}, PipelineCounters()
    )
    again = monitor.update(
        T0 + 50, {"eth1": _counters(4700, 0, 5000, 300), "eth2": _counters(5, 0, 5, 0)}, PipelineCounters()
    )
    assert [a["event.action"] for a in again[1]] == ["capture_loss"]
