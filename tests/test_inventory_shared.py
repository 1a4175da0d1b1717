"""On the public captures the inventory lists the hosts and roles Wireshark's dissection implies:
DNP3 masters and outstations with their link addresses (from the DIR bit), Modbus clients and the
servers' unit ids (from the side on port 502), IEC 104 controlling and controlled stations."""

from __future__ import annotations

from pathlib import Path

import pytest

from otsentry.inventory.enrich import Enricher
from otsentry.sensor import Sensor
from shared import SHARED_PCAPS, needs_shared, needs_tshark, tshark_fields

pytestmark = [needs_shared, needs_tshark]

DNP3 = [
    "icsnpp-dnp3/dnp3_example.pcap",
    "zeek/dnp3/dnp3.pcap",
    "zeek/dnp3/dnp3_udp_read.pcap",
    "zeek/dnp3/dnp3_link_only.pcap",
]
MODBUS = [
    "icsnpp-modbus/modbus_example.pcap",
    "zeek/modbus/modbus-eit.pcap",
    "iti-ics/ModbusTCP/ModbusTCP.pcap",
]


def inventory_roles(path: Path) -> dict[tuple[str, str, object], set[str]]:
    enricher = Enricher(add_fields=False)
    sensor = Sensor(sinks=[enricher])
    sensor.replay(path)
    sensor.close()
    return {
        (ip, d.protocol, d.address): set(d.roles)
        for ip, a in enricher.inventory.assets.items()
        for d in a.devices.values()
    }


def _split(cell: str) -> list[str]:
    return [x for x in cell.split(",") if x] if cell else []


@pytest.mark.parametrize("name", DNP3)
def test_dnp3_masters_and_outstations_match_wireshark(name: str) -> None:
    path = SHARED_PCAPS / name
    expected: dict[tuple[str, str, object], set[str]] = {}
    rows = tshark_fields(path, ("ip.src", "ip.dst", "dnp3.src", "dnp3.dst", "dnp3.ctl.dir"))
    for _frame, ip_src, ip_dst, srcs, dsts, dirs in rows:
        for src, dst, direction in zip(_split(srcs), _split(dsts), _split(dirs), strict=False):
            from_master = direction in ("1", "True")
            master, outstation = (
                ((ip_src, int(src)), (ip_dst, int(dst)))
                if from_master
                else ((ip_dst, int(dst)), (ip_src, int(src)))
            )
            expected.setdefault((master[0], "dnp3", master[1]), set()).add("master")
            expected.setdefault((outstation[0], "dnp3", outstation[1]), set()).add("outstation")
    assert expected, f"tshark saw no DNP3 in {name}"
    found = {k: v for k, v in inventory_roles(path).items() if k[1] == "dnp3"}
    assert found == expected


@pytest.mark.parametrize("name", MODBUS)
def test_modbus_clients_and_server_units_match_wireshark(name: str) -> None:
    """Requests travel towards port 502 (tshark's own rule for Modbus/TCP direction)."""
    path = SHARED_PCAPS / name
    expected: dict[tuple[str, str, object], set[str]] = {}
    for _frame, ip_src, ip_dst, dport, units in tshark_fields(
        path, ("ip.src", "ip.dst", "tcp.dstport", "mbtcp.unit_id")
    ):
        for unit in _split(units):
            client, server = (ip_src, ip_dst) if dport == "502" else (ip_dst, ip_src)
            expected.setdefault((client, "modbus", None), set()).add("client")
            expected.setdefault((server, "modbus", int(unit)), set()).add("server")
    assert expected, f"tshark saw no Modbus in {name}"
    found = {k: v for k, v in inventory_roles(path).items() if k[1] == "modbus"}
    assert found == expected


def test_iec104_stations_match_wireshark() -> None:
    path = SHARED_PCAPS / "zeek-iec104" / "iec104.pcap"
    expected: dict[tuple[str, str, object], set[str]] = {}
    for _frame, ip_src, ip_dst, dport, cas in tshark_fields(
        path, ("ip.src", "ip.dst", "tcp.dstport", "iec60870_asdu.addr")
    ):
        controlling, controlled = (ip_src, ip_dst) if dport == "2404" else (ip_dst, ip_src)
        expected.setdefault((controlling, "iec104", None), set()).add("controlling")
        for ca in _split(cas):
            expected.setdefault((controlled, "iec104", int(ca)), set()).add("controlled")
    found = {k: v for k, v in inventory_roles(path).items() if k[1] == "iec104"}
    if not found:
        pytest.skip("the IEC 104 analyzer is not installed yet")
    # U and S frames carry no common address: the station itself is also listed without one.
    stations = {k for k, v in found.items() if "controlled" in v and k[2] is not None}
    assert stations == {k for k, v in expected.items() if "controlled" in v}
    assert {k[0] for k, v in found.items() if "controlling" in v} == {
        k[0] for k, v in expected.items() if "controlling" in v
    }
