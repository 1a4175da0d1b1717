"""IEC 60870-5-104 code tables: type identifications, causes, information element layouts, qualifiers.

Sources: IEC 60870-5-101:2003 §7.2.1 (type identification), §7.2.3 (cause of transmission),
§7.2.6 (information elements: SIQ, DIQ, QDS, VTI, NVA, SVA, R32, BCR, SEP, SPE, OCI, QDP, SCD,
SCO, DCO, RCO, QOS, QOI, QCC, QRP, COI, QPM, QPA, FBP, CP16/24/56Time2a, file elements) and
IEC 60870-5-104:2006 §5 (APCI) and §9 (type 107 C_TS_TA_1, 127 F_SC_NB_1); security types 41
and 81–95 and causes 14–16 from IEC 60870-5-7 (secure authentication). Element sizes cross-checked
with Wireshark's ``packet-iec104.c`` ``asdu_length`` table.
"""

from __future__ import annotations

# U-format function bits: the bit's position in control octet 1 (§5.3) → (field name, event.action).
U_FUNCTIONS: dict[int, tuple[str, str]] = {
    0x04: ("STARTDT_act", "startdt_act"),
    0x08: ("STARTDT_con", "startdt_con"),
    0x10: ("STOPDT_act", "stopdt_act"),
    0x20: ("STOPDT_con", "stopdt_con"),
    0x40: ("TESTFR_act", "testfr_act"),
    0x80: ("TESTFR_con", "testfr_con"),
}

