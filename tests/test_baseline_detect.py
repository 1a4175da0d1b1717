"""Learn on normal traffic, detect on later traffic with injected deviations: every injected
deviation is found and nothing else, over several seeds (bench/baseline_eval.py runs more and longer).

Learning and detection use different data: the first 30 minutes of a seeded plant simulation teach
the baseline, the next 20 minutes (with jitter, missed polls, reconnects, a master failover and the
day/night swing of process values continuing) are checked.
"""

from __future__ import annotations

import copy

import pytest

from inventory_scenario import Scenario, generate
from otsentry.inventory.baseline import Baseline
from otsentry.inventory.cli import accept
from otsentry.inventory.deviations import SEVERITY, Detector, deviation_id
from otsentry.inventory.enrich import Enricher

SEEDS = (1, 2, 3)
LEARN_S, DETECT_S = 1800, 1200


def run(scenario: Scenario, baseline: Baseline) -> tuple[set[tuple[str, str]], list[dict], Detector]:
    enricher = Enricher(baseline=baseline, add_fields=False)
    events = enricher([dict(e) for e in scenario.detect])
    alerts = [e for e in events if e.get("event.kind") == "alert"] + enricher.finish()
    assert enricher.detector is not None
    return {(a["event.action"], a["otsentry.baseline.subject"]) for a in alerts}, alerts, enricher.detector


def learn(scenario: Scenario, seed: int) -> Baseline:
    learner = Enricher(add_fields=False, seed=seed)
    learner([dict(e) for e in scenario.learn])
    return Baseline.learn(learner.inventory)


@pytest.fixture(scope="module")
def runs() -> dict[int, tuple[Scenario, Baseline, set, list, Detector]]:
    out = {}
    for seed in SEEDS:
        scenario = generate(seed, learn_s=LEARN_S, detect_s=DETECT_S)
        baseline = learn(scenario, seed)
        found, alerts, detector = run(scenario, baseline)
        out[seed] = (scenario, baseline, found, alerts, detector)
    return out


def test_precision_and_recall_are_one_on_every_seed(runs: dict) -> None:
    report = []
    for seed, (scenario, _baseline, found, _alerts, _detector) in runs.items():
        tp = len(found & scenario.expected)
        precision = tp / len(found) if found else 0.0
        recall = tp / len(scenario.expected)
        report.append(
            f"seed {seed}: {tp}/{len(scenario.expected)} found, {len(found - scenario.expected)} extra,"
            f" precision {precision:.2f} recall {recall:.2f}"
        )
        assert found - scenario.expected == set(), f"seed {seed}: reported but not injected"
        assert scenario.expected - found == set(), f"seed {seed}: injected but missed"
    print("\n".join(report))


def test_every_deviation_kind_is_injected(runs: dict) -> None:
    for scenario, *_ in runs.values():
        assert {kind for kind, _ in scenario.expected} == set(SEVERITY)


def test_learning_and_detection_data_do_not_overlap(runs: dict) -> None:
    for scenario, *_ in runs.values():
        assert max(e["@timestamp"] for e in scenario.learn) < min(e["@timestamp"] for e in scenario.detect)
        assert len(scenario.learn) > 7_000 and len(scenario.detect) > 4_500


@pytest.fixture(scope="module")
def clean() -> Scenario:
    return generate(11, learn_s=LEARN_S, detect_s=DETECT_S, inject=False)


def test_clean_traffic_raises_nothing(clean: Scenario) -> None:
    found, _, _ = run(clean, learn(clean, 11))
    assert found == set()


