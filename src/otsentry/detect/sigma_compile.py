"""Compile a pySigma rule's detection into a plain Python predicate over one event.

pySigma parses the YAML and applies the value modifiers (``contains`` becomes wildcards, ``base64offset``
an expansion, ``re`` a regular expression, …); this module walks the resulting condition tree once, at
load time, and returns closures, so evaluating an event costs dict look-ups and comparisons only.

Matching semantics (those of the Sigma specification and its SIEM backends):

* strings compare case-insensitively unless ``|cased``; ``*`` and ``?`` are wildcards; numbers and
  booleans in the event compare against their text when the rule gives a string;
* a field holding a list matches when any element matches (``|all`` asks every value to match *some*
  element); ``null`` matches a missing field or ``null``; ``|exists`` tests presence;
* ``|re`` searches (unanchored, as Splunk's ``regex``) with the ``i``/``m``/``s`` flags given;
* ``|cidr`` tests IPv4/IPv6 membership; ``|gt|gte|lt|lte|neq`` compare numbers (numeric strings too);
* ``|fieldref`` compares with another field of the same event (``|fieldref|startswith`` etc. too);
* ``|expand`` replaces ``%name%`` placeholders with the values configured for that name;
* ``|minute|hour|day|week|month|year`` read a timestamp field (RFC 3339) in UTC;
* keywords (values without a field) search every text value of the event, as a full-text search does.

A field name is first looked up as a flat key (``dnp3.control.tcc``); if absent, as a path into nested
values (``dnp3.objects.group`` reads ``group`` of every element of the ``dnp3.objects`` list).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
    TimestampPart,
)

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]
ValueTest = Callable[[Any], bool]


class CompileError(ValueError):
    """A rule uses something this engine cannot evaluate (the message says what)."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# -- field access ------------------------------------------------------------------------------------


def _descend(value: Any, parts: tuple[str, ...]) -> Any:
    """Value at ``parts`` below ``value``; lists are mapped element-wise and flattened."""
    if not parts:
        return value
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            found = _descend(item, parts)
            if found is MISSING:
                continue
            if isinstance(found, list):
                out.extend(found)
            else:
                out.append(found)
        return out if out else MISSING
    if isinstance(value, dict):
        # keys inside nested objects may themselves contain dots: try the longest first
        for split in range(len(parts), 0, -1):
            key = ".".join(parts[:split])
            if key in value:
                return _descend(value[key], parts[split:])
    return MISSING


def _path_getter(name: str) -> Callable[[Event], Any] | None:
    """Value of a dotted field as a path into nested values (for when it is not a flat key), ``MISSING``
    when absent; None for a name without a dot."""
    parts = tuple(name.split("."))
    # prefixes longest first: a flat key always wins over a path into a shorter one
    splits = [(".".join(parts[:i]), parts[i:]) for i in range(len(parts) - 1, 0, -1)]
    if not splits:
        return None

    def get_path(event: Event) -> Any:
        for prefix, rest in splits:
            base = event.get(prefix, MISSING)
            if base is not MISSING:
                return _descend(base, rest)
        return MISSING

    return get_path


def field_getter(name: str) -> Callable[[Event], Any]:
    """Value of a (possibly nested) field, ``MISSING`` when absent."""
    get_path = _path_getter(name)
    if get_path is None:
        return lambda event: event.get(name, MISSING)

    def get(event: Event) -> Any:
        value = event.get(name, MISSING)
        if value is not MISSING:
            return value
        return get_path(event)

    return get


def _iter_values(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, list):
                yield from _iter_values(item)
            else:
                yield item
    else:
        yield value


def _any(value: Any, test: ValueTest) -> bool:
    if value is MISSING:
        return False
    if isinstance(value, list):
        return any(test(v) for v in _iter_values(value))
    return test(value)


def _scalars(value: Any) -> Iterator[Any]:
    """Every scalar inside a value (for keyword search)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


# -- scalar conversions ---------------------------------------------------------------------------------


def as_text(value: Any) -> str | None:
    """The text a SIEM would compare a rule string against (None for objects)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def as_number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            return None
    return None


@functools.lru_cache(maxsize=65536)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        return None


def _time_part(value: Any, part: TimestampPart) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        moment = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str):
        parsed = _parse_time(value)
        if parsed is None:
            return None
        moment = parsed
    else:
        return None
    if part == TimestampPart.MINUTE:
        return moment.minute
    if part == TimestampPart.HOUR:
        return moment.hour
    if part == TimestampPart.DAY:
        return moment.day
    if part == TimestampPart.WEEK:
        return moment.isocalendar().week
    if part == TimestampPart.MONTH:
        return moment.month
    return moment.year


