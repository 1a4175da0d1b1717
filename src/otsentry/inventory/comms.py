"""Communications: who talks to whom, with which functions, on which points, how regularly.

A *pair* is (protocol, initiator logical device, responder logical device) — initiator and
responder by protocol role (master/outstation, client/server, controlling/controlled). Per pair
and direction each function keeps counts, first/last seen and the points it touched as ranges;
per request type (a *signature*: function plus what it asks for) the polling interval is sampled.

Memory per pair is bounded: ranges coarsen past a cap, named items stop at a cap (marked ``*``),
polling keeps a fixed reservoir of intervals, value bands keep two numbers per point.
"""

from __future__ import annotations

import re
import statistics
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from operator import sub
from typing import Any

from otsentry.inventory.observe import Address, Observation

PairKey = tuple[str, str, Address, str, Address]  # protocol, initiator ip/addr, responder ip/addr
REQUEST, RESPONSE = "request", "response"
ANY_ITEM = "*"  # an item set that overflowed its cap: every item is possible

_FUNCTION_KEYS: dict[tuple[str, str], tuple[str, str]] = {}
_SIGNATURES: dict[str, str] = {}  # one copy of each request signature across pairs
_REQUEST_KEYS: dict[str, tuple[str, str]] = {}  # function name -> its shared (direction, name) key
_RESPONSE_KEYS: dict[str, tuple[str, str]] = {}


def function_key(direction: str, name: str) -> tuple[str, str]:
    """One shared tuple per (direction, function): a million pairs must not hold a million copies."""
    key = (direction, name)
    return _FUNCTION_KEYS.setdefault(key, key) if len(_FUNCTION_KEYS) < 65536 else key


def endpoint_id(ip: str, protocol: str, address: Address) -> str:
    """A logical device as text: ``10.20.2.31/dnp3:10``, or the bare IP when the role has no address."""
    return ip if address is None else f"{ip}/{protocol}:{address}"


def parse_endpoint(text: str) -> tuple[str, str | None, Address]:
    """Inverse of :func:`endpoint_id`: (ip, protocol or None, address)."""
    ip, sep, rest = text.rpartition("/")
    if not sep:
        return text, None, None
    protocol, _, address = rest.partition(":")
    return ip, protocol, int(address) if address.isdigit() else address


def pair_id(key: PairKey) -> str:
    protocol, iip, iaddr, rip, raddr = key
    return f"{protocol} {endpoint_id(iip, protocol, iaddr)} -> {endpoint_id(rip, protocol, raddr)}"


def parse_pair_id(text: str) -> PairKey:
    protocol, initiator, arrow, responder = text.split(" ")
    if arrow != "->":
        raise ValueError(f"not a pair: {text!r}")
    iip, _, iaddr = parse_endpoint(initiator)
    rip, _, raddr = parse_endpoint(responder)
    return protocol, iip, iaddr, rip, raddr


_SPAN = re.compile(r"(-?\d+)(?:-(-?\d+))?")

# -- point ranges ----------------------------------------------------------------------------------


