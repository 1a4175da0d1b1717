"""COSEM object model tables: interface classes, attribute/method names, OBIS and meaning.

Source: DLMS UA 1000-1 "Blue Book" ed. 14 (COSEM interface classes), chapter 4 (class ids,
attribute and method numbering) and 4.5.x (class definitions). Only classes whose numbering
is fixed by the Blue Book are named; unknown ones are reported by number alone.
"""

from __future__ import annotations

# class_id -> interface class name (Blue Book ed. 14, table "List of interface classes").
CLASS_NAMES: dict[int, str] = {
    1: "data",
    3: "register",
    4: "extended_register",
    5: "demand_register",
    6: "register_activation",
    7: "profile_generic",
    8: "clock",
    9: "script_table",
    10: "schedule",
    11: "special_days_table",
    12: "association_sn",
    15: "association_ln",
    17: "sap_assignment",
    18: "image_transfer",
    19: "iec_local_port_setup",
    20: "activity_calendar",
    21: "register_monitor",
    22: "single_action_schedule",
    23: "iec_hdlc_setup",
    24: "iec_twisted_pair_setup",
    25: "mbus_slave_port_setup",
    26: "utility_tables",
    27: "modem_configuration",
    28: "auto_answer",
    29: "auto_connect",
    30: "data_protection",
    40: "push_setup",
    41: "tcp_udp_setup",
    42: "ipv4_setup",
    43: "mac_address_setup",
    44: "ppp_setup",
    45: "gprs_modem_setup",
    46: "smtp_setup",
    47: "gsm_diagnostic",
    48: "ipv6_setup",
    50: "sfsk_phy_mac_setup",
    51: "sfsk_active_initiator",
    52: "sfsk_mac_synchronization_timeouts",
    53: "sfsk_mac_counters",
    55: "iec_61334_4_32_llc_setup",
    56: "sfsk_reporting_system_list",
    57: "llc_type1_setup",
    58: "llc_type2_setup",
    59: "llc_type3_setup",
    61: "register_table",
    62: "compact_data",
    63: "status_mapping",
    64: "security_setup",
    65: "parameter_monitor",
    67: "sensor_manager",
    68: "arbitrator",
    70: "disconnect_control",
    71: "limiter",
    72: "mbus_client",
    73: "wireless_mode_q_channel",
    74: "mbus_master_port_setup",
    76: "mbus_port_setup",
    77: "mbus_diagnostic",
    80: "llc_sscs_setup",
    81: "prime_plc_physical_layer_counters",
    82: "prime_plc_mac_setup",
    83: "prime_plc_mac_functional_parameters",
    84: "prime_plc_mac_counters",
    85: "prime_plc_mac_network_administration_data",
    86: "prime_plc_application_identification",
    90: "g3_plc_mac_layer_counters",
    91: "g3_plc_mac_setup",
    92: "g3_plc_6lowpan_adaptation_layer_setup",
    100: "ntp_setup",
    101: "zigbee_sas_startup",
    102: "zigbee_sas_join",
    103: "zigbee_sas_aps_fragmentation",
    104: "zigbee_network_control",
    105: "zigbee_tunnel_setup",
    111: "account",
    112: "credit",
    113: "charge",
    115: "token_gateway",
    116: "iec_62055_41_attributes",
    122: "function_control",
    123: "array_manager",
    124: "communication_port_protection",
    151: "lte_monitoring",
    152: "coap_setup",
    153: "coap_diagnostic",
    160: "g3_plc_hybrid_rf_mac_layer_counters",
    161: "g3_plc_hybrid_rf_mac_setup",
    162: "g3_plc_hybrid_6lowpan_adaptation_layer_setup",
}

CLOCK, ASSOCIATION_SN, ASSOCIATION_LN, IMAGE_TRANSFER = 8, 12, 15, 18
SECURITY_SETUP, DISCONNECT_CONTROL, MBUS_CLIENT = 64, 70, 72