# -- value tests ------------------------------------------------------------------------------------------


def _string_test(value: SigmaString, keyword: bool = False) -> ValueTest:
    cased = isinstance(value, SigmaCasedString)
    parts = list(value.s)
    if any(isinstance(p, Placeholder) for p in parts):
        raise CompileError(f"unresolved placeholder in {value} (configure it, or use |expand)")
    if keyword and not value.contains_special():
        parts = [SpecialChars.WILDCARD_MULTI, *parts, SpecialChars.WILDCARD_MULTI]
    star, single = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if not isinstance(p, str)]
    norm: Callable[[str], str] = (lambda s: s) if cased else str.lower
    text = norm("".join(plain))

    def wrap(test: Callable[[str], bool]) -> ValueTest:
        if cased:

            def check(v: Any) -> bool:
                t = as_text(v)
                return t is not None and test(t)
        else:

            def check(v: Any) -> bool:
                t = as_text(v)
                return t is not None and test(t.lower())

        return check

    if not specials:
        if cased:
            return wrap(lambda t: t == text)

        def equals(v: Any) -> bool:  # the usual rule value: one case-insensitive word, tested inline
            if v.__class__ is str:
                return v.lower() == text
            t = as_text(v)
            return t is not None and t.lower() == text

        return equals
    if single not in specials and len(plain) <= 1:
        lead = parts[0] is star
        trail = parts[-1] is star
        if len(parts) == 1:  # a lone '*': anything with a text value
            return wrap(lambda t: True)
        if lead and trail and len(parts) == 3:
            return wrap(lambda t: text in t)
        if lead and len(parts) == 2:
            return wrap(lambda t: t.endswith(text))
        if trail and len(parts) == 2:
            return wrap(lambda t: t.startswith(text))
    pattern = "".join(re.escape(p) if isinstance(p, str) else (".*" if p is star else ".") for p in parts)
    regex = re.compile(pattern, re.DOTALL | (0 if cased else re.IGNORECASE))
    match = regex.fullmatch
    return lambda v: (t := as_text(v)) is not None and match(t) is not None


def _regex_test(value: SigmaRegularExpression) -> ValueTest:
    flags = 0
    for flag in value.flags:
        flags |= {
            SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
            SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
            SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
        }[flag]
    search = re.compile(str(value.regexp), flags).search
    return lambda v: (t := as_text(v)) is not None and search(t) is not None


def _number_test(value: SigmaNumber) -> ValueTest:
    number = value.number
    text = str(number)

    def check(v: Any) -> bool:
        if isinstance(v, bool):
            return False
        if isinstance(v, (int, float)):  # a tuple: isinstance with a union is slower
            return v == number
        return isinstance(v, str) and v == text

    return check


def _compare_test(value: SigmaCompareExpression) -> ValueTest:
    limit = value.number.number
    op = {
        CompareOperators.LT: lambda n: n < limit,
        CompareOperators.LTE: lambda n: n <= limit,
        CompareOperators.GT: lambda n: n > limit,
        CompareOperators.GTE: lambda n: n >= limit,
        CompareOperators.NEQ: lambda n: n != limit,
    }[value.op]
    return lambda v: (n := as_number(v)) is not None and op(n)


