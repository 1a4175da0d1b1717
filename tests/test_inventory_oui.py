"""MAC vendor lookup from Wireshark's manuf file (IEEE MA-L / MA-M / MA-S)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otsentry.inventory import oui

MANUF = """\
# comment line
00:80:F4\tTelemech\tTelemechanique Electrique
00:30:A7\tSchweitz\tSchweitzer Engineering
70:B3:D5\tIEEERegi\tIEEE Registration Authority
70:B3:D5:00:00:00/36\tAbc\tABC Sensors
70:B3:D5:F0:00:00/28\tWide\tWide Range Ltd
00-1B-C5-00-10-00/36\tOpenRBco\tOpenRB.com, Direct SIA
AA:BB:CC\tShortOnly
broken line without tabs
"""


def test_longest_prefix_wins_and_names_are_the_long_ones() -> None:
    table = oui.VendorTable(MANUF.splitlines())
    assert table.lookup("00-80-F4-0A-14-15") == "Telemechanique Electrique"
    assert table.lookup("00:30:a7:00:00:01") == "Schweitzer Engineering"
    assert table.lookup("70-B3-D5-00-00-0F") == "ABC Sensors"  # MA-S /36
    assert table.lookup("70-B3-D5-00-10-0F") == "IEEE Registration Authority"  # outside the /36
    assert table.lookup("70-B3-D5-FA-BC-DE") == "Wide Range Ltd"  # MA-M /28
    assert table.lookup("00-1B-C5-00-10-42") == "OpenRB.com, Direct SIA"
    assert table.lookup("AA-BB-CC-00-00-01") == "ShortOnly"  # no long name: the short one


def test_unknown_multicast_and_locally_administered() -> None:
    table = oui.VendorTable(MANUF.splitlines())
    assert table.lookup("00-00-5E-00-00-01") is None
    assert table.lookup("01-00-5E-00-00-FB") == oui.MULTICAST
    assert table.lookup("02-42-AC-11-00-02") == oui.LOCALLY_ADMINISTERED  # a container's MAC
    assert (
        table.lookup("not a mac") is None and table.lookup(None) is None and table.lookup("00-80-F4") is None
    )


def test_a_missing_file_means_no_vendors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oui, "MANUF_PATHS", (tmp_path / "absent",))
    monkeypatch.delenv("OTSENTRY_MANUF", raising=False)
    monkeypatch.setattr(oui.shutil, "which", lambda name: None)
    table = oui.VendorTable(oui._manuf_lines(None))
    assert len(table) == 0 and table.lookup("00-80-F4-0A-14-15") is None


def test_an_explicit_file(tmp_path: Path) -> None:
    path = tmp_path / "manuf"
    path.write_text(MANUF)
    assert oui.VendorTable(oui._manuf_lines(path)).lookup("00-30-A7-01-02-03") == "Schweitzer Engineering"


@pytest.mark.skipif(
    not any(p.is_file() for p in oui.MANUF_PATHS), reason="Wireshark's manuf file is not installed"
)
def test_the_installed_registry_names_the_sample_plan_vendors() -> None:
    table = oui.vendor_table()
    assert len(table) > 30_000
    assert table.lookup("00-80-F4-0A-14-15").startswith("Telemec")  # pcaps/plan.py PLC
    assert table.lookup("00-30-A7-0A-14-1F").startswith("Schweitzer")  # RTU
    assert table.lookup("00-14-22-0A-14-0A").startswith("Dell")  # HMI
