"""DNP3 code tables: link/application function codes, IIN bits, control and status codes, device
attributes, file and secure-authentication codes.

Numbers and names from IEEE Std 1815-2012 (DNP3): link layer clause 9, transport clause 8,
application function codes and IIN bits clause 4.2.2, control relay output block and control status
codes Annex A (group 12, "Control status codes"), device attributes Annex A (group 0), file control
Annex A (group 70), secure authentication clause 7 and Annex A (group 120). Names are the standard's
mnemonics in snake_case (as Zeek logs them, e.g. STOP_APPL → stop_appl). Cross-checked with the
stepfunc/dnp3 and opendnp3 enumerations and Wireshark's packet-dnp.c.
"""

from __future__ import annotations

# Link layer control byte (IEEE 1815-2012 9.2.4.1.3).
LINK_DIR = 0x80
LINK_PRM = 0x40
LINK_FCB = 0x20
LINK_FCV_DFC = 0x10
LINK_FUNC = 0x0F

# Link function codes (IEEE 1815-2012 9.2.4.1.3) as the event.action of link-only frames:
# the standard's names in snake_case, prefixed "link_" where the name does not say it already.
# PRM=1 (primary → secondary):
LINK_PRIMARY_FUNCTIONS: dict[int, str] = {
    0: "link_reset_link_states",
    1: "link_reset_user_process",  # obsolete
    2: "link_test_link_states",
    3: "link_confirmed_user_data",
    4: "link_unconfirmed_user_data",
    9: "link_request_link_status",
}
# PRM=0 (secondary → primary):
LINK_SECONDARY_FUNCTIONS: dict[int, str] = {
    0: "link_ack",
    1: "link_nack",
    11: "link_status",
    14: "link_not_functioning",  # obsolete
    15: "link_not_supported",
}
LINK_USER_DATA_FUNCTIONS = frozenset({3, 4})

# Transport header (IEEE 1815-2012 8.2.1).
TRANSPORT_FIN = 0x80
TRANSPORT_FIR = 0x40
TRANSPORT_SEQ = 0x3F

# Application control byte (IEEE 1815-2012 4.2.2.4).
APP_FIR = 0x80
APP_FIN = 0x40
APP_CON = 0x20
APP_UNS = 0x10
APP_SEQ = 0x0F

# Application function codes (IEEE 1815-2012 Table 4-1).
APP_FUNCTIONS: dict[int, str] = {
    0: "confirm",
    1: "read",
    2: "write",
    3: "select",
    4: "operate",
    5: "direct_operate",
    6: "direct_operate_nr",
    7: "immed_freeze",
    8: "immed_freeze_nr",
    9: "freeze_clear",
    10: "freeze_clear_nr",
    11: "freeze_at_time",
    12: "freeze_at_time_nr",
    13: "cold_restart",
    14: "warm_restart",
    15: "initialize_data",
    16: "initialize_appl",
    17: "start_appl",
    18: "stop_appl",
    19: "save_config",
    20: "enable_unsolicited",
    21: "disable_unsolicited",
    22: "assign_class",
    23: "delay_measure",
    24: "record_current_time",
    25: "open_file",
    26: "close_file",
    27: "delete_file",
    28: "get_file_info",
    29: "authenticate_file",
    30: "abort_file",
    31: "activate_config",
    32: "authenticate_req",
    33: "auth_req_no_ack",
    129: "response",
    130: "unsolicited_response",
    131: "authenticate_resp",
}
# Responses carry the two IIN octets after the function code.
RESPONSE_FUNCTIONS = frozenset({129, 130, 131})

# Requests whose object headers carry no object data (only index prefixes, if any).
HEADER_ONLY_FUNCTIONS = frozenset({1, 7, 8, 9, 10, 20, 21, 22})
# FREEZE_AT_TIME(_NR): only the g50 time-and-interval object carries data.
FREEZE_AT_TIME_FUNCTIONS = frozenset({11, 12})

# Internal indications, bit i of the int IIN1 << 8 | IIN2 (IEEE 1815-2012 4.2.2.7.2/3).
IIN_FLAGS: tuple[tuple[int, str], ...] = (
    (0x0100, "broadcast"),  # IIN1.0
    (0x0200, "class_1_events"),  # IIN1.1
    (0x0400, "class_2_events"),  # IIN1.2
    (0x0800, "class_3_events"),  # IIN1.3
    (0x1000, "need_time"),  # IIN1.4
    (0x2000, "local_control"),  # IIN1.5
    (0x4000, "device_trouble"),  # IIN1.6
    (0x8000, "device_restart"),  # IIN1.7
    (0x0001, "no_func_code_support"),  # IIN2.0
    (0x0002, "object_unknown"),  # IIN2.1
    (0x0004, "parameter_error"),  # IIN2.2
    (0x0008, "event_buffer_overflow"),  # IIN2.3
    (0x0010, "already_executing"),  # IIN2.4
    (0x0020, "config_corrupt"),  # IIN2.5
    (0x0040, "reserved_2"),  # IIN2.6
    (0x0080, "reserved_1"),  # IIN2.7
)

