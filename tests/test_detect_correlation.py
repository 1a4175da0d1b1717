"""Correlation rules as a stream: windows, group-by, ordering, tumbling verdicts and bounded state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from otsentry.detect.correlation import MAX_EVIDENCE_FRAMES
from otsentry.detect.engine import DetectionEngine
from otsentry.events import format_timestamp

T0 = 1_715_666_400.0

BASE = """
title: unsolicited
name: uns
logsource: {product: otsentry, service: dnp3}
detection:
  sel: {dnp3.application.function_code: 130}
  condition: sel
"""
OTHER = """
title: cold restart
name: cold
logsource: {product: otsentry, service: dnp3}
detection:
  sel: {dnp3.application.function_code: 13}
  condition: sel
"""


def engine(tmp_path: Path, correlation: str, *docs: str) -> DetectionEngine:
    text = "\n---\n".join([correlation, *docs])
    (tmp_path / "rules.yml").write_text(text)
    eng = DetectionEngine.from_paths([tmp_path], strict=True)
    return eng


def ev(t: float, frame: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "@timestamp": format_timestamp(T0 + t),
        "event.dataset": "otsentry.dnp3",
        "network.protocol": "dnp3",
        "source.ip": "10.0.0.1",
        "destination.ip": "10.0.0.9",
        "dnp3.link.source": 10,
        "otsentry.pcap.frame": frame,
        "dnp3.application.function_code": 130,
        **fields,
    }


def fired(eng: DetectionEngine, events: list[dict[str, Any]], title: str) -> list[dict[str, Any]]:
    alerts = eng(events) + eng.flush()
    return [a for a in alerts if a["rule.name"] == title]


def event_count(
    cond: str = "gt: 3", span: str = "10s", group: str = "[source.ip, dnp3.link.source]", extra: str = ""
) -> str:
    group_line = f"  group-by: {group}\n" if group else ""
    return f"""
title: storm
id: 0b0f8d43-52f6-4b1e-9d36-0e0c3f1c2a11
correlation:
  type: event_count
  rules: [uns]
{group_line}  timespan: {span}
  condition: {{{cond}}}
{extra}level: medium
"""


def test_event_count_fires_when_the_count_is_passed_within_the_window(tmp_path: Path) -> None:
    eng = engine(tmp_path, event_count(), BASE)
    hits = fired(eng, [ev(i, frame=i + 1) for i in range(4)], "storm")
    assert len(hits) == 1
    assert hits[0]["otsentry.pcap.frame"] == 4  # the event that completed it
    assert hits[0]["otsentry.correlation.count"] == 4
    assert hits[0]["otsentry.alert.frames"] == [1, 2, 3, 4]
    eng.reset()
    assert fired(eng, [ev(i) for i in range(3)], "storm") == []  # 3 is not > 3


def test_event_count_sliding_window_forgets_old_events(tmp_path: Path) -> None:
    eng = engine(tmp_path, event_count(), BASE)
    spread = [ev(i * 4.0) for i in range(6)]  # never 4 within 10 s
    assert fired(eng, spread, "storm") == []
    eng.reset()
    late_burst = [ev(0), ev(20), ev(21), ev(22), ev(23)]  # the first is outside the window
    assert len(fired(eng, late_burst, "storm")) == 1


def test_group_by_keeps_groups_apart(tmp_path: Path) -> None:
    eng = engine(tmp_path, event_count(), BASE)
    mixed = [ev(i, **{"dnp3.link.source": 10 + i % 2}) for i in range(6)]  # 3 per outstation
    assert fired(eng, mixed, "storm") == []
    eng.reset()
    no_group = engine(tmp_path, event_count(group=""), BASE)
    assert len(fired(no_group, mixed, "storm")) == 1


def test_events_missing_a_group_by_field_are_not_counted(tmp_path: Path) -> None:
    eng = engine(tmp_path, event_count(), BASE)
    events = [ev(i) for i in range(6)]
    for e in events:
        del e["dnp3.link.source"]
    assert fired(eng, events, "storm") == []


def test_state_is_bounded_during_a_flood(tmp_path: Path) -> None:
    eng = engine(tmp_path, event_count(cond="gt: 1000", span="1h"), BASE)
    eng([ev(i * 0.001) for i in range(900)])
    state = next(r.correlation for r in eng.rules if r.correlation is not None)
    group = next(iter(state.groups.values()))
    assert len(group.times) <= 1001
    assert len(group.frames) <= MAX_EVIDENCE_FRAMES
    many = engine(tmp_path, event_count(), BASE)
    corr = next(r.correlation for r in many.rules if r.correlation is not None)
    corr.max_groups = 100
    many([ev(i * 0.001, **{"dnp3.link.source": i}) for i in range(1000)])
    assert len(corr.groups) == 100


def test_lte_is_judged_when_the_window_closes(tmp_path: Path) -> None:
    eng = engine(tmp_path, event_count(cond="lte: 2"), BASE)
    assert eng([ev(0), ev(1)]) == []  # window still open: no verdict yet
    closing = eng([ev(30, **{"dnp3.link.source": 99})])  # a later event past the window sweeps it
    assert [a["otsentry.correlation.count"] for a in closing if a["rule.name"] == "storm"] == [2]
    eng.reset()
    assert fired(eng, [ev(0), ev(1), ev(2)], "storm") == []  # 3 > 2 at flush


def test_value_count_counts_distinct_values(tmp_path: Path) -> None:
    corr = """
