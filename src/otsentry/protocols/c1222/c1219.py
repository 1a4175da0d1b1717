"""ANSI C12.19 (IEEE 1377) meaning of table ids, procedures and the few table layouts the sensor reads.

Sources for the names and numbers below:

* Standard table and procedure names, procedure result codes: ANSI C12.19-2008 as listed in
  termineter ``lib/c1219/constants.py`` (rsmusllp/termineter), spelling corrected; table id ranges
  (0-2039 ST, 2048+ MT, 4096+ pending ST, 6144+ pending MT) from termineter's ``read_table`` module
  and Wireshark ``packet-c1222.c`` (``tableflags``: 0x08 MT, 0x10 pending, 0x20 UDT in the high octet).
* C12.22 network tables (decade 12) and relay tables (decade 13): ANSI C12.22-2008 / IEEE 1703-2012
  section 6 (the Itron reference stack, timyardley/c1222 ``c1222stack.c``, indexes interfaces in
  "table 122, the interface control table").
* ST7/ST8 layout: C12.19-2008 decade 0 — ``TBL_PROC_NBR`` UINT16 (bits 0-10 procedure number, bit 11
  STD_VS_MFG_FLAG, bits 12-15 SELECTOR = response behaviour), ``SEQ_NBR`` UINT8, then PARM_DATA (ST7)
  or ``RESULT_CODE`` UINT8 and RESP_DATA (ST8). Wireshark decodes the same masks (0x07FF, 0x0800,
  0xF000) and, like C12.19, reads table data in the device's DATA_ORDER (ST0 FORMAT_CONTROL_1 bit 0;
  0 = little endian, Wireshark's default).
* ST1 layout: MANUFACTURER CHAR(4), ED_MODEL CHAR(8), HW/FW version and revision UINT8 each,
  MFG_SERIAL_NUMBER CHAR(16) (C12.19 GEN_MFG_ID_TBL, as termineter ``lib/c1219/access/general.py``
  parses it). Termineter also writes ST7 with TBL_PROC_NBR ``46 08`` = MP70, confirming the
  little-endian word with the manufacturer flag in bit 11.
"""

from __future__ import annotations

# -- tables ---------------------------------------------------------------------------------------

STANDARD_TABLES: dict[int, str] = {
    # decade 0: general configuration
    0: "General Configuration",
    1: "General Manufacturer Identification",
    2: "Device Nameplate",
    3: "ED_MODE Status",
    4: "Pending Status",
    5: "Device Identification",
    6: "Utility Information",
    7: "Procedure Initiate",
    8: "Procedure Response",
    # decade 1: data sources
    10: "Dimension Sources Limiting",
    11: "Actual Sources Limiting",
    12: "Unit of Measure Entry",
    13: "Demand Control",
    14: "Data Control",
    15: "Constants",
    16: "Source Definition",
    17: "Transformer Loss Compensation",
    # decade 2: register
    20: "Dimension Register",
    21: "Actual Register",
    22: "Data Selection",
    23: "Current Register Data",
    24: "Previous Season Data",
    25: "Previous Demand Reset Data",
    26: "Self Read Data",
    27: "Present Register Selection",
    28: "Present Register Data",
    # decade 3: local display
    30: "Dimension Display Limits",
    31: "Actual Display Limiting",
    32: "Display Source",
    33: "Primary Display List",
    34: "Secondary Display List",
    # decade 4: security
    40: "Dimension Security Limiting",
    41: "Actual Security Limiting",
    42: "Security",
    43: "Default Access Control",
    44: "Access Control",
    45: "Key",
    # decade 5: time and time of use
    50: "Dimension Time and TOU",
    51: "Actual Time and TOU",
    52: "Clock",
    53: "Time Offset",
    54: "Calendar",
    55: "Clock State",
    56: "Time Remaining",
    57: "Precision Clock State",
    # decade 6: load profile
    60: "Dimension Load Profile",
    61: "Actual Load Profile",
    62: "Load Profile Control",
    63: "Load Profile Status",
    64: "Load Profile Data Set 1",
    65: "Load Profile Data Set 2",
    66: "Load Profile Data Set 3",
    67: "Load Profile Data Set 4",
    # decade 7: history and event logs
    70: "Dimension Log",
    71: "Actual Log",
    72: "Events Identification",
    73: "History Log Control",
    74: "History Log Data",
    75: "Event Log Control",
    76: "Event Log Data",
    77: "Event Log and Signatures Enable",
    78: "End Device Program State",
    79: "Event Counters",
    # decade 8: user-defined tables
    80: "Dimension User Defined Tables Function Limiting",
    81: "Actual User Defined Tables Function Limiting",
    82: "User Defined Tables List",
    83: "User Defined Tables Selection",
    84: "User Defined Table 0",
    85: "User Defined Table 1",
    86: "User Defined Table 2",
    87: "User Defined Table 3",
    88: "User Defined Table 4",
    89: "User Defined Table 5",
    # decade 9: telephone control
    90: "Dimension Telephone",
    91: "Actual Telephone",
    92: "Global Parameters",
    93: "Originate Parameters",
    94: "Originate Schedule",
    95: "Answer Parameters",
    96: "Call Purpose",
    97: "Call Status",
    98: "Originate Status",
    # decade 10: extended source
    100: "Dimension Extended Source Limiting",
    101: "Actual Extended Source Limiting",
    102: "Source Information",
    103: "External Scaling",
    104: "Demand Control",
    105: "Transformer Loss Compensation",
    106: "Gas Constant AGA3",
    107: "Gas Constant AGA7",
    # decade 11: load control and pricing
    110: "Dimension Load Control",
    111: "Actual Load Control Limiting",
    112: "Load Control Status",
    113: "Load Control Configuration",
    114: "Load Control Schedule",
    115: "Load Control Conditions",
    116: "Prepayment Status",
    117: "Prepayment Control",
    118: "Billing Control",
    # decade 12: C12.22 network control
    120: "Dimension Network",
    121: "Actual Network",
    122: "Interface Control",
    123: "Exception Report Configuration",
    124: "Filtering Rules",
    125: "Interface Status",
    126: "Registration Status",
    127: "Network Statistics",
    # decade 14: extended user-defined tables
    140: "Extended User-defined Tables Function Limiting",
    141: "Extended User-defined Tables Actual Limits",
    142: "Extended User-defined Selections",
    143: "Extended User-defined Constants",
    # decade 15: quality of service
    150: "Quality of Service Dimension Limits",
    151: "Actual Quality of Service Limiting",
    152: "Quality of Service Control",
    153: "Quality of Service Incidents",
    154: "Quality of Service Log",
    155: "Asynchronous Time-Domain Waveforms",
    156: "Asynchronous Frequency-Domain Spectrum",
    157: "Periodic Time-Domain Waveforms",
    158: "Periodic Frequency-Domain Spectrum",
    # decade 16: one-way devices
    160: "Dimension One-Way",
    161: "Actual One-Way",
    162: "One-Way Control",
    163: "One-Way Data",
    164: "One-Way Commands/Responses/Extended User-defined Tables",
}

