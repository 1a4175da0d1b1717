"""The rule pack: every rule's fire and near-miss cases, its metadata, and its SIEM conversions."""

from __future__ import annotations

import pytest
import yaml

from otsentry.detect.attack_ics import TECHNIQUES, check_attack_tag, threat_info
from otsentry.detect.checks import check_rules
from otsentry.detect.convert import convert
from otsentry.detect.engine import DetectionEngine, bundled_rules_dir, load_collection
from otsentry.detect.pipeline import pipeline_yaml
from otsentry.detect.ruletest import case_files, run_cases

PACK = bundled_rules_dir()
REPO = PACK.parent
USE_CASE_SERVICES = {"dnp3", "modbus", "c1222", "dlms", "iec104", "baseline", "decoder"}


@pytest.fixture(scope="module")
def engine() -> DetectionEngine:
    return DetectionEngine.from_paths([PACK], strict=True)


def test_every_rule_fires_on_its_case_and_not_on_its_near_misses(engine: DetectionEngine) -> None:
    results, missing = run_cases(engine, case_files([PACK]))
    failed = [(r.title, r.kind, r.detail) for r in results if not r.passed]
    assert failed == []
    assert [r.title for r in missing] == []
    fires = {r.rule_id for r in results if r.kind == "fire"}
    assert fires == {r.id for r in engine.rules}  # every loaded rule, inputs of correlations included
    assert sum(r.kind.startswith("near_miss") for r in results) >= len(engine.rules)


def test_near_misses_change_only_what_the_rule_keys_on() -> None:
    for path in case_files([PACK]):
        doc = yaml.safe_load(path.read_text())
        for case in doc["cases"]:
            for change in case.get("near_miss", []):
                if "fire" in case:
                    assert 1 <= len(change) <= 2, (case["title"], change)
                    for key in change:
                        assert key in case["fire"] or key in doc["defaults"], (case["title"], key)


def test_pack_covers_every_service_and_passes_check() -> None:
    services = {str(r.logsource.service) for r in load_collection([PACK]) if hasattr(r, "logsource")}
    assert services == USE_CASE_SERVICES
    assert check_rules([PACK]) == []


def test_rules_carry_metadata(engine: DetectionEngine) -> None:
    for rule in engine.rules:
        sigma = rule.rule
        assert sigma.description and sigma.falsepositives and sigma.level, rule.title
        assert rule.threat.get("threat.technique.id"), rule.title
    assert len([r for r in engine.rules if r.output]) >= 50


def test_attack_table_validates_tags() -> None:
    assert check_attack_tag("t0855") is None
    assert check_attack_tag("impair-process-control") is None
    assert check_attack_tag("ics.t0855") is not None
    assert check_attack_tag("t1059") is not None  # an Enterprise technique
    assert check_attack_tag("t0833") is not None  # deprecated in ATT&CK for ICS
    info = threat_info(["t0816"])
    assert info.tactic_names == ("Inhibit Response Function",)
    assert all(tid.startswith("T08") for tid in TECHNIQUES)


def test_broken_tag_is_a_load_problem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.yml").write_text("""
title: bad tag
id: 8b5d5d5e-8d8a-4f7e-9b7a-1e2d3c4b5a69
tags: [attack.ics.t0855]
logsource: {product: otsentry, service: modbus}
detection: {sel: {modbus.function_code: 8}, condition: sel}
level: low
""")
    engine = DetectionEngine.from_paths([tmp_path])
    assert engine.rules == []
    assert "ics." in engine.problems[0][1]


@pytest.mark.parametrize("target", ["splunk", "lucene"])
def test_whole_pack_converts(engine: DetectionEngine, target: str) -> None:
    results = convert([PACK], target)
    assert [r.title for r in results if r.error] == []
    assert {r.rule_id for r in results} == {r.id for r in engine.rules if r.output}
    assert all(r.queries for r in results)
    by_title = {r.title: r.queries for r in results}
    operate = by_title["DNP3 control of a binary or analog output by a host that is not a known master"][0]
    if target == "splunk":
        assert 'event.dataset="otsentry.dnp3"' in operate and '"dnp3.object_gv{}"' in operate
        storm = by_title["DNP3 unsolicited response storm from one outstation"][0]
        assert "stats count" in storm and "source.ip dnp3.link.source" in storm
    else:
        assert "event.dataset:otsentry.dnp3" in operate and "dnp3.object_gv:(g12v* OR g41v*)" in operate


@pytest.mark.parametrize(("target", "name"), [("splunk", "splunk"), ("elasticsearch", "elasticsearch")])
def test_committed_pipeline_files_match(target: str, name: str) -> None:
    assert (REPO / "pipelines" / f"otsentry-{name}.yml").read_text() == pipeline_yaml(target)