def _cidr_test(value: SigmaCIDRExpression) -> ValueTest:
    network = value.network

    def check(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        ip = _ip(v)
        return ip is not None and ip.version == network.version and ip in network

    return check


def _bool_test(value: SigmaBool) -> ValueTest:
    wanted = bool(value.boolean)
    text = "true" if wanted else "false"
    return lambda v: v is wanted if isinstance(v, bool) else (isinstance(v, str) and v.lower() == text)


def value_test(value: SigmaType, keyword: bool = False) -> ValueTest:
    """A test on one scalar of the event for a per-element Sigma value."""
    if isinstance(value, SigmaString):
        return _string_test(value, keyword)
    if isinstance(value, SigmaRegularExpression):
        return _regex_test(value)
    if isinstance(value, SigmaCompareExpression):
        return _compare_test(value)
    if isinstance(value, SigmaTimestampPart):
        part, number = value.timestamp_part, value.number
        return lambda v: _time_part(v, part) == number
    if isinstance(value, SigmaNumber):
        return _number_test(value)
    if isinstance(value, SigmaBool):
        return _bool_test(value)
    if isinstance(value, SigmaCIDRExpression):
        return _cidr_test(value)
    if isinstance(value, SigmaExpansion):
        tests = [value_test(v, keyword) for v in value.values]
        return lambda v: any(t(v) for t in tests)
    raise CompileError(f"unsupported value type {type(value).__name__}: {value}")


# -- leaves ---------------------------------------------------------------------------------------------


def _fieldref_leaf(get: Callable[[Event], Any], ref: SigmaFieldReference) -> Predicate:
    other = field_getter(ref.field)

    def same(a: Any, b: Any) -> bool:
        ta, tb = as_text(a), as_text(b)
        if ta is None or tb is None:
            return False
        if isinstance(a, str) or isinstance(b, str):
            ta, tb = ta.lower(), tb.lower()
        if ref.starts_with:
            return ta.startswith(tb)
        if ref.ends_with:
            return ta.endswith(tb)
        return ta == tb

    def check(event: Event) -> bool:
        mine, theirs = get(event), other(event)
        if mine is MISSING or theirs is MISSING:
            return False
        refs = list(_iter_values(theirs))
        return any(same(a, b) for a in _iter_values(mine) for b in refs)

    return check


def field_leaf(field: str, value: SigmaType) -> Predicate:
    get = field_getter(field)
    if isinstance(value, SigmaNull):
        return lambda event: (v := get(event)) is MISSING or v is None
    if isinstance(value, SigmaExists):
        wanted = bool(value.exists)
        return lambda event: ((v := get(event)) is not MISSING and v is not None) is wanted
    if isinstance(value, SigmaFieldReference):
        return _fieldref_leaf(get, value)
    return _leaf_for_test(field, value_test(value))


def _leaf_for_test(field: str, test: ValueTest) -> Predicate:
    """The flat key first (one dict look-up: the usual case), the nested path only when it is absent."""
    get_path = _path_getter(field)

    def leaf(event: Event) -> bool:
        v = event.get(field, MISSING)
        if v is MISSING:
            if get_path is None:
                return False
            v = get_path(event)
            if v is MISSING:
                return False
        if v.__class__ is list:
            return _any_element(v, test)
        return test(v)

    return leaf


def _any_element(values: list[Any], test: ValueTest) -> bool:
    """``any(test(x) for x in _iter_values(values))`` without the two generators."""
    for x in values:
        if isinstance(x, list):
            if _any_element(x, test):
                return True
        elif test(x):
            return True
    return False


def _exact_key(value: SigmaType) -> tuple[str, Any] | None:
    """("num", n) or ("str", lower text) when ``value`` is a plain equality a set look-up can decide."""
    if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
        return ("num", value.number)
    if (
        isinstance(value, SigmaString)
        and not isinstance(value, SigmaCasedString)
        and not value.contains_special()
        and not value.contains_placeholder()
    ):
        return ("str", str(value).lower())
    return None


def set_leaf(field: str, values: list[SigmaType]) -> Predicate:
    """One leaf for ``field`` equal to any of several plain numbers/strings (what a value list becomes)."""
    numbers = {k[1] for k in map(_exact_key, values) if k is not None and k[0] == "num"}
    texts = {k[1] for k in map(_exact_key, values) if k is not None and k[0] == "str"}
    texts |= {str(n) for n in numbers}  # a numeric string in the event matches a rule number

    def test(v: Any) -> bool:
        cls = v.__class__
        if cls is int or cls is float:
            return v in numbers
        if cls is str:
            return v in texts or v.lower() in texts
        if cls is bool:
            return ("true" if v else "false") in texts
        return False

    return _leaf_for_test(field, test)


def keyword_leaf(value: SigmaType) -> Predicate:
    test = value_test(value, keyword=True)
    return lambda event: any(test(v) for v in _scalars(list(event.values())))


# -- condition tree -------------------------------------------------------------------------------------


def _and(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda e: a(e) and b(e)
    if len(preds) == 3:
        a, b, c = preds
        return lambda e: a(e) and b(e) and c(e)
    return lambda e: all(p(e) for p in preds)


def _or(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda e: a(e) or b(e)
    return lambda e: any(p(e) for p in preds)


def _merge_equalities(args: list[Any]) -> list[Predicate]:
    """OR-ed plain equalities on one field become one set look-up; everything else compiles as is."""
    by_field: dict[str, list[SigmaType]] = {}
    rest: list[Any] = []
    for arg in args:
        if isinstance(arg, ConditionFieldEqualsValueExpression) and _exact_key(arg.value) is not None:
            by_field.setdefault(arg.field, []).append(arg.value)
        else:
            rest.append(arg)
    preds = [set_leaf(f, vs) if len(vs) > 1 else field_leaf(f, vs[0]) for f, vs in by_field.items()]
    return preds + [compile_tree(a) for a in rest]


def compile_tree(node: Any) -> Predicate:
    if isinstance(node, ConditionAND):
        return _and([compile_tree(a) for a in node.args])
    if isinstance(node, ConditionOR):
        return _or(_merge_equalities(node.args))
    if isinstance(node, ConditionNOT):
        inner = compile_tree(node.args[0])
        return lambda e: not inner(e)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return field_leaf(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return keyword_leaf(node.value)
    if node is None:  # everything filtered away: matches nothing
        return lambda e: False
    raise CompileError(f"unsupported condition element {type(node).__name__}")


# -- placeholders (|expand) -----------------------------------------------------------------------------


def expand_placeholders(rule: SigmaRule, values: Mapping[str, Iterable[str]]) -> None:
    """Replace ``%name%`` placeholders in the rule's values with the configured lists (in place)."""
    for detection in rule.detection.detections.values():
        for item in _detection_items(detection):
            expanded: list[SigmaType] = []
            changed = False
            for value in item.value:
                if isinstance(value, SigmaString) and value.contains_placeholder():
                    changed = True

                    def callback(placeholder: Placeholder) -> Iterator[str]:
                        if placeholder.name not in values:
                            raise CompileError(f"placeholder %{placeholder.name}% has no configured values")
                        yield from values[placeholder.name]

                    expanded.extend(value.replace_placeholders(callback))
                else:
                    expanded.append(value)
            if changed:
                item.value = expanded


def _detection_items(detection: Any) -> Iterator[Any]:
    for item in detection.detection_items:
        if hasattr(item, "detection_items"):
            yield from _detection_items(item)
        else:
            yield item


# -- index keys -------------------------------------------------------------------------------------------


def index_key(value: Any) -> Any:
    """The form a field value takes in the rule index: numbers as numbers (numeric text too), text lower."""
    if value.__class__ is str:
        return int(value) if value.isdigit() else value.lower()
    if value.__class__ is float and value.is_integer():
        return int(value)
    return value


def pinned_values(node: Any, field: str) -> frozenset[Any] | None:
    """Exact values (:func:`index_key` form) ``field`` must have for the condition to hold, or None.

    Sound by construction: an AND is pinned when any operand is; an OR only when every operand is;
    a NOT, a wildcard or a comparison pins nothing.
    """
    if isinstance(node, ConditionAND):
        found = [p for p in (pinned_values(a, field) for a in node.args) if p is not None]
        if not found:
            return None
        result = found[0]
        for other in found[1:]:
            result = result & other
        return result
    if isinstance(node, ConditionOR):
        found = [pinned_values(a, field) for a in node.args]
        if any(p is None for p in found):
            return None
        return frozenset().union(*found)  # type: ignore[arg-type]
    if isinstance(node, ConditionFieldEqualsValueExpression) and node.field == field:
        values = node.value.values if isinstance(node.value, SigmaExpansion) else [node.value]
        keys = [_exact_key(v) for v in values]
        if all(k is not None for k in keys):
            return frozenset(index_key(k[1]) for k in keys)  # type: ignore[index]
    return None


class CompiledDetection:
    """A rule's detection as one predicate, plus what it pins for the engine's index."""

    def __init__(self, rule: SigmaRule, placeholders: Mapping[str, Iterable[str]] | None = None) -> None:
        if placeholders:
            expand_placeholders(rule, placeholders)
        try:
            self.trees = [c.parsed for c in rule.detection.parsed_condition]
        except SigmaError as exc:
            raise CompileError(str(exc)) from exc
        self.predicate = _or([compile_tree(t) for t in self.trees])
        self.actions = self.pinned("event.action")

    def pinned(self, field: str) -> frozenset[Any] | None:
        """Values ``field`` must take for any of the rule's conditions to hold (None: any value)."""
        out: set[Any] = set()
        for tree in self.trees:
            found = pinned_values(tree, field)
            if found is None:
                return None
            out |= found
        return frozenset(out)

    def fields(self) -> set[str]:
        names: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, ConditionFieldEqualsValueExpression):
                names.add(node.field)
            for arg in getattr(node, "args", []) or []:
                walk(arg)

        for tree in self.trees:
            walk(tree)
        return names

    def __call__(self, event: Event) -> bool:
        return self.predicate(event)
