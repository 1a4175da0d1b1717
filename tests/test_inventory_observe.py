"""Roles, logical devices, functions, points and identity from single events of each protocol."""

from __future__ import annotations

from inventory_scenario import RTU10, SCADA1, dnp3, event, iec104, modbus
from otsentry.inventory.enrich import Enricher
from otsentry.inventory.observe import observe, parse_timestamp
from otsentry.inventory.state import Inventory

T0 = 1_715_666_400.0
HMI = ("10.0.0.1", "00-14-22-00-00-01")
GATEWAY = ("10.0.0.2", "00-80-F4-00-00-02")


def _inventory(*events: dict) -> Inventory:
    inv = Inventory()
    for e in events:
        obs = observe(e)
        assert obs is not None
        inv.update(obs)
    return inv


def test_timestamps_parse_with_and_without_fraction() -> None:
    assert parse_timestamp("2024-05-14T06:00:00Z") == T0
    assert parse_timestamp("2024-05-14T06:00:00.250000Z") == T0 + 0.25
    assert parse_timestamp("2024-05-14T06:00:01.5Z") == T0 + 1.5
    assert parse_timestamp("2024-12-31T23:59:59.000001Z") == 1_735_689_599.000001


def test_modbus_client_and_server_units_behind_a_gateway() -> None:
    """Requests come from the client; each unit id behind one IP is its own logical device."""
    inv = _inventory(
        event(
            T0,
            HMI,
            GATEWAY,
            50000,
            502,
            True,
            modbus(3, "read_holding_registers", "request", unit=1, address=0, quantity=10),
        ),
        event(
            T0 + 0.1,
            GATEWAY,
            HMI,
            502,
            50000,
            False,
            modbus(
                3,
                "read_holding_registers",
                "response",
                unit=1,
                address=0,
                quantity=10,
                values=[5] * 10,
                matched=True,
            ),
        ),
        event(
            T0 + 1,
            HMI,
            GATEWAY,
            50000,
            502,
            True,
            modbus(6, "write_single_register", "request", unit=7, address=40, quantity=1, values=[1]),
        ),
    )
    gateway = inv.assets[GATEWAY[0]]
    assert {k: sorted(d.roles) for k, d in gateway.devices.items()} == {
        ("modbus", 1): ["server"],
        ("modbus", 7): ["server"],
    }
    assert inv.assets[HMI[0]].roles == ["modbus client"]
    assert set(inv.pairs) == {
        ("modbus", HMI[0], None, GATEWAY[0], 1),
        ("modbus", HMI[0], None, GATEWAY[0], 7),
    }
    unit1 = inv.pairs[("modbus", HMI[0], None, GATEWAY[0], 1)]
    assert unit1.functions[("request", "read_holding_registers")].spaces["addr"].render() == "0-9"
    assert gateway.devices[("modbus", 1)].values["hr:9"] == [5, 5, 1]
    write = inv.pairs[("modbus", HMI[0], None, GATEWAY[0], 7)].functions[("request", "write_single_register")]
    assert (write.code, write.fclass, write.spaces["addr"].render()) == (6, "write", "40")


def test_modbus_roles_do_not_follow_tcp_roles() -> None:
    """A PLC that opens the connection to a server still is the client if it sends the requests; the
    response from the side that accepted the connection makes that side the server."""
    plc, scada = ("10.0.0.5", "00-80-F4-00-00-05"), ("10.0.0.6", "00-14-22-00-00-06")
    inv = _inventory(
        event(
            T0,
            scada,
            plc,
            502,
            40000,
            False,
            modbus(4, "read_input_registers", "request", address=0, quantity=2),
        )
    )
    assert inv.assets[scada[0]].roles == ["modbus client"]
    assert inv.assets[plc[0]].roles == ["modbus server"]