# (class_id, attribute_id) -> attribute name; attribute 1 is logical_name in every class.
ATTRIBUTE_NAMES: dict[tuple[int, int], str] = {
    (1, 2): "value",
    (3, 2): "value", (3, 3): "scaler_unit",
    (4, 2): "value", (4, 3): "scaler_unit", (4, 4): "status", (4, 5): "capture_time",
    (5, 2): "current_average_value", (5, 3): "last_average_value", (5, 4): "scaler_unit",
    (5, 5): "status", (5, 6): "capture_time", (5, 7): "start_time_current", (5, 8): "period",
    (5, 9): "number_of_periods",
    (7, 2): "buffer", (7, 3): "capture_objects", (7, 4): "capture_period", (7, 5): "sort_method",
    (7, 6): "sort_object", (7, 7): "entries_in_use", (7, 8): "profile_entries",
    (8, 2): "time", (8, 3): "time_zone", (8, 4): "status", (8, 5): "daylight_savings_begin",
    (8, 6): "daylight_savings_end", (8, 7): "daylight_savings_deviation",
    (8, 8): "daylight_savings_enabled", (8, 9): "clock_base",
    (9, 2): "scripts",
    (15, 2): "object_list", (15, 3): "associated_partners_id", (15, 4): "application_context_name",
    (15, 5): "xdlms_context_info", (15, 6): "authentication_mechanism_name", (15, 7): "secret",
    (15, 8): "association_status", (15, 9): "security_setup_reference", (15, 10): "user_list",
    (15, 11): "current_user",
    (18, 2): "image_block_size", (18, 3): "image_transferred_blocks_status",
    (18, 4): "image_first_not_transferred_block_number", (18, 5): "image_transfer_enabled",
    (18, 6): "image_transfer_status", (18, 7): "image_to_activate_info",
    (20, 2): "calendar_name_active", (20, 3): "season_profile_active",
    (20, 4): "week_profile_table_active", (20, 5): "day_profile_table_active",
    (20, 6): "calendar_name_passive", (20, 7): "season_profile_passive",
    (20, 8): "week_profile_table_passive", (20, 9): "day_profile_table_passive",
    (20, 10): "activate_passive_calendar_time",
    (22, 2): "executed_script", (22, 3): "type", (22, 4): "execution_time",
    (40, 2): "push_object_list", (40, 3): "send_destination_and_method",
    (40, 4): "communication_window", (40, 5): "randomisation_start_interval",
    (40, 6): "number_of_retries", (40, 7): "repetition_delay",
    (64, 2): "security_policy", (64, 3): "security_suite", (64, 4): "client_system_title",
    (64, 5): "server_system_title", (64, 6): "certificates",
    (70, 2): "output_state", (70, 3): "control_state", (70, 4): "control_mode",
    (71, 2): "monitored_value", (71, 3): "threshold_active", (71, 4): "threshold_normal",
    (71, 5): "threshold_emergency", (71, 6): "min_over_threshold_duration",
    (71, 7): "min_under_threshold_duration", (71, 8): "emergency_profile",
    (71, 9): "emergency_profile_group_id_list", (71, 10): "emergency_profile_active",
    (71, 11): "actions",
}