# Type identification → (IEC mnemonic, event.action). The action names the message class and is
# the same for the time-tagged variants (the type id tells them apart).
TYPES: dict[int, tuple[str, str]] = {
    # process information in monitor direction
    1: ("M_SP_NA_1", "single_point"),
    2: ("M_SP_TA_1", "single_point"),
    3: ("M_DP_NA_1", "double_point"),
    4: ("M_DP_TA_1", "double_point"),
    5: ("M_ST_NA_1", "step_position"),
    6: ("M_ST_TA_1", "step_position"),
    7: ("M_BO_NA_1", "bitstring"),
    8: ("M_BO_TA_1", "bitstring"),
    9: ("M_ME_NA_1", "measured_value_normalized"),
    10: ("M_ME_TA_1", "measured_value_normalized"),
    11: ("M_ME_NB_1", "measured_value_scaled"),
    12: ("M_ME_TB_1", "measured_value_scaled"),
    13: ("M_ME_NC_1", "measured_value_float"),
    14: ("M_ME_TC_1", "measured_value_float"),
    15: ("M_IT_NA_1", "integrated_totals"),
    16: ("M_IT_TA_1", "integrated_totals"),
    17: ("M_EP_TA_1", "protection_event"),
    18: ("M_EP_TB_1", "protection_start_events"),
    19: ("M_EP_TC_1", "protection_output_circuit"),
    20: ("M_PS_NA_1", "packed_single_points"),
    21: ("M_ME_ND_1", "measured_value_normalized"),
    30: ("M_SP_TB_1", "single_point"),
    31: ("M_DP_TB_1", "double_point"),
    32: ("M_ST_TB_1", "step_position"),
    33: ("M_BO_TB_1", "bitstring"),
    34: ("M_ME_TD_1", "measured_value_normalized"),
    35: ("M_ME_TE_1", "measured_value_scaled"),
    36: ("M_ME_TF_1", "measured_value_float"),
    37: ("M_IT_TB_1", "integrated_totals"),
    38: ("M_EP_TD_1", "protection_event"),
    39: ("M_EP_TE_1", "protection_start_events"),
    40: ("M_EP_TF_1", "protection_output_circuit"),
    41: ("S_IT_TC_1", "security_statistics"),
    # process information in control direction
    45: ("C_SC_NA_1", "single_command"),
    46: ("C_DC_NA_1", "double_command"),
    47: ("C_RC_NA_1", "regulating_step_command"),
    48: ("C_SE_NA_1", "set_point_normalized"),
    49: ("C_SE_NB_1", "set_point_scaled"),
    50: ("C_SE_NC_1", "set_point_float"),
    51: ("C_BO_NA_1", "bitstring_command"),
    58: ("C_SC_TA_1", "single_command"),
    59: ("C_DC_TA_1", "double_command"),
    60: ("C_RC_TA_1", "regulating_step_command"),
    61: ("C_SE_TA_1", "set_point_normalized"),
    62: ("C_SE_TB_1", "set_point_scaled"),
    63: ("C_SE_TC_1", "set_point_float"),
    64: ("C_BO_TA_1", "bitstring_command"),
    # system information in monitor direction
    70: ("M_EI_NA_1", "end_of_initialization"),
    # secure authentication (IEC 60870-5-7): structure not decoded here
    81: ("S_CH_NA_1", "authentication"),
    82: ("S_RP_NA_1", "authentication"),
    83: ("S_AR_NA_1", "authentication"),
    84: ("S_KR_NA_1", "authentication"),
    85: ("S_KS_NA_1", "authentication"),
    86: ("S_KC_NA_1", "authentication"),
    87: ("S_ER_NA_1", "authentication"),
    90: ("S_US_NA_1", "authentication"),
    91: ("S_UQ_NA_1", "authentication"),
    92: ("S_UR_NA_1", "authentication"),
    93: ("S_UK_NA_1", "authentication"),
    94: ("S_UA_NA_1", "authentication"),
    95: ("S_UC_NA_1", "authentication"),
    # system information in control direction
    100: ("C_IC_NA_1", "interrogation"),
    101: ("C_CI_NA_1", "counter_interrogation"),
    102: ("C_RD_NA_1", "read"),
    103: ("C_CS_NA_1", "clock_sync"),
    104: ("C_TS_NA_1", "test_command"),
    105: ("C_RP_NA_1", "reset_process"),
    106: ("C_CD_NA_1", "delay_acquisition"),
    107: ("C_TS_TA_1", "test_command"),
    # parameters in control direction
    110: ("P_ME_NA_1", "parameter_normalized"),
    111: ("P_ME_NB_1", "parameter_scaled"),
    112: ("P_ME_NC_1", "parameter_float"),
    113: ("P_AC_NA_1", "parameter_activation"),
    # file transfer
    120: ("F_FR_NA_1", "file_ready"),
    121: ("F_SR_NA_1", "section_ready"),
    122: ("F_SC_NA_1", "file_call"),
    123: ("F_LS_NA_1", "file_last_section"),
    124: ("F_AF_NA_1", "file_ack"),
    125: ("F_SG_NA_1", "file_segment"),
    126: ("F_DR_TA_1", "file_directory"),
    127: ("F_SC_NB_1", "file_query_log"),
}

