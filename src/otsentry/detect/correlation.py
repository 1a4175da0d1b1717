"""Sigma correlation rules evaluated as a stream over packet time, with bounded state.

Types: ``event_count``, ``value_count``, ``temporal`` and ``temporal_ordered``, each with ``timespan``,
``group-by`` (and field ``aliases``). The referenced rules' matches are fed in packet-time order; a
correlation fires as soon as its condition holds:

* ``gt``/``gte`` (the usual "more than N in T"): a sliding window; only the last N+1 timestamps
  (event_count) or N+1 distinct values (value_count) per group are kept, so a flood costs O(N).
  After firing, the group starts over, so one burst gives one hit (the engine groups repeats).
* ``lt``/``lte``/``eq``/``neq``: a tumbling window opened by the group's first event and judged
  when it closes (a later event past its end, or ``expire``/``flush``).
* ``temporal``: every referenced rule (or at least ``condition`` many) matched within the timespan;
  ``temporal_ordered``: in the listed order. Per group, one timestamp per referenced rule.

Groups are kept in LRU order and capped (``max_groups`` per correlation): the least recently active
group is forgotten first. Events missing a group-by field are not counted (as SIEM ``stats by`` does).
"""

from __future__ import annotations

import operator
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from otsentry.detect.sigma_compile import MISSING, CompileError, as_text, field_getter

Event = Mapping[str, Any]

_OPS: dict[SigmaCorrelationConditionOperator, Callable[[int, int], bool]] = {
    SigmaCorrelationConditionOperator.GT: operator.gt,
    SigmaCorrelationConditionOperator.GTE: operator.ge,
    SigmaCorrelationConditionOperator.LT: operator.lt,
    SigmaCorrelationConditionOperator.LTE: operator.le,
    SigmaCorrelationConditionOperator.EQ: operator.eq,
    SigmaCorrelationConditionOperator.NEQ: operator.ne,
}
_RISING = {SigmaCorrelationConditionOperator.GT, SigmaCorrelationConditionOperator.GTE}
SUPPORTED = {
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED,
}
MAX_EVIDENCE_FRAMES = 16  # frames of the contributing events remembered per hit


@dataclass
class Hit:
    """A correlation whose condition held: what the alert reports."""

    event: Event  # the event that completed it
    ts: float
    first_ts: float
    count: int
    group: dict[str, Any]
    values: list[str] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)


@dataclass
class _Group:
    times: deque[float] = field(default_factory=deque)
    frames: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_EVIDENCE_FRAMES))
    values: OrderedDict[str, float] = field(default_factory=OrderedDict)
    per_rule: dict[int, float] = field(default_factory=dict)
    start: float = 0.0
    count: int = 0
    last_event: Event | None = None
    last_ts: float = 0.0