# (class_id, method_id) -> method name (Blue Book ed. 14, "Specific methods" of each class).
METHOD_NAMES: dict[tuple[int, int], str] = {
    (3, 1): "reset",
    (4, 1): "reset",
    (5, 1): "reset", (5, 2): "next_period",
    (6, 1): "add_register", (6, 2): "add_mask", (6, 3): "delete_mask",
    (7, 1): "reset", (7, 2): "capture",
    (8, 1): "adjust_to_quarter", (8, 2): "adjust_to_measuring_period", (8, 3): "adjust_to_minute",
    (8, 4): "adjust_to_preset_time", (8, 5): "preset_adjusting_time", (8, 6): "shift_time",
    (9, 1): "execute",
    (10, 1): "enable_disable", (10, 2): "insert", (10, 3): "delete",
    (11, 1): "insert", (11, 2): "delete",
    (15, 1): "reply_to_HLS_authentication", (15, 2): "change_HLS_secret", (15, 3): "add_object",
    (15, 4): "remove_object", (15, 5): "add_user", (15, 6): "remove_user",
    (17, 1): "connect_logical_device",
    (18, 1): "image_transfer_initiate", (18, 2): "image_block_transfer", (18, 3): "image_verify",
    (18, 4): "image_activate",
    (20, 1): "activate_passive_calendar",
    (29, 1): "connect",
    (30, 1): "get_protected_attributes", (30, 2): "set_protected_attributes",
    (30, 3): "invoke_protected_method",
    (40, 1): "push",
    (42, 1): "add_mc_ip_address", (42, 2): "delete_mc_ip_address", (42, 3): "get_nbof_mc_ip_addresses",
    (61, 1): "reset", (61, 2): "capture",
    (62, 1): "reset", (62, 2): "capture",
    (64, 1): "security_activate", (64, 2): "key_transfer", (64, 3): "key_agreement",
    (64, 4): "generate_key_pair", (64, 5): "generate_certificate_request",
    (64, 6): "import_certificate", (64, 7): "export_certificate", (64, 8): "remove_certificate",
    (65, 1): "add_parameter", (65, 2): "delete_parameter",
    (68, 1): "request_action", (68, 2): "reset",
    (70, 1): "remote_disconnect", (70, 2): "remote_reconnect",
    (72, 1): "slave_install", (72, 2): "slave_deinstall", (72, 3): "capture",
    (72, 4): "reset_alarm_counter", (72, 5): "synchronize_clock", (72, 6): "data_send",
    (72, 7): "set_encryption_key", (72, 8): "transfer_key",
    (111, 1): "activate_account", (111, 2): "close_account", (111, 3): "reset_account",
    (112, 1): "update_amount", (112, 2): "set_amount_to_value", (112, 3): "invoke_credit",
    (113, 1): "update_unit_charge", (113, 2): "activate_passive_unit_charge", (113, 3): "collect",
    (113, 4): "update_total_amount_remaining", (113, 5): "set_total_amount_remaining",
    (115, 1): "enter",
    (122, 1): "set_function_status", (122, 2): "add_function", (122, 3): "delete_function",
    (123, 1): "number_of_entries", (123, 2): "retrieve_entries", (123, 3): "insert_entry",
    (123, 4): "update_entry", (123, 5): "remove_entries",
    (124, 1): "reset",
}

# What a method invocation means for the grid: (class_id, method_id) -> event.action. Methods
# not listed here keep the plain service action (action_request).
METHOD_MEANINGS: dict[tuple[int, int], str] = {
    (DISCONNECT_CONTROL, 1): "remote_disconnect",
    (DISCONNECT_CONTROL, 2): "remote_reconnect",
    (IMAGE_TRANSFER, 1): "image_transfer_initiate",
    (IMAGE_TRANSFER, 2): "image_block_transfer",
    (IMAGE_TRANSFER, 3): "image_verify",
    (IMAGE_TRANSFER, 4): "image_activate",
    (CLOCK, 1): "clock_adjust_to_quarter",
    (CLOCK, 2): "clock_adjust_to_measuring_period",
    (CLOCK, 3): "clock_adjust_to_minute",
    (CLOCK, 4): "clock_adjust_to_preset_time",
    (CLOCK, 5): "clock_preset_adjusting_time",
    (CLOCK, 6): "clock_shift_time",
    (SECURITY_SETUP, 1): "security_policy_change",  # security_activate
    (SECURITY_SETUP, 2): "security_key_change",  # key_transfer / global_key_transfer
    (SECURITY_SETUP, 3): "security_key_change",  # key_agreement
    (SECURITY_SETUP, 4): "security_key_change",  # generate_key_pair
    (SECURITY_SETUP, 5): "security_certificate_request",
    (SECURITY_SETUP, 6): "security_certificate_import",
    (SECURITY_SETUP, 7): "security_certificate_export",
    (SECURITY_SETUP, 8): "security_certificate_remove",
    (ASSOCIATION_LN, 2): "association_secret_change",  # change_HLS_secret
    (ASSOCIATION_LN, 3): "association_object_change",
    (ASSOCIATION_LN, 4): "association_object_change",
    (ASSOCIATION_LN, 5): "association_user_change",
    (ASSOCIATION_LN, 6): "association_user_change",
    (9, 1): "script_execute",
    (20, 1): "activity_calendar_activate",
    (7, 1): "profile_reset",
    (3, 1): "register_reset",
    (4, 1): "register_reset",
    (5, 1): "register_reset",
    (MBUS_CLIENT, 7): "security_key_change",  # set_encryption_key
    (MBUS_CLIENT, 8): "security_key_change",  # transfer_key
}