class RangeSet(tuple):
    """Disjoint inclusive integer ranges as a flat sorted tuple ``(s0, e0, s1, e1, …)``.

    Immutable and exactly sized: ``add`` returns the grown set (or ``self``). A tuple of two is 56
    bytes where a list would take 120, and a million pairs hold a few million of these.
    Past ``cap`` ranges the two closest neighbours merge: the set stays small and only ever grows
    (a coarser range still contains every point seen).
    """

    __slots__ = ()

    @property
    def bounds(self) -> list[int]:
        return list(self)

    def __contains__(self, span: object) -> bool:
        lo, hi = span  # type: ignore[misc]
        flat = self[:]  # a plain tuple: bisect reads a tuple subclass through a slow generic slot
        i = bisect_right(flat, lo)
        if i & 1:
            return hi <= flat[i]
        return i > 0 and flat[i - 1] == lo and hi <= lo

    def add(self, lo: int, hi: int, cap: int = 32) -> RangeSet:
        """This set with ``[lo, hi]`` added."""
        flat = self[:]  # as in __contains__, which this inlines: most touches are inside already
        i = bisect_right(flat, lo)
        if i & 1:
            if hi <= flat[i]:
                return self
        elif i > 0 and flat[i - 1] == lo and hi <= lo:
            return self
        if not flat:
            return RangeSet((lo, hi))
        if (
            lo.__class__ is int
            and hi.__class__ is int
            and lo <= hi
            and cap > 0
            and len(flat) <= 2 * cap
            and flat == tuple(sorted(flat))  # no reversed span: only a hand-edited "9-0" makes one
        ):
            return _insert(flat, lo, hi, cap)
        return self._rebuild(lo, hi, cap)

    def _rebuild(self, lo: int, hi: int, cap: int) -> RangeSet:
        spans = [(lo, hi), *zip(self[::2], self[1::2], strict=True)]
        spans.sort()
        merged: list[list[int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1] + 1:
                if e > merged[-1][1]:
                    merged[-1][1] = e
            else:
                merged.append([s, e])
        while len(merged) > cap:
            gap_at = min(range(len(merged) - 1), key=lambda j: merged[j + 1][0] - merged[j][1])
            merged[gap_at][1] = merged[gap_at + 1][1]
            del merged[gap_at + 1]
        return RangeSet(x for span in merged for x in span)

    def outside(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The parts of ``[lo, hi]`` this set does not cover."""
        missing: list[tuple[int, int]] = []
        cursor = lo
        for j in range(0, len(self), 2):
            s, e = self[j], self[j + 1]
            if e < cursor:
                continue
            if s > hi:
                break
            if s > cursor:
                missing.append((cursor, s - 1))
            cursor = e + 1
            if cursor > hi:
                return missing
        if cursor <= hi:
            missing.append((cursor, hi))
        return missing

    def spans(self) -> list[tuple[int, int]]:
        return list(zip(self[::2], self[1::2], strict=True))

    def render(self) -> str:
        return ",".join(str(s) if s == e else f"{s}-{e}" for s, e in self.spans())

    @classmethod
    def parse(cls, text: str | int) -> RangeSet:
        out = cls()
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            match = _SPAN.fullmatch(part)
            if match is None:
                raise ValueError(f"not a range: {part!r}")
            first, last = int(match[1]), int(match[2] or match[1])
            out = out.add(first, last, 1 << 30)
        return out


def _insert(flat: tuple[int, ...], lo: int, hi: int, cap: int) -> RangeSet:
    """``RangeSet.add`` for a sorted set within ``cap``: what ``_rebuild`` gives, found by bisection
    (the rebuild's sort and merge loop were most of the inventory's cost on varied addresses).

    Spans ``first..last`` are those within one of ``[lo, hi]`` (they overlap or touch it); they
    become one span. One span more than ``cap`` at most: the closest neighbours merge.
    """
    first = 2 * (bisect_left(flat, lo - 1) // 2)  # the first span ending at lo - 1 or later
    last = 2 * ((bisect_right(flat, hi + 1) - 1) // 2)  # the last span starting at hi + 1 or earlier
    if first > last:
        if len(flat) < 2 * cap:
            return RangeSet((*flat[:first], lo, hi, *flat[first:]))
        out = [*flat[:first], lo, hi, *flat[first:]]
    else:
        start, end = flat[first], flat[last + 1]
        return RangeSet((*flat[:first], min(lo, start), max(hi, end), *flat[last + 2 :]))
    gaps = list(map(sub, out[2::2], out[1:-1:2]))
    at = 2 * gaps.index(min(gaps)) + 1  # the end of the span before the smallest gap
    del out[at : at + 2]
    return RangeSet(out)


class ItemSet(set):
    """Named objects touched (DLMS OBIS/attribute), capped; overflow leaves the ``*`` marker."""

    __slots__ = ()

    @property
    def items(self) -> set[str]:  # type: ignore[override]
        return self

    def __contains__(self, item: object) -> bool:
        return set.__contains__(self, item) or set.__contains__(self, ANY_ITEM)

    def add(self, item: str, cap: int = 64) -> None:  # type: ignore[override]
        if set.__contains__(self, item):
            return
        set.add(self, ANY_ITEM if len(self) >= cap else item)

    def render(self) -> list[str]:
        return sorted(self)


Touched = dict[str, RangeSet | ItemSet]


def _grow(found: RangeSet | ItemSet, lo: Any, hi: Any, limits: Any) -> RangeSet | ItemSet:
    """``found`` with the touch added (range sets are immutable: the caller keeps the result)."""
    if hi is None:
        if isinstance(found, ItemSet):
            found.add(str(lo), limits.max_items_per_space)
    elif isinstance(found, RangeSet):
        return found.add(lo, hi, limits.max_ranges_per_space)
    return found


# -- polling -----------------------------------------------------------------------------------------


class PollStats:
    """Intervals between successive requests of one signature: a uniform reservoir sample of them.

    ``median`` and ``jitter`` (median absolute deviation from the median — robust to missed polls
    and reconnect pauses) are computed from the reservoir on demand.
    """

    __slots__ = ("function", "last", "n", "samples", "signature")

    def __init__(self, signature: str, function: str, ts: float) -> None:
        self.signature = signature
        self.function = function
        self.last = ts
        self.n = 0  # intervals seen
        self.samples: array | None = None

    def add(self, ts: float, size: int, rand: Callable[[], float]) -> None:
        dt = ts - self.last
        if dt < 0:
            return  # out of order across flows: keep the later time
        self.last = ts
        if dt == 0:
            return
        self.n += 1
        samples = self.samples
        if samples is None:
            samples = self.samples = array("f")
        if len(samples) < size:
            samples.append(dt)
        else:
            j = int(rand() * self.n)  # Vitter's algorithm R
            if j < size:
                samples[j] = dt

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def jitter(self) -> float | None:
        if not self.samples:
            return None
        med = statistics.median(self.samples)
        return statistics.median(abs(x - med) for x in self.samples)

    def summary(self) -> dict[str, Any]:
        med, jit = self.median, self.jitter
        return {
            "median": round(med, 6) if med is not None else None,
            "jitter": round(jit, 6) if jit is not None else None,
            "samples": self.n,
        }


# -- functions and pairs -------------------------------------------------------------------------------


class FunctionStats:
    """Counts, first/last seen and touched points of one function in one direction of a pair.

    The first address space is held inline (``space``/``found``), others in ``more``: most functions
    touch one space, and a dict per function would double a pair's memory.
    """

    __slots__ = ("code", "count", "fclass", "first", "found", "last", "more", "space")

    def __init__(self, code: int | None, fclass: str, ts: float) -> None:
        self.code = code
        self.fclass = fclass
        self.count = 0
        self.first = ts
        self.last = ts
        self.space: str | None = None
        self.found: RangeSet | ItemSet | None = None
        self.more: Touched | None = None

    def touch(self, space: str, lo: Any, hi: Any, limits: Any) -> None:
        if space == self.space:
            found = self.found
            if hi is not None and found.__class__ is RangeSet:  # the usual touch, without _grow
                self.found = found.add(lo, hi, limits.max_ranges_per_space)  # type: ignore[union-attr]
            else:
                self.found = _grow(found, lo, hi, limits)  # type: ignore[arg-type]
        elif self.space is None:
            self.space = space
            self.found = _grow(RangeSet() if hi is not None else ItemSet(), lo, hi, limits)
        else:
            more = self.more
            if more is None:
                more = self.more = {}
            found = more.get(space)
            if found is None:
                if len(more) + 1 >= limits.max_spaces_per_function:
                    return
                found = RangeSet() if hi is not None else ItemSet()
            more[space] = _grow(found, lo, hi, limits)

    @property
    def spaces(self) -> Touched:
        out: Touched = {}
        if self.space is not None and self.found is not None:
            out[self.space] = self.found
        if self.more:
            out.update(self.more)
        return out

    def set_spaces(self, spaces: Touched) -> None:
        self.space = self.found = self.more = None
        for space, found in spaces.items():
            if self.space is None:
                self.space, self.found = space, found
            else:
                if self.more is None:
                    self.more = {}
                self.more[space] = found

    def ranges(self) -> dict[str, Any]:
        return {space: found.render() for space, found in sorted(self.spaces.items())}


class Pair:
    """One pair's communications.

    Memory matters here (a million pairs must fit in well under a GiB), hence: functions in a flat
    list ``[key0, stats0, key1, stats1, …]`` (a pair has a handful; a dict would be 224 bytes),
    ``polls`` one :class:`PollStats` alone until a second request type appears, and first seen and
    count derived from the functions instead of stored twice.
    """

    __slots__ = ("dirty", "flags", "funcs", "key", "last", "polls")

    def __init__(self, key: PairKey, ts: float) -> None:
        self.key = key
        self.last = ts
        self.funcs: tuple[Any, ...] = ()  # exactly sized: functions are added rarely
        # None, a signature seen once (str), one tracker, or trackers by signature
        self.polls: str | PollStats | dict[str, PollStats] | None = None
        self.flags: set[str] | None = None
        self.dirty = False

    @property
    def functions(self) -> dict[tuple[str, str], FunctionStats]:
        funcs = self.funcs
        return dict(zip(funcs[::2], funcs[1::2], strict=True))

    def add_function(self, key: tuple[str, str], stats: FunctionStats) -> None:
        self.funcs = (*self.funcs, key, stats)
        if stats.last > self.last:
            self.last = stats.last

    @property
    def first(self) -> float:
        return min((f.first for f in self.funcs[1::2]), default=self.last)

    @property
    def count(self) -> int:
        return sum(f.count for f in self.funcs[1::2])

    @property
    def trackers(self) -> dict[str, PollStats]:
        polls = self.polls
        if polls is None or polls.__class__ is str:
            return {}
        return {polls.signature: polls} if isinstance(polls, PollStats) else polls  # type: ignore[union-attr,return-value]

    def drop_tracker(self, signature: str) -> None:
        polls = self.polls
        if polls.__class__ is str:
            self.polls = None
        elif isinstance(polls, PollStats):
            if polls.signature == signature:
                self.polls = None
        elif isinstance(polls, dict):
            polls.pop(signature, None)
            if not polls:
                self.polls = None

    def update(self, obs: Observation, limits: Any, rand: Callable[[], float]) -> int:
        """Fold ``obs`` in; returns the number of poll trackers created (for the global budget)."""
        ts = obs.ts
        if ts > self.last:
            self.last = ts
        direction = REQUEST if obs.from_initiator else RESPONSE
        funcs = self.funcs
        keys = _REQUEST_KEYS if obs.from_initiator else _RESPONSE_KEYS
        previous = -1.0  # when the first call's function was last seen before this message
        for name, code, fclass, touched in obs.calls:
            key = keys.get(name)
            if key is None:
                key = function_key(direction, name)
                if len(keys) < 65536:
                    keys[name] = key
            try:  # keys sit at even positions; a FunctionStats never equals a key
                stats = funcs[funcs.index(key) + 1]
            except ValueError:
                stats = None
            if stats is None:
                if len(funcs) >= 2 * limits.max_functions_per_pair:
                    continue
                stats = FunctionStats(code, fclass, ts)
                funcs = self.funcs = (*funcs, key, stats)
            elif previous < 0:
                previous = stats.last
            stats.count += 1
            if ts > stats.last:
                stats.last = ts
            for space, lo, hi in touched:
                stats.touch(space, lo, hi, limits)
        created = 0
        signature = obs.signature
        if signature is not None and obs.from_initiator:
            if len(_SIGNATURES) < 100_000:
                signature = _SIGNATURES.setdefault(signature, signature)
            polls = self.polls
            if polls is None:
                # One request so far: remember only its signature (its time is its function's last
                # seen); most pairs in a large network never send a second one.
                self.polls = signature
            elif polls.__class__ is str:
                if polls == signature and previous >= 0:
                    tracker = self.polls = PollStats(signature, obs.calls[0][0], previous)
                    tracker.add(ts, limits.poll_reservoir, rand)
                    created = 1
                else:  # a second request type: the first one's single request gives no interval
                    function = obs.calls[0][0] if obs.calls else signature
                    self.polls = {signature: PollStats(signature, function, ts)}
                    created = 1
            elif isinstance(polls, PollStats) and polls.signature == signature:
                polls.add(ts, limits.poll_reservoir, rand)
            else:
                if isinstance(polls, PollStats):
                    polls = self.polls = {polls.signature: polls}
                tracker = polls.get(signature)
                if tracker is not None:
                    tracker.add(ts, limits.poll_reservoir, rand)
                elif len(polls) < limits.max_signatures_per_pair:
                    polls[signature] = PollStats(signature, obs.calls[0][0] if obs.calls else signature, ts)
                    created = 1
        if obs.flags:
            if self.flags is None:
                self.flags = set()
            self.flags.update(obs.flags)
        return created
