"""ConfirmedServiceError and ExceptionResponse (Green Book ed. 9, 9.5 xDLMS ASN.1:
"ConfirmedServiceError", "ServiceError", "ExceptionResponse")."""

from __future__ import annotations

from otsentry.protocols.base import Fields
from otsentry.protocols.dlms.axdr import Reader

# ConfirmedServiceError ::= CHOICE { initiateError [1], getStatus [2], ... } (the failed service)
CONFIRMED_SERVICES: dict[int, str] = {
    1: "initiateError", 2: "getStatus", 3: "getNameList", 4: "getVariableAttribute", 5: "read",
    6: "write", 7: "getDataSetAttribute", 8: "getTIAttribute", 9: "changeScope", 10: "start",
    11: "stop", 12: "resume", 13: "makeUsable", 14: "initiateLoad", 15: "loadSegment",
    16: "terminateLoad", 17: "initiateUpLoad", 18: "upLoadSegment", 19: "terminateUpLoad",
}

# ServiceError ::= CHOICE { application-reference [0] ENUMERATED {...}, ... }
SERVICE_ERRORS: dict[int, tuple[str, dict[int, str]]] = {
    0: ("application-reference", {
        0: "other", 1: "time-elapsed", 2: "application-unreachable", 3: "application-reference-invalid",
        4: "application-context-unsupported", 5: "provider-communication-error", 6: "deciphering-error"}),
    1: ("hardware-resource", {
        0: "other", 1: "memory-unavailable", 2: "processor-resource-unavailable",
        3: "mass-storage-unavailable", 4: "other-resource-unavailable"}),
    2: ("vde-state-error", {
        0: "other", 1: "no-dlms-context", 2: "loading-data-set", 3: "status-nochange",
        4: "status-inoperable"}),
    3: ("service", {0: "other", 1: "pdu-size", 2: "service-unsupported"}),
    4: ("definition", {
        0: "other", 1: "object-undefined", 2: "object-class-inconsistent",
        3: "object-attribute-inconsistent"}),
    5: ("access", {
        0: "other", 1: "scope-of-access-violated", 2: "object-access-violated", 3: "hardware-fault",
        4: "object-unavailable"}),
    6: ("initiate", {
        0: "other", 1: "dlms-version-too-low", 2: "incompatible-conformance", 3: "pdu-size-too-short",
        4: "refused-by-the-VDE-Handler"}),
    7: ("load-data-set", {
        0: "other", 1: "primitive-out-of-sequence", 2: "not-loadable", 3: "dataset-size-too-large",
        4: "not-awaited-segment", 5: "interpretation-failure", 6: "storage-failure",
        7: "data-set-not-ready"}),
    8: ("change-scope", {0: "other"}),
    9: ("task", {0: "other", 1: "no-remote-control", 2: "ti-stopped", 3: "ti-running", 4: "ti-unusable"}),
    10: ("other", {0: "other"}),
}

# ExceptionResponse ::= SEQUENCE { state-error ENUMERATED, service-error CHOICE }
STATE_ERRORS: dict[int, str] = {1: "service-not-allowed", 2: "service-unknown"}
EXCEPTION_SERVICE_ERRORS: dict[int, str] = {
    1: "operation-not-possible", 2: "service-not-supported", 3: "other-reason", 4: "pdu-too-long",
    5: "deciphering-error", 6: "invocation-counter-error",
}
INVOCATION_COUNTER_ERROR = 6


def _name(table: dict[int, str], code: int) -> str:
    return table.get(code, f"unknown-{code}")


def read_confirmed_service_error(r: Reader) -> Fields:
    """After the 0x0E tag: the failed service, the error class and the error."""
    service = r.u8("confirmed-service-error service")
    error_class = r.u8("service-error choice")
    code = r.u8("service-error value")
    class_name, codes = SERVICE_ERRORS.get(error_class, (f"unknown-{error_class}", {}))
    return {
        "dlms.confirmed_service_error.service": _name(CONFIRMED_SERVICES, service),
        "dlms.confirmed_service_error.error_class": class_name,
        "dlms.confirmed_service_error.error": _name(codes, code),
        "dlms.confirmed_service_error.code": code,
    }


def read_exception_response(r: Reader) -> Fields:
    """After the 0xD8 tag."""
    state = r.u8("exception state-error")
    service = r.u8("exception service-error")
    fields: Fields = {
        "dlms.exception.state_error": _name(STATE_ERRORS, state),
        "dlms.exception.service_error": _name(EXCEPTION_SERVICE_ERRORS, service),
    }
    if service == INVOCATION_COUNTER_ERROR and r.remaining >= 4:
        fields["dlms.exception.invocation_counter"] = r.u32("expected invocation counter")
    return fields