def test_a_baseline_from_too_little_traffic_does_flag_normal_traffic(clean: Scenario) -> None:
    """The near miss: five minutes of learning miss the backup master, the operator's writes and the
    day/night range of the values — detection then reports them (the test above is not vacuous)."""
    five_minutes = clean.learn[0]["@timestamp"][:14] + "05"
    short = Scenario(
        [e for e in clean.learn if e["@timestamp"] < five_minutes], clean.detect, set(), clean.split
    )
    found, _, _ = run(short, learn(short, 11))
    assert ("new_asset", "10.20.1.12") in found  # the backup master's failover
    assert {"write_outside_range", "value_out_of_band"} <= {kind for kind, _ in found}
    assert "channel_silent" not in {kind for kind, _ in found}  # the RTUs answered the backup


def test_alerts_follow_the_event_contract(runs: dict) -> None:
    _, _, _, alerts, _ = runs[SEEDS[0]]
    for alert in alerts:
        action = alert["event.action"]
        assert alert["event.kind"] == "alert" and alert["event.module"] == "otsentry"
        assert alert["event.dataset"] == "otsentry.baseline" and alert["rule.ruleset"] == "baseline"
        assert alert["rule.id"] == f"otsentry.baseline.{action}"
        assert (alert["event.severity"], alert["log.level"]) == SEVERITY[action]
        assert alert["message"].endswith(".") and len(alert["message"]) > 20
        assert alert["otsentry.baseline.expected"] not in (None, "") or action == "new_pair"
        assert alert["otsentry.baseline.observed"]
        assert alert["otsentry.baseline.deviation_id"] == deviation_id(
            action, alert["otsentry.baseline.subject"]
        )
        assert alert["@timestamp"] >= runs[SEEDS[0]][0].detect[0]["@timestamp"]
        if action != "channel_silent":  # the triggering event's fields come along
            assert (
                alert["network.protocol"] and alert["source.ip"] and alert["otsentry.baseline.event_action"]
            )


def test_accepting_the_deviations_silences_them(runs: dict) -> None:
    """Accept every deviation but the polling change: a re-run on the same traffic raises only that one.
    (Accepting a polling change makes the *new* period normal, so the old one would then deviate.)"""
    scenario, baseline, found, _, detector = runs[SEEDS[0]]
    reviewed = copy.deepcopy(baseline)
    for dev in detector.deviations.values():
        if dev.action != "polling_period_deviation":
            accept(reviewed, dev.detail())
    refound, _, _ = run(scenario, reviewed)
    assert refound == {d for d in found if d[0] == "polling_period_deviation"}


def test_accepting_a_polling_change_adopts_the_new_period(clean: Scenario) -> None:
    """A master that permanently polls 4x faster: one deviation; once accepted, the new rate is normal."""
    baseline = learn(clean, 11)
    faster = Scenario(clean.learn, _speed_up_plc2(clean.detect), set(), clean.split)
    found, _, detector = run(faster, baseline)
    assert found == {
        ("polling_period_deviation", "modbus 10.20.1.11 -> 10.20.2.22/modbus:1 read_input_registers@0+5")
    }
    reviewed = copy.deepcopy(baseline)
    for dev in detector.deviations.values():
        accept(reviewed, dev.detail())
    assert reviewed.pairs[("modbus", "10.20.1.11", None, "10.20.2.22", 1)].polling[
        "read_input_registers@0+5"
    ].period == pytest.approx(0.5, abs=0.05)
    assert run(faster, reviewed)[0] == set()


def _speed_up_plc2(events: list[dict]) -> list[dict]:
    """Every input-register poll of PLC2 also sent 0.5, 1.0 and 1.5 s later (2 s → 0.5 s period)."""
    from otsentry.inventory.deviations import format_ts
    from otsentry.inventory.observe import parse_timestamp

    out = []
    for e in events:
        out.append(e)
        if e.get("modbus.function_code") == 4 and e["destination.ip"] == "10.20.2.22":
            for k in (1, 2, 3):
                extra = dict(e)
                extra["@timestamp"] = format_ts(parse_timestamp(e["@timestamp"]) + 0.5 * k)
                out.append(extra)
    return sorted(out, key=lambda e: e["@timestamp"])
