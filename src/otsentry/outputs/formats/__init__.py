"""Payload formats (CEF, LEEF 2.0, ECS JSON, plain message) and syslog framing (RFC 5424, RFC 3164)."""