# Information elements of one information object, after its IOA, in wire order (§7.3).
# Types absent here (e.g. the security types) are reported with their first IOA only.
TYPE_ELEMENTS: dict[int, tuple[str, ...]] = {
    1: ("SIQ",),
    2: ("SIQ", "CP24"),
    3: ("DIQ",),
    4: ("DIQ", "CP24"),
    5: ("VTI", "QDS"),
    6: ("VTI", "QDS", "CP24"),
    7: ("BSI", "QDS"),
    8: ("BSI", "QDS", "CP24"),
    9: ("NVA", "QDS"),
    10: ("NVA", "QDS", "CP24"),
    11: ("SVA", "QDS"),
    12: ("SVA", "QDS", "CP24"),
    13: ("R32", "QDS"),
    14: ("R32", "QDS", "CP24"),
    15: ("BCR",),
    16: ("BCR", "CP24"),
    17: ("SEP", "CP16", "CP24"),
    18: ("SPE", "QDP", "CP16", "CP24"),
    19: ("OCI", "QDP", "CP16", "CP24"),
    20: ("SCD", "QDS"),
    21: ("NVA",),
    30: ("SIQ", "CP56"),
    31: ("DIQ", "CP56"),
    32: ("VTI", "QDS", "CP56"),
    33: ("BSI", "QDS", "CP56"),
    34: ("NVA", "QDS", "CP56"),
    35: ("SVA", "QDS", "CP56"),
    36: ("R32", "QDS", "CP56"),
    37: ("BCR", "CP56"),
    38: ("SEP", "CP16", "CP56"),
    39: ("SPE", "QDP", "CP16", "CP56"),
    40: ("OCI", "QDP", "CP16", "CP56"),
    41: ("AID", "BCR", "CP56"),
    45: ("SCO",),
    46: ("DCO",),
    47: ("RCO",),
    48: ("NVA", "QOS"),
    49: ("SVA", "QOS"),
    50: ("R32", "QOS"),
    51: ("BSI",),
    58: ("SCO", "CP56"),
    59: ("DCO", "CP56"),
    60: ("RCO", "CP56"),
    61: ("NVA", "QOS", "CP56"),
    62: ("SVA", "QOS", "CP56"),
    63: ("R32", "QOS", "CP56"),
    64: ("BSI", "CP56"),
    70: ("COI",),
    100: ("QOI",),
    101: ("QCC",),
    102: (),
    103: ("CP56",),
    104: ("FBP",),
    105: ("QRP",),
    106: ("CP16_DELAY",),
    107: ("TSC", "CP56"),
    110: ("NVA", "QPM"),
    111: ("SVA", "QPM"),
    112: ("R32", "QPM"),
    113: ("QPA",),
    120: ("NOF", "LOF", "FRQ"),
    121: ("NOF", "NOS", "LOF", "SRQ"),
    122: ("NOF", "NOS", "SCQ"),
    123: ("NOF", "NOS", "LSQ", "CHS"),
    124: ("NOF", "NOS", "AFQ"),
    125: ("NOF", "NOS", "SEGMENT"),
    126: ("NOF", "LOF", "SOF", "CP56"),
    127: ("NOF", "CP56", "CP56_STOP"),
}

# Octets of each fixed-size element. SEGMENT is variable: LOS (1 octet) + LOS octets of file data.
ELEMENT_SIZES: dict[str, int] = {
    "SIQ": 1, "DIQ": 1, "QDS": 1, "VTI": 1, "BSI": 4, "NVA": 2, "SVA": 2, "R32": 4, "BCR": 5,
    "SEP": 1, "SPE": 1, "OCI": 1, "QDP": 1, "SCD": 4, "CP16": 2, "CP16_DELAY": 2, "CP24": 3,
    "CP56": 7, "CP56_STOP": 7, "SCO": 1, "DCO": 1, "RCO": 1, "QOS": 1, "COI": 1, "QOI": 1,
    "QCC": 1, "QRP": 1, "FBP": 2, "TSC": 2, "QPM": 1, "QPA": 1, "AID": 2, "NOF": 2, "NOS": 1,
    "LOF": 3, "FRQ": 1, "SRQ": 1, "SCQ": 1, "LSQ": 1, "CHS": 1, "AFQ": 1, "SOF": 1, "SEGMENT": 1,
}  # fmt: skip

# Cause of transmission, 6 bits (§7.2.3). Undefined values get a range name below.
CAUSES: dict[int, str] = {
    0: "not_used",
    1: "per/cyc",
    2: "back",
    3: "spont",
    4: "init",
    5: "req",
    6: "act",
    7: "actcon",
    8: "deact",
    9: "deactcon",
    10: "actterm",
    11: "retrem",
    12: "retloc",
    13: "file",
    14: "auth",  # IEC 60870-5-7
    15: "seskey",
    16: "usrkey",
    20: "inrogen",
    **{20 + group: f"inro{group}" for group in range(1, 17)},
    37: "reqcogen",
    **{37 + group: f"reqco{group}" for group in range(1, 5)},
    44: "unknown_type_id",
    45: "unknown_cause",
    46: "unknown_common_address",
    47: "unknown_ioa",
}
CAUSE_NAMES: tuple[str, ...] = tuple(
    CAUSES.get(cot, "private" if cot >= 48 else "reserved") for cot in range(64)
)

