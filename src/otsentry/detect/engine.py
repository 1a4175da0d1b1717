"""The detection engine: Sigma rules compiled once, indexed by (dataset, action), run on event batches.

API for the sensor (a sink stage after enrichment)::

    engine = DetectionEngine.from_paths([bundled_rules_dir(), "my-rules/"], store=AlertStore(db),
                                        evidence_dir=db.parent / "evidence")
    alerts = engine(events)      # new alerts of this batch (also stored when a store is given)
    alerts += engine.flush()     # end of input: correlations whose windows close now

Rules are indexed by their logsource (``product: otsentry``, ``service:`` → ``event.dataset``) and, when
the condition pins it, by ``event.action``: an event is only tested against the rules of its dataset
and action (plus the dataset's rules that do not pin an action), never against the whole pack.

Events with ``event.kind: alert`` are baseline deviations from the enrichment stage: they are not
matched against protocol rules; a ``service: baseline`` rule that matches one lends it its id, level and
ATT&CK mapping (the deviation keeps its own message); unmatched deviations pass through. Either way
each deviation becomes exactly one alert with id, seq and status.

Repeats of one rule for the same sender/receiver (or the rule's ``otsentry.group_by`` fields) within
``dedup_seconds`` of packet time are grouped into the first alert: its ``otsentry.alert.count`` and
``last_seen`` grow (in the store, too), and no new alert is emitted.
"""

from __future__ import annotations

import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from otsentry.detect import severity
from otsentry.detect.alerts import AlertStore
from otsentry.detect.attack_ics import check_attack_tag, threat_info
from otsentry.detect.correlation import CorrelationState, Hit
from otsentry.detect.messages import default_message, render
from otsentry.detect.sigma_compile import MISSING, CompiledDetection, CompileError, field_getter, index_key
from otsentry.detect.timeparse import event_ts

Event = dict[str, Any]

PRODUCT = "otsentry"
SERVICE_DATASETS: dict[str, str] = {
    "modbus": "otsentry.modbus",
    "dnp3": "otsentry.dnp3",
    "c1222": "otsentry.c1222",
    "dlms": "otsentry.dlms",
    "iec104": "otsentry.iec104",
    "decoder": "otsentry.decode_error",
    "baseline": "otsentry.baseline",
}
RULESET_OF_SERVICE = {"baseline": "baseline", "decoder": "decoder"}
DEFAULT_GROUP_BY = ("source.ip", "destination.ip")
MAX_DEDUP_GROUPS = 50_000
MAX_INDEX_CACHE = 4096
TEST_DIR_NAMES = {"tests"}  # rule test cases live beside the rules, in folders of this name


def bundled_rules_dir() -> Path:
    """The rule pack shipped in the repository (``rules/`` at its top)."""
    return Path(__file__).resolve().parents[3] / "rules"


