"""Nested ECS JSON: the flat dotted alert turned into objects (``source.ip`` → ``{"source": {"ip": …}}``).

Elasticsearch, Filebeat/Elastic Agent and Splunk (which flattens nested JSON back into the same dotted
names) all read this form. A name that is both a value and a parent (``a.b`` and ``a.b.c``) keeps the
value under its dotted key inside the parent object, which Elasticsearch also accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

ECS_VERSION = "8.11.0"


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    made = {id(out)}  # objects this function created; values from the alert are never merged into
    for key in sorted(flat, key=lambda k: k.count(".")):  # parents before children
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
                made.add(id(child))
            elif not (isinstance(child, dict) and id(child) in made):
                # ``a.b`` holds a value and ``a.b.c`` exists: keep the rest of the name dotted here.
                parts = [*parts[:i], ".".join(parts[i:])]
                break
            node = child
        node[parts[-1]] = flat[key]
    return out


def ecs_document(alert: Mapping[str, Any]) -> dict[str, Any]:
    doc = nest(alert)
    doc.setdefault("ecs", {})
    if isinstance(doc["ecs"], dict):
        doc["ecs"].setdefault("version", ECS_VERSION)
    return doc


def format_ecs(alert: Mapping[str, Any]) -> bytes:
    return orjson.dumps(ecs_document(alert), default=str)
