"""The DNP3 command tracker of the enrichment stage on event sequences: select-before-operate
(``otsentry.dnp3.operate_without_select``) and SAv5 challenges (``otsentry.dnp3.auth.challenge_missing``).
Each case that sets a field to true has a near miss that differs in the one thing the check keys on."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnp3_commands_helpers import analog, auth_object, crob, request, response
from otsentry.config import ConfigError, parse_config
from otsentry.inventory.dnp3_commands import (
    DEFAULT_CRITICAL_FUNCTIONS,
    CommandSettings,
    Dnp3CommandTracker,
    settings_from_table,
)

SELECT, OPERATE, DIRECT_OPERATE, READ, CONFIRM, AUTH_REQ, AUTH_RESP = 3, 4, 5, 1, 0, 32, 131


def run(events: list[dict[str, Any]], **settings: Any) -> list[dict[str, Any]]:
    Dnp3CommandTracker(CommandSettings(**settings))(events)
    return events


def operate_result(events: list[dict[str, Any]], **settings: Any) -> tuple[bool, str]:
    run(events, **settings)
    operate = events[-1]
    assert operate["dnp3.application.function_code"] == OPERATE
    return operate["otsentry.dnp3.operate_without_select"], operate["otsentry.dnp3.select.result"]


# -- select before operate ------------------------------------------------------------------------------


def test_operate_after_its_select_is_paired() -> None:
    events = [
        request(SELECT, 4, 0.0, [crob(2)]),
        response(4, 0.02, [crob(2)]),
        request(OPERATE, 5, 0.3, [crob(2)]),
    ]
    assert operate_result(events) == (False, "matched")
    assert events[-1]["otsentry.dnp3.select.age"] == pytest.approx(0.3)
    assert "otsentry.dnp3.operate_without_select" not in events[0]  # only OPERATEs get the field


def test_operate_without_any_select() -> None:
    assert operate_result([request(OPERATE, 5, 0.0, [crob(2)])]) == (True, "no_select")


@pytest.mark.parametrize(
    ("selected", "operated"),
    [
        (crob(2), crob(3)),  # another point
        (crob(2, code=3), crob(2, code=4)),  # another control code (latch on → latch off)
        (crob(2, off_time=200), crob(2, off_time=201)),  # another off time (conformance 8.2.1.2.7)
        (crob(2, qualifier=0x28), crob(2, qualifier=0x17)),  # same point, other qualifier (8.2.1.2.9)
        (analog(1, 20), analog(1, 21)),  # another set point value
        (analog(1, 20), crob(1)),  # another object group
    ],
)
def test_operate_must_carry_the_selected_objects(selected: dict, operated: dict) -> None:
    assert operate_result([request(SELECT, 0, 0.0, [selected]), request(OPERATE, 1, 0.1, [operated])]) == (
        True,
        "different_objects",
    )
    assert operate_result([request(SELECT, 0, 0.0, [selected]), request(OPERATE, 1, 0.1, [selected])]) == (
        False,
        "matched",
    )


def test_select_timeout() -> None:
    def after(seconds: float, **settings: Any) -> tuple[bool, str]:
        return operate_result(
            [request(SELECT, 0, 0.0, [crob(2)]), request(OPERATE, 1, seconds, [crob(2)])], **settings
        )

    assert after(9.9) == (False, "matched")
    assert after(10.0) == (False, "matched")
    assert after(11.0) == (True, "expired")
    assert after(2.5, select_timeout=2.0) == (True, "expired")
    assert after(1.5, select_timeout=2.0) == (False, "matched")


@pytest.mark.parametrize(
    "other",
    [
        {"master": "10.0.0.6"},  # the SELECT came from another master IP
        {"master_address": 2},  # … from another master link address behind the same IP
        {"outstation": "10.0.0.21"},  # … to another outstation
        {"outstation_address": 11},  # … to another logical outstation behind the same gateway
    ],
)
def test_select_is_per_master_and_outstation(other: dict[str, Any]) -> None:
    events = [request(SELECT, 0, 0.0, [crob(2)], **other), request(OPERATE, 1, 0.1, [crob(2)])]
    assert operate_result(events) == (True, "no_select")


def test_operate_needs_the_next_sequence_number() -> None:
    assert operate_result([request(SELECT, 0, 0.0, [crob(2)]), request(OPERATE, 2, 0.1, [crob(2)])]) == (
        True,
        "wrong_sequence",
    )
    # 15 + 1 wraps to 0 (4-bit sequence number)
    assert operate_result([request(SELECT, 15, 0.0, [crob(2)]), request(OPERATE, 0, 0.1, [crob(2)])]) == (
        False,
        "matched",
    )


def test_an_operate_consumes_or_cancels_the_select() -> None:
    select = request(SELECT, 0, 0.0, [crob(2)])
    # consumed: a second OPERATE (next sequence number) has no SELECT any more (conformance 8.4.1.2.11)
    assert operate_result(
        [select, request(OPERATE, 1, 0.1, [crob(2)]), request(OPERATE, 2, 0.2, [crob(2)])]
    ) == (
        True,
        "no_select",
    )
    # cancelled: a failed OPERATE leaves nothing to retry against (conformance 8.2.1.2.15)
    assert operate_result(
        [select, request(OPERATE, 2, 0.1, [crob(2)]), request(OPERATE, 1, 0.2, [crob(2)])]
    ) == (
        True,
        "no_select",
    )


def test_another_request_cancels_the_select_but_confirms_and_auth_do_not() -> None:
    select, operate = request(SELECT, 0, 0.0, [crob(2)]), request(OPERATE, 1, 0.5, [crob(2)])
    assert operate_result([select, request(READ, 1, 0.2), operate]) == (True, "no_select")
    assert operate_result([select, request(CONFIRM, 0, 0.2), operate]) == (False, "matched")
    assert operate_result([select, request(AUTH_REQ, 0, 0.2, [auth_object(2)]), operate]) == (
        False,
        "matched",
    )
    # a READ to another outstation leaves this one's SELECT armed
    assert operate_result([select, request(READ, 1, 0.2, outstation="10.0.0.21"), operate]) == (
        False,
        "matched",
    )


def test_latest_select_wins() -> None:
    events = [
        request(SELECT, 0, 0.0, [crob(2)]),
        request(SELECT, 1, 0.1, [crob(3)]),
        request(OPERATE, 2, 0.2, [crob(3)]),
    ]
    assert operate_result(events) == (False, "matched")
    events = [
        request(SELECT, 0, 0.0, [crob(2)]),
        request(SELECT, 1, 0.1, [crob(3)]),
        request(OPERATE, 1, 0.2, [crob(2)]),
    ]
    assert operate_result(events) == (True, "different_objects")


def test_a_repeated_operate_is_a_retransmission() -> None:
    select, operate = request(SELECT, 0, 0.0, [crob(2)]), request(OPERATE, 1, 0.1, [crob(2)])
    assert operate_result([select, operate, request(OPERATE, 1, 0.2, [crob(2)])]) == (False, "repeat")
    # near misses: another sequence number, other objects, or too late
    assert operate_result([select, dict(operate), request(OPERATE, 2, 0.2, [crob(2)])])[0] is True
    assert operate_result([select, dict(operate), request(OPERATE, 1, 0.2, [crob(3)])])[0] is True
    assert operate_result([select, dict(operate), request(OPERATE, 1, 10.5, [crob(2)])])[0] is True


def test_aggressive_mode_objects_are_not_compared() -> None:
    """SAv5 aggressive mode wraps each request in its own g120v3 (new sequence number) and g120v9 (MAC)."""
    selected = [auth_object(3, sequence=7, user=1), crob(2), auth_object(9, mac_length=16)]
    operated = [auth_object(3, sequence=8, user=1), crob(2), auth_object(9, mac_length=10)]
    assert operate_result([request(SELECT, 0, 0.0, selected), request(OPERATE, 1, 0.1, operated)]) == (
        False,
        "matched",
    )


# -- SAv5: critical requests answered without a challenge ----------------------------------------------


def secure_association(ts: float = 0.0) -> list[dict[str, Any]]:
    """A session key status exchange: the association has shown Secure Authentication."""
    return [
        request(AUTH_REQ, 1, ts, [auth_object(4, user=1)], frame=1),
        response(1, ts + 0.03, [auth_object(5, sequence=1, user=1)], fc=AUTH_RESP, frame=2),
    ]


def auth_fields(event: dict[str, Any]) -> dict[str, Any]:
    return {
        k.removeprefix("otsentry.dnp3.auth."): v
        for k, v in event.items()
        if k.startswith("otsentry.dnp3.auth.")
    }


def test_unchallenged_critical_request_on_a_secure_association() -> None:
    events = [
        *secure_association(),
        request(DIRECT_OPERATE, 2, 1.0, [crob(1)], frame=3),
        response(2, 1.1, [crob(1)]),
    ]
    run(events)
    assert auth_fields(events[-1]) == {
        "challenge_missing": True,
        "mode": "none",
        "request_function_code": 5,
        "request_function": "direct_operate",
        "request_frame": 3,
    }
    assert not auth_fields(events[2])  # the field is on the response, not on the request


def test_challenged_critical_request() -> None:
    events = [
        request(DIRECT_OPERATE, 6, 0.0, [crob(1)], frame=1),
        response(6, 0.08, [auth_object(1, sequence=3, user=0, reason="CRITICAL")], fc=AUTH_RESP, frame=2),
        request(AUTH_REQ, 6, 0.11, [auth_object(2, sequence=3, user=1, mac_length=16)], frame=3),
        response(6, 0.18, [crob(1)], frame=4),
    ]
    run(events)
    assert auth_fields(events[-1])["challenge_missing"] is False
    assert auth_fields(events[-1])["mode"] == "challenge"


def test_aggressive_mode() -> None:
    with_mac = [auth_object(3, sequence=9, user=1), crob(1), auth_object(9, mac_length=16)]
    events = [request(DIRECT_OPERATE, 12, 0.0, with_mac), response(12, 0.1, [crob(1)])]
    run(events)
    assert (auth_fields(events[-1])["challenge_missing"], auth_fields(events[-1])["mode"]) == (
        False,
        "aggressive",
    )
    without_mac = with_mac[:2]
    events = [request(DIRECT_OPERATE, 12, 0.0, without_mac), response(12, 0.1, [crob(1)])]
    run(events)
    assert (auth_fields(events[-1])["challenge_missing"], auth_fields(events[-1])["mode"]) == (
        True,
        "aggressive_without_mac",
    )


@pytest.mark.parametrize(
    ("case", "events"),
    [
        ("no SAv5 on this association", [request(DIRECT_OPERATE, 2, 1.0, [crob(1)]), response(2, 1.1)]),
        (
            "SAv5 on another association",
            [*secure_association(), request(DIRECT_OPERATE, 2, 1.0, [crob(1)], master="10.0.0.6"),
             response(2, 1.1, [crob(1)], master="10.0.0.6")],
        ),
        ("not critical", [*secure_association(), request(READ, 2, 1.0), response(2, 1.1)]),
        (
            "refused with an SAv5 error",
            [*secure_association(), request(DIRECT_OPERATE, 2, 1.0, [crob(1)]),
             response(2, 1.1, [auth_object(7, error="AUTHENTICATION_FAILED")], fc=AUTH_RESP)],
        ),
        (
            "function not supported (IIN2.0)",
            [*secure_association(), request(DIRECT_OPERATE, 2, 1.0, [crob(1)]), response(2, 1.1, iin=0x0001)],
        ),
        (
            "response to another sequence number",
            [*secure_association(), request(DIRECT_OPERATE, 2, 1.0, [crob(1)]), response(3, 1.1, [crob(1)])],
        ),
        (
            "unsolicited response",
            [*secure_association(), request(DIRECT_OPERATE, 2, 1.0, [crob(1)]), response(2, 1.1, fc=130)],
        ),
    ],
)  # fmt: skip
def test_no_missing_challenge(case: str, events: list[dict[str, Any]]) -> None:
    run(events)
    assert not auth_fields(events[-1]), case


def test_critical_functions_are_configurable() -> None:
    def answered(fc: int, **settings: Any) -> dict[str, Any]:
        events = [*secure_association(), request(fc, 2, 1.0, [crob(1)]), response(2, 1.1)]
        return auth_fields(run(events, **settings)[-1])

    assert answered(13)["challenge_missing"] is True  # cold restart: critical by default
    assert answered(READ) == {}
    assert answered(READ, critical_functions=(1, 5))["challenge_missing"] is True
    assert answered(13, critical_functions=(1, 5)) == {}
    assert 1 not in DEFAULT_CRITICAL_FUNCTIONS and 0 not in DEFAULT_CRITICAL_FUNCTIONS


def test_sav5_state_expires_when_idle() -> None:
    events = [*secure_association(0.0), request(DIRECT_OPERATE, 2, 100.0, [crob(1)]), response(2, 100.1)]
    assert auth_fields(run(events, idle_timeout=50.0)[-1]) == {}
    events = [*secure_association(0.0), request(DIRECT_OPERATE, 2, 100.0, [crob(1)]), response(2, 100.1)]
    assert auth_fields(run(events, idle_timeout=500.0)[-1])["challenge_missing"] is True
    # periodic session key changes keep the association's SAv5 state (polling alone does not)
    keys = [*secure_association(0.0), *secure_association(40.0), *secure_association(80.0)]
    events = [*keys, request(DIRECT_OPERATE, 2, 100.0, [crob(1)]), response(2, 100.1)]
    assert auth_fields(run(events, idle_timeout=50.0)[-1])["challenge_missing"] is True
    polls = [e for t in range(5, 100, 5) for e in (request(READ, 3, float(t)), response(3, t + 0.1))]
    events = [
        *secure_association(0.0),
        *polls,
        request(DIRECT_OPERATE, 2, 100.0, [crob(1)]),
        response(2, 100.1),
    ]
    assert auth_fields(run(events, idle_timeout=50.0)[-1]) == {}


# -- bounds, settings, robustness -----------------------------------------------------------------------


def test_state_is_capped_least_recently_active_first() -> None:
    tracker = Dnp3CommandTracker(CommandSettings(max_associations=100))
    selects = [
        request(SELECT, 0, i * 0.001, [crob(2)], master=f"10.1.{i // 256}.{i % 256}") for i in range(500)
    ]
    tracker(selects)
    assert len(tracker.associations) == 100
    assert tracker.evicted == 400
    latest = [request(OPERATE, 1, 1.0, [crob(2)], master=f"10.1.{i // 256}.{i % 256}") for i in (499, 0)]
    tracker(latest)
    assert [e["otsentry.dnp3.operate_without_select"] for e in latest] == [False, True]  # 0 was evicted


def test_polling_alone_keeps_no_state() -> None:
    tracker = Dnp3CommandTracker()
    tracker([request(READ, i % 16, i * 1.0, master=f"10.2.0.{i}") for i in range(200)])
    tracker([response(i % 16, i * 1.0 + 0.1, master=f"10.2.0.{i}") for i in range(200)])
    assert len(tracker.associations) == 0


def test_memory_per_association_is_small() -> None:
    """A million associations with an armed SELECT stay well under 1 GiB whatever the SELECT carried
    (its objects are kept as a digest): measure 5 000, the events dropped, and extrapolate."""
    big = [crob(i) for i in range(16)]
    tracker = Dnp3CommandTracker()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    events = [
        request(SELECT, 0, 0.0, big, master=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        for i in range(5_000)
    ]
    tracker(events)
    del events  # what stays is the tracker's: keys (with their IP strings) and state
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(tracker.associations) == 5_000
    assert used / 5_000 < 700, f"{used / 5_000:.0f} bytes per association"


def test_settings_from_the_detect_table() -> None:
    settings = settings_from_table({"dnp3_select_timeout": 5, "dnp3_critical_functions": [5, 13]})
    assert (settings.select_timeout, settings.critical_functions) == (5, (5, 13))
    assert settings_from_table(None) == CommandSettings()
    for bad, message in [
        ({"dnp3_select_timout": 5}, "unknown setting(s): dnp3_select_timout"),
        ({"dnp3_select_timeout": 0}, "dnp3_select_timeout"),
        ({"dnp3_select_timeout": "10"}, "dnp3_select_timeout"),
        ({"dnp3_max_associations": 1.5}, "dnp3_max_associations"),
        ({"dnp3_critical_functions": [5, 129]}, "dnp3_critical_functions"),
        ({"dnp3_critical_functions": 5}, "dnp3_critical_functions"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            settings_from_table(bad)
    with pytest.raises(ConfigError, match=r"otsentry.toml: \[detect\]: .*dnp3_select_timout"):
        parse_config({"detect": {"dnp3_select_timout": 5}}, "otsentry.toml")
    assert parse_config({"detect": {"dnp3_select_timeout": 2.5}}, "x").detect == {"dnp3_select_timeout": 2.5}


def test_the_pipeline_uses_the_detect_table() -> None:
    from otsentry.analysis import build_analysis

    analysis = build_analysis(None, None, detect=False, detectors={"dnp3_select_timeout": 2.0})
    events = [request(SELECT, 0, 0.0, [crob(2)]), request(OPERATE, 1, 3.0, [crob(2)])]
    analysis(events)
    assert events[-1]["otsentry.dnp3.select.result"] == "expired"
    with pytest.raises(ValueError, match="dnp3_select_timout"):
        build_analysis(None, None, detect=False, detectors={"dnp3_select_timout": 2.0})


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 300), st.text(max_size=3), st.floats(allow_nan=True)
)
_EVENT = st.fixed_dictionaries(
    {"event.dataset": st.just("otsentry.dnp3")},
    optional={
        "@timestamp": st.one_of(
            st.text(max_size=30), st.floats(allow_nan=True), st.just("2024-05-14T06:00:00.5Z")
        ),
        "dnp3.link.dir": _VALUES,
        "dnp3.application.function_code": st.sampled_from([0, 1, 3, 4, 5, 13, 32, 129, 130, 131]) | _VALUES,
        "dnp3.application.sequence": _VALUES,
        "source.ip": _VALUES,
        "destination.ip": _VALUES,
        "dnp3.link.source": _VALUES,
        "dnp3.link.destination": _VALUES,
        "dnp3.iin": _VALUES,
        "dnp3.object_gv": st.lists(
            st.sampled_from(["g120v1", "g120v3", "g120v7", "g120v9", "g12v1"]), max_size=4
        )
        | _VALUES,
        "dnp3.objects": st.lists(st.sampled_from([crob(1), analog(2, 3), auth_object(9)]), max_size=3)
        | _VALUES,
    },
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_EVENT, max_size=12))
def test_malformed_events_never_raise(events: list[dict[str, Any]]) -> None:
    tracker = Dnp3CommandTracker(CommandSettings(max_associations=4))
    tracker(events)
    assert len(tracker.associations) <= 4