def test_modbus_device_identification_and_report_server_id() -> None:
    inv = _inventory(
        event(
            T0,
            GATEWAY,
            HMI,
            502,
            50000,
            False,
            modbus(
                43,
                "read_device_identification",
                "response",
                unit=3,
                mei_type=14,
                objects={
                    "VendorName": "Schneider Electric",
                    "ProductCode": "BMX P34 2020",
                    "MajorMinorRevision": "v3.1",
                    "0x80": "private",
                },
            ),
        ),
        event(
            T0 + 1,
            GATEWAY,
            HMI,
            502,
            50000,
            False,
            modbus(17, "report_server_id", "response", unit=4, server_id=0x42, additional_data="PLC-4"),
        ),
    )
    devices = inv.assets[GATEWAY[0]].devices
    assert devices[("modbus", 3)].identity == {
        "vendor": "Schneider Electric",
        "product_code": "BMX P34 2020",
        "revision": "v3.1",
        "0x80": "private",
    }
    assert devices[("modbus", 4)].identity == {"server_id": 0x42, "server_id_data": "PLC-4"}
    assert inv.assets[GATEWAY[0]].identity["vendor"] == "Schneider Electric"


def test_dnp3_roles_from_the_dir_bit_not_the_function() -> None:
    """DIR=1 marks the master's frames, including link-layer only frames without an application layer."""
    inv = _inventory(
        event(T0, SCADA1, RTU10, 40000, 20000, True, dnp3(None, "reset_link_states", 1, 10, True)),
        event(
            T0 + 1,
            RTU10,
            SCADA1,
            20000,
            40000,
            False,
            dnp3(
                130,
                "unsolicited_response",
                10,
                1,
                False,
                [
                    {
                        "group": 32,
                        "variation": 1,
                        "qualifier": 0x28,
                        "count": 1,
                        "points": [{"index": 4, "value": 17.5}],
                    }
                ],
                iin_flags=["device_restart"],
            ),
        ),
    )
    assert inv.assets[SCADA1[0]].roles == ["dnp3 master"]
    assert inv.assets[RTU10[0]].roles == ["dnp3 outstation"]
    pair = inv.pairs[("dnp3", SCADA1[0], 1, RTU10[0], 10)]
    assert set(pair.functions) == {("request", "reset_link_states"), ("response", "unsolicited_response")}
    assert pair.functions[("request", "reset_link_states")].fclass == "diagnostic"
    assert inv.assets[RTU10[0]].devices[("dnp3", 10)].values == {"ai:4": [17.5, 17.5, 1]}
    assert pair.flags == {"device_restart"}


def test_dnp3_without_dir_falls_back_to_the_function_code() -> None:
    fields = dnp3(129, "response", 10, 1, False, [])
    del fields["dnp3.link.dir"]
    obs = observe(event(T0, RTU10, SCADA1, 20000, 40000, False, fields))
    assert obs is not None and obs.from_initiator is False and obs.src_role == "outstation"


def test_dnp3_device_attributes_become_identity() -> None:
    objects = [
        {
            "group": 0,
            "variation": 252,
            "qualifier": 0,
            "start": 0,
            "stop": 0,
            "points": [{"index": 0, "value": "Schweitzer Engineering Laboratories"}],
        },
        {"group": 0, "variation": 250, "qualifier": 0, "value": "SEL-3530 RTAC"},
        {"group": 0, "variation": 242, "qualifier": 0, "value": "R148"},
    ]
    inv = _inventory(
        event(T0, RTU10, SCADA1, 20000, 40000, False, dnp3(129, "response", 10, 1, False, objects))
    )
    assert inv.assets[RTU10[0]].devices[("dnp3", 10)].identity == {
        "device_manufacturer_name": "Schweitzer Engineering Laboratories",
        "product_name_and_model": "SEL-3530 RTAC",
        "device_manufacturer_software_version": "R148",
    }


def test_dnp3_controls_record_their_points() -> None:
    crob = [
        {
            "group": 12,
            "variation": 1,
            "qualifier": 0x28,
            "count": 2,
            "points": [{"index": 3, "code": 0x41}, {"index": 4, "code": 0x81}],
        }
    ]
    inv = _inventory(
        event(T0, SCADA1, RTU10, 40000, 20000, True, dnp3(5, "direct_operate", 1, 10, True, crob))
    )
    func = inv.pairs[("dnp3", SCADA1[0], 1, RTU10[0], 10)].functions[("request", "direct_operate")]
    assert (func.code, func.fclass, func.spaces["g12"].render()) == (5, "control", "3-4")


