"""The Graphviz network map: valid SVG and PNG files that show the assets, roles and protocols."""

from __future__ import annotations

import re
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

from inventory_scenario import generate
from otsentry.inventory.cli import register
from otsentry.inventory.enrich import Enricher
from otsentry.inventory.mapview import ACTIVE_COLOR, build_dot, subnet
from otsentry.inventory.store import InventoryStore

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("map") / "otsentry.db"
    store = InventoryStore(path)
    enricher = Enricher(store=store)
    enricher(generate(41, learn_s=900, detect_s=1000, inject=False).learn)
    enricher.close()
    store.close()
    return path


def _cli() -> click.Group:
    @click.group()
    def cli() -> None:
        pass

    register(cli)
    return cli


def _texts(svg: Path) -> list[str]:
    return ["".join(t.itertext()) for t in ET.parse(svg).getroot().iter(f"{SVG}text")]


@needs_dot
def test_map_renders_svg_and_png_with_the_assets(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "plant"
    result = CliRunner().invoke(
        _cli(), ["map", "--db", str(db), "-o", str(out), "--format", "svg,png,dot", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["files"] == [str(out) + ext for ext in (".svg", ".png", ".dot")]

    png = (tmp_path / "plant.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 300 and height > 200

    texts = _texts(tmp_path / "plant.svg")
    for ip in (
        "10.20.1.10",
        "10.20.1.11",
        "10.20.1.12",
        "10.20.2.21",
        "10.20.2.22",
        "10.20.2.31",
        "10.20.2.32",
        "10.20.2.41",
    ):
        assert ip in texts
    assert "10.20.1.0/24" in texts and "10.20.2.0/24" in texts  # subnet clusters
    assert "dnp3 outstation 10" in texts and "dnp3 master 1" in texts and "modbus server 1" in texts
    assert "Schneider Electric BMX P34 2020" in texts  # identity from Modbus 43/14
    assert "modbus: read, write, diagnostic" in texts and "dnp3: read, control" in texts
    svg = (tmp_path / "plant.svg").read_text()
    assert len(re.findall(f'stroke="{ACTIVE_COLOR}"', svg)) >= 2  # writes and controls in red


def test_dot_caps_the_number_of_assets() -> None:
    assets = [
        {
            "id": i,
            "ip": f"10.0.{i // 250}.{i % 250}",
            "messages": i,
            "roles": ["modbus server"],
            "identity": None,
            "vendor": None,
        }
        for i in range(50)
    ]
    comms = [
        {
            "initiator_ip": "10.0.0.49",
            "responder_ip": f"10.0.0.{i}",
            "protocol": "modbus",
            "direction": "request",
            "function_class": "read",
        }
        for i in range(40, 49)
    ]
    dot = build_dot(assets, {}, comms, max_assets=10)
    assert dot.count('fillcolor="#e3f1df"') == 10  # the ten busiest servers
    assert "and 40 more assets" in dot
    assert dot.count("->") == 9 and "10.0.0.39" not in dot
    assert subnet("10.0.1.7") == "10.0.1.0/24" and subnet("fd00:20:1::10") == "fd00:20:1::/64"


def test_labels_are_escaped_for_dot() -> None:
    assets = [
        {"id": 1, "ip": "10.0.0.1", "messages": 1, "roles": [], "vendor": 'Evil "Vendor"\\', "identity": None}
    ]
    dot = build_dot(assets, {}, [])
    assert 'Evil \\"Vendor\\"\\\\' in dot
