"""The baseline as a reviewable document: export → import round trip, stable output, diff, and the
``baseline`` commands end to end on events stored in the sensor's database (learn on the first
part, check the rest, accept a reviewed deviation so it no longer fires)."""

from __future__ import annotations

import copy
from pathlib import Path

import click
import orjson
import pytest
import yaml
from click.testing import CliRunner, Result

from inventory_scenario import Scenario, generate
from otsentry.inventory.baseline import Baseline, BaselinePoll, diff
from otsentry.inventory.cli import register
from otsentry.inventory.deviations import format_ts
from otsentry.inventory.enrich import Enricher
from otsentry.store import EventStore


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(31, learn_s=1800, detect_s=1200)


@pytest.fixture(scope="module")
def baseline(scenario: Scenario) -> Baseline:
    learner = Enricher(add_fields=False)
    learner([dict(e) for e in scenario.learn])
    return Baseline.learn(learner.inventory, learned={"events": len(scenario.learn)})


def test_export_import_round_trip(baseline: Baseline) -> None:
    text = baseline.to_yaml()
    again = Baseline.from_text(text)
    assert again.to_yaml() == text
    assert again.facts() == baseline.facts()
    as_json = orjson.dumps(baseline.to_doc()).decode()
    assert Baseline.from_text(as_json).to_doc() == baseline.to_doc()


def test_the_document_is_sorted_and_readable(baseline: Baseline) -> None:
    doc = yaml.safe_load(baseline.to_yaml())
    assert doc["otsentry_baseline"] == 1 and doc["learned"]["events"] > 0
    assert list(doc["assets"])[:3] == ["10.20.1.10", "10.20.1.11", "10.20.1.12"]
    plc = doc["assets"]["10.20.2.21"]
    assert plc["vendor"].startswith("Telemec") or "vendor" not in plc  # the manuf file may be absent
    assert plc["devices"]["modbus:1"]["roles"] == ["server"]
    assert plc["devices"]["modbus:1"]["identity"]["vendor"] == "Schneider Electric"
    assert len(plc["devices"]["modbus:1"]["values"]["hr:2"]) == 2
    pair = doc["pairs"]["modbus 10.20.1.10 -> 10.20.2.21/modbus:1"]
    assert pair["requests"]["read_holding_registers"] == {
        "class": "read",
        "code": 3,
        "ranges": {"addr": "0-9"},
    }
    assert pair["polling"]["read_holding_registers@0+10"]["period"] == pytest.approx(1.0, abs=0.02)
    assert "count" not in str(pair)  # counts change on every run: they live in the inventory
    masters = [p for p in doc["pairs"] if p.startswith("dnp3 ") and p.endswith("10.20.2.31/dnp3:10")]
    assert masters == [
        "dnp3 10.20.1.11/dnp3:1 -> 10.20.2.31/dnp3:10",
        "dnp3 10.20.1.12/dnp3:2 -> 10.20.2.31/dnp3:10",
    ]


def test_learning_the_same_traffic_gives_the_same_bytes(scenario: Scenario, baseline: Baseline) -> None:
    learner = Enricher(add_fields=False)
    learner([dict(e) for e in scenario.learn])
    assert (
        Baseline.learn(learner.inventory, learned={"events": len(scenario.learn)}).to_yaml()
        == baseline.to_yaml()
    )


def test_diff_names_added_removed_and_changed_facts(baseline: Baseline) -> None:
    new = copy.deepcopy(baseline)
    key = ("modbus", "10.20.1.11", None, "10.20.2.22", 1)
    new.pairs[key].polling["read_input_registers@0+5"] = BaselinePoll(0.5, 0.01)
    del new.pairs[("iec104", "10.20.1.11", None, "10.20.2.41", None)]
    new.assets["10.20.2.22"].macs.add("00-80-F4-0A-14-99")
    changes = diff(baseline, new)
    assert changes["added"] == ["asset 10.20.2.22 mac 00-80-F4-0A-14-99"]
    assert "pair iec104 10.20.1.11 -> 10.20.2.41" in changes["removed"]
    assert all("10.20.2.41" in fact for fact in changes["removed"])
    assert (
        changes["changed"]
        == [
            [
                "polling modbus 10.20.1.11 -> 10.20.2.22/modbus:1 read_input_registers@0+5",
                "2.000s ±0.020",
                "0.500s ±0.010",
            ]
        ]
        or changes["changed"][0][2] == "0.500s ±0.010"
    )
    assert diff(baseline, copy.deepcopy(baseline)) == {"added": [], "removed": [], "changed": []}