def test_iec104_controlling_and_controlled_station() -> None:
    ctrl, rtu = ("10.0.1.1", "00-14-22-00-01-01"), ("10.0.1.2", "00-30-A7-00-01-02")
    inv = _inventory(
        event(T0, ctrl, rtu, 40000, 2404, True, iec104("I", "interrogation", 100, 6, 9, [0])),
        event(
            T0 + 0.1,
            rtu,
            ctrl,
            2404,
            40000,
            False,
            iec104("I", "measured_value_float", 13, 20, 9, [700, 701], [1.5, 2.5]),
        ),
        event(T0 + 0.2, rtu, ctrl, 2404, 40000, False, iec104("I", "single_command", 45, 7, 9, [5000])),
        event(T0 + 0.3, ctrl, rtu, 40000, 2404, True, iec104("U", "testfr_act")),
        # STARTDT act comes from the controlling station even on a connection the RTU opened
        event(T0 + 0.4, ctrl, rtu, 2404, 40001, False, iec104("U", "startdt_act")),
        # A controlled station that connects out (cause "activation" still marks the controlling side).
        event(T0 + 1, ctrl, rtu, 2404, 40001, False, iec104("I", "single_command", 45, "act", 9, [5000])),
    )
    assert inv.assets[ctrl[0]].roles == ["iec104 controlling"]
    assert inv.assets[rtu[0]].roles == ["iec104 controlled"]
    pair = inv.pairs[("iec104", ctrl[0], None, rtu[0], 9)]
    assert pair.functions[("request", "single_command")].fclass == "control"
    assert pair.functions[("response", "measured_value_float")].spaces["ioa"].render() == "700-701"
    assert inv.assets[rtu[0]].devices[("iec104", 9)].values == {
        "ioa:700": [1.5, 1.5, 1],
        "ioa:701": [2.5, 2.5, 1],
    }
    assert ("iec104", ctrl[0], None, rtu[0], None) in inv.pairs  # U frames carry no common address


def test_dlms_client_server_logical_devices_and_system_title() -> None:
    """Fields as docs/fields-dlms.md: Green Book APDU names, wrapper wPorts as logical devices."""
    client, meter = ("10.0.2.1", "00-14-22-00-02-01"), ("10.0.2.2", "00-E0-4C-00-02-02")

    def dlms(action: str, apdu: str, src_port: int, dst_port: int, **extra: object) -> dict:
        fields = {
            "network.protocol": "dlms",
            "event.dataset": "otsentry.dlms",
            "event.action": action,
            "dlms.apdu": apdu,
            "dlms.wrapper.source_port": src_port,
            "dlms.wrapper.destination_port": dst_port,
        }
        fields.update({f"dlms.{k}": v for k, v in extra.items()})
        return fields

    inv = _inventory(
        event(
            T0,
            client,
            meter,
            40000,
            4059,
            True,
            dlms("association_request", "AARQ", 16, 1, system_title="4D4D4D0000BC614E"),
        ),
        event(
            T0 + 0.1,
            meter,
            client,
            4059,
            40000,
            False,
            dlms("association_response", "AARE", 1, 16, system_title="4C475A0000000001"),
        ),
        event(
            T0 + 1,
            client,
            meter,
            40000,
            4059,
            True,
            dlms(
                "remote_disconnect",
                "glo-action-request",
                16,
                1,
                class_id=70,
                obis="0-0:96.3.10.255",
                method_id=1,
            ),
        ),
        event(
            T0 + 2,
            meter,
            client,
            4059,
            40000,
            False,
            dlms("get_response", "get-response", 1, 16, obis="0-0:42.0.0.255", value="4C475A31323334353637"),
        ),
    )
    assert inv.assets[client[0]].roles == ["dlms client"]
    assert inv.assets[meter[0]].roles == ["dlms server"]
    assert set(inv.assets[meter[0]].devices) == {("dlms", 1)}  # the meter's logical device 1
    assert inv.assets[client[0]].identity == {"system_title": "4D4D4D0000BC614E", "manufacturer_id": "MMM"}
    assert inv.assets[meter[0]].identity == {
        "system_title": "4C475A0000000001",
        "manufacturer_id": "LGZ",
        "logical_device_name": "LGZ1234567",
    }
    func = inv.pairs[("dlms", client[0], 16, meter[0], 1)].functions[("request", "remote_disconnect")]
    assert func.fclass == "control" and func.spaces["obis"].render() == ["0-0:96.3.10.255/1"]


