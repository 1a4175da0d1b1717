"""Assets (hosts, keyed by IP) and their logical devices (protocol + address, e.g. a Modbus unit id
or a DNP3 link address behind a gateway), with roles and the identity the traffic reveals.

Identity comes from the protocol's own self-description: Modbus read device identification
(43/14) and report server id (17), DNP3 device attributes (group 0), C12.22 identification,
DLMS system title and logical device name. Later values overwrite earlier ones key by key.
"""

from __future__ import annotations

from typing import Any

from otsentry.inventory.observe import Address

MAX_IDENTITY_KEYS = 32
MAX_IDENTITY_TEXT = 256

_SETS: dict[tuple[frozenset[str], str], frozenset[str]] = {}
EMPTY: frozenset[str] = frozenset()


def with_item(current: frozenset[str], item: str) -> frozenset[str]:
    """``current | {item}`` as a shared frozenset: roles and protocol sets repeat across thousands of
    records, one copy each is enough."""
    key = (current, item)
    found = _SETS.get(key)
    if found is None:
        found = current | {item}
        if len(_SETS) < 4096:
            _SETS[key] = found
    return found


class Device:
    """A logical device on an asset: one protocol, one address (None when the role has none).

    ``values`` maps a process value point it reports (``hr:3``, ``ai:0``) to ``[lo, hi, samples]``:
    values belong to the device, whichever master reads them.
    """

    __slots__ = ("address", "first", "identity", "last", "protocol", "roles", "values")

    def __init__(self, protocol: str, address: Address, ts: float) -> None:
        self.protocol = protocol
        self.address = address
        self.roles: frozenset[str] = EMPTY
        self.identity: dict[str, Any] | None = None
        self.values: dict[str, list[float]] | None = None
        self.first = ts
        self.last = ts

    def merge_identity(self, identity: dict[str, Any]) -> bool:
        """Merge identity keys; True when something changed."""
        current = self.identity
        if current is None:
            current = self.identity = {}
        changed = False
        for key, value in identity.items():
            if isinstance(value, str):
                value = value[:MAX_IDENTITY_TEXT]
            if current.get(key) != value and (key in current or len(current) < MAX_IDENTITY_KEYS):
                current[key] = value
                changed = True
        return changed


class Asset:
    """One host. ``macs`` maps each MAC seen for this IP to its last-seen time."""

    __slots__ = ("devices", "dirty", "first", "ip", "last", "macs", "messages", "protocols", "vlans")

    def __init__(self, ip: str, ts: float) -> None:
        self.ip = ip
        self.first = ts
        self.last = ts
        self.macs: dict[str, float] = {}
        self.vlans: set[int] | None = None
        self.protocols: frozenset[str] = EMPTY
        self.devices: dict[tuple[str, Address], Device] = {}
        self.messages = 0  # sent and received
        self.dirty = False

    def device(self, protocol: str, address: Address, ts: float, cap: int) -> Device | None:
        key = (protocol, address)
        found = self.devices.get(key)
        if found is None:
            if len(self.devices) >= cap:
                return None
            found = self.devices[key] = Device(protocol, address, ts)
        elif ts > found.last:
            found.last = ts
        return found

    @property
    def roles(self) -> list[str]:
        """``dnp3 master``, ``modbus server`` …, sorted."""
        return sorted({f"{d.protocol} {role}" for d in self.devices.values() for role in d.roles})

    @property
    def identity(self) -> dict[str, Any]:
        """The devices' identities merged, addressed devices last (they describe the hardware)."""
        merged: dict[str, Any] = {}
        for device in sorted(self.devices.values(), key=lambda d: d.address is not None):
            if device.identity:
                merged.update(device.identity)
        return merged

    def latest_mac(self) -> str | None:
        return max(self.macs, key=self.macs.__getitem__) if self.macs else None


def addresses_by_protocol(asset: Asset) -> dict[str, list[Address]]:
    """Each protocol's addresses on this asset (unit ids, link addresses, AP titles), sorted."""
    out: dict[str, list[Address]] = {}
    for protocol, address in asset.devices:
        if address is not None:
            out.setdefault(protocol, []).append(address)
    return {p: sorted(a, key=lambda x: (isinstance(x, str), x)) for p, a in sorted(out.items())}
