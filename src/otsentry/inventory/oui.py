"""MAC address → vendor, from Wireshark's ``manuf`` file (the IEEE MA-L/MA-M/MA-S registries merged).

Debian's ``wireshark-common`` installs it as /usr/share/wireshark/manuf. Wireshark 4.2+ no longer ships
the file but prints the same table with ``tshark -G manuf``; that is the fallback. Without either,
lookups return None: the inventory works, it just cannot name vendors.

Format (Wireshark's manuf header): ``OUI<TAB>short name<TAB>long name``; an entry may carry a
``/bits`` mask (28 for MA-M, 36 for MA-S); separators may be ``:``, ``-`` or ``.``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from functools import cache
from pathlib import Path

MANUF_PATHS = (Path("/usr/share/wireshark/manuf"), Path("/usr/local/share/wireshark/manuf"))
LOCALLY_ADMINISTERED = "(locally administered)"
MULTICAST = "(multicast)"


def _mac_int(text: str) -> tuple[int, int] | None:
    """(48-bit value, number of hex digits given) of a MAC or MAC prefix in any common notation."""
    digits = text.replace(":", "").replace("-", "").replace(".", "")
    if not digits or len(digits) > 12:
        return None
    try:
        value = int(digits, 16)
    except ValueError:
        return None
    return value << (4 * (12 - len(digits))), len(digits)


class VendorTable:
    """Longest-prefix lookup over the registry: one dict per prefix length."""

    def __init__(self, lines: Iterable[str] = ()) -> None:
        self.by_bits: dict[int, dict[int, str]] = {}
        for line in lines:
            self._add(line)
        self.lengths = sorted(self.by_bits, reverse=True)
        self._cache: dict[str, str | None] = {}

    def _add(self, line: str) -> None:
        if not line or line[0] == "#":
            return
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 2:
            return
        prefix = parts[0]
        if len(prefix) == 8 and prefix[2] == ":" and prefix[5] == ":":  # the common MA-L case, fast
            try:
                value = int(prefix[0:2] + prefix[3:5] + prefix[6:8], 16)
            except ValueError:
                return
            name = parts[2] if len(parts) > 2 and parts[2] else parts[1]
            self.by_bits.setdefault(24, {})[value] = name.strip()
            return
        prefix, _, bits_text = prefix.strip().partition("/")
        parsed = _mac_int(prefix)
        if parsed is None:
            return
        value, ndigits = parsed
        bits = int(bits_text) if bits_text.isdigit() else ndigits * 4
        if not 8 <= bits <= 48:
            return
        name = (parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]).strip()
        self.by_bits.setdefault(bits, {})[value >> (48 - bits)] = name

    def __len__(self) -> int:
        return sum(len(t) for t in self.by_bits.values())

    def lookup(self, mac: str | None) -> str | None:
        """Vendor of ``mac`` (``00-1A-2B-3C-4D-5E`` or any separator), or None when unknown."""
        if not mac:
            return None
        cached = self._cache.get(mac, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        parsed = _mac_int(mac)
        vendor = None
        if parsed is not None and parsed[1] == 12:
            value = parsed[0]
            first = value >> 40
            if first & 1:
                vendor = MULTICAST
            else:
                for bits in self.lengths:
                    vendor = self.by_bits[bits].get(value >> (48 - bits))
                    if vendor is not None:
                        break
                if vendor is None and first & 2:
                    vendor = LOCALLY_ADMINISTERED
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[mac] = vendor
        return vendor


def _manuf_lines(path: str | Path | None) -> list[str]:
    candidates = [Path(path)] if path else []
    env = os.environ.get("OTSENTRY_MANUF")
    if env:
        candidates.append(Path(env))
    candidates += MANUF_PATHS
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace").splitlines()
    tshark = shutil.which("tshark")
    if tshark:
        try:
            done = subprocess.run(
                [tshark, "-G", "manuf"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return []
        if done.returncode == 0:
            # `tshark -G manuf` prints "prefix<TAB>short<TAB>long" rows with the mask in the prefix.
            return done.stdout.splitlines()
    return []


@cache
def vendor_table(path: str | None = None) -> VendorTable:
    """The registry, loaded once per process (about 50 000 entries, ~50 ms)."""
    return VendorTable(_manuf_lines(path))


def vendor(mac: str | None) -> str | None:
    return vendor_table().lookup(mac)