TABLE_NUMBER_MASK = 0x07FF
MANUFACTURER_FLAG = 0x0800
PENDING_FLAG = 0x1000
USER_DEFINED_FLAG = 0x2000

ST_GENERAL_CONFIG = 0
ST_MFG_IDENTIFICATION = 1
ST_PROCEDURE_INITIATE = 7
ST_PROCEDURE_RESPONSE = 8


def table_name(table_id: int) -> str:
    """``ST7 Procedure Initiate``, ``MT12``, ``Pending ST54 Calendar``, ``UDT3`` — as C12.19 names tables."""
    number = table_id & TABLE_NUMBER_MASK
    if table_id & ~(TABLE_NUMBER_MASK | MANUFACTURER_FLAG | PENDING_FLAG | USER_DEFINED_FLAG):
        return f"table 0x{table_id:04x}"
    prefix = "Pending " if table_id & PENDING_FLAG else ""
    if table_id & USER_DEFINED_FLAG:
        return f"{prefix}UDT{number}"
    if table_id & MANUFACTURER_FLAG:
        return f"{prefix}MT{number}"
    name = STANDARD_TABLES.get(number)
    return f"{prefix}ST{number} {name}" if name else f"{prefix}ST{number}"


# -- procedures -----------------------------------------------------------------------------------

# number -> (name, event.action). C12.19-2008 standard procedures (termineter C1219_PROCEDURE_NAMES).
STANDARD_PROCEDURES: dict[int, tuple[str, str]] = {
    0: ("Cold Start", "procedure_cold_start"),
    1: ("Warm Start", "procedure_warm_start"),
    2: ("Save Configuration", "procedure_save_configuration"),
    3: ("Clear Data", "procedure_clear_data"),
    4: ("Reset List Pointers", "procedure_reset_list_pointers"),
    5: ("Update Last Read Entry", "procedure_update_last_read_entry"),
    6: ("Change End Device Mode", "procedure_change_end_device_mode"),
    7: ("Clear Standard Status Flags", "procedure_clear_standard_status_flags"),
    8: ("Clear Manufacturer Status Flags", "procedure_clear_manufacturer_status_flags"),
    9: ("Remote Reset", "procedure_remote_reset"),
    10: ("Set Date and/or Time", "procedure_set_date_time"),
    11: ("Execute Diagnostics Procedure", "procedure_execute_diagnostics"),
    12: ("Activate All Pending Tables", "procedure_activate_all_pending_tables"),
    13: ("Activate Specific Pending Table(s)", "procedure_activate_specific_pending_tables"),
    14: ("Clear All Pending Tables", "procedure_clear_all_pending_tables"),
    15: ("Clear Specific Pending Table(s)", "procedure_clear_specific_pending_tables"),
    16: ("Start Load Profile", "procedure_start_load_profile"),
    17: ("Stop Load Profile", "procedure_stop_load_profile"),
    18: ("Log In", "procedure_log_in"),
    19: ("Log Out", "procedure_log_out"),
    20: ("Initiate an Immediate Call", "procedure_initiate_immediate_call"),
    21: ("Direct Load Control", "procedure_direct_load_control"),
    22: ("Modify Credit", "procedure_modify_credit"),
    27: ("Clear Pending Call Status", "procedure_clear_pending_call_status"),
    28: ("Start Quality of Service Monitors", "procedure_start_qos_monitors"),
    29: ("Stop Quality of Service Monitors", "procedure_stop_qos_monitors"),
    30: ("Start Secured Registers", "procedure_start_secured_registers"),
    31: ("Stop Secured Registers", "procedure_stop_secured_registers"),
    32: ("Set Precision Date and/or Time", "procedure_set_precision_date_time"),
}
UNKNOWN_STANDARD_PROCEDURE_ACTION = "procedure_initiate"
MANUFACTURER_PROCEDURE_ACTION = "procedure_manufacturer"

