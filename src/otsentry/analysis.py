"""The stages after decoding: enrichment (inventory, baseline deviations, DNP3 command state), then
detection.

For each batch of protocol events the enricher updates the inventory, adds its context to the
events and appends baseline deviations; the DNP3 command tracker adds what needs earlier messages
(select-before-operate, SAv5 challenges); the Sigma engine turns events and deviations into
alerts. Protocol events go on to the event sinks; alerts to the alert sinks (the engine has
already stored them, with their outbox entry, when it has a database). At the end of a capture
the open correlation windows are judged and the evidence pcaps are cut from the capture.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from otsentry.detect.alerts import AlertStore
from otsentry.detect.engine import DetectionEngine, bundled_rules_dir
from otsentry.detect.evidence import cut_from_capture, requests_from_alerts
from otsentry.inventory.baseline import Baseline
from otsentry.inventory.dnp3_commands import Dnp3CommandTracker, settings_from_table
from otsentry.inventory.enrich import Enricher
from otsentry.inventory.settings import Limits, Thresholds, from_mapping
from otsentry.inventory.store import InventoryStore

Event = dict[str, Any]


class Analysis:
    """``analysis(events) -> alerts``; ``end_of_capture(path) -> alerts``; ``close()``."""

    def __init__(
        self,
        enricher: Enricher,
        engine: DetectionEngine | None,
        alerts_out: Path | None = None,
        commands: Dnp3CommandTracker | None = None,
    ) -> None:
        self.enricher = enricher
        self.commands = commands if commands is not None else Dnp3CommandTracker()
        self.engine = engine
        self.alerts_out = open(alerts_out, "wb") if alerts_out else None  # noqa: SIM115 - closed in close()
        self.capture_alerts: list[Event] = []
        self.counts: Counter[str] = Counter()

    def __call__(self, events: list[Event]) -> list[Event]:
        protocol_events = len(events)
        self.enricher(events)  # appends baseline deviations to the batch
        self.commands(events)  # DNP3 fields that need earlier messages (deviations pass untouched)
        alerts = self.engine(events) if self.engine is not None else []
        del events[protocol_events:]  # deviations live on as alerts, not as protocol events
        self._emit(alerts)
        return alerts

    def end_of_capture(self, capture: str | Path) -> list[Event]:
        alerts: list[Event] = []
        if self.engine is not None:
            alerts = self.engine(self.enricher.finish()) + self.engine.flush()
        self._emit(alerts)
        if self.engine is not None and self.engine.evidence_dir is not None:
            cut_from_capture(capture, requests_from_alerts(self.capture_alerts, capture))
        self.capture_alerts = []
        self.enricher.flush()
        return alerts

    def _emit(self, alerts: list[Event]) -> None:
        if not alerts:
            return
        self.capture_alerts += alerts
        for alert in alerts:
            self.counts[alert.get("log.level") or "unknown"] += 1
        if self.alerts_out is not None:
            dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
            self.alerts_out.write(b"".join(dumps(a, option=opt) for a in alerts))

    def close(self) -> None:
        self.enricher.close()
        if self.alerts_out is not None:
            self.alerts_out.close()


def build_analysis(
    db: Path | None,
    rules: list[Path] | None,
    detect: bool = True,
    alerts_out: Path | None = None,
    baseline_file: Path | None = None,
    thresholds: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    detectors: dict[str, Any] | None = None,
) -> Analysis:
    """The analysis stages for a replay or a live run.

    With ``db`` the inventory, alerts and their outbox are stored there and evidence pcaps go to
    ``evidence/`` beside it. The baseline comes from ``baseline_file``, else from the database
    when one has been learned or imported; without a baseline only Sigma rules fire.
    ``thresholds``, ``limits`` and ``detectors`` are the config file's ``[baseline]``, ``[inventory]``
    and ``[detect]`` tables; an unknown key raises ``ValueError`` naming it, before anything runs.
    """
    deviation_thresholds = from_mapping(Thresholds, thresholds)
    inventory_limits = from_mapping(Limits, limits)
    commands = Dnp3CommandTracker(settings_from_table(detectors))
    inventory_store = InventoryStore(db) if db else None
    baseline = None
    if baseline_file is not None:
        baseline = Baseline.from_text(baseline_file.read_text())
    elif inventory_store is not None:
        baseline = inventory_store.load_baseline()
    enricher = Enricher(
        baseline=baseline, thresholds=deviation_thresholds, limits=inventory_limits, store=inventory_store
    )
    engine = None
    if detect:
        engine = DetectionEngine.from_paths(
            rules or [bundled_rules_dir()],
            store=AlertStore(db) if db else None,
            evidence_dir=db.parent / "evidence" if db else None,
        )
    return Analysis(enricher, engine, alerts_out, commands)
