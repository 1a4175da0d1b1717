"""The sample utility's addressing plan and the fixed clock every capture starts from.

10.20.1.0/24 control centre (SCADA masters, HMIs), 10.20.2.0/24 field devices (PLCs, RTUs).
MAC prefixes are real vendors' OUIs (IEEE registry) so inventory code has something to name.
"""

from __future__ import annotations

import calendar
import time

from netpackets import Host, mac

# 2024-05-14T06:00:00Z: a fixed start so re-running the generator gives identical bytes.
START_NS = calendar.timegm(time.strptime("2024-05-14T06:00:00", "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000
MS = 1_000_000
SECOND = 1_000_000_000

HMI = Host("hmi-1", mac("00:14:22:0a:14:0a"), "10.20.1.10")  # Dell
SCADA_MASTER = Host("scada-master-1", mac("00:14:22:0a:14:0b"), "10.20.1.11")  # Dell
PLC1 = Host("plc-1", mac("00:80:f4:0a:14:15"), "10.20.2.21")  # Telemecanique (Schneider Electric)
PLC2 = Host("plc-2", mac("00:80:f4:0a:14:16"), "10.20.2.22")
RTU10 = Host("rtu-10", mac("00:30:a7:0a:14:1f"), "10.20.2.31")  # Schweitzer Engineering Laboratories
RTU11 = Host("rtu-11", mac("00:30:a7:0a:14:20"), "10.20.2.32")
ROGUE = Host("unknown-laptop", mac("3c:97:0e:66:01:42"), "10.20.1.66")  # Wistron (a laptop NIC)

# The same stations over IPv6 (ULA prefix fd00:20::/32, one /64 per zone) for the IPv6 link variant.
IPV6 = {
    HMI.ip: "fd00:20:1::10",
    SCADA_MASTER.ip: "fd00:20:1::11",
    PLC1.ip: "fd00:20:2::21",
    PLC2.ip: "fd00:20:2::22",
    RTU10.ip: "fd00:20:2::31",
    RTU11.ip: "fd00:20:2::32",
    ROGUE.ip: "fd00:20:1::66",
}


def as_ipv6(host: Host) -> Host:
    return Host(host.name, host.mac, IPV6[host.ip])
