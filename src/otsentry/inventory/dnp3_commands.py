"""Stateful DNP3 command checks of the enrichment stage: select-before-operate and SAv5 challenges.

Sigma rules see one event at a time, so what needs the messages before it is decided here and
written onto the event as a plain field:

* ``otsentry.dnp3.operate_without_select`` on each OPERATE (4) request — ``false`` when it completes
  the SELECT (3) its master armed on that outstation, ``true`` otherwise; ``otsentry.dnp3.select.result``
  says why (below) and ``otsentry.dnp3.select.age`` how many seconds after the SELECT it came.
* ``otsentry.dnp3.auth.challenge_missing`` on the outstation's response to a critical request, once
  the association has shown Secure Authentication (any g120 object, IEEE 1815-2012 clause 7): ``true``
  when the outstation answered the request normally although it was neither challenged (g120v1) nor
  sent in aggressive mode with its MAC (g120v3 … g120v9), i.e. the outstation executed a critical
  command unauthenticated; ``false`` when it was authenticated. ``otsentry.dnp3.auth.mode`` (how the
  request was authenticated) and ``otsentry.dnp3.auth.request_function``/``_function_code``/``_frame``
  name the request.

The field goes on the response, not on the request: only the outstation's answer shows whether it
challenged, and the stage never holds events back. The response is also the proof that the command
ran unchallenged (an outstation that rejects it answers with a g120v7 error instead).

Select-before-operate follows what IEEE 1815-2012 requires of an outstation, checked against the
opendnp3 outstation under the DNP3 conformance procedures 8.2.1.2.x (CROB) and 8.4.1.2.x (analog
output) in the shared captures: the OPERATE must carry the SELECT's objects octet for octet (same
group, variation, qualifier, range, indexes and every field of the control: code, count, on/off
times, value), follow it within the select timeout, carry the next application sequence number
(SELECT + 1 mod 16), and come with no other request in between (any other request from that master
cancels the SELECT; an OPERATE consumes it). A repeated OPERATE with the same sequence number and
objects right after a matched one is a retransmission the outstation answers without acting again
(procedures 8.2.1.2.13 / 8.4.1.2.10), so it counts as matched. SAv5 objects (g120, group 120) are
left out of the comparison: aggressive-mode sequence numbers and MACs differ on every request.

State is kept per association — (master IP, master link address, outstation IP, outstation link
address) — only for associations that sent a SELECT, OPERATE, critical request or g120 object, whose
times mark the entry active (polling does not: it keeps the hot path to one dict lookup). It is
bounded: at most ``max_associations`` entries, least recently active evicted first, and an entry
inactive (in packet time) for ``idle_timeout`` seconds is dropped. The SELECT's objects are kept as a
16-octet digest, so an entry stays small whatever the request carried.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

import orjson

from otsentry.detect.timeparse import event_ts
from otsentry.protocols.dnp3.codes import APP_FUNCTIONS

Event = dict[str, Any]

SELECT, OPERATE = 3, 4
CONFIRM = 0
AUTH_REQUESTS = frozenset({32, 33})  # authenticate_req, auth_req_no_ack: SAv5 traffic, not commands
RESPONSE, AUTH_RESPONSE = 129, 131
NO_FUNC_CODE_SUPPORT = 0x0001  # IIN2.0: the outstation did not run the function at all

# Requests an outstation treats as critical (challenges) by default under SAv5, IEEE 1815-2012
# clause 7: those that change its state — writes, controls, freeze-and-clear, restarts, application
# and configuration control, unsolicited enable/disable, class assignment, file changes. Reads,
# confirms, immediate freezes, delay measurement, record current time and file information are left
# to the device's configuration, so a sensor cannot expect a challenge for them. (The standard's own
# table was not at hand offline: this is the state-changing set; the shared ITI capture shows an
# outstation challenging DIRECT_OPERATE with reason CRITICAL.) Configurable with [detect]
# dnp3_critical_functions for devices that challenge more or less.
DEFAULT_CRITICAL_FUNCTIONS: tuple[int, ...] = (
    2,  # write
    3,  # select
    4,  # operate
    5,  # direct_operate
    6,  # direct_operate_nr
    9,  # freeze_clear
    10,  # freeze_clear_nr
    13,  # cold_restart
    14,  # warm_restart
    15,  # initialize_data
    16,  # initialize_appl
    17,  # start_appl
    18,  # stop_appl
    19,  # save_config
    20,  # enable_unsolicited
    21,  # disable_unsolicited
    22,  # assign_class
    25,  # open_file
    26,  # close_file
    27,  # delete_file
    30,  # abort_file
    31,  # activate_config
)

# otsentry.dnp3.select.result values; the first two pair the OPERATE with its SELECT.
MATCHED = "matched"
REPEAT = "repeat"  # a retransmitted OPERATE (same sequence number and objects as the matched one)
NO_SELECT = "no_select"  # none armed: never sent, already consumed, or cancelled by another request
EXPIRED = "expired"  # the SELECT is older than the select timeout
DIFFERENT_OBJECTS = "different_objects"  # another point, code, time, value, qualifier …
WRONG_SEQUENCE = "wrong_sequence"  # not the SELECT's sequence number + 1
_PAIRED = frozenset({MATCHED, REPEAT})

# otsentry.dnp3.auth.mode values: how a critical request was authenticated.
MODE_CHALLENGE = "challenge"  # the outstation challenged it (g120v1)
MODE_AGGRESSIVE = "aggressive"  # aggressive mode: g120v3 and the g120v9 MAC in the request
MODE_AGGRESSIVE_WITHOUT_MAC = "aggressive_without_mac"  # g120v3 but no g120v9
MODE_NONE = "none"  # neither
_UNAUTHENTICATED = frozenset({MODE_NONE, MODE_AGGRESSIVE_WITHOUT_MAC})


@dataclass
class CommandSettings:
    """The ``[detect]`` keys of these checks (``dnp3_`` + the field name in the config file)."""

    select_timeout: float = 10.0  # seconds an outstation keeps a SELECT armed (opendnp3's default)
    max_associations: int = 250_000
    idle_timeout: float = 86_400.0  # seconds without SBO, critical or g120 traffic: state dropped
    critical_functions: tuple[int, ...] = DEFAULT_CRITICAL_FUNCTIONS

    def __post_init__(self) -> None:
        if not _number(self.select_timeout) or self.select_timeout <= 0:
            raise ValueError(f"dnp3_select_timeout: expected seconds above 0, got {self.select_timeout!r}")
        if not _number(self.idle_timeout) or self.idle_timeout <= 0:
            raise ValueError(f"dnp3_idle_timeout: expected seconds above 0, got {self.idle_timeout!r}")
        if not _integer(self.max_associations) or self.max_associations < 1:
            raise ValueError(f"dnp3_max_associations: expected an integer ≥ 1, got {self.max_associations!r}")
        codes = self.critical_functions
        if not isinstance(codes, list | tuple) or not all(_integer(c) and 0 <= c <= 127 for c in codes):
            raise ValueError(f"dnp3_critical_functions: expected request function codes 0-127, got {codes!r}")
        self.critical_functions = tuple(codes)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


PREFIX = "dnp3_"


def settings_from_table(table: dict[str, Any] | None) -> CommandSettings:
    """``CommandSettings`` from the config file's ``[detect]`` table; an unknown key raises ValueError."""
    table = dict(table or {})
    known = {PREFIX + f.name for f in fields(CommandSettings)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return CommandSettings(**{key.removeprefix(PREFIX): value for key, value in table.items()})


class _Association:
    """What one master-outstation association has shown so far."""

    __slots__ = ("critical", "last", "operate", "secure", "select")

    def __init__(self, ts: float) -> None:
        self.last = ts
        self.secure = False  # a g120 object went either way: SAv5 is in use
        self.select: tuple[int, bytes, float] | None = None  # armed SELECT: sequence, digest, time
        self.operate: tuple[int, bytes, float] | None = None  # last paired OPERATE, for repeats
        # Critical request awaiting its response: sequence, function code, mode, pcap frame.
        self.critical: tuple[int, int, str, Any] | None = None


class Dnp3CommandTracker:
    """``tracker(events) -> events``: adds the fields above to the DNP3 events of the batch in place."""

    def __init__(self, settings: CommandSettings | None = None) -> None:
        self.settings = settings or CommandSettings()
        self.critical = frozenset(self.settings.critical_functions)
        self.associations: OrderedDict[tuple[Any, ...], _Association] = OrderedDict()
        self.evicted = 0
        self.errors = 0
        self.last_error: str | None = None

    def __call__(self, events: list[Event]) -> list[Event]:
        for event in events:
            if event.get("event.dataset") != "otsentry.dnp3":
                continue
            fc = event.get("dnp3.application.function_code")
            if fc is None:  # link-layer frame: no application message
                continue
            try:
                if event.get("dnp3.link.dir"):
                    self._request(event, fc)
                else:
                    self._response(event, fc)
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                # A malformed event must not stop the sensor: count it, keep the first reason.
                self.errors += 1
                self.last_error = self.last_error or f"{exc.__class__.__name__}: {exc}"
        return events

    def stats(self) -> dict[str, Any]:
        return {"associations": len(self.associations), "evicted": self.evicted, "errors": self.errors}

    # -- master → outstation -----------------------------------------------------------------------

    def _request(self, event: Event, fc: int) -> None:
        if fc == CONFIRM:
            return  # confirms belong to the previous exchange and cancel nothing
        key = _association(event, from_master=True)
        gvs = event.get("dnp3.object_gv") or ()
        secure = _has_auth_object(gvs)
        if not (secure or fc in (SELECT, OPERATE) or fc in self.critical):
            # Polling, the common case: it only cancels what the association had pending. Its
            # activity time is not refreshed (that needs the timestamp parsed): SELECTs, critical
            # requests and SAv5 traffic (session keys change every few minutes) keep an entry alive.
            assoc = self.associations.get(key)
            if assoc is not None and fc not in AUTH_REQUESTS:
                assoc.select = assoc.operate = assoc.critical = None
            return
        ts = event_ts(event)
        assoc = self._get(key, ts)
        if secure:
            assoc.secure = True
        if fc in AUTH_REQUESTS:
            return  # a challenge reply or key change: the request it authenticates is still pending
        seq = event.get("dnp3.application.sequence")
        if fc == OPERATE:
            self._operate(event, assoc, seq, ts)
        elif fc == SELECT:
            assoc.select = (seq, _digest(event), ts)
            assoc.operate = None
        else:
            assoc.select = assoc.operate = None  # any other request cancels an armed SELECT
        if fc in self.critical:
            assoc.critical = (seq, fc, _mode(gvs), event.get("otsentry.pcap.frame"))
        else:
            assoc.critical = None

    def _operate(self, event: Event, assoc: _Association, seq: Any, ts: float) -> None:
        digest = _digest(event)
        timeout = self.settings.select_timeout
        selected = assoc.select
        if selected is None:
            last = assoc.operate
            repeat = last is not None and last[0] == seq and last[1] == digest and ts - last[2] <= timeout
            result = REPEAT if repeat else NO_SELECT
        else:
            sel_seq, sel_digest, sel_ts = selected
            event["otsentry.dnp3.select.age"] = round(ts - sel_ts, 6)
            if sel_digest != digest:
                result = DIFFERENT_OBJECTS
            elif ts - sel_ts > timeout:
                result = EXPIRED
            elif not isinstance(sel_seq, int) or seq != (sel_seq + 1) & 0x0F:
                result = WRONG_SEQUENCE
            else:
                result = MATCHED
        assoc.select = None  # consumed when matched, cancelled when not
        assoc.operate = (seq, digest, ts) if result in _PAIRED else None
        event["otsentry.dnp3.operate_without_select"] = result not in _PAIRED
        event["otsentry.dnp3.select.result"] = result

    # -- outstation → master -----------------------------------------------------------------------

    def _response(self, event: Event, fc: int) -> None:
        key = _association(event, from_master=False)
        gvs = event.get("dnp3.object_gv") or ()
        if _has_auth_object(gvs):
            assoc = self._get(key, event_ts(event))
            assoc.secure = True
        else:
            assoc = self.associations.get(key)
            if assoc is None:
                return
        pending = assoc.critical
        if pending is None or fc not in (RESPONSE, AUTH_RESPONSE):
            return  # unsolicited responses have their own sequence numbers
        seq, request_fc, mode, frame = pending
        if "g120v1" in gvs:  # challenged: the final response to the request follows the reply
            assoc.critical = (seq, request_fc, MODE_CHALLENGE, frame)
            return
        if "g120v7" in gvs:  # refused with a SAv5 error: nothing was executed
            assoc.critical = None
            return
        if fc == AUTH_RESPONSE or event.get("dnp3.application.sequence") != seq:
            return  # another SAv5 exchange (e.g. key status), or not the answer to this request
        assoc.critical = None
        if not assoc.secure or (event.get("dnp3.iin") or 0) & NO_FUNC_CODE_SUPPORT:
            return  # no SAv5 on this association, or the function was not run at all
        event["otsentry.dnp3.auth.challenge_missing"] = mode in _UNAUTHENTICATED
        event["otsentry.dnp3.auth.mode"] = mode
        event["otsentry.dnp3.auth.request_function_code"] = request_fc
        event["otsentry.dnp3.auth.request_function"] = _function_name(request_fc)
        if frame is not None:
            event["otsentry.dnp3.auth.request_frame"] = frame

    # -- bounded state -----------------------------------------------------------------------------

    def _get(self, key: tuple[Any, ...], ts: float) -> _Association:
        """The association's state, new when it had none or was idle too long; marked active at ``ts``."""
        table = self.associations
        assoc = table.get(key)
        if assoc is not None and ts - assoc.last > self.settings.idle_timeout:
            del table[key]
            assoc = None
        if assoc is None:
            assoc = table[key] = _Association(ts)
            self._trim(ts)
        else:
            table.move_to_end(key)
            assoc.last = max(assoc.last, ts)
        return assoc

    def _trim(self, ts: float) -> None:
        """Drop idle associations from the old end, then the least recently active over the cap."""
        table = self.associations
        idle = self.settings.idle_timeout
        while table:
            oldest = next(iter(table.values()))
            if ts - oldest.last <= idle:
                break
            table.popitem(last=False)
        while len(table) > self.settings.max_associations:
            table.popitem(last=False)
            self.evicted += 1


def _has_auth_object(gvs: Any) -> bool:
    return any(gv.startswith("g120v") for gv in gvs)


def _mode(gvs: Any) -> str:
    if "g120v3" not in gvs:
        return MODE_NONE
    return MODE_AGGRESSIVE if "g120v9" in gvs else MODE_AGGRESSIVE_WITHOUT_MAC


def _digest(event: Event) -> bytes:
    """16 octets standing for the request's objects, SAv5 objects left out (see the module doc)."""
    objects = [o for o in event.get("dnp3.objects") or () if o.get("group") != 120]
    return hashlib.blake2b(orjson.dumps(objects, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _function_name(fc: int) -> str:
    return APP_FUNCTIONS.get(fc, f"function_{fc}")


def _association(event: Event, from_master: bool) -> tuple[Any, Any, Any, Any]:
    """(master IP, master address, outstation IP, outstation address) of a request or a response."""
    sender = (event.get("source.ip"), event.get("dnp3.link.source"))
    receiver = (event.get("destination.ip"), event.get("dnp3.link.destination"))
    return (*sender, *receiver) if from_master else (*receiver, *sender)