# Quality descriptor bits (§7.2.6.1–4, 7.2.6.9): bit → flag name as printed in the standard.
QUALITY_BITS: dict[int, str] = {0x10: "BL", 0x20: "SB", 0x40: "NT", 0x80: "IV"}
QDS_BITS: dict[int, str] = {0x01: "OV", **QUALITY_BITS}
QDP_BITS: dict[int, str] = {0x08: "EI", **QUALITY_BITS}  # also SEP (§7.2.6.10)
BCR_BITS: dict[int, str] = {0x20: "CY", 0x40: "CA", 0x80: "IV"}  # carry, adjusted, invalid
SPE_BITS: dict[int, str] = {0x01: "GS", 0x02: "SL1", 0x04: "SL2", 0x08: "SL3", 0x10: "SIE", 0x20: "SRD"}
OCI_BITS: dict[int, str] = {0x01: "GC", 0x02: "CL1", 0x04: "CL2", 0x08: "CL3"}

SINGLE_STATES = ("off", "on")  # SPI / SCS
DOUBLE_STATES = ("intermediate", "off", "on", "indeterminate")  # DPI / ES of SEP
DOUBLE_COMMAND_STATES = ("not_permitted", "off", "on", "not_permitted")  # DCS
STEP_COMMAND_STATES = ("not_permitted", "lower", "higher", "not_permitted")  # RCS

# QU of SCO/DCO/RCO (§7.2.6.26), 5 bits.
COMMAND_QUALIFIERS: tuple[str, ...] = (
    "no_additional_definition", "short_pulse", "long_pulse", "persistent",
    *("reserved",) * 12,
    *("private",) * 16,
)  # fmt: skip

# QOI (§7.2.6.22).
INTERROGATION_QUALIFIERS: dict[int, str] = {
    0: "not_used",
    20: "station",
    **{20 + group: f"group_{group}" for group in range(1, 17)},
}

# QCC (§7.2.6.23): RQT (bits 1–6) and FRZ (bits 7–8).
COUNTER_REQUESTS: dict[int, str] = {
    0: "none",
    1: "group_1",
    2: "group_2",
    3: "group_3",
    4: "group_4",
    5: "general",
}
COUNTER_FREEZE: tuple[str, ...] = ("read", "freeze", "freeze_and_reset", "reset")

# QRP (§7.2.6.27).
RESET_QUALIFIERS: dict[int, str] = {0: "not_used", 1: "general_reset", 2: "reset_event_buffer"}

# COI (§7.2.6.21), bits 1–7; bit 8 is "initialisation after change of local parameters".
INIT_CAUSES: dict[int, str] = {0: "local_power_on", 1: "local_manual_reset", 2: "remote_reset"}

# QPM KPA (§7.2.6.24) and QPA (§7.2.6.25).
PARAMETER_KINDS: dict[int, str] = {
    0: "not_used", 1: "threshold", 2: "smoothing_factor", 3: "low_limit", 4: "high_limit",
}  # fmt: skip
# SCQ of F_SC_NA_1 (§7.2.6.30), low nibble; AFQ of F_AF_NA_1 (§7.2.6.32), low nibble. The high
# nibble of both is an error code (FILE_ERRORS).
FILE_CALLS: dict[int, str] = {
    0: "default", 1: "select_file", 2: "request_file", 3: "deactivate_file", 4: "delete_file",
    5: "select_section", 6: "request_section", 7: "deactivate_section",
}  # fmt: skip
FILE_ACKS: dict[int, str] = {
    0: "default", 1: "file_transfer_ok", 2: "file_transfer_failed", 3: "section_transfer_ok",
    4: "section_transfer_failed",
}  # fmt: skip
FILE_ERRORS: dict[int, str] = {
    0: "none", 1: "memory_unavailable", 2: "checksum_error", 3: "unexpected_service",
    4: "unexpected_file_name", 5: "unexpected_section_name",
}  # fmt: skip

PARAMETER_ACTIVATIONS: dict[int, str] = {
    0: "not_used",
    1: "loaded_parameters",
    2: "object_parameter",
    3: "cyclic_transmission",
}