def test_c1222_ap_titles_are_logical_devices() -> None:
    """Fields as docs/fields-c1222.md: pdu_type, services with table ids and procedures."""
    head_end, meter = ("10.0.3.1", "00-14-22-00-03-01"), ("10.0.3.2", "00-E0-4C-00-03-02")
    host_title, meter_title = "1.2.840.10066.1", ".2.16.124.113620.1.22"

    def c1222(action: str, pdu: str, calling: str, called: str, services: list, **extra: object) -> dict:
        fields = {
            "network.protocol": "c1222",
            "event.dataset": "otsentry.c1222",
            "event.action": action,
            "c1222.pdu_type": pdu,
            "c1222.calling_ap_title": calling,
            "c1222.called_ap_title": called,
            "c1222.services": services,
        }
        fields.update({f"c1222.{k}": v for k, v in extra.items()})
        return fields

    inv = _inventory(
        event(
            T0,
            head_end,
            meter,
            40000,
            1153,
            True,
            c1222("table_read", "request", host_title, meter_title, [{"service": "read", "table_id": 3}]),
        ),
        event(
            T0 + 0.2,
            meter,
            head_end,
            1153,
            40000,
            False,
            c1222(
                "table_read",
                "response",
                meter_title,
                host_title,
                [{"service": "read", "table_id": 3, "response_code": 0, "response": "ok"}],
            ),
        ),
        event(
            T0 + 1,
            head_end,
            meter,
            40000,
            1153,
            True,
            c1222(
                "procedure_remote_reset",
                "request",
                host_title,
                meter_title,
                [{"service": "write", "table_id": 7, "procedure": 9, "procedure_name": "SP9 Remote Reset"}],
            ),
        ),
        event(
            T0 + 2,
            meter,
            head_end,
            1153,
            40000,
            False,
            c1222(
                "identification",
                "response",
                meter_title,
                host_title,
                [{"service": "identify", "response_code": 0}],
                **{"identify.standard_name": "ANSI C12.22", "identify.version": 1},
            ),
        ),
    )
    meter_devices = inv.assets[meter[0]].devices
    assert {k: sorted(d.roles) for k, d in meter_devices.items()} == {("c1222", meter_title): ["server"]}
    assert meter_devices[("c1222", meter_title)].identity == {"standard_name": "ANSI C12.22", "version": 1}
    pair = inv.pairs[("c1222", head_end[0], host_title, meter[0], meter_title)]
    reset = pair.functions[("request", "procedure_remote_reset")]
    assert reset.fclass == "control" and reset.spaces["procedure"].render() == "9"
    assert pair.functions[("request", "read")].spaces["table"].render() == "3"
    assert pair.functions[("response", "read")].fclass == "read"


def test_events_the_inventory_ignores() -> None:
    assert observe({"event.kind": "alert", "network.protocol": "modbus"}) is None
    assert observe({"event.kind": "event", "network.protocol": "bacnet"}) is None
    error = observe(
        event(
            T0,
            HMI,
            GATEWAY,
            50000,
            502,
            True,
            {
                "network.protocol": "modbus",
                "event.dataset": "otsentry.decode_error",
                "event.action": "decode_error",
            },
        )
    )
    assert error is not None and error.from_initiator is None
    inv = Inventory()
    assert inv.update(error) is None
    assert set(inv.assets) == {HMI[0], GATEWAY[0]} and not inv.pairs


def test_enricher_adds_role_device_vendor_and_class_fields() -> None:
    events = [
        event(
            T0,
            HMI,
            GATEWAY,
            50000,
            502,
            True,
            modbus(16, "write_multiple_registers", "request", unit=2, address=10, quantity=2, values=[1, 2]),
        )
    ]
    Enricher()(events)
    e = events[0]
    assert e["otsentry.source.role"] == "client" and e["otsentry.destination.role"] == "server"
    assert (
        e["otsentry.destination.device"] == "10.0.0.2/modbus:2" and e["otsentry.source.device"] == "10.0.0.1"
    )
    assert e["otsentry.function_class"] == "write"
