"""Whatever the analyzers put in an event (odd types, absurd lists, missing fields), the enrichment
stage neither raises nor grows without bound."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inventory_scenario import generate
from otsentry.inventory.baseline import Baseline
from otsentry.inventory.enrich import Enricher
from otsentry.inventory.settings import Limits

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True), st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=8,
)
FIELDS = [
    "modbus.unit_id",
    "modbus.pdu_type",
    "modbus.function_code",
    "modbus.address",
    "modbus.quantity",
    "modbus.values",
    "modbus.matched",
    "modbus.objects",
    "modbus.write.address",
    "modbus.write.quantity",
    "modbus.file_records",
    "modbus.file_numbers",
    "dnp3.link.source",
    "dnp3.link.destination",
    "dnp3.link.dir",
    "dnp3.application.function_code",
    "dnp3.objects",
    "dnp3.iin_flags",
    "dnp3.device_attributes",
    "iec104.type_id",
    "iec104.cot",
    "iec104.common_address",
    "iec104.ioa",
    "iec104.value",
    "iec104.apci",
    "dlms.apdu",
    "dlms.obis",
    "dlms.attribute_id",
    "dlms.system_title",
    "dlms.value",
    "dlms.wrapper.source_port",
    "c1222.calling_ap_title",
    "c1222.called_ap_title",
    "c1222.services",
    "c1222.pdu_type",
    "event.action",
    "source.mac",
    "destination.mac",
    "network.vlan.id",
]
objects = st.lists(
    st.fixed_dictionaries(
        {"group": st.integers(0, 130), "variation": st.integers(0, 255)},
        optional={
            "start": st.integers(-5, 70000),
            "stop": st.integers(-5, 70000),
            "points": st.lists(st.dictionaries(st.sampled_from(["index", "value"]), scalars), max_size=5),
            "value": scalars,
        },
    ),
    max_size=5,
)
events = st.builds(
    lambda protocol, fields, objs, src, dst, ts: {
        "@timestamp": f"2024-05-14T06:{ts // 60:02d}:{ts % 60:02d}.{ts * 7919 % 1000000:06d}Z",
        "event.kind": "event",
        "network.protocol": protocol,
        "event.dataset": f"otsentry.{protocol}",
        "source.ip": src,
        "destination.ip": dst,
        "source.port": 502,
        "destination.port": 40000,
        "server.port": 502,
        **fields,
        **({"dnp3.objects": objs} if protocol == "dnp3" else {}),
    },
    st.sampled_from(["modbus", "dnp3", "iec104", "dlms", "c1222"]),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=12),
    objects,
    st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.4"]),
    st.integers(0, 3599),
)

_SCENARIO = generate(51, learn_s=900, detect_s=1000, inject=False)
_LEARNER = Enricher(add_fields=False)
_LEARNER([dict(e) for e in _SCENARIO.learn])
BASELINE = Baseline.learn(_LEARNER.inventory)


@settings(max_examples=100, deadline=None)
@given(st.lists(events, min_size=1, max_size=30))
def test_random_events_never_break_the_stage(batch: list[dict]) -> None:
    limits = Limits(
        max_pairs=8,
        max_assets=4,
        max_poll_trackers=4,
        max_functions_per_pair=4,
        max_ranges_per_space=4,
        max_value_points=16,
    )
    learner = Enricher(limits=limits)
    learner([dict(e) for e in batch])
    assert learner.errors == 0, learner.last_error
    inv = learner.inventory
    assert len(inv.pairs) <= 8 and len(inv.assets) <= 5 and inv.poll_trackers <= 4
    assert all(len(p.funcs) <= 8 for p in inv.pairs.values())
    Baseline.from_text(Baseline.learn(inv).to_yaml())  # whatever was learned round-trips
    detector = Enricher(baseline=BASELINE)
    out = detector([dict(e) for e in batch]) + detector.finish()
    assert all(a["event.kind"] in ("event", "alert") for a in out)