# CROB control code (IEEE 1815-2012 A.14.1): op type bits 0-3, queue bit 4, clear bit 5, TCC bits 6-7.
CROB_OP_TYPES: dict[int, str] = {0: "NUL", 1: "PULSE_ON", 2: "PULSE_OFF", 3: "LATCH_ON", 4: "LATCH_OFF"}
CROB_TCC: dict[int, str] = {0: "NUL", 1: "CLOSE", 2: "TRIP", 3: "RESERVED"}

# Control status codes (IEEE 1815-2012 Annex A, shared by g12, g13, g41 and g43).
CONTROL_STATUS: dict[int, str] = {
    0: "SUCCESS",
    1: "TIMEOUT",
    2: "NO_SELECT",
    3: "FORMAT_ERROR",
    4: "NOT_SUPPORTED",
    5: "ALREADY_ACTIVE",
    6: "HARDWARE_ERROR",
    7: "LOCAL",
    8: "TOO_MANY_OBJS",
    9: "NOT_AUTHORIZED",
    10: "AUTOMATION_INHIBIT",
    11: "PROCESSING_LIMITED",
    12: "OUT_OF_RANGE",
    13: "DOWNSTREAM_LOCAL",
    14: "ALREADY_COMPLETE",
    15: "BLOCKED",
    16: "CANCELLED",
    17: "BLOCKED_OTHER_MASTER",
    18: "DOWNSTREAM_FAIL",
    126: "NON_PARTICIPATING",
    127: "UNDEFINED",
}

# Device attributes, group 0 variation = attribute number (IEEE 1815-2012 A.1; stepfunc/dnp3 attr.rs).
DEVICE_ATTRIBUTES: dict[int, str] = {
    196: "config_id",
    197: "config_version",
    198: "config_build_date",
    199: "config_last_change_date",
    200: "config_digest",
    201: "config_digest_algorithm",
    202: "master_resource_id",
    203: "device_location_altitude",
    204: "device_location_longitude",
    205: "device_location_latitude",
    206: "user_assigned_secondary_operator_name",
    207: "user_assigned_primary_operator_name",
    208: "user_assigned_system_name",
    209: "secure_auth_version",
    210: "num_security_stats_per_assoc",
    211: "user_specific_attributes",
    212: "num_master_defined_data_set_prototypes",
    213: "num_outstation_defined_data_set_prototypes",
    214: "num_master_defined_data_sets",
    215: "num_outstation_defined_data_sets",
    216: "max_binary_outputs_per_request",
    217: "local_timing_accuracy",
    218: "duration_of_time_accuracy",
    219: "supports_analog_output_events",
    220: "max_analog_output_index",
    221: "num_analog_outputs",
    222: "supports_binary_output_events",
    223: "max_binary_output_index",
    224: "num_binary_outputs",
    225: "supports_frozen_counter_events",
    226: "supports_frozen_counters",
    227: "supports_counter_events",
    228: "max_counter_index",
    229: "num_counters",
    230: "supports_frozen_analog_inputs",
    231: "supports_analog_input_events",
    232: "max_analog_input_index",
    233: "num_analog_inputs",
    234: "supports_double_bit_binary_input_events",
    235: "max_double_bit_binary_input_index",
    236: "num_double_bit_binary_inputs",
    237: "supports_binary_input_events",
    238: "max_binary_input_index",
    239: "num_binary_inputs",
    240: "max_tx_fragment_size",
    241: "max_rx_fragment_size",
    242: "device_manufacturer_software_version",
    243: "device_manufacturer_hardware_version",
    244: "user_assigned_owner_name",
    245: "user_assigned_location",
    246: "user_assigned_id",
    247: "user_assigned_device_name",
    248: "device_serial_number",
    249: "device_subset_and_conformance",
    250: "product_name_and_model",
    252: "device_manufacturer_name",
    254: "all_attributes_request",
    255: "list_of_attribute_variations",
}
# Device attribute data type codes (IEEE 1815-2012 A.1.2).
ATTRIBUTE_TYPES: dict[int, str] = {
    1: "VSTR",
    2: "UINT",
    3: "INT",
    4: "FLT",
    5: "OSTR",
    6: "BSTR",
    7: "TIME",
    254: "U8BS8LIST",
    255: "U8BS8EXLIST",
}