title: spread
id: 2f8e5a8e-7a1f-4c55-8d43-40a1c8f0a0b1
correlation:
  type: value_count
  rules: [uns]
  group-by: [source.ip]
  timespan: 1m
  condition: {gt: 2, field: destination.ip}
level: high
"""
    eng = engine(tmp_path, corr, BASE)
    same_meter = [ev(i, **{"destination.ip": "10.0.1.1"}) for i in range(10)]
    assert fired(eng, same_meter, "spread") == []
    eng.reset()
    meters = [ev(i, **{"destination.ip": f"10.0.1.{i}"}) for i in range(3)]
    hits = fired(eng, meters, "spread")
    assert len(hits) == 1
    assert sorted(hits[0]["otsentry.correlation.values"]) == ["10.0.1.0", "10.0.1.1", "10.0.1.2"]


@pytest.mark.parametrize("ordered", [False, True])
def test_temporal_and_temporal_ordered(tmp_path: Path, ordered: bool) -> None:
    kind = "temporal_ordered" if ordered else "temporal"
    corr = f"""
title: sequence
id: 7c6f0a2e-1d0b-4b5e-9a2f-3f1e2d4c5b6a
correlation:
  type: {kind}
  rules: [uns, cold]
  group-by: [source.ip]
  timespan: 30s
level: high
"""
    eng = engine(tmp_path, corr, BASE, OTHER)
    in_order = [ev(0), ev(5, **{"dnp3.application.function_code": 13})]
    assert len(fired(eng, in_order, "sequence")) == 1
    eng.reset()
    reversed_order = [ev(0, **{"dnp3.application.function_code": 13}), ev(5)]
    assert len(fired(eng, reversed_order, "sequence")) == (0 if ordered else 1)
    eng.reset()
    too_slow = [ev(0), ev(45, **{"dnp3.application.function_code": 13})]
    assert fired(eng, too_slow, "sequence") == []
    eng.reset()
    other_host = [ev(0), ev(5, **{"dnp3.application.function_code": 13, "source.ip": "10.0.0.2"})]
    assert fired(eng, other_host, "sequence") == []


def test_aliases_map_group_by_per_rule(tmp_path: Path) -> None:
    corr = """
title: aliased
id: 9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
correlation:
  type: temporal
  rules: [uns, cold]
  aliases:
    station:
      uns: source.ip
      cold: destination.ip
  group-by: [station]
  timespan: 30s
level: high
"""
    eng = engine(tmp_path, corr, BASE, OTHER)
    events = [
        ev(0, **{"source.ip": "10.0.0.9"}),
        ev(
            1, **{"dnp3.application.function_code": 13, "source.ip": "10.0.0.1", "destination.ip": "10.0.0.9"}
        ),
    ]
    assert len(fired(eng, events, "aliased")) == 1


def test_referenced_rules_do_not_alert_unless_generate(tmp_path: Path) -> None:
    eng = engine(tmp_path, event_count(), BASE)
    assert all(a["rule.name"] != "unsolicited" for a in eng([ev(0)]))
    generating = engine(
        tmp_path, event_count().replace("  rules: [uns]", "  rules: [uns]\n  generate: true"), BASE
    )
    assert [a["rule.name"] for a in generating([ev(0)])] == ["unsolicited"]
