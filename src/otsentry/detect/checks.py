"""``otsentry rules check``: what a rule needs before it ships.

* pySigma parses it (syntax, modifiers, correlation references) and otsentry compiles it;
* pySigma's validators pass, except ``attacktag`` and ``d3_fendtag``, which download MITRE data and
  fail offline — ATT&CK tags are checked against :mod:`otsentry.detect.attack_ics` instead
  (``sigma check -x attacktag -x d3_fendtag rules/`` runs the same set with plain sigma-cli);
* otsentry's own requirements: a UUID ``id``, ``title``, ``description``, ``level``, ``falsepositives``,
  an ATT&CK for ICS technique tag, ``logsource.product: otsentry`` with a known ``service``;
* every rule has a test case with a fire and a near miss (``<folder>/tests/*.yaml``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from sigma.correlations import SigmaCorrelationRule
from sigma.plugins import InstalledSigmaPlugins
from sigma.validation import SigmaValidator

from otsentry.detect.engine import PRODUCT, SERVICE_DATASETS, DetectionEngine, load_collection
from otsentry.detect.ruletest import case_files, run_cases

OFFLINE_EXCLUDED_VALIDATORS = frozenset({"attacktag", "d3_fendtag"})


def _validators() -> list[type]:
    found = InstalledSigmaPlugins.autodiscover().validators
    return [cls for name, cls in found.items() if name not in OFFLINE_EXCLUDED_VALIDATORS]


def check_rules(paths: Sequence[str | Path]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    collection = load_collection(paths)
    engine = DetectionEngine(load_collection(paths))
    problems += engine.problems
    ids: dict[str, str] = {}
    for rule in collection.rules:
        where = str(rule.source.path) if rule.source is not None else rule.title
        if rule.id is None:
            problems.append((where, f"{rule.title}: no id"))
        else:
            try:
                uuid.UUID(str(rule.id))
            except ValueError:
                problems.append((where, f"{rule.title}: id is not a UUID"))
            if str(rule.id) in ids:
                problems.append((where, f"{rule.title}: id also used in {ids[str(rule.id)]}"))
            ids[str(rule.id)] = where
        for attribute in ("title", "description", "level"):
            if not getattr(rule, attribute):
                problems.append((where, f"{rule.title}: missing {attribute}"))
        if not rule.falsepositives:
            problems.append((where, f"{rule.title}: missing falsepositives"))
        techniques = [t for t in rule.tags if t.namespace == "attack" and t.name.startswith("t0")]
        if not techniques:
            problems.append((where, f"{rule.title}: no ATT&CK for ICS technique tag (attack.t0xxx)"))
        if not isinstance(rule, SigmaCorrelationRule):
            if rule.logsource.product != PRODUCT:
                problems.append((where, f"{rule.title}: logsource.product must be {PRODUCT}"))
            if rule.logsource.service not in SERVICE_DATASETS:
                problems.append(
                    (where, f"{rule.title}: logsource.service must be one of {', '.join(SERVICE_DATASETS)}")
                )
    validator = SigmaValidator(_validators())
    for issue in validator.validate_rules(collection):
        for rule in issue.rules:
            where = str(rule.source.path) if rule.source is not None else rule.title
            problems.append((where, f"{rule.title}: {issue.description} ({issue.severity.name.lower()})"))
    _results, missing = run_cases(engine, case_files(paths))
    problems += [(r.source, f"{r.title}: no test case with a fire and a near miss") for r in missing]
    return problems
