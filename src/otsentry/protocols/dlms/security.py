"""The security header of ciphered xDLMS APDUs and system-title rendering.

Green Book ed. 9, 9.2.7.2 "Security header": a security control byte then a 4-byte invocation
counter precede the (possibly encrypted) information and, when authenticated, a 12-byte tag.
Security control byte bits (9.2.7.2.3 table "Security control byte"):
0-3 security suite id, 4 authentication (A), 5 encryption (E), 6 key set (0 unicast,
1 broadcast), 7 compression.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from otsentry.protocols.base import DecodeError, Fields

AUTH_TAG_SIZE = 12  # GCM tag length used by all DLMS security suites (Green Book 9.2.3.4.6)
HEADER_SIZE = 5
SYSTEM_TITLE_SIZE = 8


@dataclass(frozen=True, slots=True)
class SecurityHeader:
    control: int
    invocation_counter: int

    @property
    def authenticated(self) -> bool:
        return bool(self.control & 0x10)

    @property
    def encrypted(self) -> bool:
        return bool(self.control & 0x20)

    @property
    def compressed(self) -> bool:
        return bool(self.control & 0x80)

    def fields(self) -> Fields:
        c = self.control
        return {
            "dlms.ciphered": True,
            "dlms.security_control": c,
            "dlms.security.suite": c & 0x0F,
            "dlms.security.authentication": bool(c & 0x10),
            "dlms.security.encryption": bool(c & 0x20),
            "dlms.security.key_set": "broadcast" if c & 0x40 else "unicast",
            "dlms.security.compression": bool(c & 0x80),
            "dlms.invocation_counter": self.invocation_counter,
        }


def parse_security_header(content: bytes) -> SecurityHeader:
    if len(content) < HEADER_SIZE:
        raise DecodeError(f"ciphered content of {len(content)} bytes has no security header")
    control, counter = struct.unpack_from(">BI", content, 0)
    return SecurityHeader(control, counter)


def readable_plaintext(header: SecurityHeader, content: bytes) -> bytes | None:
    """The information part when it travels in clear (authenticated-only or no protection)."""
    if header.encrypted or header.compressed:
        return None
    end = len(content) - (AUTH_TAG_SIZE if header.authenticated else 0)
    if end <= HEADER_SIZE:
        return None
    return content[HEADER_SIZE:end]


def manufacturer(system_title: bytes) -> str | None:
    """The FLAG manufacturer id: the first 3 bytes of a system title when they are letters
    (Green Book 4.3.4 "System title": 3-letter manufacturer id, then a device number)."""
    prefix = system_title[:3]
    if len(prefix) == 3 and prefix.isalpha() and prefix.isascii():
        return prefix.decode("ascii")
    return None


def system_title_fields(system_title: bytes, source: str) -> Fields:
    """``dlms.system_title`` (hex), where it came from (``apdu``/``association``) and the maker."""
    fields: Fields = {"dlms.system_title": system_title.hex(), "dlms.system_title_source": source}
    maker = manufacturer(system_title)
    if maker is not None:
        fields["dlms.manufacturer"] = maker
    return fields
