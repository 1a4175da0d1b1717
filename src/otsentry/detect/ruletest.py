"""Rule test cases: every rule fires on its ``fire`` events and stays quiet on each near miss.

Cases live in ``<rules folder>/tests/*.yaml`` (ignored when rules load). One file per protocol folder::

    defaults: {event fields shared by the cases}
    cases:
      - rule: <rule id>
        fire: {fields}                 # one event: defaults + fields
        near_miss: [{field: value}]    # the fire event with only these fields changed (null removes one)
      - rule: <correlation id>
        sequence: {repeat: 6, every: 1.0, fields: {...}, vary: {destination.ip: "10.0.0.{i}"}}
        # or events: [{...}, {...}] one second apart
        near_miss: [{repeat: 5}, {every: 2.5}, {order: reversed}, {fields: {...}}]

A rule that raises alerts must appear in the alerts of its fire events and not in those of a near
miss; a rule that only feeds correlations (``generate: false``) is checked on its own match.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from otsentry.detect.engine import TEST_DIR_NAMES, DetectionEngine, LoadedRule
from otsentry.events import format_timestamp

BASE_TS = 1_715_666_400.0  # 2024-05-14T06:00:00Z, the sample captures' start


@dataclass
class CaseResult:
    rule_id: str
    title: str
    kind: str  # "fire" or "near_miss #n"
    passed: bool
    detail: str = ""


def case_files(rule_paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for root in rule_paths:
        root = Path(root)
        if root.is_dir():
            for name in TEST_DIR_NAMES:
                files += sorted((root / name).glob("*.yaml"))
                files += sorted((root / name).glob("*.yml"))
    return files


def _apply(event: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _stamp(events: list[dict[str, Any]], every: float) -> list[dict[str, Any]]:
    for i, event in enumerate(events):
        event["@timestamp"] = format_timestamp(BASE_TS + i * every)
        event["otsentry.pcap.frame"] = i + 1
    return events


def _sequence(defaults: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    for i in range(int(spec.get("repeat", 1))):
        event = {**defaults, **spec.get("fields", {})}
        for key, pattern in spec.get("vary", {}).items():
            event[key] = str(pattern).format(i=i + 1, m=1)
        events.append(event)
    return _stamp(events, float(spec.get("every", 1.0)))


def build_cases(
    defaults: dict[str, Any], case: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """(fire events, [near-miss events, ...]) of one case."""
    if "fire" in case:
        fire = _stamp([{**defaults, **case["fire"]}], 1.0)
        misses = [_stamp([_apply(fire[0], change)], 1.0) for change in case.get("near_miss", [])]
        return fire, misses
    if "sequence" in case:
        spec = case["sequence"]
        fire = _sequence(defaults, spec)
        misses = []
        for change in case.get("near_miss", []):
            other = copy.deepcopy(spec)
            for key, value in change.items():
                if key == "fields":
                    other["fields"] = {**other.get("fields", {}), **value}
                else:
                    other[key] = value
            misses.append(_sequence(defaults, other))
        return fire, misses
    listed = [{**defaults, **e} for e in case["events"]]
    fire = _stamp([dict(e) for e in listed], 1.0)
    misses = []
    for change in case.get("near_miss", []):
        events = [dict(e) for e in listed]
        if change.get("order") == "reversed":
            events.reverse()
        if "fields" in change:
            events = [_apply(e, change["fields"]) for e in events]
        misses.append(_stamp(events, float(change.get("every", 1.0))))
    return fire, misses


def _fires(engine: DetectionEngine, rule: LoadedRule, events: list[dict[str, Any]]) -> bool:
    engine.reset()
    if not rule.output:  # an input of correlations: judge its own match
        return any(rule.detection is not None and rule.detection(e) for e in events)
    alerts = engine([dict(e) for e in events]) + engine.flush()
    return any(a.get("rule.id") == rule.id for a in alerts)


def run_cases(engine: DetectionEngine, files: Iterable[Path]) -> tuple[list[CaseResult], list[LoadedRule]]:
    """Results of every case, and the loaded rules that have no case with a fire and a near miss."""
    results: list[CaseResult] = []
    covered: set[str] = set()
    for path in files:
        doc = yaml.safe_load(path.read_text()) or {}
        defaults = doc.get("defaults", {})
        for case in doc.get("cases", []):
            rule_id = str(case["rule"])
            rule = engine.rule_by_id(rule_id)
            title = case.get("title", rule_id)
            if rule is None:
                results.append(CaseResult(rule_id, title, "load", False, f"{path.name}: no such rule loaded"))
                continue
            fire, misses = build_cases(defaults, case)
            ok = _fires(engine, rule, fire)
            results.append(CaseResult(rule_id, rule.title, "fire", ok, "" if ok else "did not fire"))
            for n, events in enumerate(misses, start=1):
                quiet = not _fires(engine, rule, events)
                results.append(
                    CaseResult(rule_id, rule.title, f"near_miss #{n}", quiet, "" if quiet else "fired")
                )
            if misses:
                covered.add(rule_id)
    engine.reset()
    missing = [r for r in engine.rules if r.id not in covered]
    return results, missing
