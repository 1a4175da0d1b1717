"""Replay captures through the sensor with the inventory stage and the detection engine as sinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otsentry.analysis import Analysis
from otsentry.config import c1222_spec
from otsentry.detect.engine import DetectionEngine, bundled_rules_dir
from otsentry.inventory.baseline import Baseline
from otsentry.inventory.enrich import Enricher
from otsentry.protocols import ProtocolSpec, all_specs
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


def sensor_specs(config: dict[str, Any] | None) -> list[ProtocolSpec] | None:
    """The protocol specs a golden's ``sensor_config`` asks for (its ``[c1222]`` table); None: defaults."""
    if not config or "c1222" not in config:
        return None
    c1222 = c1222_spec(config["c1222"])
    return [c1222 if spec.name == c1222.name else spec for spec in all_specs()]


def detect(
    captures: list[Path], baseline: Baseline | None = None, config: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Alerts of a replay through the analysis stages a sensor runs (enrichment with baseline deviations
    when a baseline is given, the stateful DNP3 command checks, then Sigma); ``config`` is a golden's
    ``sensor_config``."""
    enricher = Enricher(baseline=baseline) if baseline is not None else Enricher()
    analysis = Analysis(enricher, engine())
    alerts: list[dict[str, Any]] = []

    def stage(events: list[dict[str, Any]]) -> None:
        alerts.extend(analysis(events))

    sensor = Sensor(sinks=[stage], specs=sensor_specs(config))
    for path in captures:
        sensor.replay(path)
        alerts.extend(analysis.end_of_capture(path))
    sensor.close()
    return alerts
