"""Modbus code tables: function codes, exceptions, diagnostics, MEI types, device-id objects, UMAS.

Sources:
* MODBUS Application Protocol Specification V1.1b3 (modbus.org, 2012) — public function codes
  (§5.1, §6), diagnostics sub-functions (§6.8), MEI types (§6.19–6.21), read device identification
  objects and conformity levels (§6.21), exception codes (§7).
* Modicon Modbus Protocol Reference Guide PI-MBUS-300 rev. J — exception 07 (negative acknowledge)
  and the legacy programming/poll codes 9, 10, 13, 14, 18, 19, 125–127, also named in Zeek's
  ``base/protocols/modbus/consts.zeek`` (40 = Concept programming, 41, 90, 91).
* Schneider UMAS (function code 90) sub-function codes: not published by the vendor; names as in the
  public research (lirasenlared.blogspot.com "The Unity (UMAS) protocol", Part I, 2017) used by
  Zeek and the open UMAS tools. Byte layout: 0x5A, pairing (session) key, UMAS code, data;
  responses carry 0xFE (ok) or 0xFD (error) in the code position.

Names are snake_case so they serve as ``event.action`` and ``modbus.function`` values directly.
"""

from __future__ import annotations

# Public function codes (spec §5.1).
PUBLIC_FUNCTIONS: dict[int, str] = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
    5: "write_single_coil",
    6: "write_single_register",
    7: "read_exception_status",
    8: "diagnostics",
    11: "get_comm_event_counter",
    12: "get_comm_event_log",
    15: "write_multiple_coils",
    16: "write_multiple_registers",
    17: "report_server_id",
    20: "read_file_record",
    21: "write_file_record",
    22: "mask_write_register",
    23: "read_write_multiple_registers",
    24: "read_fifo_queue",
    43: "encapsulated_interface_transport",
}

# Vendor / legacy Modicon codes (PI-MBUS-300; Zeek consts.zeek).
VENDOR_FUNCTIONS: dict[int, str] = {
    9: "program_484",
    10: "poll_484",
    13: "program_584_984",
    14: "poll_584_984",
    18: "program_884_u84",
    19: "reset_comm_link_884_u84",
    40: "program_concept",  # 0x28: Modicon Concept programming
    41: "multiple_function_codes",
    90: "umas",  # 0x5A: Schneider Unity (UMAS) programming and monitoring
    91: "object_messaging",  # 0x5B: Modbus object messaging extension
    125: "firmware_replacement",  # 0x7D: Modicon firmware download
    126: "program_584_984_2",  # 0x7E: Modsoft / ProWORX programming
    127: "report_local_address",
}

FUNCTIONS: dict[int, str] = {**PUBLIC_FUNCTIONS, **VENDOR_FUNCTIONS}

FC_UMAS = 90

# Exception codes (spec §7; 07 from PI-MBUS-300).
EXCEPTIONS: dict[int, str] = {
    1: "illegal_function",
    2: "illegal_data_address",
    3: "illegal_data_value",
    4: "server_device_failure",
    5: "acknowledge",
    6: "server_device_busy",
    7: "negative_acknowledge",
    8: "memory_parity_error",
    10: "gateway_path_unavailable",
    11: "gateway_target_device_failed_to_respond",
}

# FC 8 diagnostics sub-functions (spec §6.8).
DIAGNOSTIC_SUB_FUNCTIONS: dict[int, str] = {
    0: "return_query_data",
    1: "restart_communications_option",
    2: "return_diagnostic_register",
    3: "change_ascii_input_delimiter",
    4: "force_listen_only",
    10: "clear_counters_and_diagnostic_register",
    11: "return_bus_message_count",
    12: "return_bus_communication_error_count",
    13: "return_bus_exception_error_count",
    14: "return_server_message_count",
    15: "return_server_no_response_count",
    16: "return_server_nak_count",
    17: "return_server_busy_count",
    18: "return_bus_character_overrun_count",
    20: "clear_overrun_counter_and_flag",
}

# FC 43 MEI types (spec §6.19–6.21).
MEI_CANOPEN = 13
MEI_READ_DEVICE_ID = 14
MEI_TYPES: dict[int, str] = {
    MEI_CANOPEN: "canopen_general_reference",
    MEI_READ_DEVICE_ID: "read_device_identification",
}

# Read device identification (spec §6.21).
READ_DEVICE_ID_CODES: dict[int, str] = {1: "basic", 2: "regular", 3: "extended", 4: "specific"}
DEVICE_ID_OBJECTS: dict[int, str] = {
    0: "VendorName",
    1: "ProductCode",
    2: "MajorMinorRevision",
    3: "VendorUrl",
    4: "ProductName",
    5: "ModelName",
    6: "UserApplicationName",
}

# Schneider UMAS sub-function codes (lirasenlared 2017; see module docstring).
UMAS_FUNCTIONS: dict[int, str] = {
    0x01: "init_comm",
    0x02: "read_id",
    0x03: "read_project_info",
    0x04: "read_plc_info",
    0x06: "read_card_info",
    0x0A: "repeat",
    0x10: "take_plc_reservation",
    0x11: "release_plc_reservation",
    0x12: "keep_alive",
    0x20: "read_memory_block",
    0x22: "read_variables",
    0x23: "write_variables",
    0x24: "read_coils_registers",
    0x25: "write_coils_registers",
    0x30: "initialize_upload",
    0x31: "upload_block",
    0x32: "end_strategy_upload",
    0x33: "initialize_download",
    0x34: "download_block",
    0x35: "end_strategy_download",
    0x39: "read_eth_master_data",
    0x40: "start_plc",
    0x41: "stop_plc",
    0x50: "monitor_plc",
    0x58: "check_plc",
    0x70: "read_io_object",
    0x71: "write_io_object",
    0x73: "get_status_module",
}
UMAS_STATUS: dict[int, str] = {0xFE: "ok", 0xFD: "error"}