class CorrelationState:
    """Stream state of one correlation rule. ``feed`` returns a :class:`Hit` or None."""

    def __init__(self, rule: SigmaCorrelationRule, base_ids: list[int], max_groups: int = 10_000) -> None:
        if rule.type not in SUPPORTED:
            raise CompileError(f"correlation type {rule.type} is not supported")
        condition = rule.condition
        if condition is not None and not isinstance(condition, SigmaCorrelationCondition):
            raise CompileError("extended correlation conditions are not supported")
        self.rule = rule
        self.type = rule.type
        self.span = float(rule.timespan.seconds)
        self.base_ids = base_ids  # id() of each referenced rule, in the rule's order
        self.max_groups = max_groups
        self.condition = condition
        if condition is not None:
            self.test = _OPS[condition.op]
            self.threshold = condition.count
            self.rising = condition.op in _RISING
        else:  # temporal without condition: all referenced rules
            self.test = operator.ge
            self.threshold = len(base_ids)
            self.rising = True
        if self.type in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED):
            self.rising = True
            if condition is None:
                self.threshold = len(base_ids)
        self.value_getters: dict[int, Callable[[Event], Any]] = {}
        if self.type == SigmaCorrelationType.VALUE_COUNT:
            ref = condition.fieldref if condition is not None else None
            if not isinstance(ref, str):
                raise CompileError("value_count needs one field in condition.field")
            self.value_getters = {b: field_getter(_aliased(rule, ref, i)) for i, b in enumerate(base_ids)}
        names = rule.group_by or []
        self.group_fields = names
        self.group_getters: dict[int, list[Callable[[Event], Any]]] = {
            b: [field_getter(_aliased(rule, name, i)) for name in names] for i, b in enumerate(base_ids)
        }
        self.groups: OrderedDict[tuple[Any, ...], _Group] = OrderedDict()
        self.last_sweep = 0.0

    # -- helpers ---------------------------------------------------------------------------------------

    def _key(self, base: int, event: Event) -> tuple[Any, ...] | None:
        key = []
        for get in self.group_getters[base]:
            value = get(event)
            if value is MISSING or value is None:
                return None
            key.append(tuple(value) if isinstance(value, list) else value)
        return tuple(key)

    def _group(self, key: tuple[Any, ...], ts: float) -> _Group:
        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= self.max_groups:
                self.groups.popitem(last=False)
            group = self.groups[key] = _Group(start=ts)
        else:
            self.groups.move_to_end(key)
        return group

    def _hit(
        self,
        key: tuple[Any, ...],
        group: _Group,
        event: Event,
        ts: float,
        count: int,
        first_ts: float,
        values: list[str] | None = None,
    ) -> Hit:
        return Hit(
            event,
            ts,
            first_ts,
            count,
            dict(zip(self.group_fields, key, strict=True)),
            values or [],
            list(group.frames),
        )

    # -- stream ------------------------------------------------------------------------------------------

    def feed(self, base: int, ts: float, event: Event) -> list[Hit]:
        """One match of referenced rule ``base`` (an ``id()`` from ``base_ids``) at packet time ``ts``."""
        hits: list[Hit] = []
        if not self.rising and ts - self.last_sweep >= self.span / 4:
            hits += self.expire(ts)
        key = self._key(base, event)
        if key is None:
            return hits
        group = self._group(key, ts)
        frame = event.get("otsentry.pcap.frame")
        if isinstance(frame, int):
            group.frames.append(frame)
        if self.type == SigmaCorrelationType.EVENT_COUNT:
            hit = self._event_count(key, group, event, ts)
        elif self.type == SigmaCorrelationType.VALUE_COUNT:
            hit = self._value_count(key, group, base, event, ts)
        elif self.type == SigmaCorrelationType.TEMPORAL:
            hit = self._temporal(key, group, base, event, ts)
        else:
            hit = self._temporal_ordered(key, group, base, event, ts)
        if hit is not None:
            hits.append(hit)
        return hits

    def _event_count(self, key: tuple[Any, ...], group: _Group, event: Event, ts: float) -> Hit | None:
        if not self.rising:
            group, hit = self._roll(key, group, ts)
            group.count += 1
            group.last_event, group.last_ts = event, ts
            return hit
        times = group.times
        times.append(ts)
        while times and ts - times[0] > self.span:
            times.popleft()
        while len(times) > self.threshold + 1:  # more is never needed to decide gt/gte
            times.popleft()
        if self.test(len(times), self.threshold):
            hit = self._hit(key, group, event, ts, len(times), times[0])
            del self.groups[key]
            return hit
        return None

    def _value_count(
        self, key: tuple[Any, ...], group: _Group, base: int, event: Event, ts: float
    ) -> Hit | None:
        raw = self.value_getters[base](event)
        if raw is MISSING or raw is None:
            return None
        rolled = None
        if not self.rising:
            group, rolled = self._roll(key, group, ts)
        values = group.values
        for item in raw if isinstance(raw, list) else [raw]:
            text = as_text(item)
            if text is None:
                continue
            values[text] = ts
            values.move_to_end(text)
        if not self.rising:
            group.count = len(values)
            group.last_event, group.last_ts = event, ts
            return rolled
        while values and ts - next(iter(values.values())) > self.span:
            values.popitem(last=False)
        while len(values) > self.threshold + 1:
            values.popitem(last=False)
        if self.test(len(values), self.threshold):
            first = next(iter(values.values()))
            hit = self._hit(key, group, event, ts, len(values), first, list(values))
            del self.groups[key]
            return hit
        return None

    def _temporal(
        self, key: tuple[Any, ...], group: _Group, base: int, event: Event, ts: float
    ) -> Hit | None:
        seen = group.per_rule
        seen[base] = ts
        for rule_id in [r for r, t in seen.items() if ts - t > self.span]:
            del seen[rule_id]
        if len(seen) >= self.threshold:
            hit = self._hit(key, group, event, ts, len(seen), min(seen.values()))
            del self.groups[key]
            return hit
        return None

    def _temporal_ordered(
        self, key: tuple[Any, ...], group: _Group, base: int, event: Event, ts: float
    ) -> Hit | None:
        # per_rule[step] = start time of the latest chain that completed steps 0..step
        chain = group.per_rule
        last = len(self.base_ids) - 1
        for step in range(last, -1, -1):  # backwards: one event advances a chain by one step only
            if self.base_ids[step] != base:
                continue
            if step == 0:
                chain[0] = ts
            else:
                start = chain.get(step - 1)
                if start is not None and ts - start <= self.span:
                    chain[step] = max(chain.get(step, start), start)
            if step == last and last in chain:
                hit = self._hit(key, group, event, ts, last + 1, chain[last])
                del self.groups[key]
                return hit
        return None

    def _roll(self, key: tuple[Any, ...], group: _Group, ts: float) -> tuple[_Group, Hit | None]:
        """Close the group's tumbling window if ``ts`` is past it; the (new) group and any verdict."""
        if ts - group.start <= self.span:
            return group, None
        hit = self._judge(key, group)
        group = self.groups[key] = _Group(start=ts)
        return group, hit

    def _judge(self, key: tuple[Any, ...], group: _Group) -> Hit | None:
        if group.last_event is not None and self.test(group.count, self.threshold):
            return self._hit(
                key, group, group.last_event, group.last_ts, group.count, group.start, list(group.values)
            )
        return None

    def expire(self, now: float) -> list[Hit]:
        """Judge tumbling windows that closed before packet time ``now``."""
        self.last_sweep = now
        if self.rising:
            return []
        hits = []
        for key in [k for k, g in self.groups.items() if now - g.start > self.span]:
            hit = self._judge(key, self.groups.pop(key))
            if hit is not None:
                hits.append(hit)
        return hits

    def flush(self) -> list[Hit]:
        """End of input: judge every open tumbling window."""
        return self.expire(float("inf"))


def _aliased(rule: SigmaCorrelationRule, name: str, index: int) -> str:
    """The field a group-by/value name means in the ``index``-th referenced rule."""
    alias = rule.aliases.aliases.get(name)
    if alias is None:
        return name
    ref = rule.referenced_rules[index] if index < len(rule.referenced_rules) else None
    for rule_ref, field_name in alias.mapping.items():
        if ref is not None and rule_ref.reference == ref.reference:
            return field_name
    return name