# Writes that mean the same: (class_id, attribute_id) -> event.action for a SET.
ATTRIBUTE_SET_MEANINGS: dict[tuple[int, int], str] = {
    (CLOCK, 2): "clock_set",
    (CLOCK, 3): "clock_time_zone_set",
    (ASSOCIATION_LN, 7): "association_secret_change",  # LLS secret
    (SECURITY_SETUP, 2): "security_policy_change",
    (DISCONNECT_CONTROL, 4): "disconnect_control_mode_change",
}

# Values that are secrets (or answers an attacker could brute-force offline): report the
# length only. ("attribute"|"method", class_id, id).
SECRET_MEMBERS: frozenset[tuple[str, int, int]] = frozenset({
    ("attribute", ASSOCIATION_LN, 7),  # secret (LLS password)
    ("method", ASSOCIATION_LN, 1),  # reply_to_HLS_authentication: f(StoC) / f(CtoS)
    ("method", ASSOCIATION_LN, 2),  # change_HLS_secret: the new secret
    ("method", SECURITY_SETUP, 2),  # key_transfer: wrapped keys
    ("method", MBUS_CLIENT, 7),  # set_encryption_key: the key in clear
    ("method", MBUS_CLIENT, 8),  # transfer_key
})

# Octet-string attributes that hold a COSEM date-time (rendered as ``dlms.date_time``).
DATE_TIME_ATTRIBUTES: frozenset[tuple[int, int]] = frozenset({
    (CLOCK, 2), (CLOCK, 5), (CLOCK, 6), (20, 10), (4, 5), (5, 6), (5, 7),
})


def render_obis(raw: bytes) -> str:
    """Six OBIS value groups -> ``A-B:C.D.E.F`` in decimal (IEC 62056-6-1)."""
    a, b, c, d, e, f = raw
    return f"{a}-{b}:{c}.{d}.{e}.{f}"


def class_name(class_id: int) -> str | None:
    return CLASS_NAMES.get(class_id)


def member_name(kind: str, class_id: int, member_id: int) -> str | None:
    if member_id == 1 and kind == "attribute":
        return "logical_name"
    table = ATTRIBUTE_NAMES if kind == "attribute" else METHOD_NAMES
    return table.get((class_id, member_id))


def meaning(service: str, kind: str, class_id: int, member_id: int) -> str | None:
    """The event.action a request gets beyond its service name, or None."""
    if kind == "method":
        return METHOD_MEANINGS.get((class_id, member_id))
    if service == "set":
        return ATTRIBUTE_SET_MEANINGS.get((class_id, member_id))
    return None


def is_secret(kind: str, class_id: int, member_id: int) -> bool:
    return (kind, class_id, member_id) in SECRET_MEMBERS