class RuleLoadError(ValueError):
    """A rule folder holds rules that cannot be used; ``problems`` lists (source, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{s}: {m}" for s, m in problems))
        self.problems = problems


@dataclass(eq=False)
class LoadedRule:
    """One rule ready to run, with everything its alerts need precomputed."""

    rule: SigmaRule | SigmaCorrelationRule
    id: str
    title: str
    ruleset: str
    level: severity.Severity
    threat: dict[str, Any]
    tags: list[str]
    message: str | None
    group_by: tuple[str, ...]
    output: bool
    dataset: str | None = None
    detection: CompiledDetection | None = None
    correlation: CorrelationState | None = None
    parents: list[LoadedRule] = field(default_factory=list)  # correlations fed by this rule
    source: str = ""

    @property
    def is_correlation(self) -> bool:
        return self.correlation is not None


@dataclass
class _Group:
    alert: Event
    first_ts: float
    last_ts: float
    dirty: bool = False


def _source(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return str(rule.source.path) if rule.source is not None and rule.source.path else "<rule>"


def _skip_tests(path: Path) -> Path | None:
    return None if TEST_DIR_NAMES & set(path.parts) else path


def load_collection(paths: Sequence[str | Path]) -> SigmaCollection:
    """Every ``*.yml`` Sigma document under ``paths`` (folders named ``tests`` hold test cases, not rules)."""
    return SigmaCollection.load_ruleset(
        [Path(p) for p in paths], collect_errors=True, on_beforeload=_skip_tests
    )


class DetectionEngine:
    def __init__(
        self,
        collection: SigmaCollection,
        *,
        store: AlertStore | None = None,
        evidence_dir: str | Path | None = None,
        placeholders: Mapping[str, Iterable[str]] | None = None,
        dedup_seconds: float = 60.0,
        strict: bool = False,
    ) -> None:
        self.store = store
        self.evidence_dir = Path(evidence_dir) if evidence_dir is not None else None
        self.dedup_seconds = dedup_seconds
        self.placeholders = {k: list(v) for k, v in (placeholders or {}).items()}
        self.problems: list[tuple[str, str]] = []
        self.rules: list[LoadedRule] = []
        self._load(collection)
        if strict and self.problems:
            raise RuleLoadError(self.problems)
        self._index: dict[str | None, tuple[str, dict[Any, list[LoadedRule]], list[LoadedRule]]] = {}
        self._build_index()
        self._cache: dict[tuple[Any, Any], tuple[LoadedRule, ...]] = {}
        self._groups: OrderedDict[tuple[Any, ...], _Group] = OrderedDict()
        self._dirty: list[_Group] = []
        self.seq = store.last_seq() if store is not None else 0
        self.stats = {"events": 0, "tests": 0, "matches": 0, "alerts": 0, "grouped": 0}

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path], **kwargs: Any) -> DetectionEngine:
        """Load every rule under ``paths`` (files or folders); see the class for keyword options."""
        return cls(load_collection(paths), **kwargs)

    # -- loading ------------------------------------------------------------------------------------------

    def _load(self, collection: SigmaCollection) -> None:
        for error in collection.errors:
            self.problems.append((str(getattr(error, "source", "") or "<collection>"), str(error)))
        by_object: dict[int, LoadedRule] = {}
        for rule in collection.rules:
            if rule.errors:
                self.problems += [(_source(rule), str(e)) for e in rule.errors]
                continue
            try:
                loaded = self._prepare(rule)
            except (CompileError, SigmaError) as exc:
                self.problems.append((_source(rule), f"{rule.title}: {exc}"))
                continue
            if loaded is None:
                continue
            by_object[id(rule)] = loaded
            self.rules.append(loaded)
        for loaded in self.rules:  # wire correlations to the rules they reference
            rule = loaded.rule
            if not isinstance(rule, SigmaCorrelationRule):
                continue
            bases = [by_object.get(id(ref.rule)) for ref in rule.referenced_rules]
            if any(b is None for b in bases):
                self.problems.append((_source(rule), f"{rule.title}: a referenced rule did not load"))
                loaded.output = False
                continue
            try:
                loaded.correlation = CorrelationState(rule, [id(b.rule) for b in bases])  # type: ignore[union-attr]
            except CompileError as exc:
                self.problems.append((_source(rule), f"{rule.title}: {exc}"))
                loaded.output = False
                continue
            for base in bases:
                if loaded not in base.parents:  # type: ignore[union-attr]
                    base.parents.append(loaded)  # type: ignore[union-attr]
        self.rules = [
            r for r in self.rules if not (isinstance(r.rule, SigmaCorrelationRule) and r.correlation is None)
        ]

    def _prepare(self, rule: SigmaRule | SigmaCorrelationRule) -> LoadedRule | None:
        attack = [t.name for t in rule.tags if t.namespace == "attack"]
        for name in attack:
            problem = check_attack_tag(name)
            if problem:
                raise CompileError(problem)
        options = rule.custom_attributes.get("otsentry") or {}
        if not isinstance(options, dict):
            raise CompileError("the 'otsentry' attribute must be a mapping (message, group_by)")
        level = severity.for_level(str(rule.level) if rule.level is not None else None)
        group_by = tuple(options.get("group_by") or DEFAULT_GROUP_BY)
        loaded = LoadedRule(
            rule=rule,
            id=str(rule.id) if rule.id is not None else (rule.name or rule.title),
            title=rule.title,
            ruleset="sigma",
            level=level,
            threat=threat_info(attack).fields(),
            tags=[str(t) for t in rule.tags],
            message=options.get("message"),
            group_by=group_by,
            output=bool(rule._output),
            source=_source(rule),
        )
        if isinstance(rule, SigmaCorrelationRule):
            if not loaded.group_by or "group_by" not in options:
                loaded.group_by = tuple(rule.group_by or ())
            return loaded
        logsource = rule.logsource
        if logsource.product not in (None, PRODUCT):
            return None  # a rule for another product: not ours to run (users may share folders)
        service = logsource.service
        if service is not None:
            if service not in SERVICE_DATASETS:
                raise CompileError(f"unknown service '{service}' (known: {', '.join(SERVICE_DATASETS)})")
            loaded.dataset = SERVICE_DATASETS[service]
            loaded.ruleset = RULESET_OF_SERVICE.get(service, "sigma")
        loaded.detection = CompiledDetection(rule, self.placeholders)
        return loaded

    def _build_index(self) -> None:
        """Per dataset, the field that pins the most rules (``event.action``, a function code, …) keys
        buckets of rules; rules that pin nothing are tested on every event of the dataset."""
        by_dataset: dict[str | None, list[LoadedRule]] = {}
        for loaded in self.rules:
            if loaded.detection is not None:
                by_dataset.setdefault(loaded.dataset, []).append(loaded)
        for dataset, rules in by_dataset.items():
            fields = {"event.action"}.union(*(r.detection.fields() for r in rules))  # type: ignore[union-attr]
            key_field = min(sorted(fields), key=lambda f: _index_cost(rules, f))
            buckets: dict[Any, list[LoadedRule]] = {}
            unpinned: list[LoadedRule] = []
            for rule in rules:
                pinned = rule.detection.pinned(key_field)  # type: ignore[union-attr]
                if pinned is None:
                    unpinned.append(rule)
                else:
                    for value in pinned:
                        buckets.setdefault(value, []).append(rule)
            self._index[dataset] = (key_field, buckets, unpinned)

    def _lookup(self, dataset: Any, event: Mapping[str, Any]) -> list[LoadedRule]:
        entry = self._index.get(dataset)
        if entry is None:
            return []
        key_field, buckets, unpinned = entry
        value = event.get(key_field)
        if value is None:
            return unpinned
        if value.__class__ is list:
            found: list[LoadedRule] = []
            for item in value:
                for rule in buckets.get(index_key(item), ()):
                    if rule not in found:
                        found.append(rule)
            return found + unpinned
        return buckets.get(index_key(value), []) + unpinned

    def candidates(self, event: Mapping[str, Any]) -> tuple[LoadedRule, ...]:
        """The rules this event can match: its dataset's bucket for its key value plus the unpinned."""
        dataset = event.get("event.dataset")
        entry = self._index.get(dataset)
        value = event.get(entry[0]) if entry is not None else None
        key = (dataset, value)
        cacheable = value.__class__ is not list
        if cacheable:
            found = self._cache.get(key)
            if found is not None:
                return found
        rules = self._lookup(dataset, event)
        if None in self._index and dataset is not None:
            rules = rules + self._lookup(None, event)
        found = tuple(rules)
        if cacheable and len(self._cache) < MAX_INDEX_CACHE:
            self._cache[key] = found
        return found

    def reset(self) -> None:
        """Forget all stream state (correlation windows, duplicate groups); keep the compiled rules."""
        for loaded in self.rules:
            if loaded.correlation is not None:
                old = loaded.correlation
                loaded.correlation = CorrelationState(old.rule, old.base_ids, old.max_groups)
        self._groups.clear()
        self._dirty = []

    def rule_by_id(self, rule_id: str) -> LoadedRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    # -- running --------------------------------------------------------------------------------------------

    def __call__(self, events: Iterable[Event]) -> list[Event]:
        out: list[Event] = []
        stats = self.stats
        candidates = self.candidates
        n = tests = 0
        for event in events:
            n += 1
            is_alert = event.get("event.kind") == "alert"
            rules = candidates(event)
            if not rules:
                if is_alert:
                    out.append(self._finish_passthrough(event))
                continue
            tests += len(rules)
            matched = [r for r in rules if r.detection.predicate(event)]  # type: ignore[union-attr]
            if not matched:
                if is_alert:
                    out.append(self._finish_passthrough(event))
                continue
            stats["matches"] += len(matched)
            ts = event_ts(event)
            if is_alert:
                best = max(matched, key=lambda r: r.level.number)
                out.append(self._finish_deviation(event, best, ts))
                for rule in matched:
                    self._feed_parents(rule, ts, event, out)
                continue
            for rule in matched:
                if rule.output:
                    self._raise(rule, event, ts, out)
                self._feed_parents(rule, ts, event, out)
        stats["events"] += n
        stats["tests"] += tests
        self._persist(out)
        return out

    def flush(self) -> list[Event]:
        """End of input: judge open tumbling correlation windows; returns their alerts."""
        out: list[Event] = []
        for loaded in self.rules:
            if loaded.correlation is not None:
                for hit in loaded.correlation.flush():
                    self._correlated(loaded, hit, out)
        self._persist(out)
        return out

    def _feed_parents(self, rule: LoadedRule, ts: float, event: Event, out: list[Event]) -> None:
        for parent in rule.parents:
            for hit in parent.correlation.feed(id(rule.rule), ts, event):  # type: ignore[union-attr]
                self._correlated(parent, hit, out)

    def _correlated(self, rule: LoadedRule, hit: Hit, out: list[Event]) -> None:
        extra = {
            "otsentry.correlation.count": hit.count,
            "otsentry.correlation.window_seconds": round(hit.ts - hit.first_ts, 6),
            "otsentry.correlation.first_seen": _iso(hit.first_ts),
        }
        if hit.group:
            extra["otsentry.correlation.group"] = {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in hit.group.items()
            }
        if hit.values:
            extra["otsentry.correlation.values"] = hit.values[:64]
        if rule.output:
            self._raise(rule, hit.event, hit.ts, out, extra=extra, frames=hit.frames, count=hit.count)
        self._feed_parents(rule, hit.ts, hit.event, out)

    # -- alerts ------------------------------------------------------------------------------------------

    def _dedup_key(self, rule: LoadedRule, event: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name in rule.group_by:
            value = (
                field_getter(name)(event) if "." in name and name not in event else event.get(name, MISSING)
            )
            values.append(tuple(value) if isinstance(value, list) else (None if value is MISSING else value))
        return (rule.id, *values)

    def _raise(
        self,
        rule: LoadedRule,
        event: Event,
        ts: float,
        out: list[Event],
        extra: dict[str, Any] | None = None,
        frames: list[int] | None = None,
        count: int = 1,
    ) -> None:
        key = self._dedup_key(rule, event)
        group = self._groups.get(key)
        if group is not None and ts - group.first_ts <= self.dedup_seconds:
            alert = group.alert
            alert["otsentry.alert.count"] += count
            group.last_ts = max(group.last_ts, ts)  # last_seen is written from it in _persist
            frame = event.get("otsentry.pcap.frame")
            kept = alert.setdefault("otsentry.alert.frames", [])
            if isinstance(frame, int) and len(kept) < 64 and frame not in kept:
                kept.append(frame)
            if not group.dirty:
                group.dirty = True
                self._dirty.append(group)
            self.stats["grouped"] += 1
            return
        alert = self._build(rule, event, ts, extra, frames, count)
        if group is not None:
            del self._groups[key]
        if len(self._groups) >= MAX_DEDUP_GROUPS:
            self._groups.popitem(last=False)
        self._groups[key] = _Group(alert, ts, ts)
        out.append(alert)

    def _build(
        self,
        rule: LoadedRule,
        event: Event,
        ts: float,
        extra: dict[str, Any] | None,
        frames: list[int] | None,
        count: int,
    ) -> Event:
        alert: Event = dict(event)
        if extra:
            alert.update(extra)
        text = (
            render(rule.message, alert, _message_extra(extra))
            if rule.message
            else default_message(rule.title, event)
        )
        frame = event.get("otsentry.pcap.frame")
        frame_list = list(frames or ([frame] if isinstance(frame, int) else []))
        seen = _iso(ts)
        alert.update(
            {
                "event.kind": "alert",
                "rule.id": rule.id,
                "rule.name": rule.title,
                "rule.ruleset": rule.ruleset,
                "event.severity": rule.level.number,
                "log.level": rule.level.level,
                "message": text,
                "tags": rule.tags,
                "otsentry.alert.count": count,
                "otsentry.alert.first_seen": seen,
                "otsentry.alert.last_seen": seen,
                "otsentry.alert.frames": frame_list,
            }
        )
        description = rule.rule.description
        if description:
            alert["rule.description"] = description.strip()
        alert.update(rule.threat)
        return self._stamp(alert)

    def _stamp(self, alert: Event) -> Event:
        alert_id = str(uuid.uuid4())
        self.seq += 1
        alert["otsentry.alert.id"] = alert_id
        alert["otsentry.alert.seq"] = self.seq
        alert["otsentry.alert.status"] = "new"
        if self.evidence_dir is not None and alert.get("network.community_id"):
            alert["otsentry.alert.evidence"] = str(self.evidence_dir / f"{alert_id}.pcap")
        self.stats["alerts"] += 1
        return alert

    def _finish_deviation(self, event: Event, rule: LoadedRule, ts: float) -> Event:
        alert = dict(event)
        original = alert.get("rule.id")
        if original and original != rule.id:
            alert["otsentry.baseline.rule_id"] = original
        alert.update(
            {
                "rule.id": rule.id,
                "rule.name": rule.title,
                "rule.ruleset": "baseline",
                "event.severity": rule.level.number,
                "log.level": rule.level.level,
                "tags": rule.tags,
                "otsentry.alert.count": 1,
                "otsentry.alert.first_seen": _iso(ts),
                "otsentry.alert.last_seen": _iso(ts),
            }
        )
        if "message" not in alert:
            alert["message"] = (
                render(rule.message, alert) if rule.message else default_message(rule.title, alert)
            )
        frame = alert.get("otsentry.pcap.frame")
        alert["otsentry.alert.frames"] = [frame] if isinstance(frame, int) else []
        alert.update(rule.threat)
        return self._stamp(alert)

    def _finish_passthrough(self, event: Event) -> Event:
        alert = dict(event)
        alert.setdefault("rule.ruleset", "baseline")
        level = severity.for_number(int(alert.get("event.severity") or severity.DEFAULT.number))
        alert.setdefault("event.severity", level.number)
        alert.setdefault("log.level", level.level)
        ts_text = alert.get("@timestamp", "")
        alert.setdefault("otsentry.alert.count", 1)
        alert.setdefault("otsentry.alert.first_seen", ts_text)
        alert.setdefault("otsentry.alert.last_seen", ts_text)
        frame = alert.get("otsentry.pcap.frame")
        alert.setdefault("otsentry.alert.frames", [frame] if isinstance(frame, int) else [])
        return self._stamp(alert)

    def _persist(self, new: list[Event]) -> None:
        for group in self._dirty:  # formatted once per batch, not once per grouped repeat
            group.alert["otsentry.alert.last_seen"] = _iso(group.last_ts)
        if self.store is None:
            for group in self._dirty:
                group.dirty = False
            self._dirty = []
            return
        if new:
            self.store.add(new)
        fresh = {id(a) for a in new}
        for group in self._dirty:
            group.dirty = False
            a = group.alert
            if id(a) not in fresh:
                self.store.bump(
                    a["otsentry.alert.id"], a["otsentry.alert.count"], a["otsentry.alert.last_seen"], a
                )
        self._dirty = []


def _iso(ts: float) -> str:
    from otsentry.events import format_timestamp

    return format_timestamp(ts)


def _index_cost(rules: list[LoadedRule], field: str) -> tuple[int, bool]:
    """Rules an event still meets when ``field`` keys the index: those the field does not pin, plus the
    largest bucket. Pinning many rules to one value (``modbus.pdu_type: request``) saves nothing."""
    buckets: Counter[Any] = Counter()
    unpinned = 0
    for rule in rules:
        pinned = rule.detection.pinned(field)  # type: ignore[union-attr]
        if pinned is None:
            unpinned += 1
        else:
            buckets.update(set(pinned))
    return unpinned + max(buckets.values(), default=0), field != "event.action"


def _message_extra(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if not extra:
        return {}
    return {
        "_count": extra.get("otsentry.correlation.count", ""),
        "_distinct": len(extra.get("otsentry.correlation.values", []) or []),
        "_window": f"{extra.get('otsentry.correlation.window_seconds', 0):.1f}",
    }
