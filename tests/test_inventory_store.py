"""The inventory tables in SQLite and the ``assets`` / ``comms`` commands."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

from inventory_scenario import Scenario, generate
from otsentry.inventory.cli import register
from otsentry.inventory.comms import RangeSet
from otsentry.inventory.enrich import Enricher
from otsentry.inventory.settings import Limits
from otsentry.inventory.store import InventoryStore


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(21, learn_s=1200, detect_s=1000, inject=False)


def _fill(db: Path, events: list[dict], limits: Limits | None = None) -> Enricher:
    store = InventoryStore(db)
    enricher = Enricher(limits=limits, store=store)
    for i in range(0, len(events), 1000):  # batches, as the sensor hands them over
        enricher([dict(e) for e in events[i : i + 1000]])
    enricher.close()
    store.close()
    return enricher


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, scenario: Scenario) -> Path:
    path = tmp_path_factory.mktemp("inv") / "otsentry.db"
    _fill(path, scenario.learn)
    return path


def _cli() -> click.Group:
    @click.group()
    def cli() -> None:
        pass

    register(cli)
    return cli


def invoke(*args: str) -> str:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(_cli(), list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_assets_and_roles_are_stored(db: Path) -> None:
    store = InventoryStore(db)
    assets = {a["ip"]: a for a in store.assets()}
    assert set(assets) == {
        "10.20.1.10",
        "10.20.1.11",
        "10.20.1.12",
        "10.20.2.21",
        "10.20.2.22",
        "10.20.2.31",
        "10.20.2.32",
        "10.20.2.41",
    }
    assert assets["10.20.1.11"]["roles"] == ["dnp3 master", "iec104 controlling", "modbus client"]
    assert assets["10.20.2.31"]["roles"] == ["dnp3 outstation"]
    assert assets["10.20.2.21"]["mac"] == "00-80-F4-0A-14-15"
    assert assets["10.20.2.21"]["identity"]["vendor"] == "Schneider Electric"
    plc = store.asset("10.20.2.21")
    devices = {(a["protocol"], a["address"]): a for a in plc["addresses"] if a["kind"] == "device"}
    assert devices[("modbus", "1")]["roles"] == ["server"]
    assert devices[("modbus", "1")]["identity"]["product_code"] == "BMX P34 2020"
    assert {v["point"] for v in plc["process_values"]} == {f"hr:{i}" for i in range(10)}


def test_communications_have_counts_ranges_and_polling(db: Path, scenario: Scenario) -> None:
    store = InventoryStore(db)
    rows = {
        (r["initiator_ip"], r["responder_ip"], r["responder_address"], r["direction"], r["function"]): r
        for r in store.comms()
    }
    poll = rows[("10.20.1.10", "10.20.2.21", "1", "request", "read_holding_registers")]
    sent = sum(
        1
        for e in scenario.learn
        if e["source.ip"] == "10.20.1.10"
        and e.get("modbus.function_code") == 3
        and e["modbus.pdu_type"] == "request"
    )
    assert poll["count"] == sent and poll["function_code"] == 3 and poll["function_class"] == "read"
    assert poll["ranges"] == {"addr": "0-9"}
    stats = poll["polling"]["read_holding_registers@0+10"]
    assert stats["median"] == pytest.approx(1.0, abs=0.02) and 0 < stats["jitter"] < 0.05
    write = rows[("10.20.1.10", "10.20.2.21", "1", "request", "write_single_register")]
    written = {e["modbus.address"] for e in scenario.learn if e.get("modbus.function_code") == 6}
    assert write["function_class"] == "write" and written and written <= {10, 11, 12, 13}
    assert write["ranges"] == {"addr": _ranges(written)}
    dnp3 = rows[("10.20.1.11", "10.20.2.31", "10", "request", "direct_operate")]
    operated = {e["dnp3.control.index"][0] for e in scenario.learn if "dnp3.control.index" in e}
    assert dnp3["ranges"] == {"g12": _ranges(operated)} and dnp3["initiator_address"] == "1"


def _ranges(points: set[int]) -> str:
    out = RangeSet()
    for point in points:
        out = out.add(point, point)
    return out.render()


def test_a_second_run_adds_up(tmp_path: Path, scenario: Scenario) -> None:
    """Records are loaded before they are updated: two replays count twice, first/last seen widen."""
    db = tmp_path / "twice.db"
    half = len(scenario.learn) // 2
    _fill(db, scenario.learn[:half])
    _fill(db, scenario.learn[half:])
    once = tmp_path / "once.db"
    _fill(once, scenario.learn)
    columns = "protocol, initiator_ip, responder_ip, direction, function, count, first_seen, last_seen"
    query = f"SELECT {columns} FROM communications ORDER BY 1, 2, 3, 4, 5"
    assert InventoryStore(db).query(query) == InventoryStore(once).query(query)
    assets = "SELECT ip, messages, first_seen, last_seen, roles FROM assets ORDER BY ip"
    assert InventoryStore(db).query(assets) == InventoryStore(once).query(assets)


def test_evicted_pairs_come_back_from_the_store(tmp_path: Path, scenario: Scenario) -> None:
    """With room for only two pairs in memory, the stored counts still equal an unbounded run's."""
    db, reference = tmp_path / "evicting.db", tmp_path / "reference.db"
    enricher = _fill(db, scenario.learn, Limits(max_pairs=2, evict_fraction=0.5))
    assert enricher.inventory.evicted["pairs"] > 10
    _fill(reference, scenario.learn)
    query = (
        "SELECT protocol, initiator_ip, responder_ip, direction, function, count, ranges FROM communications"
        " ORDER BY 1, 2, 3, 4, 5"
    )
    assert InventoryStore(db).query(query) == InventoryStore(reference).query(query)


def test_assets_command_tables_and_json(db: Path) -> None:
    table = invoke("assets", "--db", str(db))
    assert "10.20.2.31" in table and "dnp3 outstation" in table and "Schweitzer" in table
    rows = orjson.loads(invoke("assets", "--db", str(db), "--json"))
    assert len(rows) == 8
    plc = next(r for r in rows if r["ip"] == "10.20.2.21")
    shown = orjson.loads(invoke("assets", "--db", str(db), "show", str(plc["id"]), "--json"))
    assert shown["ip"] == "10.20.2.21" and shown["communications"]
    text = invoke("assets", "show", "10.20.2.21", "--db", str(db))
    assert "BMX P34 2020" in text and "write_single_register" in text
    result = CliRunner().invoke(_cli(), ["assets", "--db", str(db), "show", "10.9.9.9"])
    assert result.exit_code != 0 and "no asset" in result.output


def test_comms_command_filters(db: Path) -> None:
    rows = orjson.loads(invoke("comms", "--db", str(db), "--json", "--protocol", "dnp3"))
    assert rows and {r["protocol"] for r in rows} == {"dnp3"}
    masters = {(r["initiator_ip"], r["initiator_address"]) for r in rows}
    assert masters == {("10.20.1.11", "1"), ("10.20.1.12", "2")}
    assert "read_holding_registers@0+10" in invoke("comms", "--db", str(db), "--ip", "10.20.2.21")


def test_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(), ["assets", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code != 0 and "no database" in result.output
