"""What each protocol's functions do, as classes an OT engineer reasons with: read, write, control,
diagnostic, other. Roles by protocol. Names of identity objects.

Sources:
* Modbus Application Protocol Specification V1.1b3 §5.1 (public codes); vendor codes as in
  otsentry.protocols.modbus_codes (PI-MBUS-300, Schneider UMAS research).
* IEEE 1815-2012 (DNP3) Table 4-1 application function codes.
* IEC 60870-5-101/104 type identifiers (IEC 60870-5-101 §7.2.1.1, IEC 60870-5-104 §8) and causes of
  transmission (IEC 60870-5-101 §7.2.3).
* DLMS/COSEM Green Book (IEC 62056-5-3) xDLMS services; ANSI C12.22-2008 §9.1.2 EPSEM services.
"""

from __future__ import annotations

READ, WRITE, CONTROL, DIAGNOSTIC, OTHER = "read", "write", "control", "diagnostic", "other"
FUNCTION_CLASSES = (READ, WRITE, CONTROL, DIAGNOSTIC, OTHER)
# Classes that change the process or the device: highlighted on the map, range-checked by the baseline.
ACTIVE_CLASSES = frozenset({WRITE, CONTROL})

# (initiator role, responder role) per protocol.
ROLES: dict[str, tuple[str, str]] = {
    "modbus": ("client", "server"),
    "dnp3": ("master", "outstation"),
    "iec104": ("controlling", "controlled"),
    "dlms": ("client", "server"),
    "c1222": ("client", "server"),
}

MODBUS_CLASSES: dict[int, str] = {
    1: READ,
    2: READ,
    3: READ,
    4: READ,
    7: READ,
    20: READ,
    24: READ,
    5: WRITE,
    6: WRITE,
    15: WRITE,
    16: WRITE,
    21: WRITE,
    22: WRITE,
    23: WRITE,
    8: DIAGNOSTIC,
    11: DIAGNOSTIC,
    12: DIAGNOSTIC,
    17: DIAGNOSTIC,
    43: DIAGNOSTIC,
    10: READ,
    14: READ,  # legacy 484/584 poll
    9: CONTROL,
    13: CONTROL,
    18: CONTROL,
    19: CONTROL,
    40: CONTROL,
    90: CONTROL,  # programming
    125: CONTROL,
    126: CONTROL,
}

# Modbus data spaces by function code, for point names ("hr:100") of read values.
MODBUS_VALUE_SPACES: dict[int, str] = {3: "hr", 4: "ir", 23: "hr"}

DNP3_CLASSES: dict[int, str] = {
    0: OTHER,  # confirm
    1: READ,
    2: WRITE,
    3: CONTROL,
    4: CONTROL,
    5: CONTROL,
    6: CONTROL,  # select, operate, direct operate (no ack)
    7: CONTROL,
    8: CONTROL,
    9: CONTROL,
    10: CONTROL,
    11: CONTROL,
    12: CONTROL,  # freezes
    13: CONTROL,
    14: CONTROL,
    15: CONTROL,
    16: CONTROL,
    17: CONTROL,
    18: CONTROL,  # restarts, start/stop appl
    19: WRITE,  # save configuration
    20: WRITE,
    21: WRITE,
    22: WRITE,  # enable/disable unsolicited, assign class
    23: DIAGNOSTIC,
    24: DIAGNOSTIC,  # delay measurement, record current time
    25: WRITE,
    26: WRITE,
    27: WRITE,
    28: READ,
    29: WRITE,
    30: WRITE,  # file transfer
    31: CONTROL,  # activate configuration
    32: DIAGNOSTIC,
    33: DIAGNOSTIC,  # authentication request
    129: READ,
    130: READ,  # (unsolicited) response: data flows to the master
    131: DIAGNOSTIC,
}
# DNP3 groups whose point values are process values (analog inputs/outputs and their events);
# counters (20–23) only grow, binaries are states, so neither gets a value band.
DNP3_VALUE_GROUPS: dict[int, str] = {30: "ai", 32: "ai", 40: "ao", 42: "ao"}
DNP3_CONTROL_GROUPS = frozenset({12, 41})


def iec104_class(type_id: int) -> str:
    if type_id < 45:
        return READ  # monitor direction: process information
    if type_id < 70:
        return CONTROL  # 45–51 commands, 58–64 commands with time tag
    if type_id in (100, 101, 102):
        return READ  # (counter) interrogation, read command
    if type_id == 103 or 110 <= type_id <= 113 or 120 <= type_id <= 127:
        return WRITE  # clock synchronisation, parameters, file transfer
    if type_id == 105:
        return CONTROL  # reset process
    return DIAGNOSTIC  # 70 end of initialisation, 104/107 test, 106 delay acquisition


# Measured values: normalised, scaled, short float (with and without time tag).
IEC104_VALUE_TYPES = frozenset({9, 10, 11, 12, 13, 14, 21, 34, 35, 36})

# Causes of transmission sent by the controlling station (IEC 60870-5-101 §7.2.3).
IEC104_COT_FROM_CONTROLLING = frozenset({6, 8})  # activation, deactivation
IEC104_COT_FROM_CONTROLLED = frozenset(
    {1, 2, 3, 4, 7, 9, 10, 11, 12, 13, 44, 45, 46, 47} | set(range(20, 42))
)
IEC104_COT_NAMES: dict[str, int] = {
    "per": 1,
    "cyc": 1,
    "periodic": 1,
    "back": 2,
    "background": 2,
    "spont": 3,
    "spontaneous": 3,
    "init": 4,
    "initialized": 4,
    "req": 5,
    "request": 5,
    "requested": 5,
    "act": 6,
    "activation": 6,
    "actcon": 7,
    "activation_con": 7,
    "activation_confirmation": 7,
    "deact": 8,
    "deactivation": 8,
    "deactcon": 9,
    "deactivation_con": 9,
    "deactivation_confirmation": 9,
    "actterm": 10,
    "activation_termination": 10,
    "retrem": 11,
    "retloc": 12,
    "file": 13,
    "file_transfer": 13,
    "inrogen": 20,
    "interrogated_by_station": 20,
    "unknown_type": 44,
    "unknown_cot": 45,
    "unknown_ca": 46,
    "unknown_ioa": 47,
}


def keyword_class(name: str) -> str:
    """Class of a DLMS or C12.22 service from its snake_case name."""
    if "read" in name or name.startswith(("get", "glo_get", "ded_get")) or "notification" in name:
        return READ
    if "write" in name or name.startswith(("set", "glo_set", "ded_set")):
        return WRITE
    if "action" in name or "procedure" in name:
        return CONTROL
    if "error" in name or "exception" in name:
        return OTHER
    return DIAGNOSTIC  # associations, logon/logoff, identification, registration, wait, trace


# Modbus read device identification objects (spec §6.21) → inventory identity keys.
MODBUS_IDENTITY_KEYS: dict[str, str] = {
    "VendorName": "vendor",
    "ProductCode": "product_code",
    "MajorMinorRevision": "revision",
    "VendorUrl": "url",
    "ProductName": "product",
    "ModelName": "model",
    "UserApplicationName": "application",
}
