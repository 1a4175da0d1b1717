"""Replay captures through the sensor with the inventory stage and the detection engine as sinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otsentry.detect.engine import DetectionEngine, bundled_rules_dir
from otsentry.inventory.baseline import Baseline
from otsentry.inventory.enrich import Enricher
from otsentry.sensor import Sensor

_ENGINE: DetectionEngine | None = None


def engine() -> DetectionEngine:
    """The bundled pack, compiled once per test session (reset before each use)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = DetectionEngine.from_paths([bundled_rules_dir()], strict=True)
    _ENGINE.reset()
    return _ENGINE


def learn(captures: list[Path]) -> Baseline:
    learner = Enricher()
    sensor = Sensor(sinks=[learner])
    for path in captures:
        sensor.replay(path)
    sensor.close()
    return Baseline.learn(learner.inventory)


def golden_baseline(learned_on: list[str] | None, pcaps: Path) -> Baseline | None:
    """The baseline a golden file names (captures under ``pcaps``); None means replay without one."""
    return None if learned_on is None else learn([pcaps / name for name in learned_on])


def detect(captures: list[Path], baseline: Baseline | None = None) -> list[dict[str, Any]]:
    """Alerts of a replay: enrichment (and baseline deviations when a baseline is given), then Sigma."""
    det = engine()
    enricher = Enricher(baseline=baseline) if baseline is not None else Enricher()
    alerts: list[dict[str, Any]] = []

    def stage(events: list[dict[str, Any]]) -> None:
        alerts.extend(det(enricher(events)))

    sensor = Sensor(sinks=[stage])
    for path in captures:
        sensor.replay(path)
    sensor.close()
    alerts.extend(det(enricher.finish()))
    alerts.extend(det.flush())
    return alerts