# -- the commands ------------------------------------------------------------------------------------------


def _cli() -> click.Group:
    @click.group()
    def cli() -> None:
        pass

    register(cli)
    return cli


def invoke(*args: str, code: int = 0) -> Result:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(_cli(), list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, scenario: Scenario) -> Path:
    path = tmp_path_factory.mktemp("baseline") / "otsentry.db"
    store = EventStore(path)
    store.add_events(scenario.learn + scenario.detect)
    store.close()
    return path


def test_learn_check_accept_from_stored_events(db: Path, scenario: Scenario, tmp_path: Path) -> None:
    split = format_ts(scenario.split)
    learned = orjson.loads(invoke("baseline", "learn", "--db", str(db), "--until", split, "--json").output)
    assert learned["assets"] == 8 and learned["learned"]["events"] == len(scenario.learn)
    assert learned["learned"]["until"] == split

    checked = orjson.loads(
        invoke("baseline", "check", "--db", str(db), "--since", split, "--json", code=1).output
    )
    found = {(d["action"], d["subject"]) for d in checked["deviations"]}
    assert found == scenario.expected

    rows = orjson.loads(invoke("baseline", "deviations", "--db", str(db), "--json").output)
    mac = next(r for r in rows if r["action"] == "new_mac_for_ip")
    write = next(r for r in rows if r["action"] == "write_outside_range" and "modbus" in r["subject"])
    assert mac["expected"] == ["00-80-F4-0A-14-16"] and mac["observed"] == "00-80-F4-0A-14-99"
    assert write["observed"] == "500" and "outside the learned" in write["message"]

    before = tmp_path / "before.yaml"
    invoke("baseline", "export", "--db", str(db), "-o", str(before))
    accepted = invoke("baseline", "accept", mac["id"][:8], write["id"], "--db", str(db)).output
    assert "accepted" in accepted and "new_mac_for_ip" in accepted

    rechecked = orjson.loads(
        invoke("baseline", "check", "--db", str(db), "--since", split, "--json", code=1).output
    )
    refound = {(d["action"], d["subject"]) for d in rechecked["deviations"]}
    assert refound == scenario.expected - {
        (mac["action"], mac["subject"]),
        (write["action"], write["subject"]),
    }
    statuses = {
        r["id"]: r["status"]
        for r in orjson.loads(invoke("baseline", "deviations", "--db", str(db), "--json").output)
    }
    assert statuses[mac["id"]] == statuses[write["id"]] == "accepted"

    changes = orjson.loads(invoke("baseline", "diff", str(before), "--db", str(db), "--json", code=1).output)
    assert changes["added"] == ["asset 10.20.2.22 mac 00-80-F4-0A-14-99"]
    assert changes["changed"] == [
        [
            "range modbus 10.20.1.10 -> 10.20.2.21/modbus:1 request write_single_register addr",
            changes["changed"][0][1],
            changes["changed"][0][1] + ",500",
        ]
    ]

    after = tmp_path / "after.yaml"
    invoke("baseline", "export", "--db", str(db), "-o", str(after))
    invoke("baseline", "import", str(before), "--db", str(db))  # roll back to the reviewed file
    assert invoke("baseline", "export", "--db", str(db)).output == before.read_text()
    invoke("baseline", "diff", str(before), str(before))
    shown = invoke("baseline", "show", "--db", str(db)).output
    assert "dnp3 10.20.1.12/dnp3:2 -> 10.20.2.31/dnp3:10" in shown and "read g60v1" in shown


def test_import_rejects_what_is_not_a_baseline(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("just: a mapping\n")
    result = CliRunner().invoke(_cli(), ["baseline", "import", str(bad), "--db", str(tmp_path / "x.db")])
    assert result.exit_code != 0 and "not an otsentry baseline" in result.output
    bad.write_text("{unclosed: [")
    result = CliRunner().invoke(_cli(), ["baseline", "import", str(bad), "--db", str(tmp_path / "x.db")])
    assert result.exit_code != 0 and "not a baseline file" in result.output