# File control (IEEE 1815-2012 A.42, group 70).
FILE_MODES: dict[int, str] = {0: "NULL", 1: "READ", 2: "WRITE", 3: "APPEND"}
FILE_STATUS: dict[int, str] = {
    0: "SUCCESS",
    1: "PERMISSION_DENIED",
    2: "INVALID_MODE",
    3: "FILE_NOT_FOUND",
    4: "FILE_LOCKED",
    5: "TOO_MANY_OPEN",
    6: "INVALID_HANDLE",
    7: "WRITE_BLOCK_SIZE",
    8: "COMM_LOST",
    9: "CANNOT_ABORT",
    16: "NOT_OPENED",
    17: "HANDLE_EXPIRED",
    18: "BUFFER_OVERRUN",
    19: "FATAL",
    20: "BLOCK_SEQUENCE",
    255: "UNDEFINED",
}
FILE_TYPES: dict[int, str] = {0: "DIRECTORY", 1: "SIMPLE_FILE"}

# Secure authentication v5 (IEEE 1815-2012 7.6 / A.45, group 120).
AUTH_VARIATIONS: dict[int, str] = {
    1: "challenge",
    2: "reply",
    3: "aggressive_mode_request",
    4: "session_key_status_request",
    5: "session_key_status",
    6: "session_key_change",
    7: "error",
    8: "user_certificate",
    9: "hmac",
    10: "user_status_change",
    11: "update_key_change_request",
    12: "update_key_change_reply",
    13: "update_key_change",
    14: "update_key_change_signature",
    15: "update_key_change_confirmation",
}
AUTH_MAC_ALGORITHMS: dict[int, str] = {
    0: "NONE",
    1: "HMAC_SHA1_TRUNC_4",  # obsolete
    2: "HMAC_SHA1_TRUNC_10",
    3: "HMAC_SHA256_TRUNC_8",
    4: "HMAC_SHA256_TRUNC_16",
    5: "HMAC_SHA1_TRUNC_8",
    6: "AES_GMAC",
}
AUTH_KEY_WRAP_ALGORITHMS: dict[int, str] = {1: "AES_128", 2: "AES_256"}
AUTH_KEY_STATUS: dict[int, str] = {1: "OK", 2: "NOT_INIT", 3: "COMM_FAIL", 4: "AUTH_FAIL"}
AUTH_CHALLENGE_REASONS: dict[int, str] = {1: "CRITICAL"}
AUTH_ERRORS: dict[int, str] = {
    1: "AUTHENTICATION_FAILED",
    2: "UNEXPECTED_RESPONSE",  # deprecated
    3: "NO_RESPONSE",  # deprecated
    4: "AGGRESSIVE_MODE_NOT_SUPPORTED",
    5: "MAC_NOT_SUPPORTED",
    6: "KEY_WRAP_NOT_SUPPORTED",
    7: "AUTHORIZATION_FAILED",
    8: "UPDATE_KEY_METHOD_NOT_PERMITTED",
    9: "INVALID_SIGNATURE",
    10: "INVALID_CERTIFICATION",
    11: "UNKNOWN_USER",
    12: "MAX_SESSION_KEY_STATUS_REQUESTS_EXCEEDED",
}
AUTH_KEY_CHANGE_METHODS: dict[int, str] = {
    3: "AES_128_SHA1_HMAC",
    4: "AES_256_SHA256_HMAC",
    5: "AES_256_AES_GMAC",
    67: "RSA_1024_DSA_SHA1_HMAC_SHA1",
    68: "RSA_2048_DSA_SHA256_HMAC_SHA256",
    69: "RSA_3072_DSA_SHA256_HMAC_SHA256",
    70: "RSA_2048_DSA_SHA256_AES_GMAC",
    71: "RSA_3072_DSA_SHA256_AES_GMAC",
}
AUTH_USER_OPERATIONS: dict[int, str] = {1: "ADD", 2: "DELETE", 3: "CHANGE"}


def iin_flag_names(iin: int) -> list[str]:
    """Names of the IIN bits set in ``iin`` (IIN1 << 8 | IIN2), IIN1 first."""
    return [name for bit, name in IIN_FLAGS if iin & bit]