# ST8 RESULT_CODE (C12.19-2008; termineter C1219_PROC_RESULT_CODES).
PROCEDURE_RESULTS: dict[int, str] = {
    0: "completed",
    1: "accepted_not_fully_completed",
    2: "invalid_parameter",
    3: "conflict_with_setup",
    4: "timing_constraint",
    5: "no_authorization",
    6: "unrecognized_procedure",
}

# TBL_PROC_NBR bits 12-15 in ST7 (Wireshark ``c1222_proc_response_control``).
PROCEDURE_SELECTORS: dict[int, str] = {
    0: "post_response_on_completion",
    1: "post_response_on_exception",
    2: "no_response",
    3: "post_response_now_and_on_completion",
}

VendorProcedures = dict[str, dict[int, str]]  # manufacturer (ST1 code) -> MP number -> event.action


def normalize_vendor_procedures(raw: dict | None) -> VendorProcedures:
    """Config form ``{"GE": {"12": "remote_disconnect"}}`` (keys may be numbers, ``"12"`` or ``"MP12"``)
    to ``{"GE": {12: "remote_disconnect"}}``; vendor codes compare upper-case without padding, ``*``
    matches any manufacturer."""
    table: VendorProcedures = {}
    for vendor, procedures in (raw or {}).items():
        mapped: dict[int, str] = {}
        for key, action in procedures.items():
            text = str(key).strip().upper().removeprefix("MP")
            number = int(text, 0)
            if not 0 <= number <= TABLE_NUMBER_MASK:
                raise ValueError(f"manufacturer procedure {key!r} of {vendor!r} is not 0..2047")
            if not isinstance(action, str) or not action.replace("_", "").isalnum():
                raise ValueError(f"action {action!r} for {vendor!r} MP{number} must be a snake_case name")
            mapped[number] = action
        table[str(vendor).strip().upper()] = mapped
    return table


def procedure_fields(word: int, sequence: int) -> dict[str, object]:
    """The ``c1222.procedure.*`` fields of a TBL_PROC_NBR word and SEQ_NBR."""
    number = word & TABLE_NUMBER_MASK
    manufacturer = bool(word & MANUFACTURER_FLAG)
    selector = word >> 12
    fields: dict[str, object] = {
        "number": number,
        "manufacturer": manufacturer,
        "id": word & (TABLE_NUMBER_MASK | MANUFACTURER_FLAG),
        "selector": selector,
        "sequence": sequence,
    }
    if selector in PROCEDURE_SELECTORS:
        fields["selector_name"] = PROCEDURE_SELECTORS[selector]
    if manufacturer:
        fields["name"] = f"MP{number}"
    else:
        known = STANDARD_PROCEDURES.get(number)
        fields["name"] = f"SP{number} {known[0]}" if known else f"SP{number}"
    return fields


def procedure_action(
    number: int, manufacturer: bool, vendor: str | None, vendors: VendorProcedures
) -> tuple[str, str | None]:
    """``(event.action, vendor table used)`` for an ST7 write."""
    if not manufacturer:
        known = STANDARD_PROCEDURES.get(number)
        return (known[1] if known else UNKNOWN_STANDARD_PROCEDURE_ACTION), None
    for key in (vendor, "*"):
        if key is not None and key in vendors and number in vendors[key]:
            return vendors[key][number], key
    return MANUFACTURER_PROCEDURE_ACTION, None


# -- table data -----------------------------------------------------------------------------------


def text_field(raw: bytes) -> str:
    """A C12.19 CHAR field as text: ASCII/Latin-1, padding (NUL, space) stripped, controls replaced."""
    text = raw.rstrip(b"\x00 ").decode("latin-1")
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


def manufacturer_identification(data: bytes) -> dict[str, object]:
    """ST1 GEN_MFG_ID_TBL fields present in ``data`` (the table from offset 0)."""
    fields: dict[str, object] = {}
    if len(data) >= 4:
        fields["manufacturer"] = text_field(data[0:4])
    if len(data) >= 12:
        fields["model"] = text_field(data[4:12])
    if len(data) >= 16:
        fields["hw_version"] = f"{data[12]}.{data[13]}"
        fields["fw_version"] = f"{data[14]}.{data[15]}"
    if len(data) >= 32:
        fields["serial_number"] = text_field(data[16:32])
    return fields
