"""Convert the rule pack into SIEM queries with pySigma's Splunk and Elasticsearch backends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError

from otsentry.detect.engine import load_collection
from otsentry.detect.pipeline import processing_pipeline

TARGET_NAMES = ("splunk", "lucene", "esql")


@dataclass
class Converted:
    rule_id: str
    title: str
    queries: list[str]
    error: str | None = None
    note: str | None = None


def _backend(target: str):  # type: ignore[no-untyped-def]
    if target == "splunk":
        from sigma.backends.splunk import SplunkBackend

        return SplunkBackend(processing_pipeline("splunk"))
    if target == "lucene":
        from sigma.backends.elasticsearch import LuceneBackend

        return LuceneBackend(processing_pipeline("elasticsearch"))
    if target == "esql":
        from sigma.backends.elasticsearch import ESQLBackend

        return ESQLBackend(processing_pipeline("elasticsearch"))
    raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGET_NAMES)}")


def convert(paths: Sequence[str | Path], target: str) -> list[Converted]:
    """One entry per rule that produces output (correlation inputs are folded into their correlation).

    Lucene has no correlation syntax: a correlation converts to its input rules' queries there (group
    and count them in the SIEM); Splunk and ES|QL convert the correlation itself.
    """
    backend = _backend(target)
    collection = load_collection(paths)
    out: list[Converted] = []
    for rule in collection.rules:  # referenced rules come first: correlations reuse their conversions
        is_corr = isinstance(rule, SigmaCorrelationRule)
        note = "correlation: group and count these in the SIEM" if is_corr and target == "lucene" else None
        try:
            if is_corr and target == "lucene":
                queries = [q for ref in rule.referenced_rules for q in ref.rule.get_conversion_result()]
            elif is_corr:
                try:
                    queries = backend.convert_correlation_rule(rule)
                except NotImplementedError:  # e.g. temporal_ordered in Splunk: give the inputs
                    queries = [q for ref in rule.referenced_rules for q in ref.rule.get_conversion_result()]
                    note = f"{rule.type} is not supported by the {target} backend; queries of its inputs"
            else:
                queries = backend.convert_rule(rule)
            if rule._output or is_corr:
                out.append(Converted(str(rule.id), rule.title, [str(q) for q in queries], note=note))
        except SigmaError as exc:
            out.append(Converted(str(rule.id), rule.title, [], str(exc)))
    return out
